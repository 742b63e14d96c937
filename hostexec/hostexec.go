// Package hostexec asks host binaries their version, and remembers the
// answers. An engine binary is a large Go program that takes 50–200 ms to
// start; a node's binaries change only on upgrade, so the answer is cached
// in /var/lib/mirrorctl/versions.json under the binary's identity (path,
// device, inode, size, mtime and ctime: any upgrade changes one of them)
// and the binary runs again only when that identity changes.
package hostexec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mirrorctl/mirrorctl/hostfs"
)

// cacheFile is where the answers are kept, as a host path.
const cacheFile = "/var/lib/mirrorctl/versions.json"

// timeout bounds one run; maxOutput bounds what is kept of its output.
const (
	timeout   = 5 * time.Second
	maxOutput = 64 << 10
	maxCache  = 4 << 20
)

// Versions runs binaries under a root and caches their answers.
type Versions struct {
	root *hostfs.Root
	// Run runs a resolved binary; tests count calls through it.
	Run func(ctx context.Context, bin string, args ...string) (string, error)

	mu      sync.Mutex
	entries map[string]entry
	loaded  bool
	dirty   bool
}

type entry struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Size   int64  `json:"size"`
	Mtime  int64  `json:"mtime_ns"`
	Ctime  int64  `json:"ctime_ns"`
	Args   string `json:"args"`
	Output string `json:"output"`
	// Err is why the binary could not answer (a dynamically linked binary
	// in the static image, say): not asked again until it changes.
	Err string `json:"error,omitempty"`
}

// New returns a cache for binaries under root.
func New(root *hostfs.Root) *Versions {
	return &Versions{root: root, Run: run, entries: map[string]entry{}}
}

// Version returns what `bin args…` prints (bin is an absolute host path,
// resolved inside the root), from the cache when the binary is the one
// that answered before.
func (v *Versions) Version(ctx context.Context, bin string, args ...string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.load()
	fi, err := v.root.Stat(bin)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*unix.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", bin)
	}
	id := entry{Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Args: strings.Join(args, " ")}
	if e, ok := v.entries[bin]; ok {
		out, why := e.Output, e.Err
		e.Output, e.Err = "", ""
		if e == id {
			if why != "" {
				return "", errors.New(why)
			}
			return out, nil
		}
	}
	real, err := v.root.Resolve(bin)
	if err != nil {
		return "", err
	}
	out, err := v.Run(ctx, real, args...)
	if ctx.Err() != nil {
		return "", ctx.Err() // interrupted: nothing learnt
	}
	if err != nil {
		id.Err = err.Error()
	}
	id.Output = out
	v.entries[bin] = id
	v.dirty = true
	return out, err
}

func (v *Versions) load() {
	if v.loaded {
		return
	}
	v.loaded = true
	data, err := v.root.ReadFile(cacheFile, maxCache)
	if err != nil {
		return // no cache, or an unreadable one: ask the binaries again
	}
	var m map[string]entry
	if json.Unmarshal(data, &m) == nil {
		for k, e := range m {
			if path.IsAbs(k) {
				v.entries[k] = e
			}
		}
	}
}

// Save writes the cache when an answer was added; otherwise it writes
// nothing. The caller holds mirrorctl's lock.
func (v *Versions) Save() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.dirty {
		return nil
	}
	data, err := json.MarshalIndent(v.entries, "", "  ")
	if err != nil {
		return err
	}
	if err := v.root.MkdirAll(path.Dir(cacheFile), 0o700); err != nil {
		return err
	}
	if err := v.root.WriteFile(cacheFile, append(data, '\n'), hostfs.WriteOptions{Mode: 0o600}); err != nil {
		return fmt.Errorf("saving the version cache: %w", err)
	}
	v.dirty = false
	return nil
}

// run runs bin with a short timeout, a minimal environment and a bound on
// what it may print.
func run(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	var out boundedBuffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", fmt.Errorf("%s %s: no answer within %s", bin, strings.Join(args, " "), timeout)
		}
		return "", err
	}
	return out.String(), nil
}

// boundedBuffer keeps the first maxOutput bytes written to it and drops
// the rest. It has only Write (no ReadFrom, as an embedded bytes.Buffer
// would give it): os/exec copies a child's output with io.Copy, which
// would use ReadFrom and read everything.
type boundedBuffer struct{ buf bytes.Buffer }

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.buf.Len(); room < len(p) {
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *boundedBuffer) String() string { return b.buf.String() }
