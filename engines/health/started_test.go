package health

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mirrorctl/mirrorctl/internal/hosttest"
)

func TestMain(m *testing.M) {
	hosttest.ServeIfDaemon()
	os.Exit(m.Run())
}

// A daemon is judged started after t by the process listening on its
// socket: this test process (started before the test) and a child started
// during it.
func TestStartedAfter(t *testing.T) {
	dir := t.TempDir()
	resolve := func(p string) (string, error) { return filepath.Join(dir, p), nil }
	ctx := context.Background()

	// This process listens: it started before the test began.
	hosttest.Listen(t, filepath.Join(dir, "self.sock"))
	before := time.Now()
	self := Probe{Containerd: &ContainerdProbe{Socket: "self.sock"}}
	if self.StartedAfter(ctx, resolve, before) {
		t.Error("a daemon started before t is judged started after it")
	}
	if !self.StartedAfter(ctx, resolve, before.AddDate(-50, 0, 0)) {
		t.Error("a daemon started after t (50 years ago) is not judged so")
	}

	// A child started now listens on its own socket. /proc counts start
	// times in 10 ms ticks, rounded down: t0 allows for that. This process
	// must have started before t0, which a young test process (a fresh
	// machine runs its tests within milliseconds of exec) has not: wait
	// for the clock to pass its start by more than the allowance.
	selfStart, err := processStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(selfStart.Add(40 * time.Millisecond)))
	t0 := time.Now().Add(-20 * time.Millisecond)
	hosttest.StartDaemon(t, filepath.Join(dir, "child.sock"))
	child := Probe{Docker: &DockerProbe{Socket: "child.sock"}}
	if !child.StartedAfter(ctx, resolve, t0) {
		t.Error("a daemon started during the test is not judged started after its start")
	}
	if child.StartedAfter(ctx, resolve, time.Now()) {
		t.Error("a daemon started before now is judged started after it")
	}
	// Every socket the probe asks must be newer.
	both := Probe{Containerd: &ContainerdProbe{Socket: "self.sock"}, Docker: &DockerProbe{Socket: "child.sock"}}
	if both.StartedAfter(ctx, resolve, t0) {
		t.Error("one restarted daemon of two counts as both")
	}
	// A missing socket, or a probe asking none: cannot tell, so no.
	if (Probe{Docker: &DockerProbe{Socket: "none.sock"}}).StartedAfter(ctx, resolve, t0) {
		t.Error("a missing socket counts as a restarted daemon")
	}
	if (Probe{}).StartedAfter(ctx, resolve, t0) {
		t.Error("a probe with no socket counts as a restarted daemon")
	}
	if child.StartedAfter(ctx, resolve, time.Time{}) {
		t.Error("an activation owed since an unknown time counts as done")
	}
}
