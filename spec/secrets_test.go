package spec

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mirrorctl/mirrorctl/internal/testpki"
)

// secretSpec holds every kind of secret a spec can carry.
const secretSpec = `configs:
  basic.example.com:
    auth:
      username: admin
      password: "` + testPassword + `"
  file.example.com:
    auth:
      username: bob
      password_file: pw
  b64.example.com:
    auth:
      auth: YWxpY2U6YjY0LXNlY3JldA==
  token.example.com:
    auth:
      identity_token: tok-` + testPassword + `
  tls.example.com:
    tls:
      cert_file: client.cert
      key_file: client.key
`

func loadSecretSpec(t *testing.T) *Spec {
	t.Helper()
	dir := writeFiles(t, map[string]string{
		"pw":          "file-secret\n\n",
		"client.cert": testpki.ClientCert,
		"client.key":  testpki.ClientKey,
	})
	s, err := Parse(filepath.Join(dir, "spec.yaml"), []byte(secretSpec), opts())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecretValues(t *testing.T) {
	got := loadSecretSpec(t).SecretValues()
	want := []string{
		testPassword,
		"admin:" + testPassword,
		b64("admin:" + testPassword),
		"file-secret\n", // the file's second newline is part of the password
		"file-secret",
		`file-secret\n`, // as JSON, TOML and YAML quote it
		"bob:file-secret\n",
		"bob:file-secret",
		`bob:file-secret\n`,
		b64("bob:file-secret\n"),
		"YWxpY2U6YjY0LXNlY3JldA==",
		"alice:b64-secret", // decoded auth
		"b64-secret",
		"tok-" + testPassword,
	}
	// The key: whole, trimmed, quoted, and each of its lines.
	key := testpki.ClientKey
	q := strconv.Quote(key)
	want = append(want, key, strings.TrimSpace(key), q[1:len(q)-1])
	for l := range strings.SplitSeq(key, "\n") {
		if l != "" {
			want = append(want, l)
		}
	}
	if diff := cmp.Diff(sorted(want), sorted(got)); diff != "" {
		t.Errorf("SecretValues (-want +got):\n%s", diff)
	}
	for i, v := range got {
		if v == "" {
			t.Errorf("empty value at %d", i)
		}
		if i > 0 && len(v) > len(got[i-1]) {
			t.Errorf("%q comes after the shorter %q; want longest first", v, got[i-1])
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestSpecDoesNotPrintSecrets: neither fmt nor encoding/json shows a secret
// held by a Spec or any part of it.
func TestSpecDoesNotPrintSecrets(t *testing.T) {
	s := loadSecretSpec(t)
	vals := s.SecretValues()
	var outs []string
	add := func(v any, verbs ...string) {
		for _, verb := range verbs {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json: %v", err)
		}
		outs = append(outs, string(b))
	}
	// %s and %d are verbs a struct does not support; under them fmt prints
	// fields without calling their String methods.
	all := []string{"%v", "%+v", "%#v", "%s", "%d", "%q"}
	add(s, all...)
	add(*s, all...)
	for _, c := range s.Configs {
		add(*c, all...)
		if c.Auth != nil {
			add(*c.Auth, all...)
			// A bare credentials.Secret is safe only under the verbs it
			// implements (String, GoString); %d would show it.
			add(c.Auth.Basic(), "%v", "%+v", "%#v", "%s", "%q")
		}
		if c.TLS != nil {
			add(*c.TLS, all...)
		}
	}
	for _, out := range outs {
		for _, v := range vals {
			if strings.Contains(out, v) {
				t.Errorf("output contains the secret %q:\n%s", v, out)
			}
		}
	}
	if b, _ := json.Marshal(s.Configs["tls.example.com"].TLS); !strings.Contains(string(b), `"Key":"\u003credacted\u003e"`) {
		t.Errorf("TLS key should marshal as <redacted>: %s", b)
	}
}
