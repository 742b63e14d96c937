package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mirrorctl/mirrorctl/systemd"
	"github.com/mirrorctl/mirrorctl/systemd/systemdtest"
)

// Issue 9: every long step obeys its context. SIGTERM ends sync, rollback
// and watch at any point and the lock is free afterwards. The tests wait
// for events (a line printed, a file opened, a process gone); the
// timeouts below only keep a broken mirrorctl from hanging the test.

// guard bounds how long a test waits for an event before it fails.
const guard = time.Minute

// output is a process's or a command's output, safe to read while it is
// written, that tells when a string first appears.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	waiters []waiter
}

type waiter struct {
	s  string
	ch chan struct{}
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	kept := o.waiters[:0]
	for _, w := range o.waiters {
		if strings.Contains(o.buf.String(), w.s) {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	o.waiters = kept
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// appears returns a channel closed once s has been written.
func (o *output) appears(s string) <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	ch := make(chan struct{})
	if strings.Contains(o.buf.String(), s) {
		close(ch)
	} else {
		o.waiters = append(o.waiters, waiter{s, ch})
	}
	return ch
}

// child is a mirrorctl process (TestMain's childMain).
type child struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *output
	done chan struct{}
	err  error
}

func startChild(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	c := &child{t: t, cmd: mirrorctlCmd(t.TempDir(), args...), out: &output{}, done: make(chan struct{})}
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// await waits for ch, failing the test if the process ends first or the
// guard runs out.
func (c *child) await(what string, ch <-chan struct{}) {
	c.t.Helper()
	select {
	case <-ch:
	case <-c.done:
		select {
		case <-ch:
		default:
			c.t.Fatalf("mirrorctl ended before %s:\n%s", what, c.out.String())
		}
	case <-time.After(guard):
		c.t.Fatalf("no %s within %v:\n%s", what, guard, c.out.String())
	}
}

// wait waits for the process to end by itself and returns its exit code.
// Past the guard the test fails, after trying SIGTERM (and saying whether
// it helped) and then SIGKILL.
func (c *child) wait() int {
	c.t.Helper()
	select {
	case <-c.done:
		return c.code()
	case <-time.After(guard):
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		c.t.Fatalf("mirrorctl did not end by itself within %v; SIGTERM ended it:\n%s", guard, c.out.String())
	case <-time.After(10 * time.Second):
	}
	c.cmd.Process.Kill()
	<-c.done
	c.t.Fatalf("mirrorctl did not end within %v, nor on SIGTERM; killed:\n%s", guard, c.out.String())
	return 0
}

func (c *child) code() int {
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode()
	}
	if c.err != nil {
		c.t.Fatalf("waiting for mirrorctl: %v", c.err)
	}
	return 0
}

// runChild runs mirrorctl in a child process that must end by itself, and
// returns its exit code and output.
func runChild(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	c := startChild(t, env, args...)
	code := c.wait()
	return code, c.out.String()
}

// opened returns a channel closed once the process has file open.
func (c *child) opened(file string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		dir := filepath.Join("/proc", strconv.Itoa(c.cmd.Process.Pid), "fd")
		for {
			select {
			case <-c.done:
				return
			default:
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == file {
					close(ch)
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return ch
}

// lockIsFree checks, in this process, that the lock can be taken at once:
// a sync with --lock-timeout 0s.
func lockIsFree(t *testing.T, h *host, spec string) {
	t.Helper()
	healthy := h.healthy
	h.healthy = func(string) error { return nil }
	defer func() { h.healthy = healthy }()
	if code, out, errOut := h.run("", "--config", spec, "--lock-timeout", "0s", "sync", "--adopt"); code != exitOK {
		t.Errorf("the lock is not free, or the node not usable, afterwards: exit %d\n%s%s", code, out, errOut)
	}
}

// A daemon that never becomes healthy: SIGTERM during its health check ends
// sync, which says it was interrupted.
func TestSIGTERMEndsSyncInAHealthCheck(t *testing.T) {
	h := newHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	c := startChild(t, []string{childHealthEnv + "=block"}, "--root", h.root, "--config", spec, "sync", "--adopt")
	c.await("health check", c.out.appears(healthWaiting))
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(); code == exitOK || !strings.Contains(c.out.String(), "interrupted") {
		t.Errorf("exit %d, want a failure saying it was interrupted:\n%s", code, c.out.String())
	}
	lockIsFree(t, h, spec)
}

// The same for rollback, which runs the same pipeline.
func TestSIGTERMEndsRollbackInAHealthCheck(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	specA := h.spec("https://nexus.example.internal:8443", "https://a.example.internal", "a")
	specB := h.spec("https://nexus.example.internal:8443", "https://b.example.internal", "b")
	for _, s := range []string{specA, specB} {
		if code, out, errOut := h.run("", "--config", s, "sync", "--adopt"); code != exitOK {
			t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
		}
	}
	c := startChild(t, []string{childHealthEnv + "=block"}, "--root", h.root, "--config", specB, "rollback")
	c.await("health check", c.out.appears(healthWaiting))
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(); code == exitOK || !strings.Contains(c.out.String(), "interrupted") {
		t.Errorf("exit %d, want a failure saying it was interrupted:\n%s", code, c.out.String())
	}
	lockIsFree(t, h, specB)
}

// A sync waiting for the lock another mirrorctl holds ends on SIGTERM.
func TestSIGTERMEndsSyncWaitingForTheLock(t *testing.T) {
	h := newHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	release := holdLock(t, h.root)
	c := startChild(t, nil, "--root", h.root, "--config", spec, "--lock-timeout", "1h", "sync")
	c.await("the lock file opened", c.opened(filepath.Join(h.root, "var/lib/mirrorctl/lock")))
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(); code == exitOK || !strings.Contains(c.out.String(), "lock") {
		t.Errorf("exit %d, want a failure about the lock:\n%s", code, c.out.String())
	}
	release()
	lockIsFree(t, h, spec)
}

// In one process (watch runs syncs in-process): a sync whose context ends
// in a health check returns, and releases the lock, so that the next one
// in the same process takes it at once.
func TestCancelledSyncReleasesTheLock(t *testing.T) {
	h := newHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	waiting := &output{}
	code, out := runUntil(t, h, waiting, waiting.appears(healthWaiting), "--config", spec, "sync", "--adopt")
	if code == exitOK || !strings.Contains(out, "interrupted") {
		t.Errorf("exit %d, want a failure saying it was interrupted:\n%s", code, out)
	}
	lockIsFree(t, h, spec)
}

// watch, its source a FIFO (a ConfigMap mount or a file replaced by one):
// the source fails at once, naming what the file is, and cancelling ends
// watch.
func TestWatchWithAFIFOSourceEnds(t *testing.T) {
	h := newHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	fifo := filepath.Join(h.etc, "central.yaml")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	out := &output{}
	_, got := runUntil(t, h, out, out.appears("named pipe (FIFO)"), "--config", spec, "watch", "--source", fifo, "--resync-interval", "0")
	if !strings.Contains(got, "not a regular file") {
		t.Errorf("watch does not say the source is not a regular file:\n%s", got)
	}
}

// watch stuck in a health check ends when cancelled, and the lock is free.
func TestWatchStuckInAHealthCheckEnds(t *testing.T) {
	h := newHost(t)
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u")
	out := &output{}
	runUntil(t, h, out, out.appears(healthWaiting), "--config", spec, "watch", "--adopt", "--resync-interval", "0")
	lockIsFree(t, h, spec)
}

// runUntil runs mirrorctl in this process with the recorder as systemd and
// a health check that blocks until the context ends (saying so on out),
// cancels the context once event happens, and returns the exit code and
// the output once the command has returned.
func runUntil(t *testing.T, h *host, out *output, event <-chan struct{}, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := &globalFlags{stdin: strings.NewReader(""), stdout: out, stderr: out}
	g.dial = func(context.Context) (systemd.Bus, error) { return &systemdtest.Recorder{}, nil }
	setHealth(g, blockingHealth(func(s string) { out.Write([]byte(s + "\n")) }))
	done := make(chan int, 1)
	go func() { done <- runWith(ctx, g, append([]string{"--root", h.root}, args...)) }()
	select {
	case <-event:
	case code := <-done:
		t.Fatalf("mirrorctl returned (exit %d) before the event:\n%s", code, out.String())
	case <-time.After(guard):
		t.Fatalf("no event within %v:\n%s", guard, out.String())
	}
	cancel()
	select {
	case code := <-done:
		return code, out.String()
	case <-time.After(guard):
		t.Fatalf("mirrorctl did not return within %v of the cancel:\n%s", guard, out.String())
	}
	return 0, ""
}
