package watch

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz targets' seeds are real ssh-keygen output, under
// testdata/sshsig (the signers and the config) and testdata/fuzz (the
// corpora). WRITE_FUZZ_SEEDS=1 go test ./watch/ -run TestWriteFuzzSeeds
// makes them again; the private keys are thrown away.

const (
	fuzzDir      = "testdata/sshsig"
	fuzzIdentity = "fleet@example.com"
)

// fuzzNow is when the seeds' signers and certificate are valid.
func fuzzNow() time.Time { return time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC) }

func fuzzVerifier(t testing.TB) (*Verifier, []byte) {
	t.Helper()
	signers, err := os.ReadFile(filepath.Join(fuzzDir, "allowed_signers"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(fuzzDir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseVerifier(signers, VerifierOptions{Identity: fuzzIdentity, Now: fuzzNow, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	return v, data
}

// FuzzVerify: any signature blob, over any data, is refused or accepted
// without a panic, and an accepted one never accepts other bytes.
func FuzzVerify(f *testing.F) {
	v, data := fuzzVerifier(f)
	f.Add(data, []byte(nil))
	f.Fuzz(func(t *testing.T, data, sig []byte) {
		if len(data) > 1<<16 || len(sig) > 1<<16 {
			return // the sources cap both at --max-size
		}
		if v.Verify(data, sig) == nil && v.Verify(append(bytes.Clone(data), '#'), sig) == nil {
			t.Fatal("one signature verified two different configs")
		}
	})
}

// FuzzParseVerifier: any key file, with any identity, loads or is refused
// without a panic; what loads then judges a real signature without one, and
// a file with principals never loads without an identity.
func FuzzParseVerifier(f *testing.F) {
	_, data := fuzzVerifier(f)
	sig, err := os.ReadFile(filepath.Join(fuzzDir, "fleet.sig"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, file []byte, identity string) {
		if len(file) > 1<<16 || len(identity) > 1<<10 {
			return
		}
		v, err := ParseVerifier(file, VerifierOptions{Identity: identity, Now: fuzzNow, Location: time.UTC})
		if err != nil {
			return
		}
		for _, s := range v.signers {
			if identity == "" && s.principals != "" {
				t.Fatalf("line %d has principals %q but loaded without an identity", s.line, s.principals)
			}
		}
		_ = v.Verify(data, sig)
	})
}

// The corpora's good-* seeds verify: they reach the deepest checks.
func TestFuzzSeedsVerify(t *testing.T) {
	v, data := fuzzVerifier(t)
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzVerify/good-*")
	if len(seeds) < 4 {
		t.Fatalf("%d good seeds, want the ed25519, ecdsa, rsa and certificate ones", len(seeds))
	}
	for _, p := range seeds {
		args := readSeed(t, p)
		if !bytes.Equal(args[0], data) {
			t.Errorf("%s: not over %s/config.yaml", p, fuzzDir)
		}
		if err := v.Verify(args[0], args[1]); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// readSeed reads a corpus file of []byte and string values.
func readSeed(t *testing.T, p string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a corpus file", p)
	}
	var out [][]byte
	for _, l := range lines[1:] {
		l = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(l, "[]byte("), "string("), ")")
		s, err := strconv.Unquote(l)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// TestWriteFuzzSeeds makes the seeds with ssh-keygen; off unless
// WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("WRITE_FUZZ_SEEDS=1 writes the seeds")
	}
	kg := newKeygen(t)
	fleet, fleetPub := kg.key("fleet", "")
	ecdsa, ecdsaPub := kg.key("ecdsa", "ecdsa")
	rsa, rsaPub := kg.key("rsa", "rsa")
	ca, caPub := kg.key("ca", "")
	carol, _ := kg.key("carol", "")
	_, plainPub := kg.key("plain", "")
	cert := kg.cert(ca, carol, fuzzIdentity, "20300101Z:20310101Z")
	signers := strings.Join([]string{
		"# the seeds' signers: " + fuzzIdentity + " at 2030-06-15 12:00 UTC",
		plainPub,
		fuzzIdentity + " " + fleetPub,
		`*@example.com,!mallory@example.com namespaces="mirrorctl,git" ` + ecdsaPub,
		fuzzIdentity + ` valid-after="20300101Z",valid-before="20301231235959Z" ` + rsaPub,
		`"fleet@example.com" cert-authority ` + caPub,
		"",
	}, "\n")
	data := []byte("serial: 1\nmirrors:\n  docker.io:\n    endpoint: [\"https://mirror.example.com\"]\n")
	write := func(p string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(fuzzDir, "allowed_signers"), []byte(signers))
	write(filepath.Join(fuzzDir, "config.yaml"), data)
	fleetSig := kg.sign(fleet, DefaultNamespace, data)
	write(filepath.Join(fuzzDir, "fleet.sig"), fleetSig)

	verify := map[string][]byte{
		"good-ed25519":         fleetSig,
		"good-ecdsa":           kg.sign(ecdsa, DefaultNamespace, data),
		"good-rsa":             kg.sign(rsa, DefaultNamespace, data),
		"good-certificate":     kg.sign(cert, DefaultNamespace, data),
		"good-sha256":          kg.signWith(fleet, DefaultNamespace, data, "hashalg=sha256"),
		"other-namespace":      kg.sign(fleet, "git", data),
		"certificate-other-ns": kg.sign(cert, "git", data),
		"ca-signs-by-itself":   kg.sign(ca, DefaultNamespace, data),
		"not-armored":          []byte("SSHSIG"),
		"armor-without-magic":  []byte("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"),
	}
	for name, sig := range verify {
		write(filepath.Join("testdata/fuzz/FuzzVerify", name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", data, sig)))
	}
	parse := map[string]string{
		"seeds":             signers,
		"authorized_keys":   plainPub + "\n",
		"principal_only":    fuzzIdentity + " " + fleetPub + "\n",
		"all_options":       fuzzIdentity + ` cert-authority,namespaces="a,b",valid-after="202001010000",valid-before="20991231UTC" ` + caPub + "\n",
		"escaped_quote":     `"a b",c namespaces="x\"y" ` + fleetPub + "\n",
		"unsupported":       fuzzIdentity + " verify-required " + fleetPub + "\n",
		"stray_commas":      fuzzIdentity + ` ,,namespaces="mirrorctl" ` + fleetPub + "\n",
		"patterns":          "*,!*@evil.example.com,flee?@*,\"q\" " + fleetPub + "\r\n# comment\n\n",
		"bad_time":          fuzzIdentity + ` valid-after="20301301" ` + fleetPub + "\n",
		"no_key":            fuzzIdentity + "\n",
		"long_subpattern":   strings.Repeat("x", 1100) + ",fleet@example.com " + fleetPub + "\n",
		"certificate_line":  fuzzIdentity + " " + kg.pub(cert) + "\n",
		"principals_no_key": fuzzIdentity + ` namespaces="mirrorctl"` + "\n",
	}
	for name, file := range parse {
		for _, id := range []string{fuzzIdentity, ""} {
			suffix := "-identity"
			if id == "" {
				suffix = "-no-identity"
			}
			write(filepath.Join("testdata/fuzz/FuzzParseVerifier", name+suffix), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nstring(%q)\n", file, id)))
		}
	}
}
