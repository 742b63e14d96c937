package watch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Mirror health (--probe-interval). A prober goroutine asks every mirror
// endpoint of the config the node is on for its API root (GET
// https://nexus:8443/v2/, the URL containerd builds its requests on) and
// hands the answers to the loop, which keeps the state: an endpoint is
// down after downAfter failures in a row and up again after one answer.
// A change syncs, and containerd's hosts.toml leaves the down endpoints out
// (engines.Host.Down): containerd otherwise waits its dial timeout, 30 s by
// default, for a dead mirror on every blob.
//
// Any HTTP answer is alive: 200, 401 (a registry that wants credentials is
// up), 404, 5xx. A refused connection, a timeout or a reset is a failure.
// TLS uses the configs: entry of the endpoint's host (ca_file,
// insecure_skip_verify, client certificate), as containerd does; a TLS
// handshake that still fails means something answers there, so the
// endpoint counts as alive and the problem is logged: containerd fails
// over such a mirror at once, and dropping it would hide the mistake.

// downAfter is how many failed probes in a row mark an endpoint down.
const downAfter = 2

// probeResult is one endpoint's answer to one probe.
type probeResult struct {
	url string
	// err is nil when an HTTP answer came (or a TLS handshake failed, see
	// tlsErr).
	err error
	// tlsErr is set when the endpoint answered but the TLS handshake
	// failed: alive, misconfigured.
	tlsErr error
}

// probeTarget is an endpoint with its HTTP client.
type probeTarget struct {
	engines.MirrorEndpoint
	client *http.Client
}

// prober probes the targets every interval; only its goroutine dials.
type prober struct {
	interval, timeout time.Duration

	mu      sync.Mutex
	targets []probeTarget
}

func newProber(interval, timeout time.Duration) *prober {
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	return &prober{interval: interval, timeout: timeout}
}

// set replaces the endpoints to probe.
func (p *prober) set(eps []engines.MirrorEndpoint) {
	ts := make([]probeTarget, 0, len(eps))
	for _, e := range eps {
		ts = append(ts, probeTarget{MirrorEndpoint: e, client: probeClient(e.TLS, p.timeout)})
	}
	p.mu.Lock()
	p.targets = ts
	p.mu.Unlock()
}

// run probes all targets, sends the round's results, waits the interval,
// and again, until ctx ends.
func (p *prober) run(ctx context.Context, out chan<- []probeResult) {
	t := time.NewTimer(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		targets := p.targets
		p.mu.Unlock()
		if len(targets) > 0 {
			results := probeAll(ctx, targets)
			select {
			case out <- results:
			case <-ctx.Done():
				return
			}
		}
		t.Reset(p.interval)
	}
}

// probeAll probes the targets at once and returns their results in order.
func probeAll(ctx context.Context, targets []probeTarget) []probeResult {
	results := make([]probeResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { results[i] = probeOne(ctx, t) })
	}
	wg.Wait()
	return results
}

// probeOne asks one endpoint its API root.
func probeOne(ctx context.Context, t probeTarget) probeResult {
	r := probeResult{url: t.URL}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.ProbeURL(), nil)
	if err != nil {
		r.err = err
		return r
	}
	req.Header.Set("User-Agent", "mirrorctl-probe")
	resp, err := t.client.Do(req)
	if err != nil {
		if isTLSError(err) {
			r.tlsErr = err
		} else {
			r.err = err
		}
		return r
	}
	resp.Body.Close()
	return r
}

// isTLSError reports whether err is a failed TLS handshake with a peer
// that answered: an untrusted or wrong certificate, an alert (a client
// certificate refused), or a peer that does not speak TLS.
func isTLSError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		rec  tls.RecordHeaderError
		al   tls.AlertError
		ua   x509.UnknownAuthorityError
		he   x509.HostnameError
		ci   x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &rec) || errors.As(err, &al) ||
		errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) ||
		// net/http replaces the RecordHeaderError of a plain HTTP answer
		// by an unwrapped error.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// probeClient is a client for one endpoint: its TLS settings, a fresh
// connection per probe (a reused one would hide a dead listener), the
// proxy of the environment, redirects not followed (a redirect is an
// answer), and the probe timeout on everything.
func probeClient(t *spec.TLS, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DisableKeepAlives:   true,
		TLSHandshakeTimeout: timeout,
		TLSClientConfig:     probeTLS(t),
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// probeTLS is the TLS of the configs: entry for the endpoint's host, as
// containerd applies it: its CA added to the system's, verification
// skipped, the client certificate (a lone certificate file holds its key).
func probeTLS(t *spec.TLS) *tls.Config {
	c := &tls.Config{}
	if t == nil {
		return c
	}
	c.InsecureSkipVerify = t.InsecureSkipVerify
	if len(t.CA) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(t.CA)
		c.RootCAs = pool
	}
	if len(t.Cert) > 0 {
		key := []byte(t.Key.Reveal())
		if len(key) == 0 {
			key = t.Cert
		}
		if cert, err := tls.X509KeyPair(t.Cert, key); err == nil {
			c.Certificates = []tls.Certificate{cert}
		}
	}
	return c
}

// mirrorHealth is the loop's view of the endpoints: failures in a row,
// which are down, the TLS problem last logged. Only the loop's goroutine
// uses it.
type mirrorHealth struct {
	known   map[string]engines.MirrorEndpoint
	fails   map[string]int
	down    map[string]bool
	tlsNote map[string]string
}

func newMirrorHealth() *mirrorHealth {
	return &mirrorHealth{known: map[string]engines.MirrorEndpoint{}, fails: map[string]int{},
		down: map[string]bool{}, tlsNote: map[string]string{}}
}

// setTargets keeps the state of the endpoints still in eps and forgets
// the others; it returns the forgotten ones.
func (h *mirrorHealth) setTargets(eps []engines.MirrorEndpoint) (gone []string) {
	next := map[string]engines.MirrorEndpoint{}
	for _, e := range eps {
		next[e.URL] = e
	}
	for _, u := range slices.Sorted(maps.Keys(h.known)) {
		if _, ok := next[u]; !ok {
			gone = append(gone, u)
			delete(h.fails, u)
			delete(h.down, u)
			delete(h.tlsNote, u)
		}
	}
	h.known = next
	return gone
}

// observe applies one round of results to the state and returns the
// endpoints that went down and came back up. Results for endpoints no
// longer known (the config changed during the round) are ignored.
func (h *mirrorHealth) observe(rs []probeResult) (wentDown, cameUp []probeResult) {
	for _, r := range rs {
		if _, ok := h.known[r.url]; !ok {
			continue
		}
		if r.err != nil {
			h.fails[r.url]++
			if h.fails[r.url] >= downAfter && !h.down[r.url] {
				h.down[r.url] = true
				wentDown = append(wentDown, r)
			}
			continue
		}
		h.fails[r.url] = 0
		if h.down[r.url] {
			delete(h.down, r.url)
			cameUp = append(cameUp, r)
		}
	}
	return wentDown, cameUp
}

// downSet is a copy of the endpoints down, for plan.Options.Down; nil
// when none is.
func (h *mirrorHealth) downSet() map[string]bool {
	if len(h.down) == 0 {
		return nil
	}
	return maps.Clone(h.down)
}

// downList names the endpoints down, sorted.
func (h *mirrorHealth) downList() []string {
	return slices.Sorted(maps.Keys(h.down))
}

// registries names what an endpoint mirrors, for the log.
func (h *mirrorHealth) registries(url string) string {
	return strings.Join(h.known[url].Registries, ",")
}

// setProbeTargets points the probes at the mirrors of s, the config the
// node is now on, keeping the state of the endpoints it still lists.
func (l *Loop) setProbeTargets(s *spec.Spec) {
	if l.probe == nil {
		return
	}
	eps := engines.MirrorEndpoints(s)
	l.probe.set(eps)
	for _, u := range l.health.setTargets(eps) {
		l.m.mirrorUp.DeleteLabelValues(u)
	}
	l.setDownNote()
}

// onProbe applies a round of probes; a mirror going down or coming back
// syncs, so that containerd's hosts.toml follows.
func (l *Loop) onProbe(ctx context.Context, rs []probeResult) {
	wentDown, cameUp := l.health.observe(rs)
	for _, r := range rs {
		if _, ok := l.health.known[r.url]; !ok {
			continue
		}
		up := 1.0
		if l.health.down[r.url] {
			up = 0
		}
		l.m.mirrorUp.WithLabelValues(r.url).Set(up)
		note := ""
		if r.tlsErr != nil {
			note = r.tlsErr.Error()
		}
		if note != l.health.tlsNote[r.url] {
			if note != "" {
				l.log.Warn("mirror answers but its TLS handshake fails; counted as up: check configs.<host>.tls",
					"endpoint", r.url, "registries", l.health.registries(r.url), "err", r.tlsErr)
			} else {
				l.log.Info("mirror's TLS handshake succeeds again", "endpoint", r.url)
			}
			l.health.tlsNote[r.url] = note
		}
	}
	for _, r := range wentDown {
		l.log.Warn("mirror down: engines that follow mirror health live leave it out until it answers again",
			"endpoint", r.url, "registries", l.health.registries(r.url), "failed_probes", l.health.fails[r.url], "err", r.err)
	}
	for _, r := range cameUp {
		l.log.Info("mirror up again: back in every engine's configuration", "endpoint", r.url, "registries", l.health.registries(r.url))
	}
	if len(wentDown) == 0 && len(cameUp) == 0 {
		return
	}
	l.setDownNote()
	l.sync(ctx, "probe", false)
}

// setDownNote keeps the endpoints down for the status line.
func (l *Loop) setDownNote() {
	l.mu.Lock()
	l.downNote = strings.Join(l.health.downList(), ", ")
	l.mu.Unlock()
}
