// Package hosttest builds scratch host trees for tests that run mirrorctl
// under --root (copies of testdata/demo/root).
package hosttest

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/mirrorctl/mirrorctl/hostfs"
)

// CopyTree copies the directory from to to, keeping file modes.
func CopyTree(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Snapshot maps every file under root, except those skip names (by path
// relative to root), to its permission bits and a short content hash, so
// that two snapshots compare with cmp.Diff.
func Snapshot(t testing.TB, root string, skip func(rel string) bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if skip != nil && skip(filepath.ToSlash(rel)) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[rel] = info.Mode().Perm().String() + " " + hex.EncodeToString(sum[:8])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Read returns the content of a host path under root.
func Read(t testing.TB, root, hostPath string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, hostPath))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Root opens dir through hostfs for the test's duration.
func Root(t testing.TB, dir string) *hostfs.Root {
	t.Helper()
	r, err := hostfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
