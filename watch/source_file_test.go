package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// runSource runs src until the test ends and returns its snapshots.
func runSource(t *testing.T, src Source) <-chan Snapshot {
	t.Helper()
	out := make(chan Snapshot, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx, out); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("source did not stop")
		}
	})
	return out
}

func nextSnap(t *testing.T, c <-chan Snapshot, what string) Snapshot {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("no snapshot: %s", what)
	}
	panic("unreachable")
}

func noSnap(t *testing.T, c <-chan Snapshot, d time.Duration, what string) {
	t.Helper()
	select {
	case s := <-c:
		t.Fatalf("%s: unexpected snapshot %q (err %v)", what, s.Data, s.Err)
	case <-time.After(d):
	}
}

var fastQ = Quiescence{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}

func TestFileSourceRenameOver(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	writeFile(t, p, "one\n")
	snaps := runSource(t, NewFileSource(p, nil, fastQ))
	if s := nextSnap(t, snaps, "start"); string(s.Data) != "one\n" || s.Name != p {
		t.Fatalf("first snapshot %q from %s", s.Data, s.Name)
	}
	// vim, sed -i, kubectl cp...: a new inode renamed over the old one.
	writeAtomic(t, p, "two\n")
	if s := nextSnap(t, snaps, "after rename-over"); string(s.Data) != "two\n" {
		t.Fatalf("after rename-over: %q, %v", s.Data, s.Err)
	}
	// Touching the file without changing it sends nothing.
	now := time.Now()
	os.Chtimes(p, now, now)
	writeFile(t, filepath.Join(dir, "unrelated"), "x")
	noSnap(t, snaps, 150*time.Millisecond, "unchanged content")
}

func TestFileSourceDeleteRecreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	writeFile(t, p, "one\n")
	snaps := runSource(t, NewFileSource(p, nil, fastQ))
	nextSnap(t, snaps, "start")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	s := nextSnap(t, snaps, "after delete")
	var fe *FetchError
	if !errors.As(s.Err, &fe) || fe.Reason != "missing" || s.Data != nil {
		t.Fatalf("after delete: data %q, err %v; want a missing error", s.Data, s.Err)
	}
	writeFile(t, p, "two\n")
	if s := nextSnap(t, snaps, "after re-create"); string(s.Data) != "two\n" {
		t.Fatalf("after re-create: %q, %v", s.Data, s.Err)
	}
}

// configMap lays out a Kubernetes ConfigMap volume as the kubelet's
// atomic writer does: ..<timestamp>/ holds the files, ..data points at it,
// and each key is a symlink through ..data.
type configMap struct {
	t   *testing.T
	dir string
	n   int
}

func newConfigMap(t *testing.T, files map[string]string) *configMap {
	c := &configMap{t: t, dir: t.TempDir()}
	c.update(files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(c.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// update writes a new timestamped directory and swaps ..data to it with a
// rename, then removes the old directory: what the kubelet does.
func (c *configMap) update(files map[string]string) {
	c.t.Helper()
	c.n++
	ts := filepath.Join(c.dir, "..2026_01_0"+string(rune('0'+c.n))+"_00_00_00.000")
	for name, data := range files {
		writeFile(c.t, filepath.Join(ts, name), data)
	}
	old, _ := os.Readlink(filepath.Join(c.dir, "..data"))
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(c.dir, old)); err != nil {
			c.t.Fatal(err)
		}
	}
}

func TestFileSourceConfigMapSwap(t *testing.T) {
	cm := newConfigMap(t, map[string]string{"config.yaml": "one\n"})
	p := filepath.Join(cm.dir, "config.yaml")
	snaps := runSource(t, NewFileSource(p, nil, fastQ))
	if s := nextSnap(t, snaps, "start"); string(s.Data) != "one\n" {
		t.Fatalf("first snapshot %q, %v", s.Data, s.Err)
	}
	for i, want := range []string{"two\n", "three\n"} {
		cm.update(map[string]string{"config.yaml": want})
		if s := nextSnap(t, snaps, "after ..data swap"); string(s.Data) != want {
			t.Fatalf("swap %d: %q, %v; want %q", i, s.Data, s.Err, want)
		}
	}
}

// A directory that appears later (a volume mounted after start) is found.
func TestFileSourceDirectoryAppears(t *testing.T) {
	p := filepath.Join(t.TempDir(), "later", "config.yaml")
	src := NewFileSource(p, nil, fastQ)
	src.Retry = 20 * time.Millisecond
	snaps := runSource(t, src)
	if s := nextSnap(t, snaps, "start"); s.Err == nil {
		t.Fatalf("start: %q, want an error", s.Data)
	}
	writeFile(t, p, "one\n")
	if s := nextSnap(t, snaps, "directory created"); string(s.Data) != "one\n" {
		t.Fatalf("after the directory appeared: %q, %v", s.Data, s.Err)
	}
}

func TestFileSourceBurstIsDebounced(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	writeFile(t, p, "start\n")
	snaps := runSource(t, NewFileSource(p, nil, Quiescence{Min: 50 * time.Millisecond, Max: time.Second}))
	nextSnap(t, snaps, "start")
	for i := range 100 {
		writeFile(t, p, "write "+string(rune('a'+i%26))+"\n"+string(make([]byte, i)))
	}
	writeAtomic(t, p, "final\n")
	var got []Snapshot
	for s := range waitAll(snaps, 300*time.Millisecond) {
		got = append(got, s)
	}
	if len(got) == 0 || len(got) > 3 || string(got[len(got)-1].Data) != "final\n" {
		t.Fatalf("%d snapshots for a burst of 101 writes, last %q; want 1 to 3 ending with the final content", len(got), got[len(got)-1].Data)
	}
}

// waitAll yields snapshots until none has come for d.
func waitAll(c <-chan Snapshot, d time.Duration) func(func(Snapshot) bool) {
	return func(yield func(Snapshot) bool) {
		for {
			select {
			case s := <-c:
				if !yield(s) {
					return
				}
			case <-time.After(d):
				return
			}
		}
	}
}
