package hostfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logged reads paths through r with a Log and returns what it saw.
func logged(t *testing.T, r *Root, read func()) []Observed {
	t.Helper()
	l := NewLog()
	if err := r.LogTo(l); err != nil {
		t.Fatal(err)
	}
	read()
	seen, err := l.Stop()
	if err != nil {
		t.Fatal(err)
	}
	r.log = nil
	return seen[r.Dir()]
}

// A link on the way is part of what was read: pointed elsewhere, at a
// file with the same content, it is found changed; the
// same holds for a directory on the way swapped for a link, and for a
// name that was missing and came.
func TestUnchangedSeesEveryStepOfTheWay(t *testing.T) {
	r, dir := newRoot(t)
	put(t, dir, "data/a/f", "same")
	put(t, dir, "data/b/f", "same")
	symlink(t, "/data/a", filepath.Join(dir, "etc/link"))
	seen := logged(t, r, func() {
		if _, err := r.ReadFile("/etc/link/f", 100); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Stat("/etc/missing"); err == nil {
			t.Fatal("/etc/missing exists")
		}
	})
	paths := map[string]bool{}
	for _, o := range seen {
		paths[o.Path] = o.Whole
	}
	for p, whole := range map[string]bool{"/": false, "/etc": true, "/etc/link": true, "/data": false, "/data/a": false, "/data/a/f": true} {
		if w, ok := paths[p]; !ok || w != whole {
			t.Errorf("%s: seen %v, whole %v; want whole %v (all: %v)", p, ok, w, whole, paths)
		}
	}
	if p, ok := r.Unchanged(seen); !ok {
		t.Fatalf("nothing changed, but %s is said to have", p)
	}
	// A file made in a directory only passed through changes nothing
	// that was read.
	put(t, dir, "data/a/other", "x")
	if p, ok := r.Unchanged(seen); !ok {
		t.Errorf("a new file beside the one read: %s is said to have changed", p)
	}

	for name, change := range map[string]func(){
		"link pointed elsewhere": func() {
			os.Remove(filepath.Join(dir, "etc/link"))
			symlink(t, "/data/b", filepath.Join(dir, "etc/link"))
		},
		"missing name came": func() { put(t, dir, "etc/missing", "") },
		"directory swapped for a link": func() {
			if err := os.Rename(filepath.Join(dir, "data/a"), filepath.Join(dir, "data/a.old")); err != nil {
				t.Fatal(err)
			}
			symlink(t, "/data/a.old", filepath.Join(dir, "data/a"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			r, dir = newRoot(t)
			put(t, dir, "data/a/f", "same")
			put(t, dir, "data/b/f", "same")
			symlink(t, "/data/a", filepath.Join(dir, "etc/link"))
			seen := logged(t, r, func() {
				r.ReadFile("/etc/link/f", 100)
				r.Stat("/etc/missing")
			})
			change()
			if p, ok := r.Unchanged(seen); ok {
				t.Errorf("not seen")
			} else if p == "/data/a/f" && name != "directory swapped for a link" {
				t.Errorf("found by %s only", p)
			}
		})
	}
}

// A path looked at twice with different attributes changed while it was
// read: the log refuses to vouch for either look.
func TestLogRefusesWhatChangedDuringTheRun(t *testing.T) {
	r, dir := newRoot(t)
	put(t, dir, "etc/f", "one")
	l := NewLog()
	if err := r.LogTo(l); err != nil {
		t.Fatal(err)
	}
	r.ReadFile("/etc/f", 100)
	put(t, dir, "etc/f", "two, longer")
	r.ReadFile("/etc/f", 100)
	if _, err := l.Stop(); err == nil || !strings.Contains(err.Error(), "etc/f changed while it was read") {
		t.Errorf("Stop: %v", err)
	}
}
