package doctor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/mirrorctl/mirrorctl/spec"
)

// maxBody bounds what is read of an answer: enough for an error document
// or the start of an HTML page.
const maxBody = 16 << 10

// answer is one HTTP exchange, as far as it went.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (a answer) ok() bool { return a.err == nil && a.status >= 200 && a.status < 300 }

// isHTML reports an answer that is a web page, not a registry document.
func (a answer) isHTML() bool {
	if strings.Contains(strings.ToLower(a.header.Get("Content-Type")), "text/html") {
		return true
	}
	b := bytes.ToLower(bytes.TrimSpace(a.body))
	return bytes.HasPrefix(b, []byte("<!doctype html")) || bytes.HasPrefix(b, []byte("<html"))
}

// registryError is the first error of a distribution error document
// ({"errors":[{"code":…,"message":…}]}), if the body is one.
func (a answer) registryError() (code, message string, ok bool) {
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(a.body, &doc) != nil || len(doc.Errors) == 0 {
		return "", "", false
	}
	return doc.Errors[0].Code, doc.Errors[0].Message, true
}

// credentialInBody is a credential a server may echo in an error body.
var credentialInBody = regexp.MustCompile(`(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]+`)

// snippet is the start of a non-HTML body, one line, for messages; an
// Authorization value the server echoes is masked (the spec's redactor
// knows the spec's secrets, not a token a realm issued).
func (a answer) snippet() string {
	if a.isHTML() || len(a.body) == 0 {
		return ""
	}
	s := strings.Join(strings.Fields(string(a.body)), " ")
	s = credentialInBody.ReplaceAllString(s, "$1 <redacted>")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// client is how one endpoint is reached: its own transport, with the
// spec's CA and client certificate for it, and the proxy from the
// environment, as the engines do.
type client struct {
	http    *http.Client
	tls     *tls.Config // nil for plain http
	timeout time.Duration
}

func newClient(tlsCfg *tls.Config, timeout time.Duration, proxy func(*http.Request) (*url.URL, error),
	dial func(ctx context.Context, network, addr string) (net.Conn, error)) *client {
	tr := &http.Transport{
		Proxy:                 proxy, // the one the report names (Options.Proxy)
		DialContext:           dial,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       timeout,
		ForceAttemptHTTP2:     true,
	}
	return &client{
		http: &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		}},
		tls:     tlsCfg,
		timeout: timeout,
	}
}

func (c *client) close() { c.http.CloseIdleConnections() }

// do sends one request, bounded by the client's timeout.
func (c *client) do(ctx context.Context, method, u string, hdr http.Header, body io.Reader) answer {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return answer{err: err}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "mirrorctl-doctor")
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil && !errors.Is(err, io.EOF) {
		return answer{status: resp.StatusCode, header: resp.Header, err: err}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// tlsConfigFor builds the TLS configuration the spec gives an endpoint
// host: its CA on top of the system's, its client certificate, and
// insecure_skip_verify.
func tlsConfigFor(c *spec.Config, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if c == nil || c.TLS == nil {
		return cfg, nil
	}
	t := c.TLS
	cfg.InsecureSkipVerify = t.InsecureSkipVerify
	if len(t.CA) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(t.CA) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if len(t.Cert) > 0 {
		key := []byte(t.Key.Reveal())
		if len(key) == 0 {
			key = t.Cert
		}
		pair, err := tls.X509KeyPair(t.Cert, key)
		if err != nil {
			return nil, fmt.Errorf("cert_file %s and key_file %s are not a key pair: %w", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// basicHeader is the Authorization value of a configs: entry's Basic
// credentials, or "" when it has none.
func basicHeader(c *spec.Config) string {
	if c == nil || c.Auth == nil {
		return ""
	}
	if b := c.Auth.Basic(); !b.IsZero() {
		return "Basic " + b.Reveal()
	}
	return ""
}

// Challenge parsing (RFC 7235): `Bearer realm="…",service="…"`, possibly
// several challenges in one header or several headers.
func parseChallenges(h http.Header) []Challenge {
	var out []Challenge
	for _, v := range h.Values("WWW-Authenticate") {
		for v = strings.TrimSpace(v); v != ""; {
			scheme, rest, _ := strings.Cut(v, " ")
			ch := Challenge{Scheme: strings.ToLower(strings.TrimSuffix(scheme, ","))}
			v = strings.TrimSpace(parseParams(rest, &ch))
			out = append(out, ch)
		}
	}
	return out
}

// parseParams reads key=value pairs up to the next challenge, and returns
// what follows them.
func parseParams(s string, ch *Challenge) string {
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			return ""
		}
		eq := strings.IndexByte(s, '=')
		sp := strings.IndexByte(s, ' ')
		if eq < 0 || (sp >= 0 && sp < eq) {
			return s // a new scheme starts here
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					break
				}
				b.WriteByte(s[i])
			}
			val, s = b.String(), s[min(i+1, len(s)):]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		switch key {
		case "realm":
			ch.Realm = val
		case "service":
			ch.Service = val
		}
	}
}

// tokenFacts is what a token answer says, read without verifying it.
type tokenFacts struct {
	token string
	// jwt: the token is a JWT whose claims were read.
	jwt     bool
	subject string
	actions []string // granted on the repository
}

// readToken reads a token endpoint's answer ({"token"} or
// {"access_token"}) and, for a JWT (distribution, Harbor), its subject
// and the actions granted on repo.
func readToken(body []byte, repo string) (tokenFacts, error) {
	var doc struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return tokenFacts{}, fmt.Errorf("the answer is not a token document: %w", err)
	}
	f := tokenFacts{token: doc.Token}
	if f.token == "" {
		f.token = doc.AccessToken
	}
	if f.token == "" {
		return f, errors.New("the answer holds no token")
	}
	parts := strings.Split(f.token, ".")
	if len(parts) != 3 {
		return f, nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return f, nil
	}
	var claims struct {
		Sub    string `json:"sub"`
		Access []struct {
			Type    string   `json:"type"`
			Name    string   `json:"name"`
			Actions []string `json:"actions"`
		} `json:"access"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return f, nil
	}
	f.jwt, f.subject = true, claims.Sub
	for _, a := range claims.Access {
		if a.Type == "repository" && (a.Name == repo || a.Name == "*") {
			f.actions = append(f.actions, a.Actions...)
		}
	}
	return f, nil
}

// tokenURL is the realm with service and scope.
func tokenURL(ch Challenge, scope string) (string, error) {
	u, err := url.Parse(ch.Realm)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("realm %q is not an http(s) URL", ch.Realm)
	}
	q := u.Query()
	if ch.Service != "" {
		q.Set("service", ch.Service)
	}
	q.Set("scope", scope)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
