package replay

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A record checks clean until something it names changes; each kind of
// change is caught by the check that should catch it.
func TestCheckFindsChanges(t *testing.T) {
	for _, tc := range []struct {
		name              string
		change            func(t *testing.T, dir string)
		byStat, byContent bool // whether each check must find it
	}{
		{"nothing", func(*testing.T, string) {}, false, false},
		{"same size, mtime put back", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "hosts.toml")
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			write(t, p, "server = \"https://b\"\n")
			if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"file added to a listed directory", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "ca.crt"), "x")
		}, true, true},
		{"file rewritten with the same bytes", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "hosts.toml"), "server = \"https://a\"\n")
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "hosts.toml")
			write(t, p, "server = \"https://a\"\n")
			rec, err := Record([]string{p}, []string{dir})
			if err != nil {
				t.Fatal(err)
			}
			// Past the file system's clock tick, so that a change made
			// now gets a later ctime than the one recorded.
			time.Sleep(20 * time.Millisecond)
			tc.change(t, dir)
			for _, c := range []struct {
				byContent, want bool
			}{{false, tc.byStat}, {true, tc.byContent}} {
				err := Check(rec, c.byContent)
				if (err != nil) != c.want {
					t.Errorf("Check(byContent=%v) = %v; want a difference found: %v", c.byContent, err, c.want)
				}
			}
		})
	}
}

// Checked on every CPU (past parallelFrom entries), a change in any
// goroutine's share is still found.
func TestCheckInParallelFindsAChangeInAnyShare(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i := range parallelFrom {
		p := filepath.Join(dir, fmt.Sprintf("f%04d", i))
		write(t, p, "a")
		files = append(files, p)
	}
	rec, err := Record(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(rec, true); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, parallelFrom / 2, parallelFrom - 1} {
		write(t, files[i], "b")
		if err := Check(rec, true); err == nil || !strings.Contains(err.Error(), files[i]) {
			t.Errorf("file %d changed: Check = %v", i, err)
		}
		write(t, files[i], "a")
	}
}

// CheckFile is what the floor programs run: the record read from its file,
// checked the way asked, and nothing but stat or content asked.
func TestCheckFile(t *testing.T) {
	dir, p, rec := recordOfOneFile(t)
	file := filepath.Join(dir, "record")
	if err := os.WriteFile(file, rec, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, by := range []string{"stat", "content"} {
		if err := CheckFile(by, file); err != nil {
			t.Errorf("CheckFile(%s) of an unchanged file: %v", by, err)
		}
	}
	if err := CheckFile("size", file); err == nil || !strings.Contains(err.Error(), "by stat or content") {
		t.Errorf("CheckFile(size) = %v", err)
	}
	write(t, p, "y")
	if err := CheckFile("content", file); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("CheckFile(content) of a changed file = %v", err)
	}
}

func TestCheckRefusesABrokenRecord(t *testing.T) {
	_, _, rec := recordOfOneFile(t)
	if err := Check(rec[:len(rec)-1], false); err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Errorf("truncated record: %v", err)
	}
}

// recordOfOneFile writes a file p holding "x" in a new directory dir and
// records it.
func recordOfOneFile(t *testing.T) (dir, p string, rec []byte) {
	t.Helper()
	dir = t.TempDir()
	p = filepath.Join(dir, "f")
	write(t, p, "x")
	rec, err := Record([]string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, p, rec
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
