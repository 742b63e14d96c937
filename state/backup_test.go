package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/mirrorctl/mirrorctl/internal/hosttest"
	"github.com/mirrorctl/mirrorctl/render"
)

func TestBackupRestoreRoundTrip(t *testing.T) {
	root := t.TempDir()
	s := Open(hosttest.Root(t, root))
	const (
		plain  = "/etc/crictl.yaml"
		secret = "/etc/rancher/k3s/registries.yaml"
		absent = "/etc/containerd/certs.d/docker.io/hosts.toml"
	)
	writeHost(t, root, plain, "runtime-endpoint: x\n", 0o640)
	writeHost(t, root, secret, "password: hunter2\n", 0o600)
	st := New()
	st.Files[secret] = Entry{Engine: "k3s", SHA256: sum([]byte("password: hunter2\n"))}

	set, err := s.Backup("sync", files(plain, secret, absent, plain), st)
	if err != nil {
		t.Fatal(err)
	}

	// The sync then changes all three.
	if err := os.Remove(filepath.Join(root, plain)); err != nil {
		t.Fatal(err)
	}
	writeHost(t, root, secret, "password: other\n", 0o600)
	writeHost(t, root, absent, "[host]\n", 0o644)

	got, err := s.Set("latest")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(set, got); d != "" {
		t.Fatalf("Set(latest) differs from what Backup returned (-backup +read):\n%s", d)
	}
	if d := cmp.Diff(st, got.State); d != "" {
		t.Errorf("saved state (-want +got):\n%s", d)
	}
	files, err := s.RestoreFiles(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := render.Apply(context.Background(), hosttest.Root(t, root), plan(t, root, files...)); err != nil {
		t.Fatal(err)
	}
	if got := readHost(t, root, plain); got != "runtime-endpoint: x\n" {
		t.Errorf("%s = %q after restore", plain, got)
	}
	if m := permOf(t, filepath.Join(root, plain)); m != 0o640 {
		t.Errorf("%s recreated with mode %o, want 640", plain, m)
	}
	if got := readHost(t, root, secret); got != "password: hunter2\n" {
		t.Errorf("%s = %q after restore", secret, got)
	}
	if m := permOf(t, filepath.Join(root, secret)); m != 0o600 {
		t.Errorf("%s mode %o after restore, want 600", secret, m)
	}
	if _, err := os.Stat(filepath.Join(root, absent)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s, absent at backup time, still exists after restore (err=%v)", absent, err)
	}
}

func TestBackupModes(t *testing.T) {
	root := t.TempDir()
	s := Open(hosttest.Root(t, root))
	writeHost(t, root, "/etc/secret", "s3cret\n", 0o644)
	set, err := s.Backup("sync", files("/etc/secret"), New())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.Root.Join(s.Dir), "backups", set.ID)
	for _, p := range []string{s.Root.Join(s.Dir), filepath.Join(s.Root.Join(s.Dir), "backups"), dir} {
		if m := permOf(t, p); m != 0o700 {
			t.Errorf("%s mode %o, want 700", p, m)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if m := permOf(t, filepath.Join(dir, e.Name())); m != 0o600 {
			t.Errorf("%s mode %o, want 600", e.Name(), m)
		}
	}
}

func TestRestoreFilesGroupsRegistryDirectory(t *testing.T) {
	s := Open(hosttest.Root(t, t.TempDir()))
	const dir = "/etc/containerd/certs.d/docker.io"
	in := []render.File{{Path: dir + "/hosts.toml", Group: dir, Primary: true}, {Path: dir + "/ca.crt", Group: dir}, {Path: "/etc/docker/daemon.json"}}
	set, err := s.Backup("sync", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := s.RestoreFiles(set)
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, f := range files {
		groups = append(groups, fmt.Sprintf("%s %v", f.Group, f.Primary))
	}
	if d := cmp.Diff([]string{dir + " true", dir + " false", " false"}, groups); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
}

func TestRestoreFilesDetectsCorruptContent(t *testing.T) {
	root := t.TempDir()
	s := Open(hosttest.Root(t, root))
	writeHost(t, root, "/etc/docker/daemon.json", "{}\n", 0o644)
	set, err := s.Backup("sync", files("/etc/docker/daemon.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	content := filepath.Join(s.Root.Join(s.Dir), "backups", set.ID, contentName("/etc/docker/daemon.json"))
	if err := os.WriteFile(content, []byte("{\"bit\": \"rot\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := s.RestoreFiles(set)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("RestoreFiles of a corrupt set = %v, %v; want a corrupt-backup error", files, err)
	}
}

func TestBackupRefusesDirectoryWhereFileExpected(t *testing.T) {
	root := t.TempDir()
	s := Open(hosttest.Root(t, root))
	if err := os.MkdirAll(filepath.Join(root, "/etc/crictl.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup("sync", files("/etc/crictl.yaml"), nil); err == nil {
		t.Fatal("Backup of a directory succeeded, want an error")
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Root.Join(s.Dir), "backups")); len(entries) != 0 {
		t.Errorf("a failed Backup left %d entries in backups/", len(entries))
	}
}

func ids(sets []*Set) []string {
	var out []string
	for _, s := range sets {
		out = append(out, s.ID)
	}
	return out
}

func TestSetsNewestFirstAndPrune(t *testing.T) {
	s := Open(hosttest.Root(t, t.TempDir()))
	var made []string
	for range 4 { // most share a millisecond, so this also exercises the clash suffix
		set, err := s.Backup("sync", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		made = append([]string{set.ID}, made...)
	}
	sets, err := s.Sets()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(made, ids(sets)); d != "" {
		t.Fatalf("Sets order (-want newest first +got):\n%s", d)
	}
	if err := s.Prune(0); err == nil {
		t.Error("Prune(0) succeeded, want an error")
	}
	if err := s.Prune(2); err != nil {
		t.Fatal(err)
	}
	if sets, err = s.Sets(); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(made[:2], ids(sets)); d != "" {
		t.Fatalf("after Prune(2) (-want +got):\n%s", d)
	}
}

func TestIDOrderCountsClashesNumerically(t *testing.T) {
	s := Open(hosttest.Root(t, t.TempDir()))
	names := []string{"20261127T053200.123Z-2", "20261127T053200.123Z", "20261127T053200.123Z-10", "20251231T235959.999Z"}
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(s.Root.Join(s.Dir), "backups", n), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ids()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"20261127T053200.123Z-10", "20261127T053200.123Z-2", "20261127T053200.123Z", "20251231T235959.999Z"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ids (-want +got):\n%s", d)
	}
}

// A Backup killed before its rename leaves a .tmp- directory, complete or
// not; it must never be listed or restored, and Prune clears it once stale.
func TestInterruptedBackupIsNotListed(t *testing.T) {
	root := t.TempDir()
	s := Open(hosttest.Root(t, root))
	writeHost(t, root, "/etc/crictl.yaml", "a\n", 0o644)
	good, err := s.Backup("sync", files("/etc/crictl.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	backups := filepath.Join(s.Root.Join(s.Dir), "backups")
	// Crashed just before the rename: a complete set, newer than good.
	complete := filepath.Join(backups, ".tmp-29991231T235959.999Z")
	if err := os.CopyFS(complete, os.DirFS(filepath.Join(backups, good.ID))); err != nil {
		t.Fatal(err)
	}
	// Crashed while writing the manifest.
	torn := filepath.Join(backups, ".tmp-29991231T235959.998Z")
	if err := os.Mkdir(torn, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(torn, "manifest.json"), []byte(`{"id": "2999`), 0o600); err != nil {
		t.Fatal(err)
	}

	sets, err := s.Sets()
	if err != nil {
		t.Fatalf("Sets with leftovers: %v", err)
	}
	if d := cmp.Diff([]string{good.ID}, ids(sets)); d != "" {
		t.Fatalf("Sets (-want +got):\n%s", d)
	}
	if latest, err := s.Set(""); err != nil || latest.ID != good.ID {
		t.Fatalf("Set(\"\") = %v, %v; want %s", latest, err, good.ID)
	}

	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(torn, old, old); err != nil {
		t.Fatal(err)
	}
	if err := s.Prune(5); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(torn); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Prune left the stale leftover %s (err=%v)", torn, err)
	}
	if _, err := os.Stat(complete); err != nil {
		t.Errorf("Prune removed a leftover younger than an hour: %v", err)
	}
}

func TestSetUnknownID(t *testing.T) {
	s := Open(hosttest.Root(t, t.TempDir()))
	for _, id := range []string{"", "20261127T053200.123Z", "../../etc"} {
		if set, err := s.Set(id); err == nil {
			t.Errorf("Set(%q) = %+v, want an error", id, set)
		}
	}
}

// TestBackupOfManyFilesKeepsFewOpen: a backup set of more existing files
// than the process may open at once (a rollback of thousands of
// registries, a CA rotated for every mirror) is written in batches; staging
// every file before syncing them failed with "too many open files".
func TestBackupOfManyFilesKeepsFewOpen(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = 400 // a batch holds two descriptors per file (its directory and the file)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &lim) })

	root := t.TempDir()
	s := Open(hosttest.Root(t, root))
	var paths []string
	for i := range 600 { // the baseline and the set each hold them all
		p := fmt.Sprintf("/etc/containerd/certs.d/mirror.example.internal/ca-%d.crt", i)
		writeHost(t, root, p, fmt.Sprintf("CA %d\n", i), 0o644)
		paths = append(paths, p)
	}
	set, err := s.Backup("sync", files(paths...), New())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{set.ID, BaselineID} {
		got, err := s.Set(id)
		if err != nil {
			t.Fatalf("set %s: %v", id, err)
		}
		restored, err := s.RestoreFiles(got)
		if err != nil {
			t.Fatalf("set %s: %v", id, err)
		}
		content := map[string]string{}
		for _, f := range restored {
			content[f.Path] = string(f.Data)
		}
		for i, p := range paths {
			if content[p] != fmt.Sprintf("CA %d\n", i) {
				t.Fatalf("set %s restores %s as %q", id, p, content[p])
			}
		}
	}
}
