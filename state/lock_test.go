package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mirrorctl/mirrorctl/internal/hosttest"
)

func TestLockExcludesAndNamesHolder(t *testing.T) {
	s := Open(hosttest.Root(t, t.TempDir()))
	ctx := context.Background()
	unlock, err := s.Lock(ctx, 0)
	if err != nil {
		t.Fatalf("taking a free lock: %v", err)
	}

	start := time.Now()
	_, err = s.Lock(ctx, 100*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: err = %v, want ErrLocked", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond { // a lower bound: fine on a loaded machine
		t.Errorf("second Lock gave up after %v, before its timeout", waited)
	}
	// The kernel's lock table names the holder: this test process.
	for _, want := range []string{fmt.Sprintf("pid %d (%s", os.Getpid(), filepath.Base(os.Args[0])), "retry later"} {
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
	unlock2, err := s.Lock(ctx, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	defer unlock2()
	if err := unlock(); err != nil { // a stale unlock must not touch the new holder
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx, 0); !errors.Is(err, ErrLocked) {
		t.Errorf("Lock while rollback holds it: %v, want ErrLocked", err)
	}
}

func TestLockWaitsForRelease(t *testing.T) {
	s := Open(hosttest.Root(t, t.TempDir()))
	unlock, err := s.Lock(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(60*time.Millisecond, func() { unlock() })
	unlock2, err := s.Lock(context.Background(), 2*time.Second)
	if err != nil {
		t.Fatalf("Lock while the holder lets go within the timeout: %v", err)
	}
	unlock2()
}

func TestLockRespectsContext(t *testing.T) {
	s := Open(hosttest.Root(t, t.TempDir()))
	unlock, err := s.Lock(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	// Cancelled, not timed out: it returned for the cancel, long before
	// its 10s were up.
	_, err = s.Lock(ctx, 10*time.Second)
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
	if got := holder(f); got != "holder unknown" {
		t.Errorf("holder of a lock file nobody holds = %q", got)
	}
}
