package watch

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// central is a config server: it serves config (and config.sig) with an
// ETag, answers If-None-Match with 304, and records every request.
type central struct {
	mu       sync.Mutex
	config   string
	sig      string // "" answers 404
	etag     string
	modified string // Last-Modified
	noETag   bool   // serve Last-Modified only
	status   int    // when set, every config request gets it
	delay    time.Duration
	requests []request
}

type request struct {
	path, ifNoneMatch, ifModifiedSince string
	at                                 time.Time
}

func (c *central) set(config string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.config = config
	c.etag = `"` + hexSum([]byte(config))[:16] + `"`
	modifiedAt = modifiedAt.Add(time.Second)
	c.modified = modifiedAt.Format(http.TimeFormat)
}

func (c *central) reqs() []request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]request(nil), c.requests...)
}

var modifiedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (c *central) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests = append(c.requests, request{r.URL.Path, r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since"), time.Now()})
	config, sig, etag, status, delay, noETag, modified := c.config, c.sig, c.etag, c.status, c.delay, c.noETag, c.modified
	c.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if strings.HasSuffix(r.URL.Path, ".sig") {
		if sig == "" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(sig))
		return
	}
	if status != 0 {
		http.Error(w, "down", status)
		return
	}
	if noETag {
		if r.Header.Get("If-Modified-Since") == modified {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Last-Modified", modified)
	} else {
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
	}
	w.Write([]byte(config))
}

// newCentral starts a TLS server and returns it with a CA file trusting it.
func newCentral(t *testing.T, config string) (*central, *httptest.Server, string) {
	t.Helper()
	c := &central{}
	c.set(config)
	srv := httptest.NewTLSServer(c)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	return c, srv, ca
}

func fastHTTP(ca string) HTTPOptions {
	return HTTPOptions{Interval: 30 * time.Millisecond, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Timeout: time.Second, CAFile: ca}
}

func newHTTP(t *testing.T, url string, o HTTPOptions) *HTTPSource {
	t.Helper()
	s, err := NewHTTPSource(url, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHTTPSourceConditionalGet(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noETag bool
	}{{"etag", false}, {"last_modified", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv, ca := newCentral(t, "one\n")
			c.noETag = tc.noETag
			snaps := runSource(t, newHTTP(t, srv.URL+"/mirrors.yaml", fastHTTP(ca)))
			if s := nextSnap(t, snaps, "start"); string(s.Data) != "one\n" || s.Err != nil {
				t.Fatalf("first snapshot %q, %v", s.Data, s.Err)
			}
			// Unchanged: 304s, and nothing is sent. The source polls one
			// request at a time, so once the fifth request arrived, what
			// the fourth's 304 would have sent is already in the channel.
			waitFor(t, "four conditional polls after the first", func() bool { return len(c.reqs()) >= 5 })
			select {
			case s := <-snaps:
				t.Fatalf("a 304 sent a snapshot: %q, %v", s.Data, s.Err)
			default:
			}
			reqs := c.reqs()
			last := reqs[len(reqs)-1]
			if tc.noETag && last.ifModifiedSince == "" || !tc.noETag && last.ifNoneMatch == "" {
				t.Errorf("poll was not conditional: %+v", last)
			}
			c.set("two\n")
			if s := nextSnap(t, snaps, "changed"); string(s.Data) != "two\n" {
				t.Fatalf("after the change: %q, %v", s.Data, s.Err)
			}
		})
	}
}

// A 304 to the first request (a cache answering for something else, a
// restart) has nothing unchanged to keep: it is an error, not silence.
func TestHTTPSourceFirstNotModified(t *testing.T) {
	c, srv, ca := newCentral(t, "one\n")
	c.status = http.StatusNotModified
	snaps := runSource(t, newHTTP(t, srv.URL+"/mirrors.yaml", fastHTTP(ca)))
	s := nextSnap(t, snaps, "first 304")
	var fe *FetchError
	if !errors.As(s.Err, &fe) || fe.Reason != "status" || !strings.Contains(s.Err.Error(), "304 Not Modified") || s.Data != nil {
		t.Fatalf("first 304: data %q, err %v", s.Data, s.Err)
	}
	c.mu.Lock()
	c.status = 0
	c.mu.Unlock()
	if s := nextSnap(t, snaps, "200"); string(s.Data) != "one\n" || s.Err != nil {
		t.Fatalf("after the 304s: %q, %v", s.Data, s.Err)
	}
}

// 500s and timeouts are errors, sent once each, with polls backing off.
func TestHTTPSourceBackoff(t *testing.T) {
	c, srv, ca := newCentral(t, "one\n")
	c.status = http.StatusInternalServerError
	o := fastHTTP(ca)
	o.Interval, o.Timeout = 10*time.Millisecond, 200*time.Millisecond
	snaps := runSource(t, newHTTP(t, srv.URL+"/mirrors.yaml", o))
	s := nextSnap(t, snaps, "500")
	var fe *FetchError
	if !errors.As(s.Err, &fe) || fe.Reason != "status" || !strings.Contains(s.Err.Error(), "500") {
		t.Fatalf("500: %v", s.Err)
	}
	// The same error again is not sent again (the waits: TestHTTPSourceWaits).
	waitFor(t, "two more failing polls", func() bool { return len(c.reqs()) >= 3 })
	noSnap(t, snaps, 0, "the same error again")

	// A timeout is an error of its own.
	c.mu.Lock()
	c.status, c.delay = 0, 2*time.Second
	c.mu.Unlock()
	if s := nextSnap(t, snaps, "timeout"); !errors.As(s.Err, &fe) || fe.Reason != "timeout" {
		t.Fatalf("timeout: %v", s.Err)
	}
	// Back up: the config arrives.
	c.mu.Lock()
	c.delay = 0
	c.mu.Unlock()
	if s := nextSnap(t, snaps, "recovered"); string(s.Data) != "one\n" {
		t.Fatalf("after recovery: %q, %v", s.Data, s.Err)
	}
}

func TestHTTPSourceBodyLimit(t *testing.T) {
	c, srv, ca := newCentral(t, strings.Repeat("#", 2000)+"\n")
	o := fastHTTP(ca)
	o.MaxBytes = 1000
	snaps := runSource(t, newHTTP(t, srv.URL+"/mirrors.yaml", o))
	s := nextSnap(t, snaps, "too large")
	var fe *FetchError
	if !errors.As(s.Err, &fe) || fe.Reason != "too_large" || s.Data != nil {
		t.Fatalf("over the limit: data %d bytes, err %v", len(s.Data), s.Err)
	}
	c.set("small\n")
	if s := nextSnap(t, snaps, "small"); string(s.Data) != "small\n" {
		t.Fatalf("under the limit: %q, %v", s.Data, s.Err)
	}
}

// The CA bundle is the only trust: a server it does not sign is refused.
func TestHTTPSourcePinnedCA(t *testing.T) {
	_, srv, _ := newCentral(t, "one\n")
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherCA, selfSignedCA(t), 0o644); err != nil {
		t.Fatal(err)
	}
	snaps := runSource(t, newHTTP(t, srv.URL+"/mirrors.yaml", fastHTTP(otherCA)))
	s := nextSnap(t, snaps, "untrusted")
	if s.Err == nil || !strings.Contains(s.Err.Error(), "certificate") {
		t.Fatalf("untrusted server: data %q, err %v", s.Data, s.Err)
	}
}

func TestHTTPSourceRefusesPlainHTTP(t *testing.T) {
	if _, err := NewHTTPSource("http://config.example.com/m.yaml", HTTPOptions{}); err == nil || !strings.Contains(err.Error(), "--allow-http") {
		t.Errorf("http:// without --allow-http: %v", err)
	}
	if _, err := NewHTTPSource("http://config.example.com/m.yaml", HTTPOptions{AllowHTTP: true}); err != nil {
		t.Errorf("http:// with --allow-http: %v", err)
	}
	if _, err := NewHTTPSource("ftp://config.example.com/m.yaml", HTTPOptions{AllowHTTP: true}); err == nil {
		t.Error("ftp:// accepted")
	}
}

func TestJitterSpreadsPolls(t *testing.T) {
	s := newHTTP(t, "https://config.example.com/m.yaml", HTTPOptions{Interval: time.Minute})
	seen := map[time.Duration]bool{}
	for range 50 {
		d := s.jitter(time.Minute)
		if d < 48*time.Second || d > 72*time.Second {
			t.Fatalf("jittered interval %v outside 1m ±20%%", d)
		}
		seen[d] = true
	}
	if len(seen) < 40 {
		t.Errorf("only %d distinct waits in 50: no jitter", len(seen))
	}
	if got := backoff(time.Second, 10*time.Second, 1); got != time.Second {
		t.Errorf("first backoff %v", got)
	}
	if got := backoff(time.Second, 10*time.Second, 3); got != 4*time.Second {
		t.Errorf("third backoff %v", got)
	}
	if got := backoff(time.Second, 10*time.Second, 30); got != 10*time.Second {
		t.Errorf("capped backoff %v", got)
	}
}

// selfSignedCA is a PEM CA certificate that signed nothing here.
func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// The wait between polls, on its own: the interval when all is well, the
// backoff doubling from BackoffMin to BackoffMax while polls fail, each
// varied by the jitter.
func TestHTTPSourceWaits(t *testing.T) {
	s := newHTTP(t, "https://c.example.com/m.yaml", HTTPOptions{Interval: 10 * time.Millisecond,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Jitter: 0.2})
	for failures, base := range map[int]time.Duration{0: 10, 1: 20, 2: 40, 3: 80, 4: 160, 5: 200, 9: 200} {
		base *= time.Millisecond
		lo, hi := base-base/5, base+base/5
		for range 50 {
			if w := s.wait(failures); w < lo || w > hi {
				t.Fatalf("after %d failures: waits %v, want %v ±20%%", failures, w, base)
			}
		}
	}
}
