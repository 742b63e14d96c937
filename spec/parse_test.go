package spec

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/credentials"

	"github.com/mirrorctl/mirrorctl/internal/testpki"
)

// base is what an empty spec parses to, spelled out so that a broken
// default fails the tests.
func base() *Spec {
	return &Spec{
		Mirrors: map[string]*Mirror{},
		Configs: map[string]*Config{},
		Engines: Engines{},
		Backups: Backups{Keep: 10},
	}
}

func with(edit func(s *Spec)) func(string) *Spec {
	return func(string) *Spec {
		s := base()
		edit(s)
		return s
	}
}

func secret(s string) credentials.Secret { return credentials.NewSecret(s) }

// TestParseValid: any registries.yaml is a valid spec. The first cases are
// the examples of the k3s docs (k3s-io/docs docs/installation/private-registry.md),
// as printed there; the rest cover the extensions and YAML forms.
func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		spec  string
		files map[string]string
		env   map[string]string
		want  func(dir string) *Spec
	}{
		{name: "empty_file", spec: "", want: with(func(*Spec) {})},
		{name: "only_comments", spec: "# no mirrors yet\n\n# really\n", want: with(func(*Spec) {})},
		{name: "document_marker_only", spec: "---\n", want: with(func(*Spec) {})},
		{name: "null_document", spec: "~\n", want: with(func(*Spec) {})},
		{name: "empty_sections", spec: "mirrors:\nconfigs: {}\nengines:\nbackups:\n", want: with(func(*Spec) {})},
		{name: "serial", spec: "serial: 42\nmirrors: {}\n", want: with(func(s *Spec) { s.Serial = 42 })},
		{name: "serial_null", spec: "serial:\n", want: with(func(*Spec) {})},
		{
			name: "k3s_docs_mirrors",
			spec: `mirrors:
  registry.example.com:
    endpoint:
      - "https://registry.example.com:5000"
`,
			want: with(func(s *Spec) {
				s.Mirrors["registry.example.com"] = &Mirror{Endpoints: []string{"https://registry.example.com:5000"}}
			}),
		},
		{
			name: "k3s_docs_rewrite",
			spec: `mirrors:
  docker.io:
    endpoint:
      - "https://registry.example.com:5000"
    rewrite:
      "^rancher/(.*)": "mirrorproject/rancher-images/$1"
`,
			want: with(func(s *Spec) {
				s.Mirrors["docker.io"] = &Mirror{
					Endpoints: []string{"https://registry.example.com:5000"},
					Rewrites:  map[string]string{"^rancher/(.*)": "mirrorproject/rancher-images/$1"},
				}
			}),
		},
		{
			name: "k3s_docs_wildcard",
			spec: `mirrors:
  "*":
    endpoint:
      - "https://registry.example.com:5000"
configs:
  "docker.io":
  "*":
    tls:
      insecure_skip_verify: true
`,
			want: with(func(s *Spec) {
				s.Mirrors["*"] = &Mirror{Endpoints: []string{"https://registry.example.com:5000"}}
				s.Configs["docker.io"] = &Config{}
				s.Configs["*"] = &Config{TLS: &TLS{InsecureSkipVerify: true}}
			}),
		},
		{
			// The docs leave the tls paths empty (null); that sets nothing.
			name: "k3s_docs_with_tls_with_auth_as_printed",
			spec: `mirrors:
  docker.io:
    endpoint:
      - "https://registry.example.com:5000"
configs:
  "registry.example.com:5000":
    auth:
      username: xxxxxx # this is the registry username
      password: xxxxxx # this is the registry password
    tls:
      cert_file: # path to the cert file used in the registry
      key_file:  # path to the key file used in the registry
      ca_file:   # path to the ca file used in the registry
`,
			want: with(func(s *Spec) {
				s.Mirrors["docker.io"] = &Mirror{Endpoints: []string{"https://registry.example.com:5000"}}
				s.Configs["registry.example.com:5000"] = &Config{Auth: &Auth{Username: "xxxxxx", Password: secret("xxxxxx")}}
			}),
		},
		{
			name: "k3s_docs_with_tls_files",
			spec: `mirrors:
  docker.io:
    endpoint:
      - "https://registry.example.com:5000"
configs:
  "registry.example.com:5000":
    auth:
      username: admin
      password: "` + testPassword + `"
    tls:
      cert_file: certs/client.cert
      key_file: certs/client.key
      ca_file: /ABS/ca.crt
`,
			files: map[string]string{"certs/client.cert": testpki.ClientCert, "certs/client.key": testpki.ClientKey, "ca.crt": testpki.CA},
			want: func(dir string) *Spec {
				s := base()
				s.Mirrors["docker.io"] = &Mirror{Endpoints: []string{"https://registry.example.com:5000"}}
				s.Configs["registry.example.com:5000"] = &Config{
					Auth: &Auth{Username: "admin", Password: secret(testPassword)},
					TLS: &TLS{
						CAFile: filepath.Join(dir, "ca.crt"), CA: []byte(testpki.CA),
						CertFile: filepath.Join(dir, "certs/client.cert"), Cert: []byte(testpki.ClientCert),
						KeyFile: filepath.Join(dir, "certs/client.key"), Key: secret(testpki.ClientKey),
					},
				}
				return s
			},
		},
		{
			name: "k3s_docs_without_tls",
			spec: `mirrors:
  docker.io:
    endpoint:
      - "http://registry.example.com:5000"
configs:
  "registry.example.com:5000":
    auth:
      username: xxxxxx # this is the registry username
      password: xxxxxx # this is the registry password
`,
			want: with(func(s *Spec) {
				s.Mirrors["docker.io"] = &Mirror{Endpoints: []string{"http://registry.example.com:5000"}}
				s.Configs["registry.example.com:5000"] = &Config{Auth: &Auth{Username: "xxxxxx", Password: secret("xxxxxx")}}
			}),
		},
		{
			name: "auth_and_identity_token",
			spec: `configs:
  registry.example.com:
    auth:
      auth: ` + b64("admin:"+testPassword) + `
  other.example.com:
    auth:
      identity_token: tok-` + testPassword + `
`,
			want: with(func(s *Spec) {
				s.Configs["registry.example.com"] = &Config{Auth: &Auth{Auth: secret(b64("admin:" + testPassword))}}
				s.Configs["other.example.com"] = &Config{Auth: &Auth{IdentityToken: secret("tok-" + testPassword)}}
			}),
		},
		{
			name: "endpoint_forms_k3s_accepts",
			spec: `mirrors:
  docker.io:
    endpoint:
      - mirror.example.com
      - mirror.example.com:5000
      - 10.0.0.1
      - 10.0.0.1:5000
      - "[fd00::1]:5000"
      - HTTPS://upper.example.com
      - localhost:5000
      - http://127.0.0.1:5000/v2
      - https://nexus.example.com/repository/docker-proxy/v2
      - nexus.example.com/repository/docker-group/v2
  "registry.example.com:5000":
    endpoint: []
  "[fd00::2]:5000":
  registry_with.under-score:
`,
			want: with(func(s *Spec) {
				s.Mirrors["docker.io"] = &Mirror{Endpoints: []string{
					"mirror.example.com", "mirror.example.com:5000", "10.0.0.1", "10.0.0.1:5000", "[fd00::1]:5000",
					"HTTPS://upper.example.com", "localhost:5000", "http://127.0.0.1:5000/v2",
					"https://nexus.example.com/repository/docker-proxy/v2", "nexus.example.com/repository/docker-group/v2",
				}}
				s.Mirrors["registry.example.com:5000"] = &Mirror{}
				s.Mirrors["[fd00::2]:5000"] = &Mirror{}
				s.Mirrors["registry_with.under-score"] = &Mirror{}
			}),
		},
		{
			// yaml.v2, which k3s uses, reads any scalar as a string and takes
			// YAML 1.1 booleans.
			name: "yaml_v2_scalars",
			spec: `configs:
  registry.example.com:
    auth:
      username: 1234
      password: 0123
    tls:
      insecure_skip_verify: yes
`,
			want: with(func(s *Spec) {
				s.Configs["registry.example.com"] = &Config{
					Auth: &Auth{Username: "1234", Password: secret("0123")},
					TLS:  &TLS{InsecureSkipVerify: true},
				}
			}),
		},
		{
			name: "anchors_and_merge_keys",
			spec: `mirrors:
  docker.io: &nexus
    endpoint: [https://nexus.example.com/repository/docker-proxy/v2]
  quay.io: *nexus
configs:
  a.example.com: &cfg
    tls:
      insecure_skip_verify: true
  b.example.com:
    <<: *cfg
    auth: {username: admin, password: x}
`,
			want: with(func(s *Spec) {
				s.Mirrors["docker.io"] = &Mirror{Endpoints: []string{"https://nexus.example.com/repository/docker-proxy/v2"}}
				s.Mirrors["quay.io"] = &Mirror{Endpoints: []string{"https://nexus.example.com/repository/docker-proxy/v2"}}
				s.Configs["a.example.com"] = &Config{TLS: &TLS{InsecureSkipVerify: true}}
				s.Configs["b.example.com"] = &Config{TLS: &TLS{InsecureSkipVerify: true}, Auth: &Auth{Username: "admin", Password: secret("x")}}
			}),
		},
		{
			name: "extensions",
			spec: `mirrors:
  docker.io:
    endpoint: [https://nexus.example.com:8443]
    capabilities: [pull, resolve, push]
    upstream_fallback: false
    dial_timeout: 1500ms
configs:
  nexus.example.com:8443:
    auth:
      username: admin
      password_env: NEXUS_PASSWORD
  nexus.example.com:
    auth:
      username: admin
      password_file: secrets/nexus
engines:
  demo:
    enabled: true
    path: /etc/demo.conf
    unit: demo.service
    mode: slow
    n: 3
    list: [root, ci]
backups:
  keep: 3
`,
			files: map[string]string{"secrets/nexus": testPassword + "\n"},
			env:   map[string]string{"NEXUS_PASSWORD": "env-" + testPassword},
			want: func(dir string) *Spec {
				s := base()
				s.Mirrors["docker.io"] = &Mirror{
					Endpoints:        []string{"https://nexus.example.com:8443"},
					Capabilities:     []string{"pull", "resolve", "push"},
					UpstreamFallback: ptr(false),
					DialTimeout:      1500 * time.Millisecond,
				}
				s.Configs["nexus.example.com:8443"] = &Config{Auth: &Auth{Username: "admin", Password: secret("env-" + testPassword), PasswordEnv: "NEXUS_PASSWORD"}}
				s.Configs["nexus.example.com"] = &Config{Auth: &Auth{Username: "admin", Password: secret(testPassword), PasswordFile: filepath.Join(dir, "secrets/nexus")}}
				s.Engines = Engines{"demo": {Enabled: On, Settings: demo{Path: "/etc/demo.conf", Unit: "demo.service", Mode: "slow", N: 3, List: []string{"root", "ci"}}}}
				s.Backups.Keep = 3
				return s
			},
		},
		{
			name: "toggle_yaml_booleans",
			spec: "engines:\n  demo: {enabled: yes}\n",
			want: with(func(s *Spec) {
				s.Engines["demo"] = &EngineSection{Enabled: On, Settings: demo{}}
			}),
		},
		{
			name: "toggle_yaml_boolean_off",
			spec: "engines:\n  demo: {enabled: off}\n",
			want: with(func(s *Spec) {
				s.Engines["demo"] = &EngineSection{Enabled: Off, Settings: demo{}}
			}),
		},
		{
			name: "toggle_auto_quoted",
			spec: "engines:\n  demo: {enabled: \"auto\"}\n",
			want: with(func(s *Spec) {
				s.Engines["demo"] = &EngineSection{Enabled: Auto, Settings: demo{}}
			}),
		},
	}
	root := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFilesIn(t, filepath.Join(root, tt.name), tt.files)
			data := []byte(replaceAbs(tt.spec, dir))
			name := filepath.Join(dir, "spec.yaml")
			got, err := Parse(name, data, envOpts(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want(dir), got, cmpSpec()); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if len(got.Files) != 1 || got.Files[0] != name {
				t.Errorf("Files = %q, want [%q]", got.Files, name)
			}
		})
	}
}

// replaceAbs lets a fixture name an absolute path inside its temp dir.
func replaceAbs(s, dir string) string {
	return strings.ReplaceAll(s, "/ABS/", dir+"/")
}

func TestParsePositions(t *testing.T) {
	const spec = `mirrors:
  docker.io:
    endpoint:
      - https://a.example.com
      - b.example.com
configs:
  a.example.com:
    tls:
      insecure_skip_verify: true
    auth: {username: admin, password: x}
`
	got, err := Parse("spec.yaml", []byte(spec), opts())
	if err != nil {
		t.Fatal(err)
	}
	p := func(l, c int) Pos { return Pos{File: "spec.yaml", Line: l, Column: c} }
	m, c := got.Mirrors["docker.io"], got.Configs["a.example.com"]
	checks := []struct {
		what      string
		got, want Pos
	}{
		{"mirror", m.Pos, p(2, 3)},
		{"endpoint 0", m.EndpointPos[0], p(4, 9)},
		{"endpoint 1", m.EndpointPos[1], p(5, 9)},
		{"config", c.Pos, p(7, 3)},
		{"tls", c.TLS.Pos, p(8, 5)},
		{"auth", c.Auth.Pos, p(10, 5)},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s at %v, want %v", ck.what, ck.got, ck.want)
		}
	}
}

// TestPasswordFileTrim: exactly one line ending is trimmed, because an
// editor or `echo pw > file` adds one, and any more is taken literally.
func TestPasswordFileTrim(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"no_newline", "pw", "pw"},
		{"one_newline", "pw\n", "pw"},
		{"crlf", "pw\r\n", "pw"},
		{"two_newlines_leave_one", "pw\n\n", "pw\n"},
		{"lone_cr_kept", "pw\r", "pw\r"},
		{"trailing_space_kept", "pw \n", "pw "},
		{"leading_newline_kept", "\npw\n", "\npw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"pw": tt.content})
			spec := "configs:\n  r.example.com:\n    auth:\n      username: u\n      password_file: pw\n"
			s, err := Parse(filepath.Join(dir, "spec.yaml"), []byte(spec), opts())
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Configs["r.example.com"].Auth.Password.Reveal(); got != tt.want {
				t.Errorf("password = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPasswordFileAbsolute(t *testing.T) {
	secrets := writeFiles(t, map[string]string{"nexus": testPassword + "\n"})
	spec := "configs:\n  r.example.com:\n    auth:\n      username: u\n      password_file: " + filepath.Join(secrets, "nexus") + "\n"
	// The spec lives elsewhere: an absolute path must not be joined to its dir.
	s, err := Parse(filepath.Join(t.TempDir(), "spec.yaml"), []byte(spec), opts())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Configs["r.example.com"].Auth.Password.Reveal(); got != testPassword {
		t.Errorf("password = %q, want the file's", got)
	}
}

func TestPasswordEnv(t *testing.T) {
	spec := "configs:\n  r.example.com:\n    auth:\n      username: u\n      password_env: REG_PW\n"
	s, err := Parse("spec.yaml", []byte(spec), envOpts(map[string]string{"REG_PW": testPassword + "\n"}))
	if err != nil {
		t.Fatal(err)
	}
	a := s.Configs["r.example.com"].Auth
	// Unlike a file, a variable is taken verbatim.
	if a.Password.Reveal() != testPassword+"\n" || a.PasswordEnv != "REG_PW" {
		t.Errorf("password %q from %q, want the variable's value from REG_PW", a.Password.Reveal(), a.PasswordEnv)
	}
	if got := a.Basic().Reveal(); got != b64("u:"+testPassword+"\n") {
		t.Errorf("Basic() = %q", got)
	}
}
