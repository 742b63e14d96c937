package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
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
