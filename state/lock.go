package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
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
// names the caller in the error it gets when it gives up, such as
// "mirrorctl sync".
//
// The lock is flock(2) on Dir/lock, opened through hostfs (never through a
// link, never truncated on open), so the kernel drops it when the holder
// dies, even by SIGKILL: there is no stale lock to clean up. Nothing is
// written to the file: a sync that changes nothing changes nothing on disk,
// the lock file's times included. A caller that gives up learns who holds
// the lock from the kernel's own record of it (/proc/locks: the holder's
// pid, then its name and start time from /proc).
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
			h := holder(f, "/proc")
			f.Close()
			return nil, fmt.Errorf("%s waited %s: %w (%s); retry later", who, timeout, ErrLocked, h)
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
		once.Do(func() { err = f.Close() })
		return err
	}, nil
}

// holder describes who holds the flock on f, from the kernel's list of
// locks under proc: "pid 1234 (mirrorctl), running since
// 2026-11-27T05:32:00Z". A holder the kernel shows in another pid
// namespace, or no /proc at all, gives "holder unknown".
func holder(f *os.File, proc string) string {
	const unknown = "holder unknown"
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return unknown
	}
	locks, err := os.ReadFile(proc + "/locks")
	if err != nil {
		return unknown
	}
	pid := flockHolder(string(locks), unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	if pid <= 0 {
		return unknown
	}
	comm, err := os.ReadFile(fmt.Sprintf("%s/%d/comm", proc, pid))
	if err != nil {
		return fmt.Sprintf("pid %d", pid)
	}
	h := fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm)))
	if t, ok := started(proc, pid); ok {
		h += ", running since " + t.UTC().Format(time.RFC3339)
	}
	return h
}

// flockHolder finds, in /proc/locks, the pid holding a FLOCK on the file
// major:minor:ino ("1: FLOCK  ADVISORY  WRITE 1234 fe:00:802818 0 EOF";
// the device in hex, the inode in decimal; waiters are "->" lines).
func flockHolder(locks string, major, minor uint32, ino uint64) int {
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, ino)
	for line := range strings.SplitSeq(locks, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil {
			continue
		}
		return pid
	}
	return 0
}

// started is when process pid started: its start time in clock ticks after
// boot (/proc/PID/stat, field 22; the kernel counts USER_HZ, 100, ticks a
// second) plus the boot time (/proc/stat btime).
func started(proc string, pid int) (time.Time, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", proc, pid))
	if err != nil {
		return time.Time{}, false
	}
	// The name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return time.Time{}, false
	}
	f := strings.Fields(string(stat[i+1:])) // from field 3
	if len(f) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	sys, err := os.ReadFile(proc + "/stat")
	if err != nil {
		return time.Time{}, false
	}
	for line := range strings.SplitSeq(string(sys), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(boot, 0).Add(time.Duration(ticks) * time.Second / 100), true
		}
	}
	return time.Time{}, false
}
