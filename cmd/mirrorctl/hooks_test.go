package main

import (
	"context"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/state"
	"github.com/mirrorctl/mirrorctl/systemd"
	"github.com/mirrorctl/mirrorctl/systemd/systemdtest"
)

// The test hooks whose types follow the code under test, in one file: the
// security tests run against an older tree with only this file adapted.

// childHealthEnv set to "block" makes a child mirrorctl (childMain) talk to
// the D-Bus recorder, every unit running, and run a health check that
// prints healthWaiting and waits until the command's context ends: a
// daemon that never becomes healthy.
const (
	childHealthEnv = "MIRRORCTL_TEST_HEALTH"
	healthWaiting  = "test: health check waiting for"
)

// childMemEnv set caps a child's address space at childMemLimit, so that a
// mirrorctl reading a device without end fails quickly instead of taking
// the machine's memory.
const (
	childMemEnv   = "MIRRORCTL_TEST_MEMLIMIT"
	childMemLimit = 2 << 30
)

// setHealth makes f judge every activated engine's health.
func setHealth(g *globalFlags, f func(ctx context.Context, engine string) error) {
	g.health = func(ctx context.Context, _ *hostfs.Root, a engines.Activation) error { return f(ctx, a.Engine) }
}

// blockingHealth is a health check that never passes: it says it is
// waiting (through say) and returns when ctx ends.
func blockingHealth(say func(string)) func(ctx context.Context, engine string) error {
	return func(ctx context.Context, engine string) error {
		say(healthWaiting + " " + engine)
		<-ctx.Done()
		return ctx.Err()
	}
}

// childMain is mirrorctl in a child process: main's own signal handling
// (mainWith), with the hooks childHealthEnv asks for.
func childMain(args []string) int {
	if os.Getenv(childMemEnv) != "" {
		lim := &unix.Rlimit{Cur: childMemLimit, Max: childMemLimit}
		if err := unix.Setrlimit(unix.RLIMIT_AS, lim); err != nil {
			fmt.Fprintln(os.Stderr, "test: capping memory:", err)
			return exitFailure
		}
	}
	g := &globalFlags{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	if os.Getenv(childHealthEnv) == "block" {
		rec := &systemdtest.Recorder{}
		g.dial = func(context.Context) (systemd.Bus, error) { return rec, nil }
		setHealth(g, blockingHealth(func(s string) { fmt.Fprintln(os.Stderr, s) }))
	}
	return mainWith(g, args)
}

// holdLock takes mirrorctl's lock under root in this process, as another
// mirrorctl would, and returns its release.
func holdLock(t *testing.T, root string) (release func()) {
	t.Helper()
	hr, err := hostfs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := state.Open(hr).Lock(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		unlock()
		hr.Close()
	}
}
