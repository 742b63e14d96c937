package render

import (
	"fmt"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/mirrorctl/mirrorctl/credentials"
)

// Diff returns a unified diff of c with every credential masked by r: known
// secret values, and the value of any credential-looking assignment (which
// may hold a secret the spec no longer knows, such as an old password).
func Diff(c Change, r *credentials.Redactor) (string, error) {
	if !c.Changed() {
		return "", nil
	}
	old, new := string(c.Old), string(c.File.Data)
	if c.Op == Delete {
		new = ""
	}
	from, to := "a"+c.File.Path, "b"+c.File.Path
	if c.Op == Create {
		from = "/dev/null"
	}
	if c.Op == Delete {
		to = "/dev/null"
	}
	if c.File.Secret || credentials.HoldsSecret(c.Old) || credentials.HoldsSecret([]byte(new)) {
		// A line diff of a credential file shows the secret's shape, its
		// length and, for a multi-line key, most of it: sizes only.
		return fmt.Sprintf("--- %s\n+++ %s\n# %s holds credentials: content not shown; %s\n", from, to, c.File.Path, sizes(c)), nil
	}
	old, new = r.Lines(old), r.Lines(new)
	d := difflib.UnifiedDiff{
		A:        difflib.SplitLines(old),
		B:        difflib.SplitLines(new),
		FromFile: from,
		ToFile:   to,
		Context:  3,
	}
	s, err := difflib.GetUnifiedDiffString(d)
	if err != nil {
		return "", fmt.Errorf("diffing %s: %w", c.File.Path, err)
	}
	if s == "" && c.Changed() {
		// Same bytes: only the mode changes.
		s = fmt.Sprintf("--- %s\n+++ %s\n# mode %04o -> %04o\n", from, to, c.OldMode, c.WantMode())
	}
	return s, nil
}

// sizes says how a secret file changes without showing it.
func sizes(c Change) string {
	switch c.Op {
	case Create:
		return fmt.Sprintf("created, %d bytes, mode %04o", len(c.File.Data), c.WantMode())
	case Delete:
		return fmt.Sprintf("removed, was %d bytes", len(c.Old))
	}
	if string(c.Old) == string(c.File.Data) {
		return fmt.Sprintf("content unchanged, mode %04o -> %04o", c.OldMode, c.WantMode())
	}
	return fmt.Sprintf("content changed, %d -> %d bytes", len(c.Old), len(c.File.Data))
}
