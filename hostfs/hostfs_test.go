package hostfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"golang.org/x/sys/unix"
)

// alice is an unprivileged uid; the kernel judges by number, so no account
// is needed.
const alice, aliceGID = 4242, 4242

func newRoot(t *testing.T) (*Root, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}

func put(t *testing.T, dir, rel, content string) string {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: checks what root does in other users' directories")
	}
}

func TestAbsoluteLinksResolveInsideTheRoot(t *testing.T) {
	r, dir := newRoot(t)
	put(t, dir, "data/daemon.json", "inside")
	symlink(t, "/data/daemon.json", filepath.Join(dir, "etc/docker/daemon.json"))
	// A relative link climbing far above the root stops at the root.
	symlink(t, "../../../../../../../../data/daemon.json", filepath.Join(dir, "etc/up.json"))
	for _, p := range []string{"/etc/docker/daemon.json", "/etc/up.json", "/../../data/daemon.json"} {
		got, err := r.ReadFile(p, 100)
		if err != nil || string(got) != "inside" {
			t.Errorf("ReadFile(%s) = %q, %v; want the file under the root", p, got, err)
		}
	}
	// /etc/hostname exists on the real / but not under the root.
	symlink(t, "/etc/hostname", filepath.Join(dir, "etc/escape"))
	if _, err := r.ReadFile("/etc/escape", 1<<20); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a link to /etc/hostname read %v; want not found under the root", err)
	}
	real, err := r.Resolve("/etc/docker/daemon.json")
	if err != nil || real != filepath.Join(dir, "data/daemon.json") {
		t.Errorf("Resolve = %q, %v", real, err)
	}
}

func TestWritesThroughAnAbsoluteLinkStayInside(t *testing.T) {
	r, dir := newRoot(t)
	outside := put(t, t.TempDir(), "victim", "untouched")
	symlink(t, outside, filepath.Join(dir, "etc/docker/daemon.json"))
	if err := r.MkdirAll(filepath.Dir(outside), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile("/etc/docker/daemon.json", []byte("new"), WriteOptions{Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "untouched" {
		t.Errorf("the file outside the root was written: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, outside)); string(b) != "new" {
		t.Errorf("the link's target under the root holds %q, want new", b)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "etc/docker/daemon.json")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link itself was replaced: %v %v", fi, err)
	}
}

func TestOnlyBoundedRegularFilesAreRead(t *testing.T) {
	needRoot(t) // mknod
	r, dir := newRoot(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(dir, "zero"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatal(err)
	}
	symlink(t, "/zero", filepath.Join(dir, "link-to-zero"))
	put(t, dir, "big", strings.Repeat("x", 2000))
	if err := os.Mkdir(filepath.Join(dir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := map[string]error{
		"/fifo": ErrNotRegular, "/zero": ErrNotRegular, "/link-to-zero": ErrNotRegular,
		"/dir": ErrNotRegular, "/big": ErrTooLarge,
	}
	for p, want := range cases {
		// A FIFO with no writer would block a plain open for ever: the test
		// finishing at all is half of the check.
		_, err := r.ReadFile(p, 1000)
		if !errors.Is(err, want) {
			t.Errorf("ReadFile(%s) = %v, want %v", p, err, want)
		}
		if err != nil && !strings.Contains(err.Error(), p) {
			t.Errorf("the error does not name the file: %v", err)
		}
	}
	if _, err := r.ReadFile("/big", 2000); err != nil {
		t.Errorf("a file at the bound: %v", err)
	}
}

func TestUsersDirectoriesAreWrittenWithTheirRights(t *testing.T) {
	needRoot(t)
	r, dir := newRoot(t)
	home := filepath.Join(dir, "home/alice")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, alice, aliceGID); err != nil {
		t.Fatal(err)
	}
	cron := filepath.Join(dir, "etc/cron.d")
	if err := os.MkdirAll(cron, 0o755); err != nil {
		t.Fatal(err)
	}
	// alice points her ~/.docker at root's directory.
	symlink(t, "/etc/cron.d", filepath.Join(home, ".docker"))
	if err := os.Lchown(filepath.Join(home, ".docker"), alice, aliceGID); err != nil {
		t.Fatal(err)
	}
	err := r.WriteFile("/home/alice/.docker/config.json", []byte("{}"), WriteOptions{Mode: 0o600, Owner: &Owner{alice, aliceGID}})
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("writing through alice's link into /etc/cron.d: %v, want permission denied", err)
	}
	if ents, _ := os.ReadDir(cron); len(ents) != 0 {
		t.Errorf("/etc/cron.d gained %v", ents)
	}
	// Reads too: a link to root's secret is read with alice's rights.
	put(t, dir, "root/secret", "s3cret")
	os.Chmod(filepath.Join(dir, "root"), 0o700)
	os.Chmod(filepath.Join(dir, "root/secret"), 0o600)
	os.Remove(filepath.Join(home, ".docker"))
	symlink(t, "/root/secret", filepath.Join(home, "config.json"))
	if b, err := r.ReadFile("/home/alice/config.json", 100); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("read root's secret through alice's link: %q, %v", b, err)
	}

	// Her own directory: the file and the directory created for it are hers.
	if err := r.MkdirAll("/home/alice/.docker", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile("/home/alice/.docker/config.json", []byte("{}"), WriteOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".docker", ".docker/config.json"} {
		fi, err := os.Stat(filepath.Join(home, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != alice || st.Gid != aliceGID {
			t.Errorf("%s is owned by %d:%d, want alice's %d:%d", p, st.Uid, st.Gid, alice, aliceGID)
		}
		if fi.Mode().Perm() != 0o700 && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", p, fi.Mode())
		}
	}
}

func TestSharedRootDirectoriesAreRefused(t *testing.T) {
	needRoot(t)
	r, dir := newRoot(t)
	put(t, dir, "shared/f", "x")
	if err := os.Chmod(filepath.Join(dir, "shared"), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFile("/shared/f", 10); !errors.Is(err, ErrUnsafe) {
		t.Errorf("read in a world-writable directory: %v", err)
	}
	if err := r.WriteFile("/shared/g", []byte("x"), WriteOptions{}); !errors.Is(err, ErrUnsafe) {
		t.Errorf("write in a world-writable directory: %v", err)
	}
	if err := r.Remove("/shared/f"); !errors.Is(err, ErrUnsafe) {
		t.Errorf("remove in a world-writable directory: %v", err)
	}
	// Metadata stays available (detection looks at such places).
	if !r.Exists("/shared/f") {
		t.Error("Exists refused")
	}
}

func TestWriteIsAtomicAndExact(t *testing.T) {
	r, dir := newRoot(t)
	if err := r.MkdirAll("/etc/containerd/certs.d/x", 0o755); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	p := "/etc/containerd/certs.d/x/hosts.toml"
	for i, content := range []string{"one", "two"} {
		if err := r.WriteFile(p, []byte(content), WriteOptions{Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("write %d: mode %v, %v (the umask must not decide)", i, fi.Mode(), err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "etc/containerd/certs.d/x"))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := r.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(p); err != nil {
		t.Errorf("removing a missing file: %v", err)
	}
	if ok, err := r.RemoveDir("/etc/containerd/certs.d/x"); !ok || err != nil {
		t.Errorf("RemoveDir = %v, %v", ok, err)
	}
	// A directory where a file should be is never replaced.
	os.MkdirAll(filepath.Join(dir, "etc/d.json"), 0o755)
	if err := r.WriteFile("/etc/d.json", []byte("x"), WriteOptions{}); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("writing over a directory: %v", err)
	}
}

func TestStagedBatch(t *testing.T) {
	r, dir := newRoot(t)
	r.MkdirAll("/a", 0o755)
	var staged []*Staged
	for _, n := range []string{"/a/1", "/a/2", "/a/3"} {
		s, err := r.Stage(n, []byte(n), WriteOptions{Mode: 0o600})
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, s)
	}
	if _, err := os.Stat(filepath.Join(dir, "a/1")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("staged content is in place before Commit")
	}
	if err := Sync(staged); err != nil {
		t.Fatal(err)
	}
	for _, s := range staged[:2] {
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	staged[2].Abort()
	ents, _ := os.ReadDir(filepath.Join(dir, "a"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "1,2" {
		t.Errorf("after commit 2 and abort 1: %v", names)
	}
}

func TestLockFileIsNeverALink(t *testing.T) {
	r, dir := newRoot(t)
	victim := put(t, dir, "etc/passwd", "root:x:0:0")
	symlink(t, "/etc/passwd", filepath.Join(dir, "var/lib/mirrorctl/lock"))
	if f, err := r.OpenLockFile("/var/lib/mirrorctl/lock"); err == nil {
		f.Close()
		t.Fatal("a lock file that is a link was opened")
	}
	if b, _ := os.ReadFile(victim); string(b) != "root:x:0:0" {
		t.Errorf("the link's target changed: %q", b)
	}
}

func TestFSView(t *testing.T) {
	r, dir := newRoot(t)
	put(t, dir, "etc/a.txt", "A")
	put(t, dir, "etc/sub/b.txt", "B")
	if err := fstest.TestFS(r.FS(), "etc/a.txt", "etc/sub/b.txt"); err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(r.FS(), "etc/sub/b.txt")
	if err != nil || !bytes.Equal(b, []byte("B")) {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
}

func TestStickyDirectoriesActAsTheEntrysOwner(t *testing.T) {
	needRoot(t)
	r, dir := newRoot(t)
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	put(t, dir, "tmp/roots", "root's")
	put(t, dir, "root/secret", "s3cret")
	os.Chmod(filepath.Join(dir, "root"), 0o700)
	// alice's link in /tmp to root's secret is followed with her rights.
	symlink(t, "/root/secret", filepath.Join(tmp, "alices"))
	if err := os.Lchown(filepath.Join(tmp, "alices"), alice, aliceGID); err != nil {
		t.Fatal(err)
	}
	if b, err := r.ReadFile("/tmp/roots", 100); err != nil || string(b) != "root's" {
		t.Errorf("root's file in /tmp: %q, %v", b, err)
	}
	if b, err := r.ReadFile("/tmp/alices", 100); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("alice's link in /tmp to root's secret: %q, %v", b, err)
	}
	// alice's own file in /tmp is read as alice, and written as alice.
	put(t, dir, "tmp/hers", "hers")
	os.Chown(filepath.Join(tmp, "hers"), alice, aliceGID)
	os.Chmod(filepath.Join(tmp, "hers"), 0o600)
	if b, err := r.ReadFile("/tmp/hers", 100); err != nil || string(b) != "hers" {
		t.Errorf("alice's file in /tmp: %q, %v", b, err)
	}
}
