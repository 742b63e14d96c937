package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"
)

// expiryWarning is how close to its end a certificate is reported.
const expiryWarning = 14 * 24 * time.Hour

// prober probes endpoints from the node. It holds no global state: every
// endpoint gets its own transport.
type prober struct {
	spec    *spec.Spec
	timeout time.Duration // per probe
	now     func() time.Time
	elapsed func(start time.Time) time.Duration
	dialer  *net.Dialer
	lookup  func(ctx context.Context, host string) ([]string, error)
	proxy   func(*http.Request) (*url.URL, error)
}

// conn is an endpoint once its connection steps passed.
type conn struct {
	ep     *Endpoint
	u      *url.URL
	client *client
}

// configFor is the configs: entry that applies to an endpoint host (as k3s
// and mirrorctl pick it: the host, docker.io for Docker Hub, then "*").
func configFor(s *spec.Spec, host string) (string, *spec.Config) {
	if c := s.Configs[host]; c != nil {
		return host, c
	}
	if host == "registry-1.docker.io" || host == "index.docker.io" {
		if c := s.Configs["docker.io"]; c != nil {
			return "docker.io", c
		}
	}
	if c := s.Configs["*"]; c != nil {
		return "*", c
	}
	return "", nil
}

// connect runs the connection steps of an endpoint: dns, tcp, tls and the
// /v2/ challenge. It returns nil when a step failed (ep says which).
// insecure: an engine reaches it without verifying its certificate
// (an insecure registry, as the route says).
func (p *prober) connect(ctx context.Context, ep *Endpoint, insecure bool) *conn {
	u, err := url.Parse(ep.URL)
	if err != nil || u.Host == "" {
		ep.fail("bad_url", "", "%s is not a URL: %v", ep.URL, err)
		return nil
	}
	return p.connectURL(ctx, ep, u, insecure)
}

func (p *prober) connectURL(ctx context.Context, ep *Endpoint, u *url.URL, insecure bool) *conn {
	_, cfg := configFor(p.spec, u.Host)
	var tlsCfg *tls.Config
	var err error
	skipWhy := ""
	if u.Scheme == "https" {
		if tlsCfg, err = tlsConfigFor(cfg, u.Hostname()); err != nil {
			ep.fail("tls_config", "fix configs."+fmt.Sprintf("%q", u.Host)+".tls", "the spec's TLS files for %s: %v", u.Host, err)
			return nil
		}
		switch {
		case tlsCfg.InsecureSkipVerify:
			skipWhy = "insecure_skip_verify is set, so the engines accept it"
		case insecure:
			tlsCfg.InsecureSkipVerify = true
			skipWhy = "the engine takes it for an insecure registry, so it accepts it"
		}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if proxied, _ := p.proxy(&http.Request{URL: u}); proxied != nil {
		ep.Steps = append(ep.Steps, Step{Name: "proxy", Level: engines.Info, Detail: "through the proxy " + proxied.Redacted() + " (environment)"})
	} else {
		if !p.tcp(ctx, ep, u.Hostname(), port) {
			return nil
		}
		if u.Scheme == "https" && !p.handshake(ctx, ep, u.Hostname(), port, tlsCfg, skipWhy) {
			return nil
		}
	}
	c := &conn{ep: ep, u: u, client: newClient(tlsCfg, p.timeout, p.proxy, p.dialer.DialContext)}
	p.ping(ctx, c)
	return c
}

// answered reports whether GET /v2/ answered as containers/image wants it
// to before it uses a scheme: 200 or 401.
func (c *conn) answered() bool {
	return c != nil && c.ep.Challenge != nil && (c.ep.Challenge.Status == http.StatusOK || c.ep.Challenge.Status == http.StatusUnauthorized)
}

// httpFallback probes an endpoint again over plain HTTP, as containers/image
// does for an insecure registry whose HTTPS ping failed (c is that attempt,
// nil when it did not connect). What HTTPS said stays in the steps.
func (p *prober) httpFallback(ctx context.Context, ep *Endpoint, c *conn) *conn {
	u, err := url.Parse(ep.URL)
	if err != nil || u.Scheme != "https" {
		return c
	}
	why := "GET /v2/ did not answer"
	switch f := ep.failed(); {
	case f != nil:
		why = f.Cause + ": " + f.Message
	case ep.Challenge != nil:
		why = fmt.Sprintf("GET /v2/ answered %d", ep.Challenge.Status)
	}
	if c != nil {
		c.client.close()
	}
	hu := *u
	hu.Scheme = "http"
	ep.Findings, ep.Challenge, ep.Fallback = nil, nil, hu.String()
	ep.step("fallback", engines.Info, 0, "HTTPS failed (%s): plain HTTP, as the engine does for an insecure registry", why)
	ep.Findings = append(ep.Findings, engines.Finding{Level: engines.Info, Cause: "http_fallback",
		Message: fmt.Sprintf("HTTPS to %s failed (%s); the engine falls back to %s (an insecure registry)", u.Host, why, hu.String())})
	return p.connectURL(ctx, ep, &hu, false)
}

func (ep *Endpoint) fail(cause, fix, format string, a ...any) {
	ep.Findings = append(ep.Findings, engines.Finding{Level: engines.Fail, Cause: cause, Message: fmt.Sprintf(format, a...), Fix: fix})
}

func (ep *Endpoint) step(name string, l engines.Level, d time.Duration, format string, a ...any) {
	ep.Steps = append(ep.Steps, Step{Name: name, Level: l, Detail: fmt.Sprintf(format, a...), Millis: millis(d)})
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// tcp resolves the host and connects to it.
func (p *prober) tcp(ctx context.Context, ep *Endpoint, host, port string) bool {
	addrs := []string{host}
	if net.ParseIP(host) != nil {
		ep.step("dns", engines.OK, 0, "%s is an IP address", host)
	} else {
		start := p.now()
		lctx, cancel := context.WithTimeout(ctx, p.timeout)
		found, err := p.lookup(lctx, host)
		cancel()
		if err != nil {
			ep.step("dns", engines.Fail, p.elapsed(start), "%v", err)
			ep.fail("dns", "check the host name in the endpoint and the node's resolver (/etc/resolv.conf, /etc/hosts)",
				"the node cannot resolve %s", host)
			return false
		}
		ep.step("dns", engines.OK, p.elapsed(start), "%s", strings.Join(found, ", "))
		addrs = found
	}
	var last error
	for i, a := range addrs {
		if i == 3 {
			break
		}
		addr := net.JoinHostPort(a, port)
		start := p.now()
		dctx, cancel := context.WithTimeout(ctx, p.timeout)
		c, err := p.dialer.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			ep.step("tcp", engines.OK, p.elapsed(start), "connected to %s", addr)
			return true
		}
		last = err
		ep.step("tcp", engines.Fail, p.elapsed(start), "%s: %v", addr, err)
	}
	addr := net.JoinHostPort(addrs[0], port)
	var ne net.Error
	switch {
	case errors.Is(last, syscall.ECONNREFUSED):
		ep.fail("refused", "start the mirror, or correct the port in the endpoint",
			"nothing listens on %s (connection refused)", addr)
	case errors.As(last, &ne) && ne.Timeout(), errors.Is(last, context.DeadlineExceeded):
		ep.fail("timeout", "open the route or firewall to "+addr+"; engines wait up to their dial timeout (the spec's dial_timeout where the engine honours it) before the next host",
			"no answer from %s within %s", addr, p.timeout)
	case errors.Is(last, syscall.EHOSTUNREACH), errors.Is(last, syscall.ENETUNREACH):
		ep.fail("unreachable", "check the node's routes and firewall", "no route to %s", addr)
	default:
		ep.fail("connect_failed", "check that the mirror runs and the node may reach it", "cannot connect to %s: %v", addr, last)
	}
	return false
}

// handshake checks TLS as the spec configures it for the host. The
// certificate chain is verified here, not by crypto/tls, so that the
// report names what is wrong (unknown authority, name, expiry) even where
// the spec skips verification, and at the prober's time.
func (p *prober) handshake(ctx context.Context, ep *Endpoint, host, port string, cfg *tls.Config, skipWhy string) bool {
	addr := net.JoinHostPort(host, port)
	probe := cfg.Clone()
	probe.InsecureSkipVerify = true
	start := p.now()
	hctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	raw, err := p.dialer.DialContext(hctx, "tcp", addr)
	if err != nil {
		ep.step("tls", engines.Fail, p.elapsed(start), "%v", err)
		ep.fail("connect_failed", "", "cannot connect to %s for TLS: %v", addr, err)
		return false
	}
	tc := tls.Client(raw, probe)
	err = tc.HandshakeContext(hctx)
	defer tc.Close()
	took := p.elapsed(start)
	if err != nil {
		ep.step("tls", engines.Fail, took, "%v", err)
		var rh tls.RecordHeaderError
		msg := err.Error()
		switch {
		case errors.As(err, &rh):
			ep.fail("plain_http_port", "write the endpoint with http:// (mirrorctl adds it to Docker's insecure-registries)",
				"%s speaks plain HTTP, not TLS", addr)
		case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"),
			strings.Contains(msg, "unknown certificate authority"):
			ep.fail("client_cert_rejected", fmt.Sprintf("set configs.%q.tls.cert_file and key_file to a certificate the mirror accepts", ep.host()),
				"%s refuses the client certificate (or wants one): %v", addr, err)
		default:
			ep.fail("tls_failed", "check the mirror's TLS setup", "TLS handshake with %s failed: %v", addr, err)
		}
		return false
	}
	st := tc.ConnectionState()
	leaf := st.PeerCertificates[0]
	opts := x509.VerifyOptions{Roots: cfg.RootCAs, DNSName: host, CurrentTime: p.now(), Intermediates: x509.NewCertPool()}
	for _, c := range st.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	detail := fmt.Sprintf("%s, certificate %q issued by %q, valid until %s", tls.VersionName(st.Version),
		leaf.Subject.CommonName, leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format("2006-01-02"))
	if _, verr := leaf.Verify(opts); verr != nil {
		f := certFinding(verr, ep.host(), leaf)
		if cfg.InsecureSkipVerify {
			f.Level = engines.Warn
			f.Message += " (" + skipWhy + ")"
			ep.step("tls", engines.Warn, took, "%s", detail)
			ep.Findings = append(ep.Findings, f)
			return true
		}
		ep.step("tls", engines.Fail, took, "%s", detail)
		ep.Findings = append(ep.Findings, f)
		return false
	}
	if left := leaf.NotAfter.Sub(p.now()); left < expiryWarning {
		ep.step("tls", engines.Warn, took, "%s", detail)
		ep.Findings = append(ep.Findings, engines.Finding{Level: engines.Warn, Cause: "cert_expiring",
			Message: fmt.Sprintf("the certificate of %s expires in %d day(s)", addr, int(left.Hours()/24)), Fix: "renew the mirror's certificate"})
		return true
	}
	ep.step("tls", engines.OK, took, "%s", detail)
	return true
}

func (ep *Endpoint) host() string {
	u, err := url.Parse(ep.URL)
	if err != nil {
		return ep.URL
	}
	return u.Host
}

// certFinding names a verification failure.
func certFinding(err error, host string, leaf *x509.Certificate) engines.Finding {
	if leaf == nil {
		return engines.Finding{Level: engines.Fail, Cause: "cert_invalid", Message: fmt.Sprintf("the certificate of %s does not verify: %v", host, err),
			Fix: fmt.Sprintf("set configs.%q.tls.ca_file to the CA that signed it, or fix the mirror's certificate", host)}
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	f := engines.Finding{Level: engines.Fail}
	switch {
	case errors.As(err, &ua):
		f.Cause = "unknown_authority"
		f.Message = fmt.Sprintf("the certificate of %s is signed by %q, which the node does not trust with the spec's CA", host, leaf.Issuer.CommonName)
		f.Fix = fmt.Sprintf("set configs.%q.tls.ca_file to the CA that signed it", host)
	case errors.As(err, &hn):
		f.Cause = "name_mismatch"
		names := leaf.DNSNames
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		f.Message = fmt.Sprintf("the certificate of %s is for %s, not %s", host, strings.Join(names, ", "), hn.Host)
		f.Fix = "use a name the certificate holds in the endpoint, or reissue the certificate with this one"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		f.Cause = "cert_expired"
		f.Message = fmt.Sprintf("the certificate of %s is not valid now (valid %s to %s)", host,
			leaf.NotBefore.UTC().Format("2006-01-02"), leaf.NotAfter.UTC().Format("2006-01-02"))
		f.Fix = "renew the mirror's certificate (or check the node's clock)"
	default:
		f.Cause = "cert_invalid"
		f.Message = fmt.Sprintf("the certificate of %s does not verify: %v", host, err)
		f.Fix = "fix the mirror's certificate chain"
	}
	return f
}

// ping asks GET /v2/ of the API root (or of the host, for an endpoint whose
// path is not an API root) and records the challenge.
func (p *prober) ping(ctx context.Context, c *conn) {
	pu := *c.u
	if !strings.HasSuffix(pu.Path, "/v2") {
		pu.Path = "/v2"
	}
	pu.Path += "/"
	a := c.client.do(ctx, http.MethodGet, pu.String(), nil, nil)
	ch := &Challenge{Status: a.status}
	switch {
	case a.err != nil:
		c.ep.step("api", engines.Fail, 0, "GET %s: %v", pu.Path, a.err)
		return
	case a.status == http.StatusUnauthorized:
		for _, x := range parseChallenges(a.header) {
			if x.Scheme == "bearer" || (x.Scheme == "basic" && ch.Scheme == "") {
				x.Status = a.status
				*ch = x
			}
		}
	}
	c.ep.Challenge = ch
	switch {
	case a.isHTML():
		c.ep.step("api", engines.Warn, 0, "GET %s: %d with an HTML page", pu.Path, a.status)
	case ch.Scheme == "bearer":
		c.ep.step("api", engines.OK, 0, "GET %s: 401 Bearer realm=%q service=%q", pu.Path, ch.Realm, ch.Service)
	case ch.Scheme == "basic":
		c.ep.step("api", engines.OK, 0, "GET %s: 401 Basic realm=%q", pu.Path, ch.Realm)
	case a.status == http.StatusOK:
		c.ep.step("api", engines.OK, 0, "GET %s: 200 (anonymous access)", pu.Path)
	default:
		c.ep.step("api", engines.Warn, 0, "GET %s: %d %s", pu.Path, a.status, a.snippet())
	}
}
