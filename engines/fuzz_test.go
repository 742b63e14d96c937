package engines

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pelletier/go-toml/v2"
	"golang.org/x/tools/txtar"
	"gopkg.in/yaml.v3"

	"github.com/mirrorctl/mirrorctl/credentials"
	"github.com/mirrorctl/mirrorctl/internal/testpki"
	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Fuzz targets for the engines' parsers of files already on the host: each
// renders a fixed spec over an arbitrary existing file and checks what must
// hold whatever the file is. The seeds (testdata/fuzz/<target>/) are the
// real files of testdata/containerd-config, the goldens' in/ sections and
// the demo host; WRITE_FUZZ_SEEDS=1 go test ./engines -run
// TestWriteFuzzSeeds writes them again. The tomlDoc editor has its own
// target (FuzzTomlDoc, tomledit_test.go); these go through the engines.
//
// Inputs are capped at fuzzMaxInput: the host bound (hostfs.DefaultLimit)
// is larger, but the fuzzer looks for wrong answers, not slow ones.
const fuzzMaxInput = 64 << 10

// fuzzPassword and the fixture key are the secrets of fuzzSpec: they may
// appear only in files marked Secret, and never in an error.
const fuzzPassword = "fuzz-Pa55-w0rd"

// fuzzSpec parses spec text whose files are the testpki fixtures and
// whose password_file holds fuzzPassword.
func fuzzSpec(tb testing.TB, text string) *spec.Spec {
	tb.Helper()
	files := map[string]string{
		"/etc/mirrorctl/ca.crt": testpki.CA, "/etc/mirrorctl/client.crt": testpki.ClientCert,
		"/etc/mirrorctl/client.key": testpki.ClientKey, "/etc/mirrorctl/pw": fuzzPassword + "\n",
	}
	s, err := spec.Parse("/etc/mirrorctl/config.yaml", []byte(text), spec.Options{Engines: Sections(),
		ReadFile: func(name string) ([]byte, error) {
			if b, ok := files[name]; ok {
				return []byte(b), nil
			}
			return nil, fmt.Errorf("no file %s", name)
		},
		Glob:      func(string) ([]string, error) { return nil, nil },
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// fuzzSecrets are the secret strings of a fuzzSpec spec in the forms
// engines write them: the password, base64 user:password, the key's lines.
func fuzzSecrets(s *spec.Spec) []string {
	out := []string{fuzzPassword}
	for _, c := range s.Configs {
		if c.Auth != nil {
			if b := c.Auth.Basic(); !b.IsZero() {
				out = append(out, b.Reveal())
			}
		}
	}
	for l := range strings.SplitSeq(testpki.ClientKey, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// checkSecrets fails when a file that is not Secret, a warning or an error
// holds a secret of the spec.
func checkSecrets(t *testing.T, s *spec.Spec, res Result, err error) {
	t.Helper()
	for _, sec := range fuzzSecrets(s) {
		if err != nil && strings.Contains(err.Error(), sec) {
			t.Fatalf("the error holds a secret: %v", err)
		}
		for _, w := range res.Warnings {
			if strings.Contains(w.String(), sec) {
				t.Fatalf("a warning holds a secret: %s", w)
			}
		}
		for _, f := range res.Files {
			// render writes a Secret file 0600, whatever its Mode says.
			if !f.Remove && !f.Secret && strings.Contains(string(f.Data), sec) {
				t.Fatalf("%s holds a secret but is not marked Secret", f.Path)
			}
		}
	}
}

// renderAgain renders e once more over in with res's files written, and
// with what res owns recorded as state.json would, and fails unless every
// file comes out byte for byte as before: a second sync changes nothing.
func renderAgain(t *testing.T, e Engine, s *spec.Spec, in fstest.MapFS, owned map[string]render.Ownership, d Detection, res Result) {
	t.Helper()
	again := maps.Clone(in)
	now := map[string]render.Ownership{}
	for _, f := range res.Files {
		if f.Remove {
			delete(again, FSPath(f.Path))
			continue
		}
		again[FSPath(f.Path)] = &fstest.MapFile{Data: f.Data, Mode: f.Mode}
		if f.Merged && !f.Release {
			now[f.Path] = render.Ownership{Merged: true, Keys: f.Keys, Created: owned[f.Path].Created || in[FSPath(f.Path)] == nil}
		}
	}
	res2, err := e.Render(s, Host{FS: again, Owned: now}, d)
	if err != nil {
		t.Fatalf("rendering over its own output: %v", err)
	}
	first := map[string][]byte{}
	for _, f := range res.Files {
		if !f.Remove {
			first[f.Path] = f.Data
		}
	}
	for _, f := range res2.Files {
		if f.Remove {
			if _, ok := first[f.Path]; ok {
				t.Fatalf("rendering over its own output removes %s", f.Path)
			}
			continue
		}
		was, ok := first[f.Path]
		if !ok {
			t.Fatalf("rendering over its own output adds %s", f.Path)
		}
		if !bytes.Equal(was, f.Data) {
			t.Fatalf("rendering over its own output changes %s:\n--- first ---\n%s\n--- second ---\n%s", f.Path, was, f.Data)
		}
	}
}

// fileAt returns the rendered file at p, or nil.
func fileAt(res Result, p string) *render.File {
	for i := range res.Files {
		if res.Files[i].Path == p {
			return &res.Files[i]
		}
	}
	return nil
}

// jsonTop decodes a JSON object's top level (the last of duplicate keys
// wins, as in dockerd and the docker CLI).
func jsonTop(data []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if len(bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))) == 0 {
		return map[string]json.RawMessage{}, true
	}
	if json.Unmarshal(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), &m) != nil || m == nil {
		return nil, false
	}
	return m, true
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// FuzzDockerDaemonJSON: over any daemon.json, Render either refuses (a
// file that is not one JSON object, or whose insecure-registries is not a
// list of strings: never overwritten) or writes a JSON object that keeps
// every other key with its value, sets registry-mirrors to the spec's,
// keeps the user's insecure entries and adds the spec's, and renders the
// same bytes over itself.
func FuzzDockerDaemonJSON(f *testing.F) {
	s := fuzzSpec(f, `mirrors:
  docker.io:
    endpoint: ["https://mirror.example.com", "http://localhost:5000"]
configs:
  lab.example.com:5000:
    tls: {insecure_skip_verify: true}
`)
	wantMirrors := []string{"https://mirror.example.com/", "http://localhost:5000/"}
	d := Detection{Engine: "docker", Found: true, Managed: true, Version: "27.3.1"}
	e := NewDocker()
	f.Add([]byte(`{"debug": true, "insecure-registries": ["old.example.com"]}`))
	f.Add([]byte(`{"insecure-registries": null, "registry-mirrors": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		in := fstest.MapFS{"etc/docker/daemon.json": {Data: data, Mode: 0o644}}
		res, err := e.Render(s, Host{FS: in}, d)
		checkSecrets(t, s, res, err)
		top, isObject := jsonTop(data)
		userInsecure, listOK := []string(nil), true
		if raw, ok := top["insecure-registries"]; ok {
			userInsecure, listOK = stringList(raw)
			listOK = listOK || string(raw) == "null"
		}
		if err != nil {
			if isObject && listOK {
				t.Fatalf("refused a JSON object: %v", err)
			}
			if !strings.Contains(err.Error(), "/etc/docker/daemon.json") {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		if !isObject {
			t.Fatalf("rendered over a file that is not a JSON object")
		}
		out := fileAt(res, "/etc/docker/daemon.json")
		if out == nil {
			t.Fatal("daemon.json not rendered")
		}
		got, ok := jsonTop(out.Data)
		if !ok {
			t.Fatalf("the rendered daemon.json is not a JSON object:\n%s", out.Data)
		}
		for k, v := range top {
			if k == keyMirrors || k == keyInsecure {
				continue
			}
			if g, ok := got[k]; !ok || compactJSON(g) != compactJSON(v) {
				t.Fatalf("key %q changed: %s -> %s", k, v, g)
			}
		}
		if mirrors, _ := stringList(got[keyMirrors]); !slices.Equal(mirrors, wantMirrors) {
			t.Fatalf("registry-mirrors %s, want %q", got[keyMirrors], wantMirrors)
		}
		insecure, _ := stringList(got[keyInsecure])
		for _, want := range append(slices.Clone(userInsecure), "localhost:5000", "lab.example.com:5000") {
			if !slices.ContainsFunc(insecure, func(e string) bool { return bareRegistry(e) == bareRegistry(want) }) {
				t.Fatalf("insecure-registries %q lacks %q", insecure, want)
			}
		}
		renderAgain(t, e, s, in, nil, d, res)
	})
}

// FuzzDockerConfigJSON: over any ~/.docker/config.json, Render either
// refuses (not one JSON object, or auths not an object) without a secret
// in the error, or writes a 0600 JSON object with the spec's auths entry,
// every other key and auths entry as they were, and renders the same bytes
// over itself.
func FuzzDockerConfigJSON(f *testing.F) {
	s := fuzzSpec(f, `configs:
  r.example.com:
    auth: {username: puller, password_file: pw}
engines:
  docker:
    auth_users: [alice]
`)
	wantAuth := credentials.BasicAuth("puller", credentials.NewSecret(fuzzPassword)).Reveal()
	d := Detection{Engine: "docker", Found: true, Managed: true, Version: "27.3.1"}
	e := NewDocker()
	const file = "/home/alice/.docker/config.json"
	f.Add([]byte(`{"auths": {"other.example.com": {"auth": "b3RoZXI6eA=="}}, "credsStore": "desktop"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		in := fstest.MapFS{
			"etc/passwd": {Data: []byte("alice:x:1000:1000::/home/alice:/bin/sh\n")},
			FSPath(file): {Data: data, Mode: 0o600},
		}
		res, err := e.Render(s, Host{FS: in}, d)
		checkSecrets(t, s, res, err)
		top, isObject := jsonTop(data)
		var auths map[string]json.RawMessage
		authsOK := true
		if raw, ok := top[keyAuths]; ok && string(raw) != "null" {
			authsOK = json.Unmarshal(raw, &auths) == nil && auths != nil
		}
		if err != nil {
			if isObject && authsOK {
				t.Fatalf("refused a JSON object: %v", err)
			}
			if !strings.Contains(err.Error(), file) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		if !isObject || !authsOK {
			t.Fatal("rendered over a file that is not a JSON object with an auths object")
		}
		out := fileAt(res, file)
		if out == nil {
			t.Fatal("config.json not rendered")
		}
		if !out.Secret {
			t.Fatal("config.json is not a secret file")
		}
		got, ok := jsonTop(out.Data)
		if !ok {
			t.Fatalf("the rendered config.json is not a JSON object:\n%s", out.Data)
		}
		for k, v := range top {
			if g, ok := got[k]; k != keyAuths && (!ok || compactJSON(g) != compactJSON(v)) {
				t.Fatalf("key %q changed: %s -> %s", k, v, g)
			}
		}
		var gotAuths map[string]json.RawMessage
		if err := json.Unmarshal(got[keyAuths], &gotAuths); err != nil {
			t.Fatalf("auths: %v", err)
		}
		var entry struct{ Auth string }
		if json.Unmarshal(gotAuths["r.example.com"], &entry) != nil || entry.Auth != wantAuth {
			t.Fatal("the spec's auths entry is not written")
		}
		for k, v := range auths {
			if k != "r.example.com" && compactJSON(gotAuths[k]) != compactJSON(v) {
				t.Fatalf("auths entry %q changed: %s -> %s", k, v, gotAuths[k])
			}
		}
		renderAgain(t, e, s, in, nil, d, res)
	})
}

// containerdVersions are the releases FuzzContainerdConfig renders for:
// unknown, 1.x (schema 2), 2.0 (schema 3) and 2.4 (schema 4).
var containerdVersions = []string{"", "1.6.20", "2.0.14", "2.4.2"}

// FuzzContainerdConfig: over any config.toml and any containerd release,
// Render either refuses with an error that names the file and holds no
// secret, or writes a config.toml that is TOML, points the registry
// config_path at certs.d, is a secret file exactly when it holds the
// credentials, and renders the same bytes over itself; every hosts.toml
// is TOML. With a spec that names no registry, a config.toml without
// mirrorctl's auth marker comes back byte for byte.
func FuzzContainerdConfig(f *testing.F) {
	s := fuzzSpec(f, `mirrors:
  docker.io:
    endpoint: ["https://mirror.example.com:5000"]
configs:
  mirror.example.com:5000:
    auth: {username: puller, password_file: pw}
    tls: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key}
engines:
  containerd:
    credentials: config
`)
	empty := fuzzSpec(f, "")
	e := NewContainerd()
	f.Add([]byte("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\"\n"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, v uint8) {
		if len(data) > fuzzMaxInput {
			return
		}
		d := Detection{Engine: "containerd", Found: true, Managed: true, Version: containerdVersions[int(v)%len(containerdVersions)]}
		in := fstest.MapFS{"etc/containerd/config.toml": {Data: data, Mode: 0o644}}
		res, err := e.Render(s, Host{FS: in}, d)
		checkSecrets(t, s, res, err)
		var doc map[string]any
		isTOML := toml.Unmarshal(data, &doc) == nil
		if err != nil {
			if !strings.Contains(err.Error(), containerdConfigPath) && !strings.Contains(err.Error(), "engines.containerd") {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		if !isTOML {
			t.Fatal("rendered over a file that is not TOML")
		}
		conf := fileAt(res, containerdConfigPath)
		if conf == nil {
			t.Fatal("config.toml not rendered")
		}
		var got map[string]any
		if err := toml.Unmarshal(conf.Data, &got); err != nil {
			t.Fatalf("the rendered config.toml is not TOML: %v\n%s", err, conf.Data)
		}
		if p := registryConfigPath(conf.Data); p != containerdCertsDir {
			t.Fatalf("config_path is %q, want %s:\n%s", p, containerdCertsDir, conf.Data)
		}
		for _, f := range res.Files {
			if path.Base(f.Path) == "hosts.toml" && !f.Remove {
				var h map[string]any
				if err := toml.Unmarshal(f.Data, &h); err != nil {
					t.Fatalf("%s is not TOML: %v", f.Path, err)
				}
			}
		}
		renderAgain(t, e, s, in, nil, d, res)

		if bytes.Contains(data, []byte(authMarker)) {
			return
		}
		res, err = e.Render(empty, Host{FS: in}, d)
		if err != nil {
			t.Fatalf("an empty spec: %v", err)
		}
		if c := fileAt(res, containerdConfigPath); c != nil && !bytes.Equal(c.Data, data) {
			t.Fatalf("an empty spec changes config.toml:\n%s", c.Data)
		}
	})
}

// decodeWharfie decodes registries.yaml strictly into wharfie's types
// (k3s_test.go): a key k3s would ignore is an error.
func decodeWharfie(data []byte) (wharfieRegistry, error) {
	var r wharfieRegistry
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&r)
	return r, err
}

// FuzzK3sRegistries: over any existing registries.yaml, Render writes one
// that k3s's schema reads strictly, with the header, 0600 and secret,
// warns when it replaces a file not its own, and renders the same bytes
// over itself; with a spec that names no registry it removes only its own
// file and leaves anyone else's as it is.
func FuzzK3sRegistries(f *testing.F) {
	s := fuzzSpec(f, `mirrors:
  docker.io:
    endpoint: ["https://mirror.example.com:5000"]
configs:
  mirror.example.com:5000:
    auth: {username: puller, password_file: pw}
    tls: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key}
`)
	empty := fuzzSpec(f, "")
	e := NewK3s()
	d := Detection{Engine: "k3s", Found: true, Managed: true, Distribution: "k3s"}
	const file = "/etc/rancher/k3s/registries.yaml"
	f.Add([]byte(k3sHeader + "\nmirrors: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		in := fstest.MapFS{"usr/local/bin/k3s": {}, FSPath(file): {Data: data, Mode: 0o600}}
		ours := bytes.HasPrefix(data, []byte(k3sHeader+"\n"))
		res, err := e.Render(s, Host{FS: in}, d)
		checkSecrets(t, s, res, err)
		if err != nil {
			t.Fatal(err)
		}
		out := fileAt(res, file)
		if out == nil || !out.Secret || out.Mode != 0o600 || !bytes.HasPrefix(out.Data, []byte(k3sHeader+"\n")) {
			t.Fatalf("registries.yaml not rendered as a 0600 secret with the header: %+v", out)
		}
		r, err := decodeWharfie(out.Data)
		if err != nil {
			t.Fatalf("k3s's schema does not read it: %v\n%s", err, out.Data)
		}
		if got := r.Mirrors["docker.io"].Endpoints; !slices.Equal(got, []string{"https://mirror.example.com:5000"}) {
			t.Fatalf("docker.io endpoints %q", got)
		}
		replaced := slices.ContainsFunc(res.Warnings, func(w Warning) bool { return strings.Contains(w.Message, "was not written by mirrorctl") })
		if replaced == ours {
			t.Fatalf("file ours: %v, warned that it is replaced: %v", ours, replaced)
		}
		renderAgain(t, e, s, in, nil, d, res)

		res, err = e.Render(empty, Host{FS: in}, d)
		if err != nil {
			t.Fatal(err)
		}
		out = fileAt(res, file)
		if ours != (out != nil && out.Remove) || (out != nil && !out.Remove) {
			t.Fatalf("an empty spec over a file ours=%v: %+v", ours, out)
		}
	})
}

// FuzzCrictl: over any crictl.yaml, Render either refuses (not YAML, or
// not a mapping: never overwritten) naming the file, or writes a YAML
// mapping with both endpoints set, every key the user had kept (but
// max-retries, which breaks released crictl), and renders the same bytes
// over itself.
func FuzzCrictl(f *testing.F) {
	s := fuzzSpec(f, `mirrors:
  docker.io:
    endpoint: ["https://mirror.example.com"]
engines:
  crictl:
    timeout: 10
`)
	e := NewCrictl()
	d := Detection{Engine: "crictl", Found: true, Managed: true, Socket: "/run/containerd/containerd.sock", Config: crictlConfig, Version: "1.31.1"}
	const endpoint = "unix:///run/containerd/containerd.sock"
	f.Add([]byte("runtime-endpoint: unix:///run/crio/crio.sock\ntimeout: 2\ndebug: false\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		in := fstest.MapFS{"usr/bin/crictl": {}, "etc/crictl.yaml": {Data: data, Mode: 0o644}}
		res, err := e.Render(s, Host{FS: in}, d)
		var doc yaml.Node
		parseErr := yaml.Unmarshal(data, &doc)
		if err != nil {
			if !strings.Contains(err.Error(), crictlConfig) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			if parseErr == nil && len(bytes.TrimSpace(data)) > 0 && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
				t.Fatalf("refused a YAML mapping: %v", err)
			}
			return
		}
		out := fileAt(res, crictlConfig)
		if out == nil {
			t.Fatal("crictl.yaml not rendered")
		}
		var got yaml.Node
		if err := yaml.Unmarshal(out.Data, &got); err != nil || len(got.Content) != 1 || got.Content[0].Kind != yaml.MappingNode {
			t.Fatalf("the rendered crictl.yaml is not a YAML mapping (%v):\n%s", err, out.Data)
		}
		m := got.Content[0]
		for _, k := range []string{"runtime-endpoint", "image-endpoint"} {
			if v := mappingValue(m, k); v == nil || v.Value != endpoint {
				t.Fatalf("%s is not %s:\n%s", k, endpoint, out.Data)
			}
		}
		if parseErr == nil && len(doc.Content) == 1 {
			for i := 0; i+1 < len(doc.Content[0].Content); i += 2 {
				k := doc.Content[0].Content[i]
				if k.Value != "max-retries" && mappingValue(m, k.Value) == nil {
					t.Fatalf("key %q dropped:\n%s", k.Value, out.Data)
				}
			}
		}
		renderAgain(t, e, s, in, nil, d, res)
	})
}

// mappingValue returns the value of key in a YAML mapping, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// TestWriteFuzzSeeds writes the fuzz targets' seed corpora from the real
// files the tests already hold; off unless WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("WRITE_FUZZ_SEEDS=1 writes the seeds")
	}
	seeds := map[string]map[string][]byte{} // target -> name -> file
	add := func(target, name string, data []byte) {
		if seeds[target] == nil {
			seeds[target] = map[string][]byte{}
		}
		for n := 2; seeds[target][name] != nil; n++ {
			name = fmt.Sprintf("%s-%d", strings.TrimSuffix(name, fmt.Sprintf("-%d", n-1)), n)
		}
		seeds[target][name] = data
	}
	targets := map[string]string{
		"etc/docker/daemon.json":          "FuzzDockerDaemonJSON",
		".docker/config.json":             "FuzzDockerConfigJSON",
		"etc/containerd/config.toml":      "FuzzContainerdConfig",
		"etc/rancher/k3s/registries.yaml": "FuzzK3sRegistries",
		"etc/crictl.yaml":                 "FuzzCrictl",
	}
	goldens, _ := filepath.Glob("testdata/*/*.txtar")
	for _, g := range goldens {
		a, err := txtar.ParseFile(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range a.Files {
			for suffix, target := range targets {
				if strings.HasPrefix(f.Name, "in/") && strings.HasSuffix(f.Name, suffix) {
					add(target, filepath.Base(filepath.Dir(g))+"-"+strings.TrimSuffix(filepath.Base(g), ".txtar"), f.Data)
				}
			}
		}
	}
	stock, _ := filepath.Glob("testdata/containerd-config/*.toml")
	for _, p := range stock {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		add("FuzzContainerdConfig", strings.TrimSuffix(filepath.Base(p), ".toml"), b)
	}
	for suffix, target := range targets {
		if b, err := os.ReadFile(filepath.Join("../testdata/demo/root", suffix)); err == nil {
			add(target, "demo", b)
		}
	}
	for target, files := range seeds {
		dir := filepath.Join("testdata/fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if target == "FuzzContainerdConfig" {
				// one seed per release the engine renders for
				for i := range containerdVersions {
					b := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint8(%d)\n", data, i)
					if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d", name, i)), []byte(b), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
