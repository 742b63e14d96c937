package watch

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"
)

// registryAPI answers /v2/ as a registry that wants credentials does.
var registryAPI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
})

func TestMirrorHealthHysteresis(t *testing.T) {
	const a, b = "https://a/v2", "https://b/v2"
	h := newMirrorHealth()
	h.setTargets([]engines.MirrorEndpoint{{URL: a}, {URL: b}})
	fail, ok := errors.New("refused"), error(nil)
	round := func(errA, errB error) (down, up []string) {
		d, u := h.observe([]probeResult{{url: a, err: errA}, {url: b, err: errB}, {url: "https://gone/v2", err: fail}})
		for _, r := range d {
			down = append(down, r.url)
		}
		for _, r := range u {
			up = append(up, r.url)
		}
		return down, up
	}
	steps := []struct {
		errA, errB error
		down, up   []string
		set        []string
	}{
		{errA: fail, errB: ok}, // one failure: still up
		{errA: ok, errB: ok},   // an answer resets the count
		{errA: fail, errB: ok}, //
		{errA: fail, errB: fail, down: []string{a}, set: []string{a}}, // two in a row: down
		{errA: fail, errB: ok, set: []string{a}},                      // stays down, reported once
		{errA: ok, errB: fail, up: []string{a}},                       // one answer: up again
		{errA: ok, errB: fail, down: []string{b}, set: []string{b}},
	}
	for i, s := range steps {
		down, up := round(s.errA, s.errB)
		if !slices.Equal(down, s.down) || !slices.Equal(up, s.up) || !slices.Equal(h.downList(), s.set) {
			t.Fatalf("step %d: down %v up %v set %v; want %v %v %v", i, down, up, h.downList(), s.down, s.up, s.set)
		}
	}
	if got := h.downSet(); len(got) != 1 || !got[b] {
		t.Errorf("downSet %v", got)
	}
	// A config without b forgets it.
	if gone := h.setTargets([]engines.MirrorEndpoint{{URL: a}}); !slices.Equal(gone, []string{b}) || h.downSet() != nil {
		t.Errorf("gone %v, down %v", gone, h.downSet())
	}
}

func TestProbeOne(t *testing.T) {
	ctx := context.Background()
	target := func(url string, tls *spec.TLS, timeout time.Duration) probeTarget {
		return probeTarget{MirrorEndpoint: engines.MirrorEndpoint{URL: url + "/v2", TLS: tls}, client: probeClient(tls, timeout)}
	}
	var mu sync.Mutex
	var paths []string
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		registryAPI(w, r)
	}))
	defer auth.Close()
	redirect := httptest.NewServer(http.RedirectHandler("http://127.0.0.1:1/elsewhere", http.StatusFound))
	defer redirect.Close()
	closed := httptest.NewServer(registryAPI)
	closed.Close()
	// Accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	tlsSrv := httptest.NewTLSServer(registryAPI)
	defer tlsSrv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})

	tests := []struct {
		name            string
		t               probeTarget
		wantErr, tlsErr bool
	}{
		{name: "401 is alive", t: target(auth.URL, nil, time.Second)},
		{name: "a redirect is an answer", t: target(redirect.URL, nil, time.Second)},
		{name: "refused", t: target(closed.URL, nil, time.Second), wantErr: true},
		{name: "no answer", t: target("http://"+ln.Addr().String(), nil, 100*time.Millisecond), wantErr: true},
		{name: "untrusted certificate: alive, misconfigured", t: target(tlsSrv.URL, nil, time.Second), tlsErr: true},
		{name: "the spec's CA", t: target(tlsSrv.URL, &spec.TLS{CA: ca}, time.Second)},
		{name: "insecure_skip_verify", t: target(tlsSrv.URL, &spec.TLS{InsecureSkipVerify: true}, time.Second)},
		{name: "https to a plain HTTP server: alive, misconfigured", t: target(strings.Replace(auth.URL, "http:", "https:", 1), nil, time.Second), tlsErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := probeOne(ctx, tt.t)
			if (r.err != nil) != tt.wantErr || (r.tlsErr != nil) != tt.tlsErr {
				t.Errorf("err %v, tlsErr %v", r.err, r.tlsErr)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(paths, "/v2/") {
		t.Errorf("probed %q, want /v2/", paths)
	}
}

// restartable is a registry whose listener can be closed (a dead mirror)
// and opened again on the same address.
type restartable struct {
	t    *testing.T
	addr string
	srv  *http.Server
	done chan struct{}
}

func newRestartable(t *testing.T) *restartable {
	r := &restartable{t: t, addr: "127.0.0.1:0"}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after a close
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: registryAPI}
	r.done = make(chan struct{})
	go func() { defer close(r.done); r.srv.Serve(ln) }()
}

func (r *restartable) stop() {
	if r.srv != nil {
		r.srv.Close()
		<-r.done
		r.srv = nil
	}
}

// A mirror that stops answering leaves containerd's hosts.toml after two
// failed probes, with no restart, and comes back once it answers.
func TestLoopLeavesADeadMirrorOut(t *testing.T) {
	h := newTestHost(t)
	a, b := newRestartable(t), newRestartable(t)
	epA, epB := "http://"+a.addr+"/v2", "http://"+b.addr+"/v2"
	cfgPath := filepath.Join(h.etc, "config.yaml")
	writeFile(t, cfgPath, "mirrors:\n  ghcr.io:\n    endpoint: [\"http://"+a.addr+"\", \"http://"+b.addr+"\"]\n")
	r := h.startLoop(Config{Source: NewFileSource(cfgPath, nil, fastQ), ProbeInterval: 20 * time.Millisecond, ProbeTimeout: time.Second})
	if rep := r.next("first sync"); rep.Err != nil {
		t.Fatalf("first sync: %+v", rep)
	}
	hostLine := func(ep string) string { return `[host."` + ep + `"]` }
	if got := h.read(ghcrHosts); !strings.Contains(got, hostLine(epA)) || !strings.Contains(got, hostLine(epB)) {
		t.Fatalf("hosts.toml:\n%s", got)
	}
	up := func(ep string) float64 { return testutil.ToFloat64(r.loop.Metrics().mirrorUp.WithLabelValues(ep)) }
	waitFor(t, "both probed and up", func() bool { return up(epA) == 1 && up(epB) == 1 })
	h.rec.Calls = nil
	r.quiet(100*time.Millisecond, "every mirror answers") // a 401 is an answer

	b.stop()
	rep := r.next("b down")
	if rep.Trigger != "probe" || rep.Err != nil || !slices.Equal(rep.Result.Written, []string{"/" + ghcrHosts}) {
		t.Fatalf("b down: %+v", rep)
	}
	if got := h.read(ghcrHosts); !strings.Contains(got, hostLine(epA)) || strings.Contains(got, b.addr) {
		t.Fatalf("hosts.toml with b down:\n%s", got)
	}
	if len(h.rec.Calls) != 0 {
		t.Errorf("a dead mirror called systemd: %v", h.rec.Calls)
	}
	if up(epB) != 0 || up(epA) != 1 {
		t.Errorf("mirrorctl_mirror_up: a %v, b %v", up(epA), up(epB))
	}
	if ok, line := r.loop.Health(); !ok || !strings.HasSuffix(line, "; mirrors down: "+epB) {
		t.Errorf("status %q", line)
	}
	if !slices.ContainsFunc(rep.Warnings, func(w engines.Warning) bool { return strings.Contains(w.Message, epB+" not answering") }) {
		t.Errorf("no warning names %s: %v", epB, rep.Warnings)
	}
	r.quiet(100*time.Millisecond, "b stays down")

	b.start()
	rep = r.next("b up")
	if rep.Trigger != "probe" || rep.Err != nil || !slices.Equal(rep.Result.Written, []string{"/" + ghcrHosts}) {
		t.Fatalf("b up: %+v", rep)
	}
	if got := h.read(ghcrHosts); !strings.Contains(got, hostLine(epA)) || !strings.Contains(got, hostLine(epB)) {
		t.Fatalf("hosts.toml with b back:\n%s", got)
	}
	if len(h.rec.Calls) != 0 {
		t.Errorf("systemd calls: %v", h.rec.Calls)
	}
	if _, line := r.loop.Health(); strings.Contains(line, "mirrors down") || up(epB) != 1 {
		t.Errorf("status %q, up %v", line, up(epB))
	}

	// A new config without b forgets it.
	writeAtomic(t, cfgPath, "mirrors:\n  ghcr.io:\n    endpoint: [\"http://"+a.addr+"\"]\n")
	r.nextWhere("the new config", func(rep Report) bool { return rep.Trigger == "source" })
	waitFor(t, "b's gauge gone", func() bool {
		return testutil.CollectAndCount(r.loop.Metrics().mirrorUp) == 1
	})
}
