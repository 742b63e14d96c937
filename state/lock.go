package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
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
// interleaving, waiting up to timeout for another holder to let go. who
// names the caller for the error another caller gets meanwhile, such as
// "mirrorctl sync".
//
// The lock is flock(2) on Dir/lock, opened through hostfs (never through a
// link, never truncated on open), so the kernel drops it when the holder
// dies, even by SIGKILL: there is no stale lock to clean up. The holder's
// pid, who and start time are written into the file, through the locked
// descriptor, only to be reported.
//
// Past the timeout the error wraps ErrLocked; if ctx ends first, it wraps
// ctx's error. unlock releases the lock; calling it again does nothing.
func (s *Store) Lock(ctx context.Context, timeout time.Duration, who string) (unlock func() error, err error) {
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
	info := fmt.Sprintf("pid=%d who=%s since=%s\n", os.Getpid(), who, time.Now().UTC().Format(time.RFC3339))
	if err := writeHolder(f, info); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking: %w", err)
	}
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			// Clear the holder while still holding the lock: once it is
			// released, the file belongs to the next holder.
			err = errors.Join(f.Truncate(0), f.Close())
		})
		return err
	}, nil
}

func writeHolder(f *os.File, info string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(info), 0)
	return err
}

// holder describes who holds the lock, from the lock file: "pid 1234,
// mirrorctl sync since 2026-11-27T05:32:00Z".
func holder(f *os.File) string {
	data := make([]byte, 512)
	n, err := f.ReadAt(data, 0)
	if n == 0 && err != nil {
		return "holder unknown"
	}
	data = data[:n]
	line := strings.TrimSpace(string(data))
	pid, rest, ok1 := strings.Cut(strings.TrimPrefix(line, "pid="), " who=")
	who, since, ok2 := cutLast(rest, " since=")
	if !strings.HasPrefix(line, "pid=") || !ok1 || !ok2 {
		// The holder has not written its line yet, or is not a mirrorctl.
		return "holder unknown"
	}
	return fmt.Sprintf("pid %s, %s since %s", pid, who, since)
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
