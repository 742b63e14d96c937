package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/internal/hosttest"
)

// Fault tests: the disk fills up, a file or directory cannot be written, a
// directory stands where a file is expected. Each gives a clear error and
// leaves every file under the root as it was.

// snapshotOutsideState is h.snapshot without mirrorctl's own directory, which a failed
// sync may change (a backup set, the state restored with it).
func (h *host) snapshotOutsideState() map[string]string {
	h.t.Helper()
	return hosttest.Snapshot(h.t, h.root, func(rel string) bool { return strings.HasPrefix(rel, "var/lib/mirrorctl/") })
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// unmountOnCleanup unmounts dir when the test ends.
func unmountOnCleanup(t *testing.T, dir string) {
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			if err2 := syscall.Unmount(dir, syscall.MNT_DETACH); err2 != nil {
				t.Errorf("unmounting %s: %v; lazily: %v", dir, err, err2)
			}
		}
	})
}

// bindReadOnly makes path (a file or a directory) a read-only bind mount of
// itself, or skips the test when the kernel or the sandbox does not allow it.
func bindReadOnly(t *testing.T, path string) {
	t.Helper()
	requireRoot(t)
	if err := syscall.Mount(path, path, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount %s: %v", path, err)
	}
	unmountOnCleanup(t, path)
	if err := syscall.Mount("", path, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot make the bind mount of %s read-only: %v", path, err)
	}
}

// fullDiskSpec writes a spec that needs a few pages of disk: certs.d
// directories for three registries and a CA bundle of several pages in
// containerd's and in Docker's certs.d.
func fullDiskSpec(h *host) string {
	h.t.Helper()
	ca, err := os.ReadFile(filepath.Join(h.etc, "certs/nexus-ca.crt"))
	if err != nil {
		h.t.Fatal(err)
	}
	h.write("certs/bundle.crt", strings.Repeat(string(ca), 30)) // ~16 KiB: four pages
	return h.write("full-disk.yaml", `mirrors:
  docker.io:
    endpoint: ["https://nexus.example.internal:8443"]
  ghcr.io:
    endpoint: ["https://nexus.example.internal/repository/docker-group/v2"]
  quay.io:
    endpoint: ["https://nexus.example.internal/repository/docker-group/v2"]
configs:
  nexus.example.internal:
    auth:
      username: puller
      password_file: secrets/nexus-password
  nexus.example.internal:8443:
    tls:
      ca_file: certs/bundle.crt
engines:
  docker:
    auth_users: [root]
`)
}

// fillFS writes a file in dir's filesystem that leaves exactly free blocks
// available.
func fillFS(t *testing.T, dir string, free int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	n := (int64(st.Bavail) - free) * st.Bsize
	if n < 0 {
		t.Fatalf("only %d blocks free, want to leave %d", st.Bavail, free)
	}
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, n), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if int64(st.Bavail) != free {
		t.Fatalf("%d blocks free after filling, want %d", st.Bavail, free)
	}
}

// The host tree lives on a small tmpfs that is filled up so that exactly k
// blocks are free, for k = 0, 1, 2… until the sync fits: the disk runs full
// at each step of the sync in turn (the lock, the backup set, each engine
// file, state.json). Every failure is exit 1 with "no space left on device",
// and every file is as it was, those already written restored from the
// backup set.
func TestFaultFullDiskLeavesEveryFileAsItWas(t *testing.T) {
	requireRoot(t)
	h := newHost(t)
	spec := fullDiskSpec(h)
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=512k,mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	unmountOnCleanup(t, mnt)
	h.root = filepath.Join(mnt, "root")

	var restored int
	fitted := int64(-1)
	var steps []string
	for k := int64(0); k <= 64; k++ {
		ents, err := os.ReadDir(mnt)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(mnt, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		hosttest.CopyTree(t, "../../testdata/demo/root", h.root)
		fillFS(t, mnt, k)
		before := h.snapshotOutsideState()
		code, out, errOut := syncInProcess(h.root, spec, "--adopt")
		if code == exitOK {
			fitted = k
			break
		}
		msg := errOut
		if i := strings.LastIndex(msg, "mirrorctl: "); i >= 0 {
			msg, _, _ = strings.Cut(msg[i:], "\n")
		}
		steps = append(steps, fmt.Sprintf("%d free: %s", k, msg))
		if code != exitFailure || !strings.Contains(errOut, "no space left on device") {
			t.Errorf("%d blocks free: exit %d, want %d with \"no space left on device\":\n%s%s", k, code, exitFailure, out, errOut)
		}
		if strings.Contains(errOut, "ALSO failed") {
			t.Errorf("%d blocks free: the restore failed too:\n%s", k, errOut)
		}
		if strings.Contains(errOut, "restored from backup set") {
			restored++
		}
		if strings.Contains(out, "wrote ") {
			t.Errorf("%d blocks free: stdout reports files written although the sync failed:\n%s", k, out)
		}
		if d := cmp.Diff(before, h.snapshotOutsideState()); d != "" {
			t.Errorf("%d blocks free: files changed (-before +after):\n%s\nstderr:\n%s", k, d, errOut)
		}
	}
	t.Logf("where the disk ran full:\n  %s", strings.Join(steps, "\n  "))
	if fitted < 0 {
		t.Fatalf("the sync does not fit in 64 free blocks")
	}
	t.Logf("the sync fits in %d free blocks; %d failed after writing files and restored them", fitted, restored)
	if restored == 0 {
		t.Errorf("no size made a write fail after the backup; the test does not exercise the restore")
	}
}

// A file that cannot be replaced (immutable, or a read-only mount) and a
// directory that cannot be written: the error names the path and every file
// written before the failure is restored.
func TestFaultReadOnlyLeavesEveryFileAsItWas(t *testing.T) {
	const hub, ghcr = "https://nexus.example.internal:8443", "https://nexus.example.internal/repository/docker-group/v2"
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, h *host)
		want    []string
	}{
		{"immutable_daemon_json", func(t *testing.T, h *host) {
			requireRoot(t)
			p := filepath.Join(h.root, "etc/docker/daemon.json")
			if _, err := exec.LookPath("chattr"); err != nil {
				t.Log("no chattr: a read-only bind mount of daemon.json instead")
				bindReadOnly(t, p)
				return
			}
			if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
				t.Logf("chattr +i: %v: %s; a read-only bind mount of daemon.json instead", err, out)
				bindReadOnly(t, p)
				return
			}
			t.Cleanup(func() {
				if out, err := exec.Command("chattr", "-i", p).CombinedOutput(); err != nil {
					t.Errorf("chattr -i: %v: %s", err, out)
				}
			})
		}, []string{"/etc/docker/daemon.json"}},
		{"read_only_containerd_certs_d", func(t *testing.T, h *host) {
			p := filepath.Join(h.root, "etc/containerd/certs.d")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			bindReadOnly(t, p)
		}, []string{"/etc/containerd/certs.d/", "read-only file system"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			spec := h.spec(hub, ghcr, "puller")
			tc.prepare(t, h)
			before := h.snapshotOutsideState()
			code, out, errOut := syncInProcess(h.root, spec, "--adopt")
			if code != exitFailure {
				t.Fatalf("exit %d, want %d\n%s%s", code, exitFailure, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(errOut, "ALSO failed") {
				t.Errorf("the restore failed too:\n%s", errOut)
			}
			if strings.Contains(out, "wrote ") {
				t.Errorf("stdout reports files written although every file was restored:\n%s", out)
			}
			if d := cmp.Diff(before, h.snapshotOutsideState()); d != "" {
				t.Errorf("files changed (-before +after):\n%s\nstderr:\n%s", d, errOut)
			}
		})
	}
}

// A directory where mirrorctl expects a file, and a file where it expects a
// directory: an error naming the path (as a host path, the way every other
// message names files) and saying what is wrong, before anything is written.
func TestFaultWrongFileTypeChangesNothing(t *testing.T) {
	dirAt := func(hostPath string) func(t *testing.T, root string) {
		return func(t *testing.T, root string) {
			p := filepath.Join(root, hostPath)
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p, "keep"), []byte("someone's\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, root string)
		path    string // named in the error
	}{
		{"directory_for_crictl_yaml", dirAt("etc/crictl.yaml"), "/etc/crictl.yaml"},
		{"directory_for_daemon_json", dirAt("etc/docker/daemon.json"), "/etc/docker/daemon.json"},
		{"directory_for_config_toml", dirAt("etc/containerd/config.toml"), "/etc/containerd/config.toml"},
		{"directory_for_hosts_toml", dirAt("etc/containerd/certs.d/docker.io/hosts.toml"), "/etc/containerd/certs.d/docker.io/hosts.toml"},
		{"file_for_a_certs_d_directory", func(t *testing.T, root string) {
			p := filepath.Join(root, "etc/containerd/certs.d/docker.io")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("not a directory\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "/etc/containerd/certs.d/docker.io/hosts.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "puller")
			tc.prepare(t, h.root)
			before := h.snapshot() // var/lib/mirrorctl included: nothing may be written at all
			code, out, errOut := syncInProcess(h.root, spec, "--adopt")
			if code != exitFailure {
				t.Fatalf("exit %d, want %d\n%s%s", code, exitFailure, out, errOut)
			}
			if !strings.Contains(errOut, tc.path) {
				t.Errorf("stderr does not name %s:\n%s", tc.path, errOut)
			}
			if !strings.Contains(errOut, "directory") && !strings.Contains(errOut, "not a regular file") {
				t.Errorf("stderr does not say what is wrong:\n%s", errOut)
			}
			if d := cmp.Diff(before, h.snapshot()); d != "" {
				t.Errorf("files changed (-before +after):\n%s", d)
			}
			if _, err := os.Stat(filepath.Join(h.root, "var/lib/mirrorctl/backups")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a backup set was taken before the plan failed: %v", err)
			}
		})
	}
}
