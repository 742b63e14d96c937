package hostexec

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mirrorctl/mirrorctl/hostfs"
)

const bin = "/usr/bin/containerd"

// node is a root holding an engine binary, with a fake Run counting how
// often each binary is asked.
type node struct {
	t    *testing.T
	dir  string
	root *hostfs.Root
	runs map[string]int
	// answer is what the fake binary prints, or err what running it gives.
	answer string
	err    error
}

func newNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	r, err := hostfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	n := &node{t: t, dir: dir, root: r, runs: map[string]int{}, answer: "containerd github.com/containerd/containerd 1.6.20\n"}
	n.install("#!/bin/sh\necho containerd 1.6.20\n")
	return n
}

// install puts a new binary in place the way a package upgrade does: a
// new file renamed over the old one.
func (n *node) install(content string) {
	n.t.Helper()
	p := filepath.Join(n.dir, bin)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(p+".new", []byte(content), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		n.t.Fatal(err)
	}
}

// versions is one mirrorctl process's cache, with the fake Run.
func (n *node) versions() *Versions {
	v := New(n.root)
	v.Run = func(_ context.Context, real string, args ...string) (string, error) {
		n.runs[real+" "+strings.Join(args, " ")]++
		return n.answer, n.err
	}
	return v
}

func (n *node) asked() int {
	total := 0
	for _, c := range n.runs {
		total += c
	}
	return total
}

func (n *node) cacheFile() string { return filepath.Join(n.dir, cacheFile) }

func (n *node) stat(p string) syscall.Stat_t {
	n.t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		n.t.Fatal(err)
	}
	return st
}

// A later process finds the answer in versions.json and runs nothing; its
// Save writes nothing.
func TestVersionCachedAcrossRuns(t *testing.T) {
	n := newNode(t)
	v := n.versions()
	for range 2 {
		out, err := v.Version(context.Background(), bin, "--version")
		if err != nil || out != n.answer {
			t.Fatalf("Version = %q, %v", out, err)
		}
	}
	if n.asked() != 1 {
		t.Errorf("asked %d times in one process, want once", n.asked())
	}
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	saved := n.stat(n.cacheFile())
	if saved.Mode&0o777 != 0o600 {
		t.Errorf("versions.json has mode %o, want 0600", saved.Mode&0o777)
	}

	n.answer = "must not be asked"
	v2 := n.versions()
	out, err := v2.Version(context.Background(), bin, "--version")
	if err != nil || out != "containerd github.com/containerd/containerd 1.6.20\n" {
		t.Errorf("second process: %q, %v; want the cached answer", out, err)
	}
	if n.asked() != 1 {
		t.Errorf("the second process ran the binary (%v)", n.runs)
	}
	if err := v2.Save(); err != nil {
		t.Fatal(err)
	}
	if after := n.stat(n.cacheFile()); after.Ino != saved.Ino || after.Mtim != saved.Mtim || after.Ctim != saved.Ctim {
		t.Error("Save after a cache hit rewrote versions.json")
	}
}

// The answer is kept under the binary's identity: a change of any part of
// it (as an upgrade makes) asks the binary again; other arguments too.
func TestVersionReaskedWhenTheBinaryIsAnother(t *testing.T) {
	n := newNode(t)
	v := n.versions()
	if _, err := v.Version(context.Background(), bin, "--version"); err != nil {
		t.Fatal(err)
	}
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	var good map[string]entry
	b, err := os.ReadFile(n.cacheFile())
	if err != nil || json.Unmarshal(b, &good) != nil {
		t.Fatalf("versions.json: %s, %v", b, err)
	}
	for _, tc := range []struct {
		name   string
		change func(*entry)
	}{
		{"same", func(*entry) {}},
		{"device", func(e *entry) { e.Dev++ }},
		{"inode", func(e *entry) { e.Ino++ }},
		{"size", func(e *entry) { e.Size++ }},
		{"mtime", func(e *entry) { e.Mtime++ }},
		{"ctime", func(e *entry) { e.Ctime++ }},
		{"arguments", func(e *entry) { e.Args = "version" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := good[bin]
			e.Output = "containerd cached 1.0.0\n"
			tc.change(&e)
			b, _ := json.Marshal(map[string]entry{bin: e})
			if err := os.WriteFile(n.cacheFile(), b, 0o600); err != nil {
				t.Fatal(err)
			}
			before := n.asked()
			out, err := n.versions().Version(context.Background(), bin, "--version")
			if err != nil {
				t.Fatal(err)
			}
			asked := n.asked() > before
			if want := tc.name != "same"; asked != want {
				t.Errorf("binary asked: %v, want %v (answer %q)", asked, want, out)
			}
			if !asked && out != e.Output {
				t.Errorf("cache hit answered %q, want %q", out, e.Output)
			}
		})
	}
}

// The same, with the binary itself changed: each change below alters one
// part of the identity that the others do not (a chmod only the ctime, a
// rewrite in place of the same size the mtime and ctime, not the inode).
func TestVersionReaskedAfterTheBinaryChanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(n *node, p string) error
	}{
		{"chmod to the same mode (ctime)", func(_ *node, p string) error { return os.Chmod(p, 0o755) }},
		{"rewritten in place, same size (mtime)", func(_ *node, p string) error {
			return os.WriteFile(p, []byte("#!/bin/sh\necho containerd 1.6.21\n"), 0o755)
		}},
		{"replaced, same size (inode)", func(n *node, _ string) error {
			n.install("#!/bin/sh\necho containerd 1.6.22\n")
			return nil
		}},
		{"grown (size)", func(_ *node, p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteString("# patched\n")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t)
			v := n.versions()
			if _, err := v.Version(context.Background(), bin, "--version"); err != nil {
				t.Fatal(err)
			}
			if err := v.Save(); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(n.dir, bin)
			before := n.stat(p)
			if err := tc.change(n, p); err != nil {
				t.Fatal(err)
			}
			if after := n.stat(p); after.Ctim == before.Ctim {
				t.Skip("the filesystem kept the ctime: cannot tell")
			}
			if _, err := n.versions().Version(context.Background(), bin, "--version"); err != nil {
				t.Fatal(err)
			}
			if n.asked() != 2 {
				t.Errorf("asked %d times, want again after the change", n.asked())
			}
		})
	}
}

// An upgrade replaces the binary: the next run asks the new one, uses its
// answer and keeps it for the runs after. The real runner, real scripts.
func TestUpgradedBinaryIsAskedAgain(t *testing.T) {
	n := newNode(t)
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	ask := func() string {
		t.Helper()
		v := New(n.root)
		out, err := v.Version(context.Background(), bin, "--version")
		if err != nil {
			t.Fatalf("Version: %v", err)
		}
		if err := v.Save(); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	if got := ask(); got != "containerd 1.6.20" {
		t.Fatalf("before the upgrade: %q", got)
	}
	n.install("#!/bin/sh\necho containerd 2.1.4\n")
	if got := ask(); got != "containerd 2.1.4" {
		t.Errorf("after the upgrade: %q, want the new binary's answer", got)
	}
	// The new answer is what the next run finds, without running it: a
	// binary that would now fail to run is not run.
	if err := os.Chmod(filepath.Join(n.dir, bin), 0o755); err != nil { // a ctime change: asked again
		t.Fatal(err)
	}
	if got := ask(); got != "containerd 2.1.4" {
		t.Errorf("after a chmod: %q", got)
	}
	v := New(n.root)
	v.Run = func(context.Context, string, ...string) (string, error) {
		t.Error("the binary was run although nothing about it changed")
		return "", errors.New("unexpected")
	}
	if out, err := v.Version(context.Background(), bin, "--version"); err != nil || strings.TrimSpace(out) != "containerd 2.1.4" {
		t.Errorf("cached after the upgrade: %q, %v", out, err)
	}
}

// A binary that cannot answer (a dynamically linked one in the static
// image, say) is not run again until it changes; the error is the same.
func TestErrorIsCached(t *testing.T) {
	n := newNode(t)
	n.err = errors.New("fork/exec: no such file or directory")
	v := n.versions()
	if _, err := v.Version(context.Background(), bin, "--version"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Version: %v", err)
	}
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	n.err = nil
	_, err := n.versions().Version(context.Background(), bin, "--version")
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("second process: %v, want the cached error", err)
	}
	if n.asked() != 1 {
		t.Errorf("asked %d times, want once", n.asked())
	}
	n.install("#!/bin/sh\necho containerd 1.7.0\n")
	if out, err := n.versions().Version(context.Background(), bin, "--version"); err != nil || out != n.answer || n.asked() != 2 {
		t.Errorf("after the binary changed: %q, %v (asked %d times)", out, err, n.asked())
	}
}

// An interrupted run learns nothing: the next one asks again.
func TestInterruptedRunIsNotCached(t *testing.T) {
	n := newNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	v := New(n.root)
	v.Run = func(context.Context, string, ...string) (string, error) {
		cancel()
		return "", errors.New("signal: killed")
	}
	if _, err := v.Version(ctx, bin, "--version"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Version: %v, want context.Canceled", err)
	}
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(n.cacheFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted run wrote versions.json: %v", err)
	}
	if out, err := n.versions().Version(context.Background(), bin, "--version"); err != nil || out != n.answer {
		t.Errorf("after the interruption: %q, %v", out, err)
	}
}

// A cache file over the bound, or not JSON, is ignored: the binary is
// asked and the file rewritten, bounded again.
func TestOversizedOrBrokenCacheIsIgnored(t *testing.T) {
	for name, content := range map[string][]byte{
		"oversized": append([]byte(`{"/usr/bin/containerd": {"output": "`), make([]byte, maxCache)...),
		"broken":    []byte("{not json"),
		"relative":  []byte(`{"usr/bin/containerd": {"output": "x"}}`),
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t)
			if err := os.MkdirAll(filepath.Dir(n.cacheFile()), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(n.cacheFile(), content, 0o600); err != nil {
				t.Fatal(err)
			}
			v := n.versions()
			if out, err := v.Version(context.Background(), bin, "--version"); err != nil || out != n.answer || n.asked() != 1 {
				t.Fatalf("Version = %q, %v (asked %d times)", out, err, n.asked())
			}
			if err := v.Save(); err != nil {
				t.Fatal(err)
			}
			if st := n.stat(n.cacheFile()); st.Size > 4096 {
				t.Errorf("versions.json is %d bytes after one binary", st.Size)
			}
		})
	}
}

// A binary's output is kept up to a bound, however much it prints.
func TestOutputIsBounded(t *testing.T) {
	n := newNode(t)
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	n.install("#!/bin/sh\nhead -c 1000000 /dev/zero | tr '\\0' x\n")
	v := New(n.root)
	out, err := v.Version(context.Background(), bin, "--version")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != maxOutput {
		t.Errorf("kept %d bytes of output, want the bound %d", len(out), maxOutput)
	}
}
