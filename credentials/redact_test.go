package credentials

import (
	"fmt"
	"strings"
	"testing"
)

func TestRedactorString(t *testing.T) {
	r := NewRedactor("s3cr3t", "s3cr3t-longer", "ab")
	got := r.String("a s3cr3t-longer b s3cr3t c ab")
	if strings.Contains(got, "s3cr3t") {
		t.Fatalf("secret left in %q", got)
	}
	if want := "a <redacted> b <redacted> c ab"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestRedactorLines(t *testing.T) {
	in := strings.Join([]string{
		`        auth = "dXNlcjpvbGRwYXNz"`,
		`  password: hunter22`,
		`      "auth": "dXNlcjpwYXNz",`,
		`  Authorization = "Basic dXNlcjpwYXNz"`,
		`  identity_token: tok123`,
		`  "auths": {`,
		`  username: alice`,
		`  config_path = "/etc/containerd/certs.d"`,
	}, "\n")
	got := NewRedactor().Lines(in)
	for _, leaked := range []string{"dXNlcjpvbGRwYXNz", "hunter22", "dXNlcjpwYXNz", "tok123"} {
		if strings.Contains(got, leaked) {
			t.Errorf("%q left in:\n%s", leaked, got)
		}
	}
	for _, kept := range []string{`"auths": {`, "username: alice", `config_path = "/etc/containerd/certs.d"`, `"auth": "<redacted>",`} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q lost from:\n%s", kept, got)
		}
	}
}

func TestBasicAuthHasNoNewline(t *testing.T) {
	got := BasicAuth("user", NewSecret("pa:ss $wörd")).Reveal()
	if want := "dXNlcjpwYTpzcyAkd8O2cmQ="; got != want {
		t.Fatalf("BasicAuth = %q, want %q", got, want)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret("hunter22")
	for _, out := range []string{s.String(), s.GoString()} {
		if strings.Contains(out, "hunter22") {
			t.Fatalf("secret printed: %q", out)
		}
	}
	b, _ := s.MarshalJSON()
	if strings.Contains(string(b), "hunter22") {
		t.Fatalf("secret marshalled: %s", b)
	}
}

func TestSecretNoVerbPrints(t *testing.T) {
	s := NewSecret("hunter22")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%t", "%10s"} {
		if out := fmt.Sprintf(verb, s); strings.Contains(out, "hunter22") || strings.Contains(out, "68756e746572") {
			t.Errorf("%s printed the secret: %q", verb, out)
		}
	}
}
