package watch

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// An old config, validly signed, served again is refused: serial 5 is
// applied, 4 is refused without touching the node, 5 again is fine, 6 is
// applied; after a restart, 4 is still refused and the last good config
// (6) is what the node converges to.
func TestLoopRefusesAReplayedConfig(t *testing.T) {
	h := newTestHost(t)
	key := newTestKey(t)
	v, err := ParseVerifier([]byte(key.line), VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// signed is a ConfigMap's content: serial, ghcr-n, and its signature,
	// swapped in together.
	signed := func(serial, n int) map[string]string {
		cfg := fmt.Sprintf("serial: %d\n", serial) + specN(n)
		return map[string]string{"config.yaml": cfg, "config.yaml.sig": string(key.sign(t, DefaultNamespace, []byte(cfg)))}
	}
	cm := newConfigMap(t, signed(5, 5))
	path := filepath.Join(cm.dir, "config.yaml")
	start := func() *run { return h.startLoop(Config{Source: NewFileSource(path, v, fastQ), Verify: v}) }
	says := func(r *run, what, text string) {
		t.Helper()
		waitFor(t, what, func() bool {
			return slices.ContainsFunc(r.notes.all(), func(n string) bool { return strings.Contains(n, text) })
		})
	}
	lastSerial := func() int64 {
		t.Helper()
		saved, err := OpenLastGood(h.hr).Load()
		if err != nil || saved == nil {
			t.Fatalf("last good: %v", err)
		}
		return saved.Serial
	}

	r := start()
	if rep := r.next("serial 5"); rep.Err != nil || !strings.Contains(h.read(ghcrHosts), "ghcr-5.") {
		t.Fatalf("serial 5: %+v", rep)
	}
	before := h.files()
	cm.update(signed(4, 4))
	says(r, "serial 4 refused", "serial 4 is below 5, the highest this node has applied")
	if got := testutil.ToFloat64(r.loop.Metrics().fetchErrors.WithLabelValues("serial")); got != 1 {
		t.Errorf("serial refusals %v, want 1", got)
	}
	if n := len(r.reports); n != 0 {
		t.Errorf("%d syncs for a refused config", n)
	}
	if d := cmp.Diff(before, h.files()); d != "" {
		t.Errorf("the replayed config changed files:\n%s", d)
	}
	if got := lastSerial(); got != 5 {
		t.Errorf("last good serial %d after a refusal, want 5", got)
	}

	// Equal is fine: the same config again, or another one with serial 5.
	cm.update(signed(5, 5))
	waitFor(t, "the refusal cleared", func() bool { _, s := r.loop.Health(); return !strings.Contains(s, "source:") })
	cm.update(signed(5, 50))
	if rep := r.next("another serial 5"); rep.Err != nil || !strings.Contains(h.read(ghcrHosts), "ghcr-50.") {
		t.Fatalf("another serial 5: %+v", rep)
	}
	cm.update(signed(6, 6))
	if rep := r.next("serial 6"); rep.Err != nil || !strings.Contains(h.read(ghcrHosts), "ghcr-6.") {
		t.Fatalf("serial 6: %+v", rep)
	}
	if got := lastSerial(); got != 6 {
		t.Errorf("last good serial %d, want 6", got)
	}

	// The highest serial outlives the process.
	r.stop()
	cm.update(signed(4, 4))
	r = start()
	if rep := r.next("start"); rep.Trigger != "start" || rep.Err != nil || !strings.Contains(h.read(ghcrHosts), "ghcr-6.") {
		t.Fatalf("start with serial 4 served: %+v\n%s", rep, h.read(ghcrHosts))
	}
	says(r, "serial 4 refused at start", "serial 4 is below 6")
	if got := testutil.ToFloat64(r.loop.Metrics().fetchErrors.WithLabelValues("serial")); got != 1 {
		t.Errorf("serial refusals at start %v, want 1", got)
	}
}

// The highest serial is read from meta.json alone: a torn config beside it
// does not reset it.
func TestLastGoodHighestSerial(t *testing.T) {
	hr, err := hostfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Close()
	lg := OpenLastGood(hr)
	if n, err := lg.HighestSerial(); n != 0 || err != nil {
		t.Fatalf("nothing saved: %d, %v", n, err)
	}
	if err := lg.Save(&Saved{Name: "c.yaml", Generation: 1, Serial: 9, Data: []byte("serial: 9\n")}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(hr.Join(lg.Dir), lastGoodConfig), "serial: 1\n")
	if _, err := lg.Load(); err == nil {
		t.Error("a torn last good config loaded")
	}
	if n, err := lg.HighestSerial(); n != 9 || err != nil {
		t.Errorf("highest serial %d, %v; want 9", n, err)
	}
}
