package watch

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mirrorctl/mirrorctl/apply"
	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/internal/hosttest"
	"github.com/mirrorctl/mirrorctl/state"
	"github.com/mirrorctl/mirrorctl/systemd"
	"github.com/mirrorctl/mirrorctl/systemd/systemdtest"
)

// testHost is a scratch copy of testdata/demo/root (containerd 1.6, Docker
// 20.10, crictl) and a node config directory beside it, with the demo's
// password and CA.
type testHost struct {
	t    testing.TB
	root string
	hr   *hostfs.Root // root, through hostfs
	etc  string       // the node's config directory (--config's)
	rec  *systemdtest.Recorder
}

func newTestHost(t testing.TB) *testHost {
	t.Helper()
	h := &testHost{t: t, root: filepath.Join(t.TempDir(), "root"), etc: t.TempDir(), rec: &systemdtest.Recorder{}}
	hosttest.CopyTree(t, "../testdata/demo/root", h.root)
	hr, err := hostfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hr.Close() })
	h.hr = hr
	hosttest.CopyTree(t, "../testdata/demo/certs", filepath.Join(h.etc, "certs"))
	writeFile(t, filepath.Join(h.etc, "secrets/nexus-password"), "s3cret-Pässword $1\n")
	return h
}

func writeFile(t testing.TB, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeAtomic replaces p by renaming a new file over it, as editors do.
func writeAtomic(t testing.TB, p, data string) {
	t.Helper()
	tmp := p + ".tmp~"
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// node is the sync pipeline for h, with the recorder as systemd and every
// engine healthy.
func (h *testHost) node() *Node {
	return &Node{
		Apply: apply.Options{
			Root:        h.hr,
			Store:       state.Open(h.hr),
			Dial:        func(context.Context) (systemd.Bus, error) { return h.rec, nil },
			Health:      func(context.Context, *hostfs.Root, engines.Activation) error { return nil },
			LockTimeout: 5 * time.Second,
			Log:         slog.New(slog.DiscardHandler),
		},
	}
}

// specFor is a central spec: docker.io through hub, ghcr.io through ghcr,
// the password from the node (a relative path: the node's directory).
func specFor(hub, ghcr string) string {
	return `mirrors:
  docker.io:
    endpoint: ["` + hub + `"]
  ghcr.io:
    endpoint: ["` + ghcr + `"]
configs:
  nexus.example.internal:
    auth:
      username: puller
      password_file: secrets/nexus-password
  nexus.example.internal:8443:
    tls:
      ca_file: certs/nexus-ca.crt
engines:
  docker:
    auth_users: [root]
`
}

func specN(n int) string {
	return specFor("https://nexus.example.internal:8443", fmt.Sprintf("https://ghcr-%d.example.internal", n))
}

// files maps every file under the root, but mirrorctl's own directory, to
// its mode and content hash.
func (h *testHost) files() map[string]string {
	h.t.Helper()
	return hosttest.Snapshot(h.t, h.root, func(rel string) bool { return strings.HasPrefix(rel, "var/lib/mirrorctl/") })
}

func (h *testHost) read(hostPath string) string {
	h.t.Helper()
	return hosttest.Read(h.t, h.root, hostPath)
}

const ghcrHosts = "etc/containerd/certs.d/ghcr.io/hosts.toml"

// run is a Loop running in the background, its reports on a channel.
type run struct {
	t       testing.TB
	loop    *Loop
	reports chan Report
	notes   *notes
	cancel  context.CancelFunc
	done    chan error
}

// notes records sd_notify messages.
type notes struct {
	mu   sync.Mutex
	msgs []string
}

func (n *notes) add(s string) { n.mu.Lock(); n.msgs = append(n.msgs, s); n.mu.Unlock() }

func (n *notes) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// startLoop runs a loop for h with cfg's Source (and anything else set),
// with short timings, until the test ends.
func (h *testHost) startLoop(cfg Config) *run {
	h.t.Helper()
	if cfg.Node == nil {
		cfg.Node = h.node()
	}
	if cfg.NodeDir == "" {
		cfg.NodeDir = h.etc
	}
	if cfg.LastGood == nil {
		cfg.LastGood = OpenLastGood(h.hr)
	}
	if cfg.Debounce == (Quiescence{}) {
		cfg.Debounce = Quiescence{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	if cfg.Log == nil {
		cfg.Log = testLogger(h.t)
	}
	r := &run{t: h.t, reports: make(chan Report, 1000), notes: &notes{}, done: make(chan error, 1)}
	if cfg.Notify == nil {
		cfg.Notify = r.notes.add
	}
	cfg.Observe = func(rep Report) { r.reports <- rep }
	loop, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	r.loop = loop
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- loop.Run(ctx) }()
	h.t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels the loop and waits for Run to return.
func (r *run) stop() {
	r.t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Fatal("Run did not return after cancel")
	}
}

// next waits for the next report.
func (r *run) next(what string) Report {
	r.t.Helper()
	select {
	case rep := <-r.reports:
		return rep
	case <-time.After(10 * time.Second):
		r.t.Fatalf("no report: %s", what)
	}
	panic("unreachable")
}

// nextWhere waits for a report that satisfies ok, skipping others.
func (r *run) nextWhere(what string, ok func(Report) bool) Report {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case rep := <-r.reports:
			if ok(rep) {
				return rep
			}
		case <-deadline:
			r.t.Fatalf("no report: %s", what)
		}
	}
}

// quiet asserts that no report comes within d.
func (r *run) quiet(d time.Duration, what string) {
	r.t.Helper()
	select {
	case rep := <-r.reports:
		r.t.Fatalf("%s: unexpected sync (trigger %s, err %v)", what, rep.Trigger, rep.Err)
	case <-time.After(d):
	}
}

// drain returns the reports that arrive until none has for d.
func (r *run) drain(d time.Duration) []Report {
	var out []Report
	for {
		select {
		case rep := <-r.reports:
			out = append(out, rep)
		case <-time.After(d):
			return out
		}
	}
}

func written(rep Report) int {
	if rep.Result == nil {
		return 0
	}
	return len(rep.Result.Written)
}

// testLogger logs to the test's output, shown on failure or with -v.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
