package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLockExcludesAndNamesHolder(t *testing.T) {
	s := Open(openRoot(t, t.TempDir()))
	ctx := context.Background()
	unlock, err := s.Lock(ctx, 0, "mirrorctl sync")
	if err != nil {
		t.Fatalf("taking a free lock: %v", err)
	}

	start := time.Now()
	_, err = s.Lock(ctx, 100*time.Millisecond, "mirrorctl rollback")
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: err = %v, want ErrLocked", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond { // a lower bound: fine on a loaded machine
		t.Errorf("second Lock gave up after %v, before its timeout", waited)
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	for _, want := range []string{"mirrorctl rollback waited 100ms", fmt.Sprintf("pid %d (%s), running since ", os.Getpid(), strings.TrimSpace(string(comm))), "retry later"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Errorf("second unlock: %v", err)
	}
	unlock2, err := s.Lock(ctx, 100*time.Millisecond, "mirrorctl rollback")
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	defer unlock2()
	if err := unlock(); err != nil { // a stale unlock must not touch the new holder
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx, 0, "mirrorctl watch"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("Lock while the second holder holds it: %v, want ErrLocked naming its pid", err)
	}
}

// A lock taken and released writes nothing: the lock file keeps its size,
// inode and times (a no-op sync changes nothing on disk).
func TestLockWritesNothing(t *testing.T) {
	dir := t.TempDir()
	s := Open(openRoot(t, dir))
	unlock, err := s.Lock(context.Background(), 0, "mirrorctl sync")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	lock := filepath.Join(dir, "var/lib/mirrorctl/lock")
	before, err := os.Stat(lock)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		unlock, err := s.Lock(context.Background(), 0, "mirrorctl sync")
		if err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	after, err := os.Stat(lock)
	if err != nil {
		t.Fatal(err)
	}
	b, a := before.Sys().(*syscall.Stat_t), after.Sys().(*syscall.Stat_t)
	if a.Size != 0 || a.Ino != b.Ino || a.Mtim != b.Mtim || a.Ctim != b.Ctim {
		t.Errorf("the lock file changed: size %d, ino %d -> %d, mtime %v -> %v, ctime %v -> %v", a.Size, b.Ino, a.Ino, b.Mtim, a.Mtim, b.Ctim, a.Ctim)
	}
}

func TestFlockHolder(t *testing.T) {
	locks := `1: POSIX  ADVISORY  WRITE 999 fe:00:802818 0 EOF
2: FLOCK  ADVISORY  WRITE 1234 fe:00:802818 0 EOF
2: -> FLOCK  ADVISORY  WRITE 1300 fe:00:802818 0 EOF
3: FLOCK  ADVISORY  WRITE 77 08:01:802818 0 EOF
`
	if got := flockHolder(locks, 0xfe, 0, 802818); got != 1234 {
		t.Errorf("holder of fe:00:802818 = %d, want 1234 (not the POSIX lock, not the waiter)", got)
	}
	if got := flockHolder(locks, 8, 1, 802818); got != 77 {
		t.Errorf("holder of 08:01:802818 = %d, want 77", got)
	}
	if got := flockHolder(locks, 0xfe, 0, 1); got != 0 {
		t.Errorf("holder of an unlocked file = %d", got)
	}
}

func TestLockWaitsForRelease(t *testing.T) {
	s := Open(openRoot(t, t.TempDir()))
	unlock, err := s.Lock(context.Background(), 0, "mirrorctl sync")
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(60*time.Millisecond, func() { unlock() })
	unlock2, err := s.Lock(context.Background(), 2*time.Second, "mirrorctl watch")
	if err != nil {
		t.Fatalf("Lock while the holder lets go within the timeout: %v", err)
	}
	unlock2()
}

func TestLockRespectsContext(t *testing.T) {
	s := Open(openRoot(t, t.TempDir()))
	unlock, err := s.Lock(context.Background(), 0, "mirrorctl sync")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	// Cancelled, not timed out: it returned for the cancel, long before
	// its 10s were up.
	_, err = s.Lock(ctx, 10*time.Second, "mirrorctl watch")
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrLocked) {
		t.Fatalf("Lock with a cancelled ctx: err = %v, want context.Canceled", err)
	}
}

func TestHolderUnknown(t *testing.T) {
	dir := t.TempDir() + "/lock"
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := holder(f, "/proc"); got != "holder unknown" {
		t.Errorf("holder of an empty lock file = %q", got)
	}
}
