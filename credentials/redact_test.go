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

// The shortcut for text holding no secret gives what replacing every
// value in turn gives, on text made of pieces of the secrets themselves.
func TestRedactorStringAsEveryReplacement(t *testing.T) {
	values := []string{"pässwörd", "user:pässwörd", "dXNlcjpw", "abc", "bcd", "s3cret-1", "s3cret-10", "xyz"}
	r := NewRedactor(values...)
	reference := func(s string) string {
		for _, v := range r.values {
			s = strings.ReplaceAll(s, v, Redacted)
		}
		return s
	}
	pieces := []string{"", " ", "a", "b", "c", "d", "ab", "bc", "cd", "user:", "päss", "wörd", "s3cret-", "1", "0", "x", "yz", "dXNl", "cjpw", "\n", "<redacted>"}
	seed := uint32(1)
	next := func(n int) int {
		seed = seed*1664525 + 1013904223
		return int(seed>>8) % n
	}
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		for j := next(12); j > 0; j-- {
			if next(4) == 0 {
				b.WriteString(values[next(len(values))])
			} else {
				b.WriteString(pieces[next(len(pieces))])
			}
		}
		s := b.String()
		if got, want := r.String(s), reference(s); got != want {
			t.Fatalf("String(%q) = %q, want %q", s, got, want)
		}
	}
	if s := "a warning about registry7.example.com, no secret in it"; r.String(s) != s {
		t.Errorf("text without secrets changed: %q", r.String(s))
	}
}
