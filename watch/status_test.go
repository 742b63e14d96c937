package watch

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// notifySocket listens where NOTIFY_SOCKET points, as systemd does for a
// Type=notify unit, and records the datagrams.
func notifySocket(t *testing.T) *notes {
	t.Helper()
	dir, err := os.MkdirTemp("", "notify") // a short path: sun_path is 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	n := &notes{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.add(string(buf[:k]))
		}
	}()
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	return n
}

// The real sd_notify: READY=1 once the first sync is done, STATUS= with its
// result, WATCHDOG=1 pings when the unit sets WatchdogSec, STOPPING=1.
func TestSystemdNotify(t *testing.T) {
	sock := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000") // 100ms: pings every 50ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(1))
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ), Notify: sdNotify})
	r.next("first sync")
	waitFor(t, "READY=1 and two watchdog pings", func() bool {
		msgs := sock.all()
		return slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, "READY=1\nSTATUS=generation 1 applied") }) &&
			count(msgs, "WATCHDOG=1") >= 2
	})
	r.stop()
	waitFor(t, "STOPPING=1", func() bool { return slices.Contains(sock.all(), "STOPPING=1") })
	msgs := sock.all()
	if i, j := slices.IndexFunc(msgs, func(m string) bool { return strings.HasPrefix(m, "READY=1") }), slices.Index(msgs, "WATCHDOG=1"); j < i {
		t.Errorf("a watchdog ping before READY: %q", msgs)
	}
}

func count(msgs []string, m string) int {
	n := 0
	for _, x := range msgs {
		if x == m {
			n++
		}
	}
	return n
}

// No watchdog ping while a sync is stuck past MaxSyncTime: systemd then
// restarts the unit, as WatchdogSec intends.
func TestWatchdogStopsWhenStuck(t *testing.T) {
	l, _ := New(Config{Source: NewFileSource("/nonexistent", nil, fastQ), Node: &Node{}, LastGood: &LastGood{}, NodeDir: "/", MaxSyncTime: 30 * time.Millisecond})
	n := &notes{}
	l.cfg.Notify = n.add
	l.setBusy(true)
	if !l.alive() {
		t.Fatal("not alive at the start of a sync")
	}
	time.Sleep(40 * time.Millisecond)
	if l.alive() {
		t.Fatal("alive past MaxSyncTime")
	}
	done := make(chan struct{})
	ctx, cancel := testContext()
	go func() { l.watchdog(ctx, 5*time.Millisecond); close(done) }()
	time.Sleep(30 * time.Millisecond)
	cancel()
	<-done
	if c := count(n.all(), "WATCHDOG=1"); c != 0 {
		t.Errorf("%d pings while stuck", c)
	}
	if ok, status := l.Health(); ok {
		t.Errorf("healthy while stuck: %s", status)
	}
}

func TestMetricsAndHealthz(t *testing.T) {
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(1))
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ)})
	ctx, cancel := testContext()
	defer cancel()
	addr, done, err := Serve(ctx, "127.0.0.1:0", r.loop.Metrics().Handler(r.loop.Health, r.loop.Ready))
	if err != nil {
		t.Fatal(err)
	}
	r.next("first sync")
	waitFor(t, "healthy", func() bool { ok, _ := r.loop.Health(); return ok })

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	if code != http.StatusOK || !strings.Contains(body, "generation 1 applied") {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after a successful sync: %d %q", code, body)
	}
	_, body = get("/metrics")
	for _, want := range []string{
		`mirrorctl_syncs_total{result="ok",trigger="start"} 1`,
		`mirrorctl_config_generation 1`,
		`mirrorctl_file_changes_total{engine="containerd"} 5`,
		`mirrorctl_file_changes_total{engine="docker"} 3`,
		`mirrorctl_activations_total{action="restart",engine="containerd"} 1`,
		`mirrorctl_activations_total{action="reload",engine="docker"} 1`,
		`mirrorctl_last_success_timestamp_seconds 1.`,
		`mirrorctl_sync_duration_seconds_count 1`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if got := testutil.ToFloat64(r.loop.Metrics().lastSuccess); time.Since(time.Unix(int64(got), 0)) > time.Minute {
		t.Errorf("last success %v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("server: %v", err)
	}
}

func TestMetricsAddrDefaultsToLocalhost(t *testing.T) {
	for in, want := range map[string]string{":9477": "127.0.0.1:9477", "0.0.0.0:9477": "0.0.0.0:9477", "[::1]:1": "[::1]:1"} {
		if got, err := MetricsAddr(in); err != nil || got != want {
			t.Errorf("MetricsAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := MetricsAddr("9477"); err == nil {
		t.Error("a port without a colon was accepted")
	}
}

// Readiness means "this node is configured": an invalid first config keeps
// the loop healthy (alive, on its last state) but not ready.
func TestNotReadyUntilASyncSucceeds(t *testing.T) {
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, "mirrors:\n  docker.io:\n    endpoints: [\"https://typo.example\"]\n")
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ)})
	r.next("first (refused) sync")
	if ok, status := r.loop.Health(); !ok {
		t.Fatalf("not healthy after a refused config: %s", status)
	}
	if ok, status := r.loop.Ready(); ok {
		t.Fatalf("ready although no sync succeeded: %s", status)
	}
	writeFile(t, cfgPath, specN(1))
	r.next("valid config")
	waitFor(t, "ready", func() bool { ok, _ := r.loop.Ready(); return ok })
}
