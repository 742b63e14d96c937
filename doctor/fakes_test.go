package doctor

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The registries below replay responses recorded from real registries
// (testdata/recorded/*.http, see the README there): Debian's docker-registry
// 2.8 with htpasswd, CNCF distribution v3.1.2 with token auth, and Nexus- and
// Harbor-like answers built from their documented behaviour. Only the
// decisions (which answer, to whom) are made here.

type recording struct {
	status int
	header http.Header
	body   []byte
}

func loadRecording(t testing.TB, name string) recording {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "recorded", name+".http"))
	if err != nil {
		t.Fatal(err)
	}
	// curl -i writes CRLF headers; the hand-made files may use LF.
	if !bytes.Contains(raw, []byte("\r\n")) {
		raw = bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return recording{status: resp.StatusCode, header: resp.Header, body: body}
}

// replay writes the recording, each old→new pair of subst replaced in
// header values and body (the realm and Location name the recording host).
func (r recording) replay(w http.ResponseWriter, subst ...string) {
	rep := strings.NewReplacer(subst...)
	for k, vs := range r.header {
		if k == "Date" || k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, rep.Replace(v))
		}
	}
	w.WriteHeader(r.status)
	_, _ = w.Write([]byte(rep.Replace(string(r.body))))
}

// fakeRegistry is a registry that serves library/test:latest (or not).
type fakeRegistry struct {
	t     testing.TB
	auth  string // "none", "basic", "bearer"
	realm string // bearer: the realm URL to announce
	user  string
	pass  string
	// root is the API root path: "/v2", Nexus's /repository/<name>/v2,
	// Harbor's /v2/<project> (with override_path); any other path answers
	// Nexus's HTML 404.
	root string
	// htmlElsewhere answers paths outside prefix+/v2 with the Harbor
	// portal's HTML (200) instead.
	htmlElsewhere bool
	repos         map[string]bool // repositories that have "latest"
	groupPush     bool            // pushes refused as a Nexus group does
	// echo puts the request's Authorization header into error bodies, as a
	// careless proxy might: it must never reach doctor's output.
	echo bool
	// harbor answers 401s as Harbor does (its realm at /service/token on
	// the same host).
	harbor bool

	mu   sync.Mutex
	hits []string
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.hits = append(f.hits, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	base := f.root
	if base == "" {
		base = "/v2"
	}
	rest, ok := strings.CutPrefix(r.URL.Path, base)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		if f.htmlElsewhere {
			loadRecording(f.t, "harbor-like-portal-200-html").replay(w)
		} else {
			loadRecording(f.t, "nexus-like-404-html").replay(w)
		}
		return
	}
	action := "pull"
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		action = "push"
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	repo := ""
	for i, p := range parts {
		if (p == "manifests" || p == "blobs") && i > 0 {
			repo = strings.Join(parts[:i], "/")
			break
		}
	}
	if !f.allowed(r, repo, action) {
		f.challenge(w, r, repo)
		return
	}
	switch {
	case rest == "/" || rest == "":
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		_, _ = w.Write([]byte("{}"))
	case strings.Contains(rest, "/manifests/"):
		if f.repos[repo] {
			loadRecording(f.t, "dist28-manifest-head-200").replay(w)
			return
		}
		loadRecording(f.t, "dist28-manifest-404").replay(w)
	case strings.HasSuffix(rest, "/blobs/uploads/") && r.Method == http.MethodPost:
		if f.groupPush {
			loadRecording(f.t, "nexus-like-group-push-403").replay(w)
			return
		}
		loadRecording(f.t, "dist28-upload-202").replay(w, "http://127.0.0.1:39501/v2/library/test", "http://"+r.Host+base+"/"+repo)
	case strings.Contains(rest, "/blobs/uploads/") && r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeRegistry) allowed(r *http.Request, repo, action string) bool {
	got := r.Header.Get("Authorization")
	switch f.auth {
	case "basic":
		return got == "Basic "+base64.StdEncoding.EncodeToString([]byte(f.user+":"+f.pass))
	case "bearer":
		tok, ok := strings.CutPrefix(got, "Bearer ")
		if !ok {
			return false
		}
		if repo == "" {
			return true
		}
		return grants(tok, repo, action)
	}
	return true
}

func (f *fakeRegistry) challenge(w http.ResponseWriter, r *http.Request, repo string) {
	echo := ""
	if f.echo {
		echo = r.Header.Get("Authorization")
	}
	switch f.auth {
	case "basic":
		name := "dist28-ping-401-basic"
		if repo != "" {
			name = "dist28-manifest-401-basic"
		}
		loadRecording(f.t, name).replay(w, "authentication required", "authentication required "+echo)
	case "bearer":
		if f.harbor {
			loadRecording(f.t, "harbor-like-manifest-401-bearer").replay(w, "https://harbor.example.invalid/service/token", f.realm)
			return
		}
		name := "dist3-ping-401-bearer"
		switch {
		case repo != "" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
			name = "dist3-manifest-401-insufficient-scope"
		case repo != "":
			name = "dist3-manifest-401-bearer"
		}
		loadRecording(f.t, name).replay(w, "http://localhost:39503/token", f.realm, "authentication required", "authentication required "+echo)
	}
}

// grants reads a test token (an unsigned JWT from fakeRealm).
func grants(tok, repo, action string) bool {
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(p[1])
	if err != nil {
		return false
	}
	var c struct {
		Access []struct {
			Name    string   `json:"name"`
			Actions []string `json:"actions"`
		} `json:"access"`
	}
	if json.Unmarshal(b, &c) != nil {
		return false
	}
	for _, a := range c.Access {
		if a.Name == repo {
			for _, x := range a.Actions {
				if x == action {
					return true
				}
			}
		}
	}
	return false
}

// fakeRealm is a token service: the right credentials get what they ask
// for; anonymous requests get what anon says ("deny": 401, "none": a token
// that grants nothing, "pull": pull). swap answers every request, even
// with the right credentials, with an anonymous token granting nothing (a
// realm that does not take Basic auth).
type fakeRealm struct {
	user, pass string
	anon       string
	swap       bool
}

func (f *fakeRealm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, p, has := r.BasicAuth()
	sub, grant := "", func(a []string) []string { return a }
	switch {
	case has && !f.swap && (u != f.user || p != f.pass):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"wrong username or password"}]}`))
		return
	case has && !f.swap:
		sub = u
	case f.anon == "deny" && !f.swap:
		w.WriteHeader(http.StatusUnauthorized)
		return
	case f.anon == "pull" && !f.swap:
		grant = func([]string) []string { return []string{"pull"} }
	default:
		grant = func([]string) []string { return nil }
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var list []access
	for _, sc := range r.URL.Query()["scope"] {
		f := strings.Split(sc, ":")
		if len(f) == 3 {
			if a := grant(strings.Split(f[2], ",")); len(a) > 0 {
				list = append(list, access{f[0], f[1], a})
			}
		}
	}
	claims, _ := json.Marshal(map[string]any{"sub": sub, "access": list})
	enc := base64.RawURLEncoding
	tok := enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString(claims) + "."
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
}
