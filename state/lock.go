package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned (wrapped, naming the holder) by Store.Lock when
// another process still holds the lock after the timeout.
var ErrLocked = errors.New("another mirrorctl holds the lock")

// lockPoll is how often Lock retries while another process holds the lock.
const lockPoll = 50 * time.Millisecond

func (s *Store) lockPath() string { return path.Join(s.Dir, "lock") }

// Lock takes the exclusive lock that keeps sync, rollback and watch from
// interleaving, waiting up to timeout for another holder to let go.
//
// The lock is flock(2) on Dir/lock, opened through hostfs (never through a
// link, never truncated), so the kernel drops it when the holder dies, even
// by SIGKILL: there is no stale lock to clean up. Nothing is written into
// it, so that a sync with nothing to do writes nothing; who holds it is
// read from the kernel's own table (/proc/locks) when another caller waits.
//
// Past the timeout the error wraps ErrLocked; if ctx ends first, it wraps
// ctx's error. unlock releases the lock; calling it again does nothing.
func (s *Store) Lock(ctx context.Context, timeout time.Duration) (unlock func() error, err error) {
	if err := s.mkdir(); err != nil {
		return nil, err
	}
	f, err := s.Root.OpenLockFile(s.lockPath())
	if err != nil {
		return nil, fmt.Errorf("locking: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking: %w", err)
		}
		if !time.Now().Before(deadline) {
			h := holder(f)
			f.Close()
			return nil, fmt.Errorf("%w (%s); retry later", ErrLocked, h)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock: %w", context.Cause(ctx))
		case <-time.After(lockPoll):
		}
	}
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() { err = f.Close() }) // closing drops the flock
		return err
	}, nil
}

// holder describes who holds the lock on f, from /proc/locks (the holder's
// pid, as this process's pid namespace sees it) and the holder's command
// line: "pid 1234 (mirrorctl sync)".
func holder(f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "holder unknown"
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return "holder unknown"
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	for line := range strings.SplitSeq(string(locks), "\n") {
		f := strings.Fields(line)
		// "1: FLOCK  ADVISORY  WRITE 29897 fe:00:10029493 0 EOF"
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != id || f[4] == "-1" {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", f[4], "cmdline"))
		args := strings.Fields(strings.ReplaceAll(string(cmd), "\x00", " "))
		if len(args) > 4 {
			args = args[:4]
		}
		if len(args) == 0 {
			return "pid " + f[4]
		}
		args[0] = filepath.Base(args[0])
		return fmt.Sprintf("pid %s (%s)", f[4], strings.Join(args, " "))
	}
	return "holder unknown"
}
