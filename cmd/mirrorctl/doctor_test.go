package main

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// basicMirror is a registry with Basic auth serving library/test:latest
// and echoing the Authorization header it refuses (a careless proxy).
func basicMirror(t *testing.T, user, pass string) string {
	t.Helper()
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"not ` + r.Header.Get("Authorization") + `"}]}`))
			return
		}
		if strings.HasSuffix(r.URL.Path, "/library/test/manifests/latest") {
			w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
			w.Header().Set("Docker-Content-Digest", "sha256:0123")
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestDoctorCLI runs doctor on a node mirrorctl synced (containerd 1.6
// under --root, not running): exit 0 when the mirror serves, 1 with the
// cause named when the password is wrong, 2 for a bad image; no form of
// the password in the output, text or JSON, though the mirror echoes it.
func TestDoctorCLI(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	mirror := basicMirror(t, "puller", "s3cret-Pässword $1")
	spec := func(pass string) string {
		return h.write("doctor.yaml", `mirrors:
  docker.io:
    endpoint: ["http://`+mirror+`"]
configs:
  "`+mirror+`":
    auth: {username: puller, password: "`+pass+`"}
engines:
  containerd: {enabled: true}
  docker: {enabled: false}
  k3s: {enabled: false}
  crictl: {enabled: false}
`)
	}
	good := spec("s3cret-Pässword $1")
	if code, out, errOut := h.run("", "--config", good, "sync", "--adopt"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := h.run("", "--config", good, "doctor", "--repository", "library/test:latest")
	ok := regexp.MustCompile(`(?m)^containerd +docker\.io/library/test:latest +OK +http://` + regexp.QuoteMeta(mirror) + `/v2 `)
	if code != exitOK || !ok.MatchString(out) {
		t.Errorf("doctor on a working mirror: exit %d\n%s%s", code, out, errOut)
	}

	bad := spec("wrong-Password-42")
	if code, out, errOut := h.run("", "--config", bad, "sync"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	for _, format := range []string{"text", "json"} {
		code, out, errOut := h.run("", "--config", bad, "-o", format, "doctor", "--repository", "library/test:latest")
		if code != exitFailure {
			t.Errorf("%s: exit %d, want %d\n%s%s", format, code, exitFailure, out, errOut)
		}
		for _, secret := range []string{"wrong-Password-42", base64.StdEncoding.EncodeToString([]byte("puller:wrong-Password-42"))} {
			if strings.Contains(out+errOut, secret) {
				t.Errorf("%s output shows %q:\n%s%s", format, secret, out, errOut)
			}
		}
		if format == "json" {
			var rep struct {
				OK      bool `json:"ok"`
				Engines []struct {
					Images []struct {
						Cause string `json:"cause"`
					} `json:"images"`
				} `json:"engines"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.OK || len(rep.Engines) == 0 || rep.Engines[0].Images[0].Cause != "wrong_credentials" {
				t.Errorf("json: %v %+v\n%s", err, rep, out)
			}
		} else if !strings.Contains(out, "wrong_credentials") {
			t.Errorf("text output does not name the cause:\n%s", out)
		}
	}
	if code, _, errOut := h.run("", "--config", good, "doctor", "HTTP://x/y"); code != exitInput {
		t.Errorf("a bad image: exit %d, want %d (%s)", code, exitInput, errOut)
	}
}

// TestDoctorCLIContainers runs doctor on a Podman node mirrorctl synced:
// the route goes through the mirror with the spec's credentials (plain
// HTTP after HTTPS, as registries.conf insecure makes Podman do), exit 0;
// a wrong password is named, exit 1, and no form of it is printed.
func TestDoctorCLIContainers(t *testing.T) {
	h := newHost(t)
	if err := os.WriteFile(filepath.Join(h.root, "usr/bin/podman"), []byte("#!/bin/sh\necho 'podman version 4.3.1'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mirror := basicMirror(t, "puller", "s3cret-Pässword $1")
	spec := func(pass string) string {
		return h.write("doctor.yaml", `mirrors:
  docker.io:
    endpoint: ["http://`+mirror+`"]
configs:
  "`+mirror+`":
    auth: {username: puller, password: "`+pass+`"}
engines:
  containers: {enabled: true}
`)
	}
	good := spec("s3cret-Pässword $1")
	if code, out, errOut := h.run("", "--config", good, "sync", "--engines", "containers"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := h.run("", "--config", good, "doctor", "--engines", "containers", "--repository", "library/test:latest")
	ok := regexp.MustCompile(`(?m)^containers/podman +docker\.io/library/test:latest +OK +https://` + regexp.QuoteMeta(mirror) + `/v2 `)
	if code != exitOK || !ok.MatchString(out) || !strings.Contains(out, `credentials configs."`+mirror+`" via /root/.config/containers/auth.json`) {
		t.Errorf("doctor on a working mirror: exit %d\n%s%s", code, out, errOut)
	}
	bad := spec("wrong-Password-42")
	if code, out, errOut := h.run("", "--config", bad, "sync", "--engines", "containers"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = h.run("", "--config", bad, "-o", "json", "doctor", "--engines", "containers", "--repository", "library/test:latest")
	if code != exitFailure || !strings.Contains(out, `"cause": "wrong_credentials"`) {
		t.Errorf("a wrong password: exit %d\n%s%s", code, out, errOut)
	}
	for _, secret := range []string{"wrong-Password-42", base64.StdEncoding.EncodeToString([]byte("puller:wrong-Password-42"))} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("output shows %q:\n%s%s", secret, out, errOut)
		}
	}
}

// --timeout bounds the whole run, and running out says so: a mirror that
// accepts connections and never answers, with a probe timeout longer than
// the run's, ends with exit 1 and the flag named.
func TestDoctorTimeoutIsNamed(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn // held open, never answered
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	spec := h.write("doctor.yaml", "mirrors:\n  docker.io:\n    endpoint: [\"http://"+l.Addr().String()+"\"]\n"+
		"engines:\n  containerd: {enabled: true}\n  docker: {enabled: false}\n  k3s: {enabled: false}\n  crictl: {enabled: false}\n")
	if code, out, errOut := h.run("", "--config", spec, "sync", "--adopt"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := h.run("", "--config", spec, "doctor", "--timeout", "300ms", "--probe-timeout", "1m")
	if code != exitFailure || !strings.Contains(errOut, "--timeout 300ms ran out before every check finished") {
		t.Errorf("exit %d, want %d naming --timeout:\n%s%s", code, exitFailure, out, errOut)
	}
}
