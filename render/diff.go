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
	old, new = r.Lines(old), r.Lines(new)
	from, to := "a"+c.File.Path, "b"+c.File.Path
	if c.Op == Create {
		from = "/dev/null"
	}
	if c.Op == Delete {
		to = "/dev/null"
	}
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
