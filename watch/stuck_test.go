package watch

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/spec"
	"github.com/mirrorctl/mirrorctl/state"
)

// Issue 9: while the loop is stuck, /healthz and /readyz say so and the
// watchdog is no longer fed, whatever it is stuck in: a sync (a daemon
// that never becomes healthy) or a step around it (reading the node's
// drop-ins on a filesystem that hangs). systemd's WatchdogSec and a
// liveness probe then restart it, as they are meant to.

// stuckMaxSyncTime is short, so that the tests see the loop reported stuck
// soon; nothing in them asserts on how soon.
const stuckMaxSyncTime = 300 * time.Millisecond

// watchdogPings sets a watchdog of 20ms (a ping every 10ms) for the loops
// the test starts.
func watchdogPings(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
}

// assertStuck waits until the loop reports itself unhealthy and unready,
// and checks that the watchdog is no longer fed: no more than the ping
// already in flight in the next 20 periods.
func assertStuck(t *testing.T, r *run) {
	t.Helper()
	waitFor(t, "/healthz to report the loop stuck", func() bool { ok, _ := r.loop.Health(); return !ok })
	if ok, line := r.loop.Health(); ok || !strings.Contains(line, "stuck") {
		t.Errorf("Health = %v, %q", ok, line)
	}
	if ok, line := r.loop.Ready(); ok {
		t.Errorf("ready while stuck: %q", line)
	}
	n := count(r.notes.all(), "WATCHDOG=1")
	time.Sleep(200 * time.Millisecond)
	if got := count(r.notes.all(), "WATCHDOG=1"); got > n+1 {
		t.Errorf("%d watchdog pings while stuck", got-n)
	}
}

func TestLoopStuckInASyncStopsReportingAlive(t *testing.T) {
	watchdogPings(t)
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(1))
	var block atomic.Bool
	node := h.node()
	node.Apply.Health = func(ctx context.Context, _ *hostfs.Root, _ engines.Activation) error {
		if block.Load() {
			<-ctx.Done() // a daemon that never becomes healthy
			return ctx.Err()
		}
		return nil
	}
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ), Node: node, MaxSyncTime: stuckMaxSyncTime})
	if rep := r.next("first sync"); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	waitFor(t, "healthy and fed", func() bool {
		ok, _ := r.loop.Health()
		return ok && count(r.notes.all(), "WATCHDOG=1") > 0
	})
	block.Store(true)
	// A credential change: containerd restarts, and never comes back.
	writeAtomic(t, cfgPath, strings.Replace(specN(1), "username: puller", "username: other", 1))
	assertStuck(t, r)
	r.stop()
	// The interrupted sync let the lock go.
	unlock, err := state.Open(h.hr).Lock(context.Background(), 0)
	if err != nil {
		t.Fatalf("the lock after the loop ended: %v", err)
	}
	unlock()
}

func TestLoopStuckReadingItsInputsStopsReportingAlive(t *testing.T) {
	watchdogPings(t)
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(1))
	entered, release := make(chan struct{}), make(chan struct{})
	opts := spec.Options{ReadFile: func(name string) ([]byte, error) {
		if filepath.Base(name) == "slow.yaml" {
			close(entered)
			<-release // a filesystem that hangs
		}
		return os.ReadFile(name)
	}}
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ), SpecOptions: opts, MaxSyncTime: stuckMaxSyncTime})
	if rep := r.next("first sync"); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	waitFor(t, "healthy and fed", func() bool {
		ok, _ := r.loop.Health()
		return ok && count(r.notes.all(), "WATCHDOG=1") > 0
	})
	writeFile(t, filepath.Join(h.etc, "conf.d/slow.yaml"), "engines:\n  docker:\n    auth_users: [root]\n")
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the drop-in was not read")
	}
	assertStuck(t, r)
	close(release)
	r.next("the sync after the read")
	waitFor(t, "healthy again", func() bool { ok, _ := r.loop.Health(); return ok })
}
