package hostfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestDirCacheReadsAndWritesAsAWalkAndReleasesItsDescriptors(t *testing.T) {
	r, dir := newRoot(t)
	put(t, dir, "etc/containerd/certs.d/a/hosts.toml", "a")
	symlink(t, "/etc/containerd", filepath.Join(dir, "etc/link"))
	before := openFDs(t)
	v, release := r.WithDirCache()
	for range 3 {
		for _, p := range []string{"/etc/containerd/certs.d/a/hosts.toml", "/etc/link/certs.d/a/hosts.toml", "/etc/containerd/../containerd/certs.d/a/hosts.toml"} {
			if b, err := v.ReadFile(p, 10); err != nil || string(b) != "a" {
				t.Fatalf("view ReadFile(%s) = %q, %v", p, b, err)
			}
		}
	}
	if err := v.MkdirAll("/etc/containerd/certs.d/b", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := v.WriteFile("/etc/containerd/certs.d/b/hosts.toml", []byte("b"), WriteOptions{Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/containerd/certs.d/b/hosts.toml")); string(b) != "b" {
		t.Errorf("written through the view: %q", b)
	}
	if w, ok := v.WithDirCache(); w != v || ok == nil {
		t.Error("a view of a view is not the view itself")
	}
	if got := openFDs(t); got <= before {
		t.Errorf("%d descriptors open with the view, %d before: it keeps none", got, before)
	}
	release()
	if got := openFDs(t); got != before {
		t.Errorf("%d descriptors open after release, %d before", got, before)
	}
	if b, err := r.ReadFile("/etc/link/certs.d/a/hosts.toml", 10); err != nil || string(b) != "a" {
		t.Errorf("the root after the view's release: %q, %v", b, err)
	}
}

// The view keeps root's directories: a directory root renames meanwhile is
// still the one the view reaches, until the next view.
func TestDirCacheKeepsRootsDirectoriesForItsLife(t *testing.T) {
	r, dir := newRoot(t)
	put(t, dir, "etc/d/f", "old")
	v, release := r.WithDirCache()
	defer release()
	if b, err := v.ReadFile("/etc/d/f", 10); err != nil || string(b) != "old" {
		t.Fatal(b, err)
	}
	if err := os.Rename(filepath.Join(dir, "etc/d"), filepath.Join(dir, "etc/moved")); err != nil {
		t.Fatal(err)
	}
	put(t, dir, "etc/d/f", "new")
	if b, err := v.ReadFile("/etc/d/f", 10); err != nil || string(b) != "old" {
		t.Errorf("the view read %q, %v: it did not keep /etc/d", b, err)
	}
	w, release2 := r.WithDirCache()
	defer release2()
	if b, err := w.ReadFile("/etc/d/f", 10); err != nil || string(b) != "new" {
		t.Errorf("a new view read %q, %v, want the new /etc/d", b, err)
	}
}

// What mirrorctl itself removes or renames through the view is forgotten:
// the directory made again in its place is the one written to.
func TestDirCacheForgetsWhatItRemovesAndRenames(t *testing.T) {
	r, dir := newRoot(t)
	v, release := r.WithDirCache()
	defer release()
	write := func(p, content string) {
		t.Helper()
		if err := v.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := v.WriteFile(p, []byte(content), WriteOptions{Mode: 0o644}); err != nil {
			t.Fatalf("writing %s: %v", p, err)
		}
	}
	write("/etc/certs.d/x/sub/hosts.toml", "1")
	if err := v.Remove("/etc/certs.d/x/sub/hosts.toml"); err != nil {
		t.Fatal(err)
	}
	if ok, err := v.RemoveDir("/etc/certs.d/x/sub"); !ok || err != nil {
		t.Fatalf("RemoveDir = %v, %v", ok, err)
	}
	write("/etc/certs.d/x/sub/hosts.toml", "2")
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/certs.d/x/sub/hosts.toml")); string(b) != "2" {
		t.Errorf("after RemoveDir and MkdirAll: %q on disk, want 2 (written into the removed directory?)", b)
	}

	write("/var/backups/.tmp-1/f", "set")
	if err := v.Rename("/var/backups", ".tmp-1", "1"); err != nil {
		t.Fatal(err)
	}
	write("/var/backups/.tmp-1/f", "next")
	for rel, want := range map[string]string{"var/backups/1/f": "set", "var/backups/.tmp-1/f": "next"} {
		if b, _ := os.ReadFile(filepath.Join(dir, rel)); string(b) != want {
			t.Errorf("%s holds %q, want %q", rel, b, want)
		}
	}
}

// A user's directory is never kept: after alice swaps her ~/.docker for a
// link to root's directory, the view walks it again, as alice.
func TestDirCacheWalksUsersDirectoriesEveryTime(t *testing.T) {
	needRoot(t)
	r, dir := newRoot(t)
	home := filepath.Join(dir, "home/alice")
	put(t, dir, "home/alice/.docker/config.json", "{}")
	for _, p := range []string{home, filepath.Join(home, ".docker"), filepath.Join(home, ".docker/config.json")} {
		if err := os.Chown(p, alice, aliceGID); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc/cron.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	v, release := r.WithDirCache()
	defer release()
	if b, err := v.ReadFile("/home/alice/.docker/config.json", 10); err != nil || string(b) != "{}" {
		t.Fatal(b, err)
	}
	if err := os.Rename(filepath.Join(home, ".docker"), filepath.Join(home, ".docker-old")); err != nil {
		t.Fatal(err)
	}
	symlink(t, "/etc/cron.d", filepath.Join(home, ".docker"))
	if err := os.Lchown(filepath.Join(home, ".docker"), alice, aliceGID); err != nil {
		t.Fatal(err)
	}
	err := v.WriteFile("/home/alice/.docker/config.json", []byte(`{"auths":{}}`), WriteOptions{Mode: 0o600})
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("writing through alice's new link with the view: %v, want permission denied", err)
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".docker-old/config.json")); string(b) != "{}" {
		t.Errorf("the directory alice moved away was written: %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "etc/cron.d")); len(ents) != 0 {
		t.Errorf("/etc/cron.d gained %v", ents)
	}
}

// A full cache keeps no more descriptors; resolutions go on walking.
func TestDirCacheBound(t *testing.T) {
	r, dir := newRoot(t)
	v, release := r.WithDirCache()
	defer release()
	v.cache.limit = 2
	for _, d := range []string{"a", "b", "c", "d", "e"} {
		put(t, dir, "etc/"+d+"/f", d)
	}
	for range 2 {
		for _, d := range []string{"a", "b", "c", "d", "e"} {
			if b, err := v.ReadFile("/etc/"+d+"/f", 10); err != nil || string(b) != d {
				t.Fatalf("ReadFile(/etc/%s/f) = %q, %v", d, b, err)
			}
		}
	}
	if n := len(v.cache.fds); n > 2 {
		t.Errorf("the cache keeps %d descriptors, its limit is 2", n)
	}
}

func TestReadFileInfo(t *testing.T) {
	r, dir := newRoot(t)
	put(t, dir, "etc/f", "content")
	if err := os.Chmod(filepath.Join(dir, "etc/f"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc/d"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, "/etc/f", filepath.Join(dir, "etc/link"))
	for _, p := range []string{"/etc/f", "/etc/link"} {
		b, fi, err := r.ReadFileInfo(p, 100)
		if err != nil || string(b) != "content" || fi.Mode() != 0o640 || fi.Size() != 7 {
			t.Errorf("ReadFileInfo(%s) = %q, %v, %v", p, b, fi, err)
		}
	}
	if _, fi, err := r.ReadFileInfo("/etc/d", 100); !errors.Is(err, ErrNotRegular) || fi == nil || !fi.IsDir() {
		t.Errorf("a directory: %v, %v; want its FileInfo and ErrNotRegular", fi, err)
	}
	if _, fi, err := r.ReadFileInfo("/etc/missing", 100); !errors.Is(err, fs.ErrNotExist) || fi != nil {
		t.Errorf("a missing file: %v, %v", fi, err)
	}
	if _, _, err := r.ReadFileInfo("/etc/f", 3); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if os.Geteuid() == 0 {
		put(t, dir, "shared/f", "x")
		os.Chmod(filepath.Join(dir, "shared"), 0o777)
		if b, fi, err := r.ReadFileInfo("/shared/f", 10); !errors.Is(err, ErrUnsafe) || fi == nil || b != nil {
			t.Errorf("in a world-writable directory: %q, %v, %v; want its FileInfo and ErrUnsafe", b, fi, err)
		}
	}
}

// readFD reads to the end whatever fstat said: a file that grew since (or
// a size of 0, as /proc reports) is read whole, up to the limit.
func TestReadFDReadsWhatIsThere(t *testing.T) {
	content := strings.Repeat("0123456789", 1000)
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{10000, 0, 1, 9999, 20000} {
		fd, err := unix.Open(p, unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := readFD(fd, size, 1<<20)
		unix.Close(fd)
		if err != nil || string(b) != content {
			t.Errorf("size %d: %d bytes, %v; want the %d bytes", size, len(b), err, len(content))
		}
	}
	fd, err := unix.Open(p, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := readFD(fd, 0, 5000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("10000 bytes with a limit of 5000: %v", err)
	}
}
