package engines

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mirrorctl/mirrorctl/internal/testpki"
	"github.com/mirrorctl/mirrorctl/spec"
)

// TestTLSKeyCopiesAreSecret: every engine that copies a configs: key_file
// writes the copy as a secret with mode 0600, and no file that is not a
// secret holds any line of the key. CA and certificate copies are 0644.
func TestTLSKeyCopiesAreSecret(t *testing.T) {
	files := map[string]string{"/etc/mirrorctl/ca.crt": testpki.CA, "/etc/mirrorctl/client.crt": testpki.ClientCert, "/etc/mirrorctl/client.key": testpki.ClientKey}
	const text = `mirrors:
  docker.io:
    endpoint: ["https://registry.example.com:5000"]
configs:
  registry.example.com:5000:
    tls: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key}
  "*":
    tls: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key}
`
	s, err := spec.Parse("/etc/mirrorctl/config.yaml", []byte(text), spec.Options{Engines: Sections(),
		ReadFile: func(name string) ([]byte, error) {
			if b, ok := files[name]; ok {
				return []byte(b), nil
			}
			return nil, fmt.Errorf("no file %s", name)
		}})
	if err != nil {
		t.Fatal(err)
	}
	var keyLines []string
	for l := range strings.SplitSeq(testpki.ClientKey, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			keyLines = append(keyLines, l)
		}
	}
	// The engines that copy TLS files, and how many key copies each makes.
	wantKeys := map[string]int{"containerd": 2, "docker": 1, "k3s": 2, "containers": 1} // docker and containers have no "*" directory
	for _, e := range All() {
		res, err := e.Render(s, Host{FS: fstest.MapFS{}}, Detection{Engine: e.Name(), Found: true, Managed: true, Version: "2.4.2"})
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		keys := 0
		for _, f := range res.Files {
			if f.Remove {
				continue
			}
			holdsKey := false
			for _, l := range keyLines {
				holdsKey = holdsKey || strings.Contains(string(f.Data), l)
			}
			switch {
			case string(f.Data) == testpki.ClientKey:
				keys++
				if !f.Secret || f.Mode != 0o600 {
					t.Errorf("%s: key copy %s: Secret %v, mode %04o; want a secret, 0600", e.Name(), f.Path, f.Secret, f.Mode)
				}
			case holdsKey:
				t.Errorf("%s: %s holds part of the key", e.Name(), f.Path)
			case string(f.Data) == testpki.CA || string(f.Data) == testpki.ClientCert:
				if f.Secret || f.Mode != 0o644 {
					t.Errorf("%s: certificate copy %s: Secret %v, mode %04o; want 0644", e.Name(), f.Path, f.Secret, f.Mode)
				}
			}
		}
		if keys != wantKeys[e.Name()] {
			t.Errorf("%s: %d key copies, want %d", e.Name(), keys, wantKeys[e.Name()])
		}
	}
}
