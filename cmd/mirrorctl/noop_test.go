package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// inode is what a write, a rename, a chmod or a new entry changes.
type inode struct {
	Ino          uint64
	Mode         uint32
	Size         int64
	Mtime, Ctime syscall.Timespec
}

// inodes records every entry under root, directories and mirrorctl's own
// files (/var/lib/mirrorctl: state, versions, backups, the lock) included.
func inodes(t *testing.T, root string) map[string]inode {
	t.Helper()
	out := map[string]inode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = inode{Ino: st.Ino, Mode: st.Mode, Size: st.Size, Mtime: st.Mtim, Ctime: st.Ctim}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A sync that finds nothing to do changes nothing on disk: no file, no
// directory, not state.json, the version cache, the backups or the lock
// file (no mtime, ctime, inode or size changes), and asks no engine binary
// its version again.
func TestNoopSyncChangesNothing(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	ran := filepath.Join(t.TempDir(), "ran")
	for _, bin := range []string{"usr/bin/containerd", "usr/sbin/dockerd", "usr/bin/crictl"} {
		p := filepath.Join(h.root, bin)
		old, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Each stand-in notes that it ran (outside the root), then answers.
		script := strings.Replace(string(old), "\necho ", "\necho "+bin+" >>"+ran+"\necho ", 1)
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec := h.spec("https://nexus.example.internal:8443", "https://nexus.example.internal/repository/docker-group/v2", "puller")
	if code, out, errOut := h.run("", "--config", spec, "sync", "--adopt"); code != exitOK || !strings.Contains(out, "wrote ") {
		t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
	asked, _ := os.ReadFile(ran)
	if len(asked) == 0 {
		t.Fatal("the first sync asked no engine its version: the stand-ins do not note their runs")
	}
	before := inodes(t, h.root)
	for i := range 2 {
		code, out, errOut := h.run("", "--config", spec, "sync")
		if code != exitOK || !strings.Contains(out, "nothing to change") {
			t.Fatalf("sync %d: exit %d\n%s%s", i+2, code, out, errOut)
		}
	}
	if d := cmp.Diff(before, inodes(t, h.root)); d != "" {
		t.Errorf("a no-op sync changed the root (-before +after):\n%s", d)
	}
	if again, _ := os.ReadFile(ran); string(again) != string(asked) {
		t.Errorf("a no-op sync ran engine binaries: %q", strings.TrimPrefix(string(again), string(asked)))
	}
}
