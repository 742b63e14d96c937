package watch

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/internal/hosttest"
	"github.com/mirrorctl/mirrorctl/state"
	"github.com/mirrorctl/mirrorctl/systemd/systemdtest"
)

// The file source end to end: the first sync, a rename-over, the last good
// config kept, and nothing done for an event that changed nothing.
func TestLoopFollowsAFile(t *testing.T) {
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(1))
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ)})

	rep := r.next("first sync")
	if rep.Trigger != "start" || rep.Err != nil || rep.Generation != 1 || written(rep) == 0 {
		t.Fatalf("first sync: %+v", rep)
	}
	if !strings.Contains(h.read(ghcrHosts), "ghcr-1.example.internal") {
		t.Fatalf("hosts.toml:\n%s", h.read(ghcrHosts))
	}
	wantCalls := []systemdtest.Call{{Verb: "try-restart", Unit: "containerd.service"}, {Verb: "reload", Unit: "docker.service"}}
	if d := cmp.Diff(wantCalls, h.rec.Calls); d != "" {
		t.Errorf("first sync's systemd calls (-want +got):\n%s", d)
	}
	waitFor(t, "READY=1 with the status after the first sync", func() bool {
		return slices.ContainsFunc(r.notes.all(), func(n string) bool { return strings.HasPrefix(n, "READY=1\nSTATUS=generation 1 applied") })
	})

	before := h.files()
	h.rec.Calls = nil
	writeAtomic(t, cfgPath, specN(2))
	rep = r.next("after rename-over")
	if rep.Trigger != "source" || rep.Err != nil || rep.Generation != 2 {
		t.Fatalf("after rename-over: %+v", rep)
	}
	if got := rep.Result.Written; !slices.Equal(got, []string{"/" + ghcrHosts}) {
		t.Errorf("wrote %q, want only ghcr.io's hosts.toml", got)
	}
	if len(h.rec.Calls) != 0 {
		t.Errorf("a hosts.toml change called systemd: %v", h.rec.Calls)
	}
	after := h.files()
	for p := range before {
		if p != ghcrHosts && before[p] != after[p] {
			t.Errorf("%s changed", p)
		}
	}
	saved, err := OpenLastGood(h.hr).Load()
	if err != nil || saved == nil || string(saved.Data) != specN(2) || saved.Generation != 2 || saved.Name != cfgPath {
		t.Fatalf("last good: %+v, %v", saved, err)
	}

	// An event that leaves the bytes as they are syncs nothing.
	writeAtomic(t, cfgPath, specN(2))
	r.quiet(200*time.Millisecond, "same content")
}

// A ConfigMap volume, updated by swapping ..data, with the password from
// the node's own directory.
func TestLoopFollowsAConfigMap(t *testing.T) {
	h := newTestHost(t)
	cm := newConfigMap(t, map[string]string{"config.yaml": specN(1)})
	r := h.startLoop(Config{Source: NewFileSource(filepath.Join(cm.dir, "config.yaml"), nil, fastQ)})
	if rep := r.next("first sync"); rep.Err != nil || written(rep) == 0 {
		t.Fatalf("first sync: %+v", rep)
	}
	cm.update(map[string]string{"config.yaml": specN(2)})
	if rep := r.next("after the swap"); rep.Err != nil || rep.Trigger != "source" {
		t.Fatalf("after the ..data swap: %+v", rep)
	}
	if !strings.Contains(h.read(ghcrHosts), "ghcr-2.example.internal") {
		t.Errorf("hosts.toml after the swap:\n%s", h.read(ghcrHosts))
	}
	// The central file held no password: the node's went into config.toml.
	if !strings.Contains(h.read("etc/containerd/config.toml"), "auth") {
		t.Errorf("the node's credentials are missing from config.toml")
	}
}

func TestLoopBurstOfWritesSyncsFewTimes(t *testing.T) {
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(0))
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, Quiescence{Min: 50 * time.Millisecond, Max: time.Second})})
	r.next("first sync")
	for i := 1; i <= 100; i++ {
		writeFile(t, cfgPath, specN(i))
	}
	reps := r.drain(500 * time.Millisecond)
	if len(reps) == 0 || len(reps) > 3 {
		t.Fatalf("%d syncs for a burst of 100 writes; want 1 to 3", len(reps))
	}
	if !strings.Contains(h.read(ghcrHosts), "ghcr-100.example.internal") {
		t.Errorf("the last write was not applied:\n%s", h.read(ghcrHosts))
	}
}

func TestLoopHTTPNotModifiedSyncsNothing(t *testing.T) {
	h := newTestHost(t)
	c, srv, ca := newCentral(t, specN(1))
	src := newHTTP(t, srv.URL+"/fleet/mirrors.yaml", fastHTTP(ca))
	r := h.startLoop(Config{Source: src})
	if rep := r.next("first sync"); rep.Err != nil || written(rep) == 0 || rep.Source != srv.URL+"/fleet/mirrors.yaml" {
		t.Fatalf("first sync: %+v", rep)
	}
	before := h.files()
	state0, _ := os.ReadFile(filepath.Join(h.root, "var/lib/mirrorctl/state.json"))
	r.quiet(300*time.Millisecond, "304s")
	if d := cmp.Diff(before, h.files()); d != "" {
		t.Errorf("files changed on 304s:\n%s", d)
	}
	if state1, _ := os.ReadFile(filepath.Join(h.root, "var/lib/mirrorctl/state.json")); string(state0) != string(state1) {
		t.Error("state.json rewritten on 304s")
	}
	conditional := 0
	for _, q := range c.reqs() {
		if q.ifNoneMatch != "" {
			conditional++
		}
	}
	if conditional < 3 {
		t.Errorf("%d conditional polls in 300ms at a 30ms interval", conditional)
	}
}

// Errors of every kind leave the node alone and are reported: 500s,
// timeouts, a body over the limit.
func TestLoopSourceErrorsChangeNothing(t *testing.T) {
	h := newTestHost(t)
	c, srv, ca := newCentral(t, specN(1))
	o := fastHTTP(ca)
	o.Timeout, o.MaxBytes = 100*time.Millisecond, 4096
	r := h.startLoop(Config{Source: newHTTP(t, srv.URL+"/m.yaml", o)})
	r.next("first sync")
	before := h.files()
	m := r.loop.Metrics()

	c.mu.Lock()
	c.status = http.StatusInternalServerError
	c.mu.Unlock()
	waitFor(t, "a 500 counted", func() bool { return testutil.ToFloat64(m.fetchErrors.WithLabelValues("status")) >= 1 })
	c.mu.Lock()
	c.status, c.delay = 0, time.Second
	c.mu.Unlock()
	waitFor(t, "a timeout counted", func() bool { return testutil.ToFloat64(m.fetchErrors.WithLabelValues("timeout")) >= 1 })
	c.mu.Lock()
	c.delay = 0
	c.mu.Unlock()
	c.set(specN(2) + "# " + strings.Repeat("x", 5000) + "\n")
	waitFor(t, "a body over the limit counted", func() bool { return testutil.ToFloat64(m.fetchErrors.WithLabelValues("too_large")) >= 1 })
	// The metric is counted before STATUS is sent: wait for the note too.
	waitFor(t, "STATUS showing the source error", func() bool {
		return slices.ContainsFunc(r.notes.all(), func(n string) bool {
			return strings.Contains(n, "source: GET") && strings.Contains(n, "over the limit")
		})
	})
	if reps := r.drain(50 * time.Millisecond); len(reps) != 0 {
		t.Errorf("%d syncs while the source failed", len(reps))
	}
	if d := cmp.Diff(before, h.files()); d != "" {
		t.Errorf("files changed while the source failed:\n%s", d)
	}
	c.set(specN(2))
	if rep := r.next("recovered"); rep.Err != nil || !strings.Contains(h.read(ghcrHosts), "ghcr-2") {
		t.Fatalf("after recovery: %+v", rep)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With a key configured, a tampered, unsigned or serial-less config is
// refused and the node stays as it is; a properly signed one goes through.
// Each step waits for its own STATUS line, not for time to pass.
func TestLoopSignatures(t *testing.T) {
	h := newTestHost(t)
	key := newTestKey(t)
	v, err := ParseVerifier([]byte(key.line), VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg1 := "serial: 1\n" + specN(1)
	c, srv, ca := newCentral(t, cfg1)
	c.sig = string(key.sign(t, DefaultNamespace, []byte(cfg1)))
	o := fastHTTP(ca)
	o.Verify = v
	r := h.startLoop(Config{Source: newHTTP(t, srv.URL+"/m.yaml", o), Verify: v})
	if rep := r.next("signed"); rep.Err != nil || written(rep) == 0 {
		t.Fatalf("signed config: %+v", rep)
	}
	saved, _ := OpenLastGood(h.hr).Load()
	if saved == nil || string(saved.Sig) != c.sig || saved.Serial != 1 {
		t.Errorf("the signature and serial were not kept with the last good config: %+v", saved)
	}
	before := h.files()
	m := r.loop.Metrics()
	status := func(what, says string) {
		t.Helper()
		waitFor(t, what, func() bool {
			return slices.ContainsFunc(r.notes.all(), func(n string) bool { return strings.Contains(n, says) })
		})
	}

	cfg2 := "serial: 2\n" + specN(2)
	c.set(cfg2) // the old signature: tampered
	status("a tampered config refused", ErrBadSignature.Error())
	c.mu.Lock()
	c.sig = ""
	c.mu.Unlock()
	status("an unsigned config refused", ErrUnsigned.Error())
	c.set(specN(3)) // unsigned still, then signed without a serial
	c.mu.Lock()
	c.sig = string(key.sign(t, DefaultNamespace, []byte(specN(3))))
	c.mu.Unlock()
	status("a signed config without a serial refused", "a signed config must carry a serial")
	if got := testutil.ToFloat64(m.fetchErrors.WithLabelValues("signature")); got < 2 {
		t.Errorf("%v signature refusals counted, want at least 2", got)
	}
	if got := testutil.ToFloat64(m.fetchErrors.WithLabelValues("serial")); got != 1 {
		t.Errorf("%v serial refusals counted, want 1", got)
	}
	if n := len(r.reports); n != 0 {
		t.Errorf("%d syncs of refused configs", n)
	}
	if d := cmp.Diff(before, h.files()); d != "" {
		t.Errorf("files changed by a refused config:\n%s", d)
	}
	c.set(cfg2)
	c.mu.Lock()
	c.sig = string(key.sign(t, DefaultNamespace, []byte(cfg2)))
	c.mu.Unlock()
	if rep := r.next("re-signed"); rep.Err != nil || !strings.Contains(h.read(ghcrHosts), "ghcr-2") {
		t.Fatalf("properly signed: %+v", rep)
	}
}

// An unsigned file at start changes nothing at all.
func TestLoopUnsignedFileAtStart(t *testing.T) {
	h := newTestHost(t)
	v, _ := ParseVerifier([]byte(newTestKey(t).line), VerifierOptions{})
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(1))
	before := h.files()
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, v, fastQ), Verify: v})
	waitFor(t, "READY", func() bool {
		return slices.ContainsFunc(r.notes.all(), func(n string) bool { return strings.HasPrefix(n, "READY=1") })
	})
	if d := cmp.Diff(before, h.files()); d != "" {
		t.Errorf("an unsigned config changed files:\n%s", d)
	}
	if ok, status := r.loop.Health(); !ok || !strings.Contains(status, "not signed") {
		t.Errorf("health %v %q", ok, status)
	}
}

func TestLoopInvalidSpecKeepsTheNode(t *testing.T) {
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(1))
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ), Resync: 50 * time.Millisecond})
	r.next("first sync")
	before := h.files()
	writeAtomic(t, cfgPath, "mirrors:\n  docker.io:\n    endpoints: [https://m.example.com]\n")
	rep := r.nextWhere("refusal", func(r Report) bool { return r.Trigger == "source" })
	var want = cfgPath + ":3:5"
	if rep.Stage != "spec" || rep.Err == nil || !strings.Contains(rep.Err.Error(), want) || rep.Generation != 1 {
		t.Fatalf("invalid spec: stage %q, generation %d, err %v; want the error at %s", rep.Stage, rep.Generation, rep.Err, want)
	}
	if d := cmp.Diff(before, h.files()); d != "" {
		t.Errorf("an invalid spec changed files:\n%s", d)
	}
	if got := testutil.ToFloat64(r.loop.Metrics().failures.WithLabelValues("spec")); got != 1 {
		t.Errorf("spec failures %v, want 1", got)
	}
	if !slices.ContainsFunc(r.notes.all(), func(n string) bool {
		return strings.HasPrefix(n, "STATUS=refused "+cfgPath) && strings.Contains(n, want)
	}) {
		t.Errorf("STATUS does not say why: %q", r.notes.all())
	}
	// The resync timer re-applies the last good config, not the bad one.
	rep = r.nextWhere("resync", func(r Report) bool { return r.Trigger == "resync" })
	if rep.Err != nil || rep.Generation != 1 {
		t.Errorf("resync after a refusal: %+v", rep)
	}
	if got := testutil.ToFloat64(r.loop.Metrics().failures.WithLabelValues("spec")); got != 1 {
		t.Errorf("the bad config was retried by the timer: %v failures", got)
	}
	writeAtomic(t, cfgPath, specN(2))
	r.nextWhere("fixed", func(r Report) bool { return r.Trigger == "source" && r.Err == nil && r.Generation == 2 })
}

// A node that boots while its source is down applies the last good config.
func TestLoopStartsFromLastGoodWhenTheSourceIsDown(t *testing.T) {
	h1 := newTestHost(t)
	_, srv, ca := newCentral(t, specN(7))
	url := srv.URL + "/m.yaml"
	r := h1.startLoop(Config{Source: newHTTP(t, url, fastHTTP(ca))})
	if rep := r.next("first run"); rep.Err != nil || rep.Generation != 1 {
		t.Fatalf("first run: %+v", rep)
	}
	r.stop()
	srv.Close()

	// A node reinstalled from the image: the engines' files are the
	// originals, /var/lib/mirrorctl came back from its volume.
	h2 := newTestHost(t)
	h2.etc = h1.etc
	hosttest.CopyTree(t, filepath.Join(h1.root, "var/lib/mirrorctl/last-good"), filepath.Join(h2.root, "var/lib/mirrorctl/last-good"))
	r2 := h2.startLoop(Config{Source: newHTTP(t, url, fastHTTP(ca))})
	rep := r2.next("start with the source down")
	if rep.Trigger != "start" || rep.Err != nil || rep.Generation != 1 || rep.Source != url || written(rep) == 0 {
		t.Fatalf("start from last good: %+v", rep)
	}
	if d := cmp.Diff(h1.files(), h2.files()); d != "" {
		t.Errorf("the node from last good differs from the one synced online:\n%s", d)
	}
	if ok, status := r2.loop.Health(); !ok || !strings.Contains(status, "source: GET") {
		t.Errorf("health %v %q: want ok, and the source's error", ok, status)
	}
}

// A source whose first answer is 304 does not stall the start: the last
// good config is applied and READY=1 sent.
func TestLoopStartsFromLastGoodOnAFirstNotModified(t *testing.T) {
	h1 := newTestHost(t)
	c, srv, ca := newCentral(t, specN(7))
	url := srv.URL + "/m.yaml"
	r := h1.startLoop(Config{Source: newHTTP(t, url, fastHTTP(ca))})
	if rep := r.next("first run"); rep.Err != nil || rep.Generation != 1 {
		t.Fatalf("first run: %+v", rep)
	}
	r.stop()

	h2 := newTestHost(t)
	h2.etc = h1.etc
	hosttest.CopyTree(t, filepath.Join(h1.root, "var/lib/mirrorctl/last-good"), filepath.Join(h2.root, "var/lib/mirrorctl/last-good"))
	c.mu.Lock()
	c.status = http.StatusNotModified
	c.mu.Unlock()
	r2 := h2.startLoop(Config{Source: newHTTP(t, url, fastHTTP(ca))})
	rep := r2.next("start on a 304")
	if rep.Trigger != "start" || rep.Err != nil || rep.Generation != 1 || written(rep) == 0 {
		t.Fatalf("start from last good: %+v", rep)
	}
	if d := cmp.Diff(h1.files(), h2.files()); d != "" {
		t.Errorf("the node from last good differs from the one synced online:\n%s", d)
	}
	waitFor(t, "READY=1 with the 304 in STATUS", func() bool {
		return slices.ContainsFunc(r2.notes.all(), func(n string) bool {
			return strings.HasPrefix(n, "READY=1\n") && strings.Contains(n, "304 Not Modified")
		})
	})
	if got := testutil.ToFloat64(r2.loop.Metrics().fetchErrors.WithLabelValues("status")); got != 1 {
		t.Errorf("status errors %v, want 1", got)
	}
}

// A drop-in on the node changes: watch re-syncs with it merged.
func TestLoopFollowsTheNodesDropIns(t *testing.T) {
	h := newTestHost(t)
	_, srv, ca := newCentral(t, specN(1))
	r := h.startLoop(Config{Source: newHTTP(t, srv.URL+"/m.yaml", fastHTTP(ca))})
	r.next("first sync")
	writeFile(t, filepath.Join(h.etc, "conf.d/50-local.yaml"), "mirrors:\n  ghcr.io:\n    endpoint: [https://local-cache.example.internal]\n")
	rep := r.next("drop-in")
	if rep.Trigger != "local" || rep.Err != nil || !strings.Contains(h.read(ghcrHosts), "local-cache.example.internal") {
		t.Fatalf("after a drop-in: %+v\n%s", rep, h.read(ghcrHosts))
	}
}

func TestLoopRepairsDriftUpToTheCap(t *testing.T) {
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(1))
	trigger := make(chan struct{}, 1)
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ), MaxFights: 2, FightWindow: time.Minute, Trigger: trigger})
	r.next("first sync")
	want := h.read(ghcrHosts)
	hosts := filepath.Join(h.root, ghcrHosts)

	for i := 1; i <= 2; i++ {
		writeFile(t, hosts, "# hand edit\nserver = \"https://ghcr.io\"\n")
		rep := r.next("drift repair")
		if rep.Trigger != "drift" || !slices.Equal(rep.Repaired, []string{"/" + ghcrHosts}) {
			t.Fatalf("repair %d: %+v", i, rep)
		}
		if got := h.read(ghcrHosts); got != want {
			t.Fatalf("repair %d: hosts.toml not restored:\n%s", i, got)
		}
	}
	// The edit was backed up before it was overwritten.
	if sets, err := state.Open(h.hr).Sets(); err != nil || len(sets) < 3 {
		t.Errorf("backup sets: %d, %v", len(sets), err)
	}

	// The third fight within the window: left alone and reported.
	edit := "# mine, says the config manager\nserver = \"https://ghcr.io\"\n"
	writeFile(t, hosts, edit)
	rep := r.next("given up")
	if !slices.Equal(rep.GivenUp, []string{"/" + ghcrHosts}) || len(rep.Repaired) != 0 {
		t.Fatalf("past the cap: %+v", rep)
	}
	if got := h.read(ghcrHosts); got != edit {
		t.Errorf("repaired past the cap:\n%s", got)
	}
	if got := testutil.ToFloat64(r.loop.Metrics().givenUp); got != 1 {
		t.Errorf("given-up gauge %v", got)
	}
	if !slices.ContainsFunc(r.notes.all(), func(n string) bool { return strings.Contains(n, "not repairing /"+ghcrHosts) }) {
		t.Errorf("STATUS does not name the file: %q", r.notes.all())
	}
	writeFile(t, hosts, edit+"# again\n")
	if rep := r.next("still given up"); len(rep.Repaired) != 0 {
		t.Errorf("repaired a given-up file: %+v", rep)
	}

	// SIGHUP: the operator says try again.
	trigger <- struct{}{}
	if rep := r.next("signal"); rep.Trigger != "signal" || !slices.Equal(rep.Repaired, []string{"/" + ghcrHosts}) || len(rep.GivenUp) != 0 {
		t.Errorf("signal after giving up: %+v", rep)
	}
	if got := h.read(ghcrHosts); got != want {
		t.Errorf("SIGHUP did not repair again:\n%s", got)
	}

	// A deleted managed file is drift too.
	if err := os.Remove(filepath.Join(h.root, "etc/crictl.yaml")); err != nil {
		t.Fatal(err)
	}
	if rep := r.next("deleted"); rep.Trigger != "drift" || !slices.Equal(rep.Repaired, []string{"/etc/crictl.yaml"}) {
		t.Errorf("deleted file: %+v", rep)
	}
}

// SIGHUP (the Trigger) syncs now and polls the source now.
func TestLoopTriggerSyncsNow(t *testing.T) {
	h := newTestHost(t)
	c, srv, ca := newCentral(t, specN(1))
	o := fastHTTP(ca)
	o.Interval = time.Hour
	trigger := make(chan struct{}, 1)
	r := h.startLoop(Config{Source: newHTTP(t, srv.URL+"/m.yaml", o), Trigger: trigger})
	r.next("first sync")
	c.set(specN(2))
	r.quiet(100*time.Millisecond, "an hour's interval")
	trigger <- struct{}{}
	if rep := r.next("signal"); rep.Trigger != "signal" || rep.Err != nil {
		t.Fatalf("signal: %+v", rep)
	}
	rep := r.next("polled now")
	if rep.Trigger != "source" || !strings.Contains(h.read(ghcrHosts), "ghcr-2") {
		t.Fatalf("after the signal's poll: %+v", rep)
	}
}

// Cancelling (SIGTERM) during a sync ends it promptly: a health check
// waiting for an engine gives up, what was written stays written and
// recorded, and Run returns nil.
func TestLoopCancelEndsTheSync(t *testing.T) {
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(1))
	inHealth := make(chan struct{}, 1)
	node := h.node()
	node.Apply.Health = func(ctx context.Context, _ *hostfs.Root, _ engines.Activation) error {
		select {
		case inHealth <- struct{}{}:
		default:
		}
		<-ctx.Done() // an engine that never comes up
		return ctx.Err()
	}
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ), Node: node})
	select {
	case <-inHealth:
	case <-time.After(10 * time.Second):
		t.Fatal("no health check")
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the cancel")
	}
	rep := r.next("the sync that was running")
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "interrupted") {
		t.Errorf("the interrupted sync reports %v", rep.Err)
	}
	st, err := state.Open(h.hr).Load()
	if err != nil || len(st.Files) == 0 || dirty(h.hr, st) {
		t.Errorf("state after the sync: %d files, %v; dirty %v", len(st.Files), err, dirty(h.hr, st))
	}
	if !slices.Contains(r.notes.all(), "STOPPING=1") {
		t.Errorf("no STOPPING=1: %q", r.notes.all())
	}
}

// An empty central config (a file caught mid-rewrite, a server answering
// 200 with nothing) would remove every mirror: it is refused.
func TestLoopRefusesAnEmptyConfig(t *testing.T) {
	h := newTestHost(t)
	c, srv, ca := newCentral(t, specN(1))
	r := h.startLoop(Config{Source: newHTTP(t, srv.URL+"/m.yaml", fastHTTP(ca))})
	r.next("first sync")
	before := h.files()
	c.set("# nothing yet\n\n---\n")
	rep := r.next("empty")
	if rep.Stage != "spec" || !errors.Is(rep.Err, ErrEmpty) {
		t.Fatalf("empty config: stage %q, err %v", rep.Stage, rep.Err)
	}
	if d := cmp.Diff(before, h.files()); d != "" {
		t.Errorf("an empty config changed files:\n%s", d)
	}
}

// A CA the central config drops is revoked on the node: every copy of it
// in containerd's and Docker's certs.d goes, with its state.json entry, and
// nothing is restarted or reloaded for it (hosts.toml and certs.d are read
// live). watch runs the same pipeline as sync, ownership record included.
func TestLoopRemovesADroppedCA(t *testing.T) {
	h := newTestHost(t)
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, specN(1))
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ)})
	if rep := r.next("first sync"); rep.Err != nil || written(rep) == 0 {
		t.Fatalf("first sync: %+v", rep)
	}
	var copies []string
	for p := range h.files() {
		if strings.Contains(p, "certs.d/") && strings.HasSuffix(p, ".crt") {
			copies = append(copies, "/"+p)
		}
	}
	slices.Sort(copies)
	if !slices.ContainsFunc(copies, func(p string) bool { return strings.HasPrefix(p, "/etc/containerd/") }) ||
		!slices.ContainsFunc(copies, func(p string) bool { return strings.HasPrefix(p, "/etc/docker/") }) {
		t.Fatalf("the CA is not copied for containerd and Docker: %q", copies)
	}
	st, err := state.Open(h.hr).Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range copies {
		if _, ok := st.Files[p]; !ok {
			t.Fatalf("%s is not in state.json", p)
		}
	}

	h.rec.Calls = nil
	noCA := strings.Replace(specN(2), "  nexus.example.internal:8443:\n    tls:\n      ca_file: certs/nexus-ca.crt\n", "", 1)
	if noCA == specN(2) {
		t.Fatal("the spec without the CA is the same spec")
	}
	writeAtomic(t, cfgPath, noCA)
	if rep := r.next("the CA dropped"); rep.Err != nil || rep.Generation != 2 {
		t.Fatalf("after the CA was dropped: %+v", rep)
	}
	after := h.files()
	if st, err = state.Open(h.hr).Load(); err != nil {
		t.Fatal(err)
	}
	for _, p := range copies {
		if _, ok := after[strings.TrimPrefix(p, "/")]; ok {
			t.Errorf("%s is still on the node", p)
		}
		if _, ok := st.Files[p]; ok {
			t.Errorf("%s is still in state.json", p)
		}
	}
	if len(h.rec.Calls) != 0 {
		t.Errorf("revoking a CA called systemd: %v", h.rec.Calls)
	}
}
