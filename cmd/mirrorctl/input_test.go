package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReferencedFileTooLargeIsTheReadersError: a ca_file or password_file
// over the size bound is reported as the read that refused it, not as the
// spec file's own size error.
func TestReferencedFileTooLargeIsTheReadersError(t *testing.T) {
	h := newHost(t)
	big := h.write("big.pem", strings.Repeat("a", 1<<20+1))
	spec := h.write("spec.yaml", "configs:\n  m.example:\n    tls:\n      ca_file: "+big+"\n")
	code, _, errOut := h.run("", "--config", spec, "validate")
	if code != exitInput || !strings.Contains(errOut, "spec.yaml:4:") || !strings.Contains(errOut, "ca_file: read "+big) ||
		strings.Contains(errOut, "spec file") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
}

// Bad input gets a clear error naming the place, a distinct exit code, and
// changes nothing under the root.
func TestBadInputChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		wantCode   int
		wantErr    []string
	}{
		{"unknown_key", "mirrors:\n  docker.io:\n    endpoints: [\"https://m.example\"]\n", exitInput,
			[]string{"spec.yaml:3:5", "endpoint"}},
		{"identitytoken_is_not_ignored", "configs:\n  m.example:\n    auth:\n      identitytoken: abc\n", exitInput,
			[]string{"spec.yaml:4:7", "identity_token"}},
		{"bad_url_scheme", "mirrors:\n  docker.io:\n    endpoint: [\"ftp://m.example\"]\n", exitInput,
			[]string{"spec.yaml:3:"}},
		{"credentials_in_url", "mirrors:\n  docker.io:\n    endpoint: [\"https://bob:hunter2hunter@m.example\"]\n", exitInput,
			[]string{"spec.yaml:3:", "configs"}},
		{"duplicate_registry", "mirrors:\n  docker.io:\n    endpoint: [\"https://a.example\"]\n  docker.io:\n    endpoint: [\"https://b.example\"]\n", exitInput,
			[]string{"spec.yaml:4:3", "docker.io"}},
		{"unreadable_secret_file", "configs:\n  m.example:\n    auth:\n      username: u\n      password_file: /nonexistent/secret\n", exitInput,
			[]string{"spec.yaml:5:", "/nonexistent/secret"}},
		{"wrong_type", "mirrors:\n  docker.io:\n    endpoint: \"https://m.example\"\n", exitInput,
			[]string{"spec.yaml:3:"}},
		{"too_large", "mirrors: {}\n" + strings.Repeat("# a spec of thousands of registries\n", 30000), exitInput,
			[]string{"spec.yaml: more than the 1048576 bytes a spec file may have", "conf.d/*.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			before := h.snapshot()
			spec := h.write("spec.yaml", tc.spec)
			for _, cmd := range []string{"validate", "plan", "sync"} {
				code, out, errOut := h.run("", "--config", spec, cmd)
				if code != tc.wantCode {
					t.Errorf("%s: exit %d, want %d\n%s%s", cmd, code, tc.wantCode, out, errOut)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(errOut, w) {
						t.Errorf("%s: stderr lacks %q:\n%s", cmd, w, errOut)
					}
				}
				if strings.Contains(out+errOut, "hunter2hunter") {
					t.Errorf("%s: the password in the URL was printed", cmd)
				}
			}
			if d := cmp.Diff(before, h.snapshot()); d != "" {
				t.Errorf("files changed (-before +after):\n%s", d)
			}
		})
	}
}

// An engine file mirrorctl cannot parse is an error naming the file, and is
// never overwritten.
func TestUnparsableEngineFileIsNotOverwritten(t *testing.T) {
	h := newHost(t)
	p := filepath.Join(h.root, "etc/docker/daemon.json")
	if err := os.WriteFile(p, []byte("{\"log-driver\": \"journald\",\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := h.snapshot()
	code, _, errOut := h.run("", "--config", h.spec("https://nexus.example.internal:8443", "https://g.example.internal", "u"), "sync", "--adopt")
	if code != exitFailure || !strings.Contains(errOut, "/etc/docker/daemon.json") {
		t.Fatalf("exit %d, want %d, naming daemon.json:\n%s", code, exitFailure, errOut)
	}
	if d := cmp.Diff(before, h.snapshot()); d != "" {
		t.Errorf("files changed (-before +after):\n%s", d)
	}
}

// No secret reaches any output: plans, diffs, logs (text and JSON, debug),
// errors, in text and JSON output.
func TestNoSecretInAnyOutput(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	const user, password = "puller", "s3cret-Pässword $1"
	leaks := []string{
		password,
		base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
		base64.StdEncoding.EncodeToString([]byte(password)),
	}
	spec := h.spec("https://nexus.example.internal:8443", "https://g.example.internal", user)
	// A second spec with another password, so that diffs show the old one.
	h.write("secrets/other", "0ther-Secret-Value\n")
	spec2 := h.write("spec-other.yaml", strings.Replace(readFile(t, spec), "secrets/nexus-password", "secrets/other", 1))
	leaks = append(leaks, "0ther-Secret-Value", base64.StdEncoding.EncodeToString([]byte(user+":0ther-Secret-Value")))

	var all strings.Builder
	for _, args := range [][]string{
		{"--config", spec, "validate"},
		{"--config", spec, "plan"},
		{"--config", spec, "--output", "json", "plan"},
		{"--config", spec, "--log-level", "debug", "--log-format", "json", "sync", "--adopt"},
		{"--config", spec2, "--log-level", "debug", "plan"},
		{"--config", spec2, "--output", "json", "plan"},
		{"--config", spec2, "--log-level", "debug", "sync"},
		{"--config", spec, "--log-level", "debug", "--health-timeout", "100ms", "sync"},
		{"--config", spec, "detect"},
		{"--config", spec, "backups"},
		{"--config", spec, "rollback"},
	} {
		_, out, errOut := h.run("", args...)
		all.WriteString(out + errOut)
	}
	got := all.String()
	if !strings.Contains(got, "holds credentials: content not shown") {
		t.Fatalf("no credential file in any plan; the test no longer exercises a diff with credentials:\n%s", got)
	}
	for _, l := range leaks {
		if strings.Contains(got, l) {
			t.Errorf("output contains secret %q", l)
		}
	}
	// Every file holding the credential is private.
	for _, p := range []string{"/etc/containerd/config.toml", "/root/.docker/config.json"} {
		fi, err := os.Stat(filepath.Join(h.root, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
