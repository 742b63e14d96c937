package watch

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/spec"
)

// FileSource follows a spec file on the local filesystem, including a
// Kubernetes ConfigMap or Secret volume.
//
// It watches the file's directory, never the file: editors replace a file
// by renaming a new one over it, tools delete and re-create it, and the
// kubelet updates a ConfigMap volume by pointing the `..data` symlink at a
// new timestamped directory (`config.yaml -> ..data/config.yaml`), so the
// path's own inode never changes and a watch on it never fires. When the
// path resolves through symlinks to another directory, that directory is
// watched too. Events are debounced, and the file is read once a burst is
// over; a snapshot is sent only when the bytes (or the signature) changed.
type FileSource struct {
	Path string
	// Verify, when set, requires Path+".sig" to verify.
	Verify   *Verifier
	Debounce Quiescence
	// Retry is how often a missing directory is looked for again; 0 means 1s.
	Retry time.Duration

	refresh chan struct{}
}

// NewFileSource returns a source for path.
func NewFileSource(path string, v *Verifier, q Quiescence) *FileSource {
	return &FileSource{Path: filepath.Clean(path), Verify: v, Debounce: q, refresh: make(chan struct{}, 1)}
}

func (s *FileSource) String() string { return s.Path }

// Refresh reads the file again now.
func (s *FileSource) Refresh() {
	select {
	case s.refresh <- struct{}{}:
	default:
	}
}

// Run implements Source.
func (s *FileSource) Run(ctx context.Context, out chan<- Snapshot) {
	if s.refresh == nil {
		s.refresh = make(chan struct{}, 1)
	}
	retryEvery := s.Retry
	if retryEvery <= 0 {
		retryEvery = time.Second
	}
	dw, err := newDirWatcher(nil)
	if err != nil {
		send(ctx, out, Snapshot{Name: s.Path, Err: fetchErr("read", "watching %s: %v", s.Path, err)})
		<-ctx.Done()
		return
	}
	fire := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); dw.run(ctx, s.Debounce, fire) }()
	defer wg.Wait()

	var last dedup
	check := func() bool {
		dw.set(s.dirs())
		snap := s.read()
		if !last.changed(snap) {
			return true
		}
		return send(ctx, out, snap)
	}
	if !check() {
		return
	}
	retry := time.NewTicker(retryEvery)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-fire:
		case <-s.refresh:
		case <-retry.C:
			if !dw.missing() {
				continue
			}
		}
		if !check() {
			return
		}
	}
}

// dirs are the directories to watch: the path's own, and the one it
// resolves to through symlinks.
func (s *FileSource) dirs() []string {
	dirs := []string{filepath.Dir(s.Path)}
	if real, err := filepath.EvalSymlinks(s.Path); err == nil && filepath.Dir(real) != dirs[0] {
		dirs = append(dirs, filepath.Dir(real))
	}
	return dirs
}

func (s *FileSource) read() Snapshot {
	data, err := readOwn(s.Path)
	if err != nil {
		reason := "read"
		if errors.Is(err, fs.ErrNotExist) {
			reason = "missing"
		}
		return Snapshot{Name: s.Path, Err: &FetchError{Reason: reason, Err: err}}
	}
	snap := Snapshot{Name: s.Path, Data: data}
	if s.Verify != nil {
		sig, err := readOwn(s.Path + ".sig")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Snapshot{Name: s.Path, Err: &FetchError{Reason: "read", Err: err}}
		}
		if err := s.Verify.verify(s.Path, data, sig); err != nil {
			return Snapshot{Name: s.Path, Err: err}
		}
		snap.Sig = sig
	}
	return snap
}

// readOwn reads one of mirrorctl's own files (a file source and its
// signature, the signature keys, a CA bundle) as hostfs reads the host's:
// a regular file only, opened without blocking, at most spec.MaxFileSize
// bytes. A FIFO or a device there fails at once, naming what it is,
// instead of blocking the source, or start-up, beyond any signal.
func readOwn(name string) ([]byte, error) {
	r, err := hostfs.Open("/")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.ReadLocal(name, spec.MaxFileSize)
}

// dedup remembers what a source last sent, so that it sends a snapshot only
// when something changed: new content, a new error, or recovery from one.
type dedup struct {
	sent   bool
	sum    [32]byte
	errMsg string
}

func (d *dedup) changed(s Snapshot) bool {
	if s.Err != nil {
		msg := s.Err.Error()
		if d.sent && d.errMsg == msg {
			return false
		}
		d.sent, d.errMsg = true, msg
		return true
	}
	sum := s.sum()
	if d.sent && d.errMsg == "" && d.sum == sum {
		return false
	}
	d.sent, d.errMsg, d.sum = true, "", sum
	return true
}
