package spec

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirrorctl/mirrorctl/internal/testpki"
)

// TestParseErrors: each case holds one mistake. It must be reported as the
// only error, (a) at the exact file:line:col, (b) with the message and the
// hint, and (c) without any form of the password the fixtures carry.
// "NAME" in msg stands for the spec's path.
func TestParseErrors(t *testing.T) {
	pw := testPassword
	tests := []struct {
		name      string
		spec      string
		files     map[string]string
		env       map[string]string
		pos       string // line:col
		msg, hint string
	}{
		// The file as a whole.
		{name: "unknown_top_key", spec: "mirror:\n  docker.io: {}\n",
			pos: "1:1", msg: `unknown key "mirror"`, hint: "did you mean mirrors?"},
		{name: "top_not_mapping", spec: "- docker.io\n",
			pos: "1:1", msg: "expected a mapping at the top of the file, got a list", hint: "mirrors, configs, engines and backups"},
		{name: "unquoted_wildcard", spec: "mirrors:\n  *:\n    endpoint: [m.example.com]\n",
			pos: "2:1", msg: "invalid YAML", hint: `quote the wildcard: "*":`},
		{name: "tab_indent", spec: "mirrors:\n\tdocker.io: {}\n",
			pos: "2:1", msg: "invalid YAML", hint: "tabs"},
		{name: "two_documents", spec: "mirrors: {}\n---\nconfigs: {}\n",
			pos: "2:1", msg: "more than one YAML document", hint: "conf.d"},
		{name: "duplicate_top_key", spec: "mirrors: {}\nmirrors: {}\n",
			pos: "2:1", msg: `duplicate key "mirrors" (first at NAME:1:1)`, hint: "keep one"},

		// mirrors:
		{name: "mirrors_not_mapping", spec: "mirrors: [docker.io]\n",
			pos: "1:10", msg: "mirrors: expected a mapping, got a list"},
		{name: "registry_with_scheme", spec: "mirrors:\n  \"https://docker.io\":\n    endpoint: [m.example.com]\n",
			pos: "2:3", msg: "must not have a scheme", hint: "write the host only: docker.io"},
		{name: "registry_with_path", spec: "mirrors:\n  docker.io/library: {}\n",
			pos: "2:3", msg: "not a URL path", hint: "write the host only: docker.io"},
		{name: "registry_bad_port", spec: "mirrors:\n  registry.example.com:99999: {}\n",
			pos: "2:3", msg: "invalid port", hint: "1 to 65535"},
		{name: "registry_userinfo", spec: "mirrors:\n  admin:" + pw + "@docker.io: {}\n",
			pos: "2:3", msg: `"***@docker.io" must not contain credentials`, hint: "configs.<host>.auth"},
		{name: "duplicate_registry", spec: "mirrors:\n  docker.io: {}\n  quay.io: {}\n  docker.io: {}\n",
			pos: "4:3", msg: `duplicate key "docker.io" (first at NAME:2:3)`},
		{name: "mirror_not_mapping", spec: "mirrors:\n  docker.io: [m.example.com]\n",
			pos: "2:14", msg: "mirrors.docker.io: expected a mapping, got a list"},
		{name: "mirror_unknown_key", spec: "mirrors:\n  docker.io:\n    endpoints: [m.example.com]\n",
			pos: "3:5", msg: `unknown key "endpoints" in mirrors.docker.io`, hint: "did you mean endpoint?"},
		{name: "mirror_unknown_key_typo", spec: "mirrors:\n  docker.io:\n    endpiont: [m.example.com]\n",
			pos: "3:5", msg: `unknown key "endpiont"`, hint: "did you mean endpoint?"},
		{name: "mirror_unknown_key_far", spec: "mirrors:\n  docker.io:\n    priority: 1\n",
			pos: "3:5", msg: `unknown key "priority"`, hint: "known keys: endpoint, rewrite, capabilities, upstream_fallback, dial_timeout"},
		{name: "endpoint_not_list", spec: "mirrors:\n  docker.io:\n    endpoint: https://m.example.com\n",
			pos: "3:15", msg: "endpoint: expected a list of strings, got a string", hint: `endpoint: ["https://mirror.example.com"]`},
		{name: "endpoint_item_not_string", spec: "mirrors:\n  docker.io:\n    endpoint:\n      - {url: m.example.com}\n",
			pos: "4:9", msg: "expected a string, got a mapping"},
		{name: "endpoint_userinfo", spec: "mirrors:\n  docker.io:\n    endpoint: [\"https://admin:" + pw + "@m.example.com/v2\"]\n",
			pos: "3:16", msg: `endpoint "https://***@m.example.com/v2": credentials must not be in the URL`, hint: "configs.<host>.auth"},
		{name: "endpoint_userinfo_hint_password_file", spec: "mirrors:\n  docker.io:\n    endpoint:\n      - admin:" + pw + "@m.example.com\n",
			pos: "4:9", msg: `endpoint "***@m.example.com"`, hint: "password_file"},
		{name: "endpoint_scheme", spec: "mirrors:\n  docker.io:\n    endpoint: [\"ftp://m.example.com\"]\n",
			pos: "3:16", msg: `scheme "ftp" is not supported`, hint: "https://"},
		{name: "endpoint_query", spec: "mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com/v2?ns=docker.io\"]\n",
			pos: "3:16", msg: "must not have a query string", hint: "?ns="},
		{name: "endpoint_fragment", spec: "mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com/v2#top\"]\n",
			pos: "3:16", msg: "must not have a fragment"},
		{name: "endpoint_no_host", spec: "mirrors:\n  docker.io:\n    endpoint: [\"https:///v2\"]\n",
			pos: "3:16", msg: "has no host", hint: "https://mirror.example.com"},
		{name: "endpoint_empty", spec: "mirrors:\n  docker.io:\n    endpoint: [\"\"]\n",
			pos: "3:16", msg: "empty endpoint"},
		{name: "endpoint_bad_port", spec: "mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com:0/v2\"]\n",
			pos: "3:16", msg: "invalid port"},
		{name: "endpoint_empty_port", spec: "mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com:/v2\"]\n",
			pos: "3:16", msg: "empty port"},
		{name: "endpoint_space", spec: "mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com /v2\"]\n",
			pos: "3:16", msg: "whitespace"},
		{name: "rewrite_bad_regex", spec: "mirrors:\n  docker.io:\n    endpoint: [m.example.com]\n    rewrite:\n      \"^(?!x)(.*)\": \"m/$1\"\n",
			pos: "5:7", msg: "rewrite:", hint: "RE2"},
		{name: "rewrite_not_mapping", spec: "mirrors:\n  docker.io:\n    rewrite: [\"^a\"]\n",
			pos: "3:14", msg: "rewrite: expected a mapping, got a list"},
		{name: "capabilities_unknown", spec: "mirrors:\n  docker.io:\n    capabilities: [pull, fetch]\n",
			pos: "3:26", msg: `unknown capability "fetch"`, hint: "pull, resolve, push"},
		{name: "capabilities_empty", spec: "mirrors:\n  docker.io:\n    capabilities: []\n",
			pos: "3:19", msg: "capabilities: empty list", hint: "default [pull, resolve]"},
		{name: "capabilities_duplicate", spec: "mirrors:\n  docker.io:\n    capabilities: [pull, resolve, pull]\n",
			pos: "3:35", msg: `duplicate "pull" (first at NAME:3:20)`},
		{name: "capabilities_string", spec: "mirrors:\n  docker.io:\n    capabilities: pull\n",
			pos: "3:19", msg: "expected a list of strings, got a string"},
		{name: "upstream_fallback_not_bool", spec: "mirrors:\n  docker.io:\n    upstream_fallback: sometimes\n",
			pos: "3:24", msg: "upstream_fallback: expected a boolean, got a string", hint: "true or false"},
		{name: "dial_timeout_number", spec: "mirrors:\n  docker.io:\n    dial_timeout: 3\n",
			pos: "3:19", msg: "dial_timeout: expected a duration, got a number", hint: `"3s"`},
		{name: "dial_timeout_bad", spec: "mirrors:\n  docker.io:\n    dial_timeout: 3 sec\n",
			pos: "3:19", msg: `"3 sec" is not a duration`},
		{name: "dial_timeout_negative", spec: "mirrors:\n  docker.io:\n    dial_timeout: -1s\n",
			pos: "3:19", msg: "must be positive"},

		// configs:
		{name: "config_host_scheme", spec: "configs:\n  \"https://nexus.example.com:8443\":\n    tls: {insecure_skip_verify: true}\n",
			pos: "2:3", msg: "configs: host", hint: "write the host only: nexus.example.com:8443"},
		{name: "config_host_path", spec: "configs:\n  nexus.example.com/repository/docker-group: {}\n",
			pos: "2:3", msg: "not a URL path", hint: "nexus.example.com"},
		{name: "config_host_ipv6_unbracketed", spec: "configs:\n  \"fd00::1\": {}\n",
			pos: "2:3", msg: "not host[:port]", hint: "brackets"},
		{name: "config_unknown_key", spec: "configs:\n  r.example.com:\n    credentials: {}\n",
			pos: "3:5", msg: `unknown key "credentials" in configs.r.example.com`, hint: "known keys: auth, tls"},
		{name: "config_auth_is_string", spec: "configs:\n  r.example.com:\n    auth: " + b64("admin:"+pw) + "\n",
			pos: "3:11", msg: "auth: expected a mapping, got a string"},
		{name: "identitytoken", spec: "configs:\n  r.example.com:\n    auth:\n      identitytoken: tok-" + pw + "\n",
			pos: "4:7", msg: `unknown key "identitytoken" in auth`, hint: "the key is identity_token"},
		{name: "token_old_docs", spec: "configs:\n  r.example.com:\n    auth:\n      token: tok-" + pw + "\n",
			pos: "4:7", msg: `unknown key "token"`, hint: "auth (base64 of user:password) or identity_token"},
		{name: "password_camel_case", spec: "configs:\n  r.example.com:\n    auth:\n      passwordFile: pw\n",
			pos: "4:7", msg: `unknown key "passwordFile"`, hint: "the key is password_file"},
		{name: "duplicate_auth_key", spec: "configs:\n  r.example.com:\n    auth:\n      username: admin\n      password: " + pw + "\n      username: other\n",
			pos: "6:7", msg: `duplicate key "username" (first at NAME:4:7)`},
		{name: "auth_not_base64", spec: "configs:\n  r.example.com:\n    auth:\n      auth: \"" + pw + "\"\n",
			pos: "4:13", msg: "auth is not valid base64", hint: "printf %s 'user:pass' | base64"},
		{name: "auth_trailing_newline", spec: "configs:\n  r.example.com:\n    auth:\n      auth: " + b64("admin:"+pw+"\n") + "\n",
			pos: "4:13", msg: "ending in a newline", hint: "encode it with printf %s 'user:pass' | base64, or mirrorctl auth encode"},
		{name: "auth_no_colon", spec: "configs:\n  r.example.com:\n    auth:\n      auth: " + b64("admin"+pw) + "\n",
			pos: "4:13", msg: "no colon", hint: "printf %s"},
		{name: "auth_empty_user", spec: "configs:\n  r.example.com:\n    auth:\n      auth: " + b64(":"+pw) + "\n",
			pos: "4:13", msg: "empty user name"},
		{name: "auth_block_scalar", spec: "configs:\n  r.example.com:\n    auth:\n      auth: |\n        " + b64("admin:"+pw) + "\n",
			pos: "4:13", msg: "auth contains whitespace", hint: "one line"},
		{name: "username_without_password", spec: "configs:\n  r.example.com:\n    auth:\n      username: admin\n",
			pos: "4:7", msg: "username without a password", hint: "password_file"},
		{name: "password_without_username", spec: "configs:\n  r.example.com:\n    auth:\n      password: " + pw + "\n",
			pos: "4:7", msg: "password without a username", hint: "add username"},
		{name: "empty_username", spec: "configs:\n  r.example.com:\n    auth:\n      username: \"\"\n      password: " + pw + "\n",
			pos: "4:17", msg: "username is empty"},
		{name: "two_password_sources", spec: "configs:\n  r.example.com:\n    auth:\n      username: admin\n      password_file: pw\n      password: " + pw + "\n",
			files: map[string]string{"pw": pw},
			pos:   "6:7", msg: "both password and password_file are set", hint: "keep one of password, password_file and password_env"},
		{name: "username_and_auth", spec: "configs:\n  r.example.com:\n    auth:\n      username: admin\n      password: " + pw + "\n      auth: " + b64("admin:"+pw) + "\n",
			pos: "6:7", msg: "username and auth are different kinds of credentials", hint: "or auth, or identity_token"},
		{name: "auth_and_identity_token", spec: "configs:\n  r.example.com:\n    auth:\n      identity_token: tok-" + pw + "\n      auth: " + b64("admin:"+pw) + "\n",
			pos: "5:7", msg: "auth and identity_token are different kinds"},
		{name: "password_file_missing", spec: "configs:\n  r.example.com:\n    auth:\n      username: admin\n      password_file: secrets/nexus\n",
			pos: "5:22", msg: "password_file: open NAMEDIR/secrets/nexus: no such file or directory", hint: "mirrorctl's own filesystem (not under --root)"},
		{name: "password_file_empty", spec: "configs:\n  r.example.com:\n    auth:\n      username: admin\n      password_file: pw\n",
			files: map[string]string{"pw": "\n"},
			pos:   "5:22", msg: "password_file NAMEDIR/pw is empty"},
		{name: "password_env_unset", spec: "configs:\n  r.example.com:\n    auth:\n      username: admin\n      password_env: NEXUS_PW\n",
			env: map[string]string{"OTHER": pw},
			pos: "5:21", msg: "environment variable NEXUS_PW is not set", hint: "EnvironmentFile="},
		{name: "password_env_empty", spec: "configs:\n  r.example.com:\n    auth:\n      username: admin\n      password_env: NEXUS_PW\n",
			env: map[string]string{"NEXUS_PW": ""},
			pos: "5:21", msg: "environment variable NEXUS_PW is empty"},
		{name: "password_not_string", spec: "configs:\n  r.example.com:\n    auth:\n      username: admin\n      password: [" + pw + "]\n",
			pos: "5:17", msg: "password: expected a string, got a list"},
		{name: "tls_cert_without_key", spec: "configs:\n  r.example.com:\n    tls:\n      cert_file: c.pem\n",
			files: map[string]string{"c.pem": testpki.ClientCert},
			pos:   "4:7", msg: "cert_file without key_file", hint: "add key_file"},
		{name: "tls_key_without_cert", spec: "configs:\n  r.example.com:\n    tls:\n      key_file: k.pem\n",
			files: map[string]string{"k.pem": testpki.ClientKey},
			pos:   "4:7", msg: "key_file without cert_file", hint: "add cert_file"},
		{name: "tls_ca_missing", spec: "configs:\n  r.example.com:\n    tls:\n      ca_file: /nonexistent/ca.crt\n",
			pos: "4:16", msg: "ca_file: open /nonexistent/ca.crt: no such file or directory", hint: "not under --root"},
		{name: "tls_key_missing", spec: "configs:\n  r.example.com:\n    tls:\n      cert_file: c.pem\n      key_file: k.pem\n",
			files: map[string]string{"c.pem": testpki.ClientCert},
			pos:   "5:17", msg: "key_file: open NAMEDIR/k.pem"},
		{name: "tls_ca_empty_file", spec: "configs:\n  r.example.com:\n    tls:\n      ca_file: ca.crt\n",
			files: map[string]string{"ca.crt": ""},
			pos:   "4:16", msg: "ca_file: NAMEDIR/ca.crt is empty"},
		{name: "tls_insecure_alias", spec: "configs:\n  r.example.com:\n    tls:\n      insecure: true\n",
			pos: "4:7", msg: `unknown key "insecure" in tls`, hint: "did you mean insecure_skip_verify?"},
		{name: "tls_ca_alias", spec: "configs:\n  r.example.com:\n    tls:\n      ca: ca.crt\n",
			pos: "4:7", msg: `unknown key "ca"`, hint: "did you mean ca_file?"},
		{name: "tls_insecure_not_bool", spec: "configs:\n  r.example.com:\n    tls:\n      insecure_skip_verify: \"maybe\"\n",
			pos: "4:29", msg: "insecure_skip_verify: expected a boolean"},

		// engines: and backups:
		{name: "engine_unknown", spec: "engines:\n  dem: {}\n",
			pos: "2:3", msg: `unknown engine "dem" in engines`, hint: "did you mean demo?"},
		{name: "engine_not_mapping", spec: "engines:\n  demo: true\n",
			pos: "2:9", msg: "engines.demo: expected a mapping, got a boolean"},
		{name: "enabled_bad", spec: "engines:\n  demo:\n    enabled: maybe\n",
			pos: "3:14", msg: `enabled: expected auto, true or false, got "maybe"`, hint: "write auto, true or false"},
		{name: "section_unknown_key", spec: "engines:\n  demo:\n    paht: /x\n",
			pos: "3:5", msg: `unknown key "paht" in engines.demo`, hint: "did you mean path?"},
		{name: "path_relative", spec: "engines:\n  demo:\n    path: etc/demo.conf\n",
			pos: "3:11", msg: `path: "etc/demo.conf" is not an absolute path`, hint: "/etc/demo.conf"},
		{name: "path_not_string", spec: "engines:\n  demo:\n    path: {p: /etc/demo.conf}\n",
			pos: "3:11", msg: "path: expected a string, got a mapping"},
		{name: "int_string", spec: "engines:\n  demo:\n    n: three\n",
			pos: "3:8", msg: "n: expected a whole number, got a string"},
		{name: "enum_bad", spec: "engines:\n  demo:\n    mode: quick\n",
			pos: "3:11", msg: `mode: unknown value "quick"`, hint: "fast, slow"},
		{name: "unit_bad", spec: "engines:\n  demo:\n    unit: /lib/systemd/system/demo.service\n",
			pos: "3:11", msg: "is not a unit name", hint: "demo.service"},
		{name: "list_string", spec: "engines:\n  demo:\n    list: root\n",
			pos: "3:11", msg: "list: expected a list of strings, got a string"},
		{name: "backups_keep_zero", spec: "backups:\n  keep: 0\n",
			pos: "2:9", msg: "keep: 0 is less than 1", hint: "at least 1"},
		{name: "backups_keep_string", spec: "backups:\n  keep: ten\n",
			pos: "2:9", msg: "keep: expected a whole number, got a string"},
		{name: "backups_unknown", spec: "backups:\n  retain: 3\n",
			pos: "2:3", msg: `unknown key "retain" in backups`, hint: "did you mean keep?"},
		// serial:
		{name: "serial_string", spec: "serial: \"42\"\n",
			pos: "1:9", msg: "serial: expected a whole number from 1 to 9223372036854775807, got a string", hint: "serial: 42"},
		{name: "serial_float", spec: "serial: 4.2\n",
			pos: "1:9", msg: "serial: expected a whole number"},
		{name: "serial_too_large", spec: "serial: 9223372036854775808\n",
			pos: "1:9", msg: "serial: expected a whole number"},
		{name: "serial_zero", spec: "serial: 0\n",
			pos: "1:9", msg: "serial: 0 is less than 1", hint: "grows with each config"},
		{name: "serial_negative", spec: "serial: -3\n",
			pos: "1:9", msg: "serial: -3 is less than 1"},
		{name: "serial_typo", spec: "serail: 3\n",
			pos: "1:1", msg: `unknown key "serail"`, hint: "did you mean serial?"},
		{name: "merge_key_not_mapping", spec: "mirrors:\n  docker.io:\n    <<: [1]\n",
			pos: "3:10", msg: "merge key (<<) expects a mapping, got a number"},
	}
	root := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFilesIn(t, filepath.Join(root, tt.name), tt.files)
			name := filepath.Join(dir, "spec.yaml")
			s, err := Parse(name, []byte(tt.spec), envOpts(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded (%d mirrors), want an error", len(s.Mirrors))
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %q (%T) is not spec.Errors", err, err)
			}
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(errs), err)
			}
			e := errs[0]
			got := e.Error()
			expand := strings.NewReplacer("NAMEDIR", dir, "NAME", name)
			if prefix := name + ":" + tt.pos + ": "; !strings.HasPrefix(got, prefix) {
				t.Errorf("error %q\ndoes not start with %q", got, prefix)
			}
			if msg := expand.Replace(tt.msg); !strings.Contains(e.Msg, msg) {
				t.Errorf("message %q\ndoes not contain %q", e.Msg, msg)
			}
			if !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("hint %q does not contain %q", e.Hint, tt.hint)
			}
			if tt.hint != "" && !strings.HasSuffix(got, "; "+e.Hint) {
				t.Errorf("error %q does not end with its hint", got)
			}
			for _, leak := range leakForms() {
				if strings.Contains(got, leak) {
					t.Errorf("error %q contains the secret %q", got, leak)
				}
			}
		})
	}
}

// TestParseCollectsAllErrors: one run reports every mistake, in file order,
// rather than stopping at the first.
func TestParseCollectsAllErrors(t *testing.T) {
	const spec = `mirrors:
  docker.io:
    endpoints: [m.example.com]
    endpoint: ["ftp://m.example.com"]
configs:
  r.example.com:
    auth:
      identitytoken: x
engines:
  demo: {mode: 4}
backups: {keep: 0}
`
	_, err := Parse("spec.yaml", []byte(spec), opts())
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is not spec.Errors", err)
	}
	want := []string{"spec.yaml:3:5", "spec.yaml:4:16", "spec.yaml:8:7", "spec.yaml:10:16", "spec.yaml:11:17"}
	var got []string
	for _, e := range errs {
		got = append(got, e.Pos.String())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("errors at %v, want %v:\n%v", got, want, err)
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(want) {
		t.Errorf("Error() has %d lines, want one per error:\n%v", lines, err)
	}
	var first *Error
	if !errors.As(err, &first) || first != errs[0] {
		t.Errorf("errors.As(*Error) = %v, want the first error", first)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Pos{"a.yaml", 3, 5}, "bad", "write good"}, "a.yaml:3:5: bad; write good"},
		{Error{Pos{"a.yaml", 3, 5}, "bad", ""}, "a.yaml:3:5: bad"},
		{Error{Pos{"a.yaml", 0, 0}, "bad", ""}, "a.yaml: bad"},
		{Error{Pos{}, "bad", "x"}, "bad; x"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestSuggestKey(t *testing.T) {
	mirror := []string{"endpoint", "rewrite", "capabilities", "upstream_fallback", "dial_timeout"}
	tests := []struct {
		key   string
		known []string
		want  string
	}{
		{"endpoints", mirror, "did you mean endpoint?"},
		{"Endpoint", mirror, "the key is endpoint"},
		{"dial-timeout", mirror, "the key is dial_timeout"},
		{"rewirte", mirror, "did you mean rewrite?"},
		{"timeout", mirror, "did you mean dial_timeout?"},
		// An alias whose target is not a key here is no suggestion.
		{"insecure", mirror, "known keys: endpoint, rewrite, capabilities, upstream_fallback, dial_timeout"},
		{"x", mirror, "known keys:"},
	}
	for _, tt := range tests {
		if got := suggestKey(tt.key, tt.known); !strings.HasPrefix(got, tt.want) {
			t.Errorf("suggestKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
