package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/spec"
)

// fixedNow is the clock certificates are judged at (httptest's certificate
// is valid from 1970 to 2084).
var fixedNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

const testPass = "pa:ss $wörd #\"\\end"

// node is a host with engines' files, written by rendering a spec the way
// mirrorctl sync does, plus hand-written files on top.
type node struct {
	t     *testing.T
	spec  *spec.Spec
	files map[string][]byte // spec-relative files (certificates)
}

func newNode(t *testing.T) *node { return &node{t: t, files: map[string][]byte{}} }

func (n *node) parse(y string) *spec.Spec {
	n.t.Helper()
	s, err := spec.Parse("spec.yaml", []byte(y), spec.Options{Engines: engines.Sections(), ReadFile: func(name string) ([]byte, error) {
		if b, ok := n.files[name]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}})
	if err != nil {
		n.t.Fatalf("spec: %v", err)
	}
	n.spec = s
	return s
}

// synced renders e for the spec into a host tree, as sync writes it.
func (n *node) synced(e engines.Engine, d engines.Detection, extra map[string]string) fstest.MapFS {
	n.t.Helper()
	fsys := fstest.MapFS{}
	for p, data := range extra {
		fsys[p] = &fstest.MapFile{Data: []byte(data), Mode: 0o644}
	}
	res, err := e.Render(n.spec, engines.Host{FS: fsys}, d)
	if err != nil {
		n.t.Fatalf("render: %v", err)
	}
	for _, f := range res.Files {
		if !f.Remove {
			fsys[engines.FSPath(f.Path)] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
		}
	}
	return fsys
}

func containerdAt(v string) engines.Detection {
	return engines.Detection{Engine: "containerd", Version: v, Found: true, Managed: true}
}

func noDaemon(string) (string, error) { return "", errors.New("no socket") }

// run runs doctor for one engine on fsys.
func run(t *testing.T, s *spec.Spec, e engines.Engine, d engines.Detection, fsys fs.FS, images ...string) *Report {
	t.Helper()
	var imgs []engines.Image
	for _, i := range images {
		img, err := engines.ParseImage(i)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	rep, err := Run(context.Background(), Options{Spec: s, Images: imgs, Resolve: noDaemon, Now: func() time.Time { return fixedNow },
		ProbeTimeout: 10 * time.Second, Proxy: noProxy,
		Targets: []Target{{Engine: e, Detection: d, Host: engines.Host{FS: fsys}}}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func noProxy(*http.Request) (*url.URL, error) { return nil, nil }

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func mirrorSpec(endpoints []string, extra string) string {
	var b strings.Builder
	b.WriteString("mirrors:\n  docker.io:\n    endpoint:\n")
	for _, e := range endpoints {
		fmt.Fprintf(&b, "      - %q\n", e)
	}
	b.WriteString(extra)
	return b.String()
}

func creds(host, user, pass string) string {
	return fmt.Sprintf("configs:\n  %q:\n    auth:\n      username: %s\n      password: %q\n", host, user, pass)
}

// outcome is what a test checks of a verdict: its level and cause, and
// each try's.
type outcome struct {
	level, cause string
	tries        []string // "LEVEL cause" or the state
}

func outcomeOf(v Verdict) outcome {
	o := outcome{level: v.Level.String(), cause: v.Cause}
	for _, t := range v.Tries {
		s := t.State
		if t.Finding != nil {
			s = t.Level.String() + " " + t.Finding.Cause
		}
		if t.Push != nil {
			s += " push:" + t.Push.Cause
		}
		o.tries = append(o.tries, s)
	}
	return o
}

func (o outcome) String() string {
	return fmt.Sprintf("%s %s %v", o.level, o.cause, o.tries)
}

// TestClassifier runs doctor against registries that answer as real ones
// do, each with one fault, through containerd's files as mirrorctl writes
// them, and checks the cause it names.
func TestClassifier(t *testing.T) {
	type env struct {
		basic, bearer, bearerDeny, bearerSwap, nexus, nexusGroup, harbor, harborAuth, ui, closed string
	}
	setup := func(t *testing.T) env {
		var e env
		e.basic = serve(t, &fakeRegistry{t: t, auth: "basic", user: "testuser", pass: testPass, repos: map[string]bool{"library/test": true}})
		realm := serve(t, &fakeRealm{user: "testuser", pass: testPass, anon: "none"})
		e.bearer = serve(t, &fakeRegistry{t: t, auth: "bearer", realm: "http://" + realm + "/token", repos: map[string]bool{"library/test": true}})
		deny := serve(t, &fakeRealm{user: "testuser", pass: testPass, anon: "deny"})
		e.bearerDeny = serve(t, &fakeRegistry{t: t, auth: "bearer", realm: "http://" + deny + "/token", repos: map[string]bool{"library/test": true}})
		swap := serve(t, &fakeRealm{user: "testuser", pass: testPass, swap: true})
		e.bearerSwap = serve(t, &fakeRegistry{t: t, auth: "bearer", realm: "http://" + swap + "/token", repos: map[string]bool{"library/test": true}})
		e.nexus = serve(t, &fakeRegistry{t: t, auth: "none", root: "/repository/hub/v2", repos: map[string]bool{"library/test": true}})
		e.nexusGroup = serve(t, &fakeRegistry{t: t, auth: "none", root: "/repository/group/v2", groupPush: true, repos: map[string]bool{"library/test": true}})
		e.harbor = serve(t, &fakeRegistry{t: t, auth: "none", root: "/v2/proxy", htmlElsewhere: true, repos: map[string]bool{"library/test": true}})
		// Harbor: the realm on the registry's own host, a private project.
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		e.harborAuth = strings.TrimPrefix(srv.URL, "http://")
		mux.Handle("/service/token", &fakeRealm{user: "testuser", pass: testPass, anon: "none"})
		mux.Handle("/", &fakeRegistry{t: t, auth: "bearer", harbor: true, realm: srv.URL + "/service/token", root: "/v2/proxy", repos: map[string]bool{"library/test": true}})
		e.ui = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			loadRecording(t, "harbor-like-portal-200-html").replay(w)
		}))
		e.closed = closedPort(t)
		return e
	}
	tests := []struct {
		name    string
		version string
		spec    func(e env) string
		// hosts, when set, is a hand-written certs.d/docker.io/hosts.toml.
		hosts func(e env) string
		want  outcome
	}{
		{"basic auth, the right password", "2.4.2",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.basic}, creds(e.basic, "testuser", testPass))
			}, nil,
			outcome{"OK", "", []string{"OK ok", "not tried"}}},
		{"basic auth, a wrong password", "2.4.2",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.basic}, creds(e.basic, "testuser", "wrong"))
			}, nil,
			outcome{"FAIL", "wrong_credentials", []string{"FAIL wrong_credentials", "upstream"}}},
		{"basic auth, no credentials", "2.4.2",
			func(e env) string { return mirrorSpec([]string{"http://" + e.basic}, "") }, nil,
			outcome{"FAIL", "credentials_required", []string{"FAIL credentials_required", "upstream"}}},
		{"bearer realm, credentials as a header on 2.4 reach the realm", "2.4.2",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.bearer}, creds(e.bearer, "testuser", testPass))
			}, nil,
			outcome{"OK", "", []string{"OK ok", "not tried"}}},
		{"bearer realm, credentials as a header on 1.6 do not reach the realm", "1.6.20",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.bearer}, creds(e.bearer, "testuser", testPass)+"engines:\n  containerd: {credentials: header}\n")
			}, nil,
			outcome{"FAIL", "header_not_sent_to_realm", []string{"FAIL header_not_sent_to_realm", "upstream"}}},
		{"bearer realm, credentials in config.toml on 1.6 reach the realm", "1.6.20",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.bearer}, creds(e.bearer, "testuser", testPass))
			}, nil,
			outcome{"OK", "", []string{"OK ok", "not tried"}}},
		{"bearer realm, a wrong password", "2.4.2",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.bearer}, creds(e.bearer, "testuser", "wrong"))
			}, nil,
			outcome{"FAIL", "wrong_credentials", []string{"FAIL wrong_credentials", "upstream"}}},
		{"bearer realm with anonymous access off, no credentials", "2.4.2",
			func(e env) string { return mirrorSpec([]string{"http://" + e.bearerDeny}, "") }, nil,
			outcome{"FAIL", "anonymous_pull_off", []string{"FAIL anonymous_pull_off", "upstream"}}},
		{"bearer realm whose anonymous token grants nothing, no credentials", "2.4.2",
			func(e env) string { return mirrorSpec([]string{"http://" + e.bearer}, "") }, nil,
			outcome{"FAIL", "anonymous_pull_off", []string{"FAIL anonymous_pull_off", "upstream"}}},
		{"bearer realm that answers credentials with an anonymous token", "2.4.2",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.bearerSwap}, creds(e.bearerSwap, "testuser", testPass))
			}, nil,
			outcome{"FAIL", "anonymous_token", []string{"FAIL anonymous_token", "upstream"}}},
		{"nexus path with /v2", "2.4.2",
			func(e env) string { return mirrorSpec([]string{"http://" + e.nexus + "/repository/hub/v2"}, "") }, nil,
			outcome{"OK", "", []string{"OK ok", "not tried"}}},
		{"nexus path without /v2 (used as the API root, override_path)", "2.4.2",
			func(e env) string { return mirrorSpec([]string{"http://" + e.nexus + "/repository/hub"}, "") }, nil,
			outcome{"FAIL", "missing_v2", []string{"FAIL missing_v2", "upstream"}}},
		{"a web UI that answers HTML", "2.4.2",
			func(e env) string { return mirrorSpec([]string{"http://" + e.ui}, "") }, nil,
			outcome{"FAIL", "html_page", []string{"FAIL html_page", "upstream"}}},
		{"harbor project path without override_path gets a second /v2", "2.4.2",
			func(e env) string { return mirrorSpec([]string{"http://127.0.0.1:1"}, "") },
			func(e env) string {
				return "server = \"https://registry-1.docker.io\"\n[host.\"http://" + e.harbor + "/v2/proxy\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
			},
			outcome{"FAIL", "extra_v2", []string{"FAIL extra_v2", "upstream"}}},
		{"harbor-like private project with credentials", "2.4.2",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.harborAuth + "/v2/proxy"}, creds(e.harborAuth, "testuser", testPass))
			}, nil,
			outcome{"OK", "", []string{"OK ok", "not tried"}}},
		{"harbor-like private project without credentials", "2.4.2",
			func(e env) string { return mirrorSpec([]string{"http://" + e.harborAuth + "/v2/proxy"}, "") }, nil,
			outcome{"FAIL", "anonymous_pull_off", []string{"FAIL anonymous_pull_off", "upstream"}}},
		{"a closed port", "2.4.2",
			func(e env) string { return mirrorSpec([]string{"http://" + e.closed}, "") }, nil,
			outcome{"FAIL", "refused", []string{"FAIL refused", "upstream"}}},
		{"the image is not on the mirror", "2.4.2",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.basic}, creds(e.basic, "testuser", testPass))
			}, nil,
			outcome{"FAIL", "image_not_found", []string{"FAIL image_not_found", "upstream"}}},
		{"a group repository refuses pushes", "2.4.2",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.nexusGroup + "/repository/group/v2"}, "    capabilities: [pull, resolve, push]\n")
			}, nil,
			outcome{"OK", "", []string{"OK ok push:push_refused", "not tried"}}},
		{"the first mirror is down, the second serves", "2.4.2",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.closed, "http://" + e.nexus + "/repository/hub/v2"}, "")
			}, nil,
			outcome{"WARN", "refused", []string{"FAIL refused", "OK ok", "not tried"}}},
		{"no upstream fallback and every mirror fails", "2.4.2",
			func(e env) string {
				return mirrorSpec([]string{"http://" + e.closed}, "    upstream_fallback: false\n")
			}, nil,
			outcome{"FAIL", "refused", []string{"FAIL refused"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t)
			n := newNode(t)
			s := n.parse(tt.spec(e))
			var extra map[string]string
			fsys := n.synced(engines.NewContainerd(), containerdAt(tt.version), extra)
			if tt.hosts != nil {
				fsys["etc/containerd/certs.d/docker.io/hosts.toml"] = &fstest.MapFile{Data: []byte(tt.hosts(e))}
			}
			image := "docker.io/library/test:latest"
			if tt.want.cause == "image_not_found" {
				image = "docker.io/library/other:latest"
			}
			rep := run(t, s, engines.NewContainerd(), containerdAt(tt.version), fsys, image)
			v := rep.Engines[0].Images[0]
			if got := outcomeOf(v); got.String() != tt.want.String() {
				t.Errorf("got  %s\nwant %s\nsummary: %s\nfix: %s", got, tt.want, v.Summary, v.Fix)
			}
			if (tt.want.level == "FAIL") == rep.OK {
				t.Errorf("report OK = %v with a %s verdict", rep.OK, tt.want.level)
			}
		})
	}
}

// TestClassifierTLS: the spec's CA and the certificate's name and dates.
func TestClassifierTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(&fakeRegistry{t: t, auth: "none", repos: map[string]bool{"library/test": true}})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the TCP step connects and closes without TLS
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pemOf := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	otherCA := func() []byte { // a CA that signed nothing here (httptest servers all share one certificate)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "other CA"}, IsCA: true, BasicConstraintsValid: true,
			NotBefore: fixedNow.Add(-time.Hour), NotAfter: fixedNow.Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}()
	host := strings.TrimPrefix(srv.URL, "https://")
	_, port, _ := net.SplitHostPort(host)
	for _, tt := range []struct {
		name     string
		endpoint string
		ca       []byte
		skip     bool
		now      time.Time
		want     outcome
	}{
		{"the spec's CA signed it", "https://" + host, pemOf(srv.Certificate()), false, fixedNow, outcome{"OK", "", []string{"OK ok", "not tried"}}},
		{"a wrong CA", "https://" + host, otherCA, false, fixedNow, outcome{"FAIL", "unknown_authority", []string{"FAIL unknown_authority", "upstream"}}},
		{"a wrong CA with insecure_skip_verify", "https://" + host, otherCA, true, fixedNow, outcome{"WARN", "unknown_authority", []string{"WARN unknown_authority", "not tried"}}},
		{"a name the certificate lacks", "https://localhost:" + port, pemOf(srv.Certificate()), false, fixedNow, outcome{"FAIL", "name_mismatch", []string{"FAIL name_mismatch", "upstream"}}},
		{"an expired certificate", "https://" + host, pemOf(srv.Certificate()), false, time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC), outcome{"FAIL", "cert_expired", []string{"FAIL cert_expired", "upstream"}}},
		{"a certificate that expires in three days", "https://" + host, pemOf(srv.Certificate()), false, srv.Certificate().NotAfter.Add(-72 * time.Hour), outcome{"WARN", "cert_expiring", []string{"WARN cert_expiring", "not tried"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t)
			n.files["/certs/ca.crt"] = tt.ca
			u, _ := url.Parse(tt.endpoint)
			cfg := fmt.Sprintf("configs:\n  %q:\n    tls:\n      ca_file: /certs/ca.crt\n      insecure_skip_verify: %v\n", u.Host, tt.skip)
			s := n.parse(mirrorSpec([]string{tt.endpoint}, cfg))
			fsys := n.synced(engines.NewContainerd(), containerdAt("2.4.2"), nil)
			imgs, _ := engines.ParseImage("docker.io/library/test:latest")
			rep, err := Run(context.Background(), Options{Spec: s, Images: []engines.Image{imgs}, Resolve: noDaemon, Proxy: noProxy,
				Now: func() time.Time { return tt.now }, ProbeTimeout: 10 * time.Second,
				Targets: []Target{{Engine: engines.NewContainerd(), Detection: containerdAt("2.4.2"), Host: engines.Host{FS: fsys}}}})
			if err != nil {
				t.Fatal(err)
			}
			v := rep.Engines[0].Images[0]
			if got := outcomeOf(v); got.String() != tt.want.String() {
				t.Errorf("got  %s\nwant %s\nsummary: %s", got, tt.want, v.Summary)
			}
		})
	}
}

// TestDockerMirrorCredentialsNotSent: dockerd sends a Docker Hub mirror no
// credentials of its own, so a mirror that wants them fails for Docker
// while the spec has them (and containerd would send them).
func TestDockerMirrorCredentialsNotSent(t *testing.T) {
	basic := serve(t, &fakeRegistry{t: t, auth: "basic", user: "testuser", pass: testPass, repos: map[string]bool{"library/test": true}})
	n := newNode(t)
	s := n.parse(mirrorSpec([]string{"http://" + basic}, creds(basic, "testuser", testPass)+"engines:\n  docker: {enabled: true}\n"))
	d := engines.Detection{Engine: "docker", Version: "20.10.24", Found: true, Managed: true}
	fsys := n.synced(engines.NewDocker(), d, nil)
	rep := run(t, s, engines.NewDocker(), d, fsys, "library/test", "quay.io/org/app")
	want := []string{
		"FAIL credentials_not_sent [FAIL credentials_not_sent upstream]",
		"FAIL docker_hub_only [upstream]",
	}
	for i, v := range rep.Engines[0].Images {
		if got := outcomeOf(v).String(); got != want[i] {
			t.Errorf("%s: got %s, want %s", v.Image, got, want[i])
		}
	}
	v := rep.Engines[0].Images[0]
	if !strings.Contains(v.Fix, "Docker Hub login") || !strings.Contains(v.Summary, "it works") {
		t.Errorf("the fix should say what dockerd sends and that the spec's credentials work:\n%s\n%s", v.Summary, v.Fix)
	}
}

// TestNoSecretInOutput: a registry that echoes the Authorization header in
// its error bodies; neither the text nor the JSON report may show the
// password, in any form, once passed through the spec's redactor as the
// command does; and doctor itself never puts one in a finding.
func TestNoSecretInOutput(t *testing.T) {
	basic := serve(t, &fakeRegistry{t: t, auth: "basic", user: "testuser", pass: "another-secret", echo: true, repos: map[string]bool{}})
	n := newNode(t)
	s := n.parse(mirrorSpec([]string{"http://" + basic}, creds(basic, "testuser", testPass)))
	fsys := n.synced(engines.NewContainerd(), containerdAt("2.4.2"), nil)
	rep := run(t, s, engines.NewContainerd(), containerdAt("2.4.2"), fsys, "library/test")
	var text, js strings.Builder
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(&js)
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), js.String()} {
		for _, secret := range s.SecretValues() {
			if strings.Contains(out, secret) {
				t.Errorf("the report shows a secret form %q:\n%s", secret, out)
			}
		}
	}
	if !strings.Contains(text.String(), "wrong_credentials") {
		t.Errorf("the fault was not named:\n%s", text.String())
	}
}

// TestSnippetMasksCredentials: a body that echoes an Authorization value
// (a token the spec does not know) never reaches a message.
func TestSnippetMasksCredentials(t *testing.T) {
	a := answer{status: 401, header: http.Header{}, body: []byte(`{"errors":[{"message":"bad Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2ln and basic dXNlcjpwYXNz"}]}`)}
	got := a.snippet()
	for _, s := range []string{"eyJhbGciOi", "dXNlcjpwYXNz"} {
		if strings.Contains(got, s) {
			t.Errorf("snippet shows %q: %s", s, got)
		}
	}
	if !strings.Contains(got, "Bearer <redacted>") {
		t.Errorf("snippet = %s", got)
	}
}

// TestRunObeysContext: a mirror that never answers is abandoned when the
// run's context ends, and the run says it stopped.
func TestRunObeysContext(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	hang := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	n := newNode(t)
	s := n.parse(mirrorSpec([]string{"http://" + hang}, ""))
	fsys := n.synced(engines.NewContainerd(), containerdAt("2.4.2"), nil)
	img, _ := engines.ParseImage("library/test")
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var once sync.Once
	lookup := func(ctx context.Context, h string) ([]string, error) { return []string{h}, nil }
	go func() {
		<-started
		cancel()
	}()
	rep, err := Run(ctx, Options{Spec: s, Images: []engines.Image{img}, Resolve: noDaemon, Proxy: noProxy, Lookup: lookup,
		ProbeTimeout: time.Hour, Now: func() time.Time {
			once.Do(func() { close(started) })
			return fixedNow
		},
		Targets: []Target{{Engine: engines.NewContainerd(), Detection: containerdAt("2.4.2"), Host: engines.Host{FS: fsys}}}})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want it to stop with context.Canceled", err)
	}
	if rep == nil || rep.OK {
		t.Errorf("an interrupted run must not report OK: %+v", rep)
	}
}
