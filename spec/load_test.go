package spec

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/internal/testpki"
)

// The central file names the mirrors and leaves the password to the node.
const centralSpec = `mirrors:
  docker.io:
    endpoint: [https://nexus.example.com:8443]
    capabilities: [pull, resolve]
  quay.io:
    endpoint: [https://nexus.example.com/repository/docker-group/v2]
configs:
  nexus.example.com:8443:
    auth:
      username: central
      password: central-password
    tls:
      ca_file: ca.crt
engines:
  demo:
    enabled: false
    path: /etc/demo.conf
    list: [root]
backups:
  keep: 5
`

func TestLoadDropIns(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"config.yaml": centralSpec,
		"ca.crt":      testpki.CA,
		// References in a drop-in are relative to the drop-in's directory.
		"conf.d/10-secrets.yaml": `configs:
  nexus.example.com:8443:
    auth:
      username: node
      password_file: ../secrets/nexus
`,
		"conf.d/20-local.yaml": `mirrors:
  docker.io:
    endpoint: [https://local-cache.example.com]
engines:
  demo:
    unit: demo-custom.service
backups:
  keep: 7
`,
		"conf.d/30-last.yaml": "backups:\n  keep: 8\n",
		"conf.d/ignored.yml":  "mirrors: {ignored.example.com: {}}\n",
		"conf.d/notes.txt":    "not yaml: [",
		"secrets/nexus":       testPassword + "\n",
	})
	main := filepath.Join(dir, "config.yaml")
	got, err := Load(main, opts())
	if err != nil {
		t.Fatal(err)
	}

	want := base()
	// A drop-in's mirror entry replaces the whole entry: no capabilities left.
	want.Mirrors["docker.io"] = &Mirror{Endpoints: []string{"https://local-cache.example.com"}}
	want.Mirrors["quay.io"] = &Mirror{Endpoints: []string{"https://nexus.example.com/repository/docker-group/v2"}}
	// Its auth block replaces the auth block; the central tls block stays.
	want.Configs["nexus.example.com:8443"] = &Config{
		Auth: &Auth{Username: "node", Password: secret(testPassword), PasswordFile: filepath.Join(dir, "secrets/nexus")},
		TLS:  &TLS{CAFile: filepath.Join(dir, "ca.crt"), CA: []byte(testpki.CA)},
	}
	// engines: and backups: override field by field, later files last.
	want.Engines["demo"] = &EngineSection{Enabled: Off, Settings: demo{Path: "/etc/demo.conf", Unit: "demo-custom.service", List: []string{"root"}}}
	want.Backups.Keep = 8
	if diff := cmp.Diff(want, got, cmpSpec()); diff != "" {
		t.Errorf("merged spec (-want +got):\n%s", diff)
	}

	wantFiles := []string{main,
		filepath.Join(dir, "conf.d/10-secrets.yaml"), filepath.Join(dir, "conf.d/20-local.yaml"), filepath.Join(dir, "conf.d/30-last.yaml")}
	if !slices.Equal(got.Files, wantFiles) {
		t.Errorf("Files = %q, want %q", got.Files, wantFiles)
	}
	c := got.Configs["nexus.example.com:8443"]
	if c.Pos.File != main || c.TLS.Pos.File != main || c.Auth.Pos.File != wantFiles[1] {
		t.Errorf("positions: config in %s, tls in %s, auth in %s; want main, main, 10-secrets", c.Pos.File, c.TLS.Pos.File, c.Auth.Pos.File)
	}
	if f := got.Mirrors["docker.io"].Pos.File; f != wantFiles[2] {
		t.Errorf("docker.io mirror from %s, want the drop-in", f)
	}
}

// TestLoadDropInOrder: drop-ins merge in lexical order, whatever order the
// directory listing comes in.
func TestLoadDropInOrder(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"config.yaml":    "",
		"conf.d/a.yaml":  "backups: {keep: 1}\n",
		"conf.d/b.yaml":  "backups: {keep: 2}\n",
		"conf.d/10.yaml": "backups: {keep: 3}\n",
	})
	o := opts()
	o.Glob = func(pattern string) ([]string, error) {
		m, err := filepath.Glob(pattern)
		slices.Reverse(m)
		return m, err
	}
	s, err := Load(filepath.Join(dir, "config.yaml"), o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Backups.Keep != 2 {
		t.Errorf("keep = %d, want 2 from b.yaml, the last in lexical order", s.Backups.Keep)
	}
}

func TestLoadNoConfD(t *testing.T) {
	dir := writeFiles(t, map[string]string{"config.yaml": "mirrors:\n  docker.io: {endpoint: [m.example.com]}\n"})
	s, err := Load(filepath.Join(dir, "config.yaml"), opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 1 || len(s.Mirrors) != 1 {
		t.Errorf("Files %q, %d mirrors; want the main file and its mirror", s.Files, len(s.Mirrors))
	}
}

// TestLoadGlobMetaInDir: a spec directory whose name is a glob pattern
// still finds its own drop-ins, and no one else's.
func TestLoadGlobMetaInDir(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"[x]/config.yaml":        "",
		"[x]/conf.d/keep.yaml":   "backups: {keep: 4}\n",
		"x/conf.d/decoy.yaml":    "backups: {keep: 9}\n",
		"x/config.yaml":          "",
		"[x]/conf.d/other.yamlx": "nope",
	})
	s, err := Load(filepath.Join(root, "[x]/config.yaml"), opts())
	if err != nil {
		t.Fatal(err)
	}
	if s.Backups.Keep != 4 || len(s.Files) != 2 {
		t.Errorf("keep = %d from %q, want 4 from [x]/conf.d/keep.yaml", s.Backups.Keep, s.Files)
	}
}

func TestLoadMissingMain(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "config.yaml")
	_, err := Load(missing, opts())
	if err == nil {
		t.Fatal("Load succeeded")
	}
	if errors.As(err, &Errors{}) {
		t.Errorf("a missing file is not a bad spec: %v", err)
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q should wrap ErrNotExist and name %s", err, missing)
	}
}

// TestLoadErrorsNameTheirFile: errors in the main file and in drop-ins are
// all reported, each with its own file.
func TestLoadErrorsNameTheirFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"config.yaml":        "mirrors:\n  docker.io:\n    endpoints: []\n",
		"conf.d/10-bad.yaml": "configs:\n  r.example.com:\n    auth:\n      username: admin\n      password: \"" + testPassword + "\"\n      identitytoken: tok-" + testPassword + "\n",
		"conf.d/20-ok.yaml":  "backups: {keep: 2}\n",
		"conf.d/30-bad.yaml": "backups: {keep: -1}\n",
	})
	_, err := Load(filepath.Join(dir, "config.yaml"), opts())
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is not spec.Errors", err)
	}
	want := []string{
		filepath.Join(dir, "config.yaml") + ":3:5",
		filepath.Join(dir, "conf.d/10-bad.yaml") + ":6:7",
		filepath.Join(dir, "conf.d/30-bad.yaml") + ":1:17",
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Pos.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors at\n%q\nwant\n%q\n%v", got, want, err)
	}
	for _, leak := range leakForms() {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error contains the secret %q", leak)
		}
	}
}
