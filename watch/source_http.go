package watch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HTTPOptions configure an HTTP source. Zero values take the defaults.
type HTTPOptions struct {
	// Interval between polls; default 1m. Each wait is drawn from
	// Interval ± Jitter×Interval, so a fleet started together does not
	// poll in lock-step.
	Interval time.Duration
	// Jitter is the fraction of Interval each wait varies by; default 0.2.
	Jitter float64
	// BackoffMin and BackoffMax bound the wait after failures: BackoffMin
	// after the first, doubling up to BackoffMax (also jittered). Defaults
	// 5s (at most Interval) and 5m (at least Interval).
	BackoffMin, BackoffMax time.Duration
	// Timeout bounds every request, the body included; default 30s.
	Timeout time.Duration
	// MaxBytes refuses a body (config or signature) larger than this;
	// default 1 MiB.
	MaxBytes int64
	// CAFile, when set, is the only CA bundle the server's certificate is
	// checked against (a pinned CA, not the system roots).
	CAFile string
	// AllowHTTP allows an http:// URL (and redirects to one).
	AllowHTTP bool
	// Verify, when set, requires <url>.sig to verify.
	Verify    *Verifier
	UserAgent string
}

const (
	defaultInterval = time.Minute
	defaultMaxBytes = 1 << 20
)

func (o *HTTPOptions) setDefaults() {
	if o.Interval <= 0 {
		o.Interval = defaultInterval
	}
	if o.Jitter <= 0 || o.Jitter >= 1 {
		o.Jitter = 0.2
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = min(5*time.Second, o.Interval)
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = max(5*time.Minute, o.Interval)
	}
	o.BackoffMax = max(o.BackoffMax, o.BackoffMin)
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if o.UserAgent == "" {
		o.UserAgent = "mirrorctl"
	}
}

// HTTPSource polls a URL with conditional GETs: If-None-Match with the last
// ETag and If-Modified-Since with the last Last-Modified, so an unchanged
// config costs one small 304 per poll.
type HTTPSource struct {
	url    *url.URL
	opts   HTTPOptions
	client *http.Client

	// The validators of the last accepted response. They are kept only
	// once the body (and its signature) passed, so a refused config is
	// fetched whole again: its signature may have been fixed without the
	// config changing.
	etag, lastModified string
	last               dedup
	lastOK             Snapshot
	refresh            chan struct{}
}

// NewHTTPSource checks rawURL and the options and returns the source.
func NewHTTPSource(rawURL string, o HTTPOptions) (*HTTPSource, error) {
	o.setDefaults()
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && o.AllowHTTP:
	case u.Scheme == "http":
		return nil, fmt.Errorf("--source %s: http:// sends the config unauthenticated; use https://, or --allow-http on a network you trust", rawURL)
	default:
		return nil, fmt.Errorf("--source %s: want a file path or an https:// URL", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("--source %s: no host", rawURL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := readOwn(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", o.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	tr.MaxIdleConns, tr.IdleConnTimeout = 2, 2*o.Interval
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" && !o.AllowHTTP {
				return fmt.Errorf("refusing a redirect to %s: not https", req.URL.Redacted())
			}
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		},
	}
	return &HTTPSource{url: u, opts: o, client: client, refresh: make(chan struct{}, 1)}, nil
}

func (s *HTTPSource) String() string { return s.url.Redacted() }

// Refresh polls now.
func (s *HTTPSource) Refresh() {
	select {
	case s.refresh <- struct{}{}:
	default:
	}
}

// Run implements Source: it polls at once, then at the jittered interval,
// backing off exponentially while polls fail.
func (s *HTTPSource) Run(ctx context.Context, out chan<- Snapshot) {
	defer s.client.CloseIdleConnections()
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.refresh:
			timer.Stop()
		}
		snap, notModified := s.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		if notModified {
			snap = s.lastOK // unchanged; sent again only to end an error
		}
		if snap.Err != nil {
			failures++
		} else {
			failures = 0
		}
		wait := s.wait(failures)
		if snap.Name != "" && s.last.changed(snap) && !send(ctx, out, snap) {
			return
		}
		timer.Reset(wait)
	}
}

// wait is how long to wait before the next poll after failures failures
// in a row: the interval when all is well, the backoff otherwise, jittered.
func (s *HTTPSource) wait(failures int) time.Duration {
	if failures == 0 {
		return s.jitter(s.opts.Interval)
	}
	return s.jitter(backoff(s.opts.BackoffMin, s.opts.BackoffMax, failures))
}

// backoff is min·2^(n-1), capped at max.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

func (s *HTTPSource) jitter(d time.Duration) time.Duration {
	span := int64(float64(d) * s.opts.Jitter)
	if span <= 0 {
		return d
	}
	return d - time.Duration(span) + time.Duration(rand.Int64N(2*span+1))
}

// poll fetches the config (and its signature); notModified after a 304.
func (s *HTTPSource) poll(ctx context.Context) (snap Snapshot, notModified bool) {
	name := s.String()
	snap.Name = name
	data, resp, err := s.get(ctx, s.url, true)
	if err != nil {
		snap.Err = err
		return snap, false
	}
	if resp.StatusCode == http.StatusNotModified {
		if s.lastOK.Name == "" {
			// Nothing unchanged to keep (a first request, or the first
			// after a restart): an error, so that the loop applies the
			// last good config instead of waiting for a 200.
			return Snapshot{Name: name, Err: fetchErr("status", "GET %s: 304 Not Modified, but no config was fetched yet (the request had no validators)", s.url.Redacted())}, false
		}
		return Snapshot{}, true
	}
	snap.Data = data
	if s.opts.Verify != nil {
		su := *s.url
		su.Path += ".sig"
		su.RawPath = ""
		sig, sresp, err := s.get(ctx, &su, false)
		switch {
		case sresp != nil && sresp.StatusCode == http.StatusNotFound:
			sig = nil // unsigned: Verify says so
		case err != nil:
			return Snapshot{Name: name, Err: err}, false
		}
		if err := s.opts.Verify.verify(name, data, sig); err != nil {
			return Snapshot{Name: name, Err: err}, false
		}
		snap.Sig = sig
	}
	s.etag, s.lastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	s.lastOK = snap
	return snap, false
}

// get does one GET with the timeout and the size limit; conditional adds
// the validators and accepts a 304 (nil data, nil error). The response is
// returned with a status error too, so the caller can tell a missing
// signature (404) from a failure.
func (s *HTTPSource) get(ctx context.Context, u *url.URL, conditional bool) ([]byte, *http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, fetchErr("read", "%v", err)
	}
	req.Header.Set("User-Agent", s.opts.UserAgent)
	if conditional {
		if s.etag != "" {
			req.Header.Set("If-None-Match", s.etag)
		}
		if s.lastModified != "" {
			req.Header.Set("If-Modified-Since", s.lastModified)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, classify(u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotModified && conditional:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, resp, nil
	case resp.StatusCode == http.StatusNotFound && !conditional:
		return nil, resp, fetchErr("missing", "GET %s: %s", u.Redacted(), resp.Status)
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, resp, fetchErr("status", "GET %s: %s", u.Redacted(), resp.Status)
	}
	if resp.ContentLength > s.opts.MaxBytes {
		return nil, resp, fetchErr("too_large", "GET %s: %d bytes, over the limit of %d", u.Redacted(), resp.ContentLength, s.opts.MaxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxBytes+1))
	if err != nil {
		return nil, resp, classify(u, err)
	}
	if int64(len(data)) > s.opts.MaxBytes {
		return nil, resp, fetchErr("too_large", "GET %s: body over the limit of %d bytes", u.Redacted(), s.opts.MaxBytes)
	}
	return data, resp, nil
}

func classify(u *url.URL, err error) *FetchError {
	reason := "unreachable"
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout") {
		reason = "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is said once, below
	}
	return fetchErr(reason, "GET %s: %v", u.Redacted(), err)
}
