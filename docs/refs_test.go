// Package docs holds the project's documentation; its test checks that
// the code's references to it resolve inside the repository.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Documents outside the repository that the code once cited: whatever the
// code relies on is written down here, in docs/.
var outside = regexp.MustCompile(`\b(DESIGN\.md|ENGINES\.md|REAL-ENGINES|FACTS-WAVE2|FIELD-LESSONS|STYLE\.md)\b|\.\./shared/`)

// A project document named by a path from the repository root.
var docRef = regexp.MustCompile(`(^|[\s("'\x60])(docs/[A-Za-z0-9_./-]+\.md)`)

// upstream are documents of other projects the code names by their own
// path (with the project beside it).
var upstream = map[string]bool{"docs/installation/private-registry.md": true}

// TestCodeReferencesResolve: every docs/*.md a Go file, a script or the
// Makefile names exists, and none names a document outside the repository.
func TestCodeReferencesResolve(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, p)
		if d.IsDir() {
			switch {
			case rel != "." && strings.HasPrefix(d.Name(), "."), rel == "bin", rel == "dist", rel == "build", d.Name() == "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, ".sh") && d.Name() != "Makefile" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			if outside.MatchString(line) && rel != "docs/refs_test.go" {
				t.Errorf("%s:%d names a document outside the repository: %s", rel, i+1, strings.TrimSpace(line))
			}
			for _, m := range docRef.FindAllStringSubmatch(line, -1) {
				ref := strings.TrimRight(m[2], ".")
				if upstream[ref] {
					continue
				}
				if _, err := os.Stat(filepath.Join(repo, ref)); err != nil {
					t.Errorf("%s:%d names %s, which is not in the repository", rel, i+1, ref)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("only %d files checked: the walk missed the code", checked)
	}
}
