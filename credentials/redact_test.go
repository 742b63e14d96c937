package credentials

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"slices"
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
// maskedReference is what String must return, computed the slow way: every
// occurrence of every value, overlapping occurrences merged into one run,
// each run replaced by Redacted.
func maskedReference(values []string, s string) string {
	type run struct{ start, end int }
	var found []run
	for _, v := range values {
		if len(v) < 3 {
			continue
		}
		for i := 0; i+len(v) <= len(s); i++ {
			if s[i:i+len(v)] == v {
				found = append(found, run{i, i + len(v)})
			}
		}
	}
	slices.SortFunc(found, func(a, b run) int { return cmp.Or(a.start-b.start, b.end-a.end) })
	var merged []run
	for _, f := range found {
		if n := len(merged); n > 0 && f.start < merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, f.end)
			continue
		}
		merged = append(merged, f)
	}
	var b strings.Builder
	done := 0
	for _, m := range merged {
		b.WriteString(s[done:m.start] + Redacted)
		done = m.end
	}
	return b.String() + s[done:]
}

func TestRedactorMasksEveryOccurrence(t *testing.T) {
	values := []string{"pässwörd", "user:pässwörd", "dXNlcjpw", "abc", "bcd", "s3cret-1", "s3cret-10", "xyz", "ab"}
	r := NewRedactor(values...)
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
		if got, want := r.String(s), maskedReference(values, s); got != want {
			t.Fatalf("String(%q) = %q, want %q", s, got, want)
		}
	}
	if s := "a warning about registry7.example.com, no secret in it"; r.String(s) != s {
		t.Errorf("text without secrets changed: %q", r.String(s))
	}
}

// Replacing one value after another, longest first, left part of an
// occurrence that overlaps another: in "xpassword123", masking
// "password123" left the "x" of "xpass" showing.
func TestRedactorMasksOverlappingValuesWhole(t *testing.T) {
	r := NewRedactor("password123", "xpass")
	for in, want := range map[string]string{
		"pw=xpassword123;":       "pw=<redacted>;",
		"xpass password123":      "<redacted> <redacted>",
		"password123password123": "<redacted><redacted>",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

// A plan's diff for thousands of mirrors holds tens of thousands of secret
// forms; String scans it once instead of once per value.
func BenchmarkRedactorManySecrets(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		var values []string
		var text strings.Builder
		for i := range n {
			pair := fmt.Sprintf("puller%d:s3cr3t-password", i)
			values = append(values, pair, base64.StdEncoding.EncodeToString([]byte(pair)))
			fmt.Fprintf(&text, "[host.\"https://mirror-%d.example.internal\".header]\n  Authorization = \"Basic %s\"\n", i, values[len(values)-1])
		}
		r := NewRedactor(values...)
		s := text.String()
		b.Run(fmt.Sprintf("%d", n), func(b *testing.B) {
			for b.Loop() {
				if strings.Contains(r.String(s), "cHVsbGVy") {
					b.Fatal("a secret was left")
				}
			}
		})
	}
}

// FuzzRedactor: whatever the secrets and the text, String masks exactly
// what the reference finds: every occurrence of every value, overlapping
// occurrences as one run.
func FuzzRedactor(f *testing.F) {
	f.Add("password123\nxpass", "pw=xpassword123; xpass password123password123")
	f.Add("pässwörd\nuser:pässwörd\nab", "user:pässwörd ab pässwördpässwörd")
	f.Add("aaa\naaaa", "aaaaaaaaa b aaa")
	f.Add("<redacted>\nted>", "x<redacted>y")
	f.Fuzz(func(t *testing.T, secrets, text string) {
		values := strings.Split(secrets, "\n")
		if len(values) > 20 || len(text) > 4096 {
			return // the reference is quadratic
		}
		if got, want := NewRedactor(values...).String(text), maskedReference(values, text); got != want {
			t.Fatalf("String(%q) with %q = %q, want %q", text, values, got, want)
		}
	})
}
