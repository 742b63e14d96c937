package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/internal/testpki"
)

// A central config names a password file by a relative path: it is found in
// the node's config directory, and the node's drop-ins are merged over it.
func TestLoadCentralResolvesAgainstTheNode(t *testing.T) {
	node := writeFiles(t, map[string]string{
		"secrets/nexus": testPassword + "\n",
		"ca.crt":        testpki.CA,
		"conf.d/10-local.yaml": `engines:
  demo:
    unit: demo-custom.service
`,
	})
	const name = "https://config.example.com/fleet/mirrors.yaml"
	central := `mirrors:
  docker.io:
    endpoint: [https://nexus.example.com:8443]
configs:
  nexus.example.com:8443:
    auth:
      username: node-puller
      password_file: secrets/nexus
    tls:
      ca_file: ca.crt
`
	s, err := LoadCentral(name, []byte(central), node, opts())
	if err != nil {
		t.Fatal(err)
	}
	c := s.Configs["nexus.example.com:8443"]
	if got := c.Auth.Password.Reveal(); got != testPassword {
		t.Errorf("password %q, want the node's file without its newline", got)
	}
	if c.Auth.PasswordFile != filepath.Join(node, "secrets/nexus") || string(c.TLS.CA) != testpki.CA {
		t.Errorf("references resolved to %s and %s, want under %s", c.Auth.PasswordFile, c.TLS.CAFile, node)
	}
	if c.Pos.File != name {
		t.Errorf("position in %q, want the central name", c.Pos.File)
	}
	if d, _ := s.Engine("demo").Settings.(demo); d.Unit != "demo-custom.service" {
		t.Errorf("drop-in not merged: unit %q", d.Unit)
	}
	want := []string{name, filepath.Join(node, "conf.d/10-local.yaml")}
	if !slices.Equal(s.Files, want) {
		t.Errorf("Files %q, want %q", s.Files, want)
	}
}

// The same bytes loaded as a local main spec and as a central one give the
// same spec: watch with a file source applies what sync would.
func TestLoadCentralEqualsLoad(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"config.yaml":            centralSpec,
		"ca.crt":                 testpki.CA,
		"conf.d/20-local.yaml":   "mirrors:\n  docker.io:\n    endpoint: [https://local.example.com]\n",
		"conf.d/10-secrets.yaml": "backups: {keep: 3}\n",
	})
	main := filepath.Join(dir, "config.yaml")
	want, err := Load(main, opts())
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadCentral(main, []byte(centralSpec), dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, cmpSpec()); d != "" || !slices.Equal(want.Files, got.Files) {
		t.Errorf("LoadCentral differs from Load (-Load +LoadCentral):\n%s", d)
	}
}

// Errors carry the central name for the central part and the drop-in's path
// for the node's part, and a missing secret on the node is a spec error.
func TestLoadCentralErrors(t *testing.T) {
	node := writeFiles(t, map[string]string{"conf.d/30-bad.yaml": "backups: {keep: -1}\n"})
	const name = "https://config.example.com/mirrors.yaml"
	central := "configs:\n  r.example.com:\n    auth:\n      username: u\n      password_file: secrets/missing\n"
	_, err := LoadCentral(name, []byte(central), node, opts())
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is not spec.Errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Pos.String())
	}
	want := []string{name + ":5:22", filepath.Join(node, "conf.d/30-bad.yaml") + ":1:17"}
	if !slices.Equal(got, want) {
		t.Errorf("errors at %q, want %q\n%v", got, want, err)
	}
	if !strings.Contains(err.Error(), filepath.Join(node, "secrets/missing")) {
		t.Errorf("error does not name the node's path:\n%v", err)
	}
}

// serial: is the central config's: a node's drop-in cannot set it, under
// Load or LoadCentral.
func TestSerialIsTheMainDocuments(t *testing.T) {
	node := writeFiles(t, map[string]string{
		"config.yaml":         "serial: 7\n",
		"conf.d/50-node.yaml": "serial: 99\n",
	})
	dropIn := filepath.Join(node, "conf.d/50-node.yaml") + ":1:1: serial: a drop-in cannot set the serial"
	for name, load := range map[string]func() (*Spec, error){
		"Load":        func() (*Spec, error) { return Load(filepath.Join(node, "config.yaml"), Options{}) },
		"LoadCentral": func() (*Spec, error) { return LoadCentral("central.yaml", []byte("serial: 7\n"), node, Options{}) },
	} {
		if _, err := load(); err == nil || !strings.Contains(err.Error(), dropIn) {
			t.Errorf("%s: %v, want %q", name, err, dropIn)
		}
	}
	if err := os.Remove(filepath.Join(node, "conf.d/50-node.yaml")); err != nil {
		t.Fatal(err)
	}
	if s, err := LoadCentral("central.yaml", []byte("serial: 7\n"), node, Options{}); err != nil || s.Serial != 7 {
		t.Errorf("LoadCentral: serial %v, %v; want 7", s, err)
	}
}

// Serial reads the serial alone, as Parse would.
func TestSerial(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want int64
		err  string
	}{
		{"serial: 12\nmirrors: {}\n", 12, ""},
		{"mirrors:\n  docker.io: {endpoint: [https://m.example.com]}\n", 0, ""},
		{"# nothing\n", 0, ""},
		{"base: &b {serial: 5}\n<<: *b\n", 5, ""}, // merge keys count, as in Parse
		{"serial: 0\n", 0, "c.yaml:1:9: serial: 0 is less than 1"},
		{"serial: 3\nserial: 4\n", 0, `duplicate key "serial"`},
		{"serial: [3\n", 0, "invalid YAML"},
		{"- serial: 3\n", 0, "expected a mapping"},
	} {
		got, err := Serial("c.yaml", []byte(tc.doc))
		if got != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Serial(%q) = %d, %v; want %d, %q", tc.doc, got, err, tc.want, tc.err)
		}
	}
}
