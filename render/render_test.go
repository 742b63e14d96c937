package render

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/internal/hosttest"
)

// HostPath joins root and an absolute host path.
func HostPath(root, hostPath string) string { return filepath.Join(root, hostPath) }

func writeHost(t *testing.T, root, hostPath, data string, mode os.FileMode) {
	t.Helper()
	p := HostPath(root, hostPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func ops(changes []Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, string(c.Op)+" "+c.File.Path)
	}
	return out
}

func TestPlanOps(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/etc/same", "x\n", 0o644)
	writeHost(t, root, "/etc/other", "old\n", 0o644)
	writeHost(t, root, "/etc/gone", "bye\n", 0o644)
	writeHost(t, root, "/etc/secret-open", "s\n", 0o644)
	changes, err := Plan(hosttest.Root(t, root), []File{
		{Path: "/etc/same", Data: []byte("x\n")},
		{Path: "/etc/other", Data: []byte("new\n")},
		{Path: "/etc/new", Data: []byte("n\n")},
		{Path: "/etc/gone", Remove: true},
		{Path: "/etc/never", Remove: true},
		{Path: "/etc/secret-open", Data: []byte("s\n"), Secret: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"keep /etc/same", "update /etc/other", "create /etc/new", "delete /etc/gone", "keep /etc/never", "update /etc/secret-open"}
	if d := cmp.Diff(want, ops(changes)); d != "" {
		t.Fatalf("ops (-want +got):\n%s", d)
	}
}

func TestPlanRefusesDirectoryWhereFileExpected(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(HostPath(root, "/etc/docker/daemon.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Plan(hosttest.Root(t, root), []File{{Path: "/etc/docker/daemon.json", Data: []byte("{}\n")}})
	if err == nil || !strings.Contains(err.Error(), "/etc/docker/daemon.json exists and is not a regular file") {
		t.Fatalf("err = %v", err)
	}
}

func TestApplyModesAndContent(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/etc/keepmode", "old\n", 0o640)
	writeHost(t, root, "/etc/creds", "old\n", 0o644)
	files := []File{
		{Path: "/etc/keepmode", Data: []byte("new\n"), Mode: 0o644},
		{Path: "/etc/creds", Data: []byte("token\n"), Secret: true},
		{Path: "/etc/deep/new/file", Data: []byte("n\n"), Mode: 0o644},
	}
	changes, err := Plan(hosttest.Root(t, root), files)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(context.Background(), hosttest.Root(t, root), changes); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]struct {
		data string
		mode os.FileMode
	}{
		"/etc/keepmode":      {"new\n", 0o640},
		"/etc/creds":         {"token\n", 0o600},
		"/etc/deep/new/file": {"n\n", 0o644},
	} {
		p := HostPath(root, path)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		if string(b) != want.data || fi.Mode().Perm() != want.mode {
			t.Errorf("%s = %q %v, want %q %v", path, b, fi.Mode().Perm(), want.data, want.mode)
		}
	}
	// Nothing else (no temp files) is left in the directories.
	entries, _ := os.ReadDir(HostPath(root, "/etc"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if d := cmp.Diff([]string{"creds", "deep", "keepmode"}, names); d != "" {
		t.Errorf("/etc entries (-want +got):\n%s", d)
	}
	// A second plan finds nothing to do.
	again, err := Plan(hosttest.Root(t, root), files)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again {
		if c.Changed() {
			t.Errorf("second plan wants to %s %s", c.Op, c.File.Path)
		}
	}
}

func TestApplyThroughSymlinkKeepsLink(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/data/daemon.json", "{}\n", 0o644)
	if err := os.MkdirAll(HostPath(root, "/etc/docker"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := HostPath(root, "/etc/docker/daemon.json")
	// An absolute link means a path under the root, as it does for the
	// host itself under --root /host.
	if err := os.Symlink("/data/daemon.json", link); err != nil {
		t.Fatal(err)
	}
	changes, err := Plan(hosttest.Root(t, root), []File{{Path: "/etc/docker/daemon.json", Data: []byte("{\"a\": 1}\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(context.Background(), hosttest.Root(t, root), changes); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("symlink replaced by a file")
	}
	if b, _ := os.ReadFile(HostPath(root, "/data/daemon.json")); string(b) != "{\"a\": 1}\n" {
		t.Fatalf("target = %q", b)
	}
}

func TestApplyGroupOrder(t *testing.T) {
	changes := []Change{
		{Op: Create, File: File{Path: "/c/a/hosts.toml", Group: "a", Primary: true}},
		{Op: Create, File: File{Path: "/other", Group: ""}},
		{Op: Create, File: File{Path: "/c/a/ca.crt", Group: "a"}},
		{Op: Delete, File: File{Path: "/c/b/client.key", Group: "b"}},
		{Op: Delete, File: File{Path: "/c/b/hosts.toml", Group: "b", Primary: true}},
	}
	want := []string{"create /c/a/ca.crt", "create /c/a/hosts.toml", "create /other", "delete /c/b/hosts.toml", "delete /c/b/client.key"}
	if d := cmp.Diff(want, ops(orderForApply(changes))); d != "" {
		t.Fatalf("order (-want +got):\n%s", d)
	}
}

func TestApplyDeleteRemovesEmptiedGroupDir(t *testing.T) {
	root := t.TempDir()
	writeHost(t, root, "/certs.d/a/hosts.toml", "x", 0o644)
	writeHost(t, root, "/certs.d/b/hosts.toml", "x", 0o644)
	writeHost(t, root, "/certs.d/b/user-file", "mine", 0o644)
	changes, err := Plan(hosttest.Root(t, root), []File{
		{Path: "/certs.d/a/hosts.toml", Remove: true, Group: "a"},
		{Path: "/certs.d/b/hosts.toml", Remove: true, Group: "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(context.Background(), hosttest.Root(t, root), changes); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(HostPath(root, "/certs.d/a")); !os.IsNotExist(err) {
		t.Errorf("emptied dir a still there (err=%v)", err)
	}
	if b, err := os.ReadFile(HostPath(root, "/certs.d/b/user-file")); err != nil || string(b) != "mine" {
		t.Errorf("user file in b: %q, %v", b, err)
	}
}

func TestDiffNeverShowsCredentialFiles(t *testing.T) {
	key := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIOld\nline2secret\n-----END EC PRIVATE KEY-----\n"
	for name, c := range map[string]Change{
		"auth rotated": {Op: Update, OldMode: 0o600,
			Old:  []byte("[registry.configs.\"m:5000\".auth]\n  auth = \"b2xkOm9sZHBhc3M=\"\n"),
			File: File{Path: "/etc/containerd/config.toml", Data: []byte("[registry.configs.\"m:5000\".auth]\n  auth = \"bmV3Om5ld3Bhc3M=\"\n# note: hunter22\n")}},
		"key removed": {Op: Delete, OldMode: 0o600, Old: []byte(key), File: File{Path: "/etc/docker/certs.d/m/client.key", Remove: true}},
		"key rotated": {Op: Update, OldMode: 0o600, Old: []byte(key), File: File{Path: "/etc/containerd/certs.d/m/client.key", Data: []byte("new"), Secret: true}},
		"multi-line password": {Op: Update, OldMode: 0o600, Old: []byte("x: 1\n"),
			File: File{Path: "/etc/rancher/k3s/registries.yaml", Secret: true, Data: []byte("password: |\n  hunter22\n  second-line\n")}},
	} {
		d, err := Diff(c, credentials.NewRedactor("hunter22"))
		if err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{"b2xkOm9sZHBhc3M=", "bmV3Om5ld3Bhc3M=", "hunter22", "MHcCAQEEIOld", "line2secret", "second-line"} {
			if strings.Contains(d, leak) {
				t.Errorf("%s: diff leaks %q:\n%s", name, leak, d)
			}
		}
		if !strings.Contains(d, "holds credentials") || !strings.Contains(d, "bytes") {
			t.Errorf("%s: diff does not say the content changed, with sizes:\n%s", name, d)
		}
	}
}

func TestDiffRedactsKnownSecrets(t *testing.T) {
	c := Change{Op: Update, Old: []byte("a = 1\n"), OldMode: 0o644,
		File: File{Path: "/etc/x.toml", Data: []byte("a = 1\n# note: hunter22\n")}}
	d, err := Diff(c, credentials.NewRedactor("hunter22"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d, "hunter22") || !strings.Contains(d, "+# note: <redacted>") {
		t.Errorf("diff:\n%s", d)
	}
}

func TestApplyInAUsersHomeWithTheirRights(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("acting as another user needs root")
	}
	root := t.TempDir()
	if err := os.MkdirAll(HostPath(root, "/home/u"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(HostPath(root, "/home/u"), 1234, 1235); err != nil {
		t.Fatal(err)
	}
	changes, err := Plan(hosttest.Root(t, root), []File{{Path: "/home/u/.docker/config.json", Data: []byte("{}\n"), Secret: true, Owner: &Owner{UID: 1234, GID: 1235}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(context.Background(), hosttest.Root(t, root), changes); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/home/u/.docker/config.json", "/home/u/.docker"} {
		fi, err := os.Stat(HostPath(root, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1234 || st.Gid != 1235 {
			t.Errorf("%s owned by %d:%d, want 1234:1235", p, st.Uid, st.Gid)
		}
	}
}
