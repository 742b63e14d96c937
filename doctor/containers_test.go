package doctor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/engines"
)

var crioNode = engines.Detection{Engine: "containers", Version: "1.30.4", Found: true, Managed: true,
	Unit: "crio.service", Socket: "/run/crio/crio.sock", CRIOConfig: "/etc/crio/crio.conf.d/50-mirrorctl.conf"}

// TestGoldenContainers runs doctor on a node with CRI-O and Podman, whose
// files mirrorctl synced, plus a drop-in that blocks quay.io and a stale
// podman login: one verdict per client and image, the plain-HTTP retry of
// insecure mirrors, a rewritten repository, the blocked registry named
// with its fix. `go test ./doctor -update` rewrites the goldens.
func TestGoldenContainers(t *testing.T) {
	var servers []string
	add := func(h string) string { servers = append(servers, h); return h }
	basic := add(serve(t, &fakeRegistry{t: t, auth: "basic", user: "testuser", pass: testPass, repos: map[string]bool{"library/test": true}}))
	hub := add(serve(t, &fakeRegistry{t: t, auth: "none", repos: map[string]bool{"hub/library/test": true}}))
	closed := add(closedPort(t))
	n := newNode(t)
	s := n.parse(fmt.Sprintf(`mirrors:
  docker.io:
    endpoint: ["http://%[1]s"]
  registry.example.invalid:
    endpoint: ["http://%[2]s/v2/hub"]
  ghcr.io:
    endpoint: ["http://%[3]s"]
configs:
  %[1]q:
    auth: {username: testuser, password: %[4]q}
`, basic, hub, closed, testPass))
	stale := base64.StdEncoding.EncodeToString([]byte("testuser:an-old-password"))
	fsys := n.synced(engines.NewContainers(), crioNode, map[string]string{
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\n",
		"usr/bin/podman": "",
		"etc/containers/registries.conf.d/60-block.conf": "[[registry]]\nlocation = \"quay.io\"\nblocked = true\n",
		"run/containers/0/auth.json":                     fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, basic, stale),
	})
	imgs, err := DefaultImages(s, "library/test:latest")
	if err != nil {
		t.Fatal(err)
	}
	quay, _ := engines.ParseImage("quay.io/org/app:1")
	rep, err := Run(context.Background(), Options{Spec: s, Images: append(imgs, quay), Resolve: noDaemon, Proxy: noProxy,
		Now: func() time.Time { return fixedNow }, ProbeTimeout: 10 * time.Second,
		Targets: []Target{{Engine: engines.NewContainers(), Detection: crioNode, Host: engines.Host{FS: fsys}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for i, h := range servers {
		ports = append(ports, h, fmt.Sprintf("127.0.0.1:%d", 50101+i))
	}
	norm := strings.NewReplacer(ports...)
	var text, js bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(&js)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"containers.txt": norm.Replace(text.String()), "containers.json": norm.Replace(js.String())} {
		file := filepath.Join("testdata", "golden", name)
		if *update {
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (run go test ./doctor -update)", err)
		}
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
		for _, secret := range append(s.SecretValues(), stale, "an-old-password") {
			if strings.Contains(got, secret) {
				t.Errorf("%s shows a secret form %q", name, secret)
			}
		}
	}
	// What the golden must hold, so that -update cannot bless a regression.
	var got []string
	for _, v := range rep.Engines[0].Images {
		got = append(got, fmt.Sprintf("%s %s %s %s", v.Who, v.Image, v.Level, v.Cause))
	}
	want := []string{
		"crio docker.io/library/test:latest OK ",
		"podman docker.io/library/test:latest WARN credentials_not_from_spec",
		"crio ghcr.io/library/test:latest FAIL refused",
		"podman ghcr.io/library/test:latest FAIL refused",
		"crio registry.example.invalid/library/test:latest OK ",
		"podman registry.example.invalid/library/test:latest OK ",
		"crio quay.io/org/app:1 FAIL registry_blocked",
		"podman quay.io/org/app:1 FAIL registry_blocked",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
	if rep.OK {
		t.Error("a report with failures must not be OK")
	}
}

// TestContainersInsecure: registries.conf insecure = true is HTTPS without
// verification, then plain HTTP when the HTTPS ping fails; without it a
// plain-HTTP mirror fails as it does for the engine.
func TestContainersInsecure(t *testing.T) {
	plain := serve(t, &fakeRegistry{t: t, auth: "none", repos: map[string]bool{"library/test": true}})
	tlsSrv := httptest.NewUnstartedServer(&fakeRegistry{t: t, auth: "none", repos: map[string]bool{"library/test": true}})
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	tlsHost := strings.TrimPrefix(tlsSrv.URL, "https://")
	for _, tt := range []struct {
		name, mirror string
		insecure     bool
		want         string
		fallback     bool
	}{
		{"insecure: a plain-HTTP mirror is reached over HTTP", plain, true, "OK  [OK ok not tried]", true},
		{"insecure: an untrusted certificate is accepted, no fallback", tlsHost, true, "WARN unknown_authority [WARN unknown_authority not tried]", false},
		{"secure: a plain-HTTP mirror fails", plain, false, "FAIL plain_http_port [FAIL plain_http_port upstream]", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conf := fmt.Sprintf("[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = %q\ninsecure = %v\n", tt.mirror, tt.insecure)
			fsys := fstest.MapFS{"etc/containers/registries.conf": {Data: []byte(conf)}}
			n := newNode(t)
			s := n.parse("mirrors: {}\n")
			rep := run(t, s, engines.NewContainers(), engines.Detection{Engine: "containers", Found: true, Managed: true}, fsys, "docker.io/library/test")
			v := rep.Engines[0].Images[0]
			if got := outcomeOf(v).String(); got != tt.want {
				t.Errorf("got  %s\nwant %s\n%s", got, tt.want, v.Summary)
			}
			ep := rep.Endpoints[0]
			if (ep.Fallback != "") != tt.fallback {
				t.Errorf("fallback %q, want %v; steps %v", ep.Fallback, tt.fallback, ep.Steps)
			}
			if tt.fallback && !strings.Contains(v.Summary, "over plain HTTP") {
				t.Errorf("the summary does not say the pull goes over plain HTTP: %s", v.Summary)
			}
		})
	}
}

// One mirror URL, two engines: containers reaches it as an insecure
// registry (any certificate), containerd verifies it. Each verdict comes
// from a probe made as that engine connects: containerd's fails on the
// untrusted certificate however lenient podman is.
func TestInsecureRouteDoesNotVouchForAnotherEngine(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(&fakeRegistry{t: t, auth: "none", repos: map[string]bool{"library/test": true}})
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	host := strings.TrimPrefix(tlsSrv.URL, "https://")

	n := newNode(t)
	s := n.parse(fmt.Sprintf("mirrors:\n  docker.io:\n    endpoint: [\"https://%s\"]\n", host))
	fsys := n.synced(engines.NewContainerd(), containerdAt("2.4.2"), nil)
	fsys["etc/containers/registries.conf"] = &fstest.MapFile{Data: []byte(fmt.Sprintf(
		"[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = %q\ninsecure = true\n", host))}
	img, err := engines.ParseImage("docker.io/library/test")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{Spec: s, Images: []engines.Image{img}, Resolve: noDaemon, Now: func() time.Time { return fixedNow },
		ProbeTimeout: 10 * time.Second, Proxy: noProxy, Targets: []Target{
			{Engine: engines.NewContainerd(), Detection: containerdAt("2.4.2"), Host: engines.Host{FS: fsys}},
			{Engine: engines.NewContainers(), Detection: engines.Detection{Engine: "containers", Found: true, Managed: true}, Host: engines.Host{FS: fsys}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range rep.Engines {
		for _, v := range e.Images {
			got[e.Engine] = outcomeOf(v).String()
		}
	}
	want := map[string]string{
		"containerd": "FAIL unknown_authority [FAIL unknown_authority upstream]",
		"containers": "WARN unknown_authority [WARN unknown_authority not tried]",
	}
	for e, w := range want {
		if got[e] != w {
			t.Errorf("%s: got %s, want %s", e, got[e], w)
		}
	}
	if len(rep.Endpoints) != 2 || rep.Endpoints[0].Insecure == rep.Endpoints[1].Insecure {
		t.Errorf("want the URL probed twice, strictly and as an insecure registry: %+v", rep.Endpoints)
	}
}
