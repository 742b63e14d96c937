package watch

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// testKey is an ed25519 signer and its authorized_keys line.
type testKey struct {
	signer ssh.Signer
	line   string
}

func newTestKey(t testing.TB) testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))}
}

// sign makes what `ssh-keygen -Y sign -n ns` makes (PROTOCOL.sshsig).
func (k testKey) sign(t testing.TB, ns string, data []byte) []byte {
	t.Helper()
	h := sha512.Sum512(data)
	msg := append([]byte(sigMagic), ssh.Marshal(signedData{ns, "", "sha512", h[:]})...)
	sig, err := k.signer.Sign(rand.Reader, msg)
	if err != nil {
		t.Fatal(err)
	}
	blob := append([]byte(sigMagic), ssh.Marshal(sshsig{1, k.signer.PublicKey().Marshal(), ns, "", "sha512", ssh.Marshal(sig)})...)
	return pem.EncodeToMemory(&pem.Block{Type: "SSH SIGNATURE", Bytes: blob})
}

func TestVerify(t *testing.T) {
	key, other := newTestKey(t), newTestKey(t)
	data := []byte("mirrors: {}\n")
	v, err := ParseVerifier([]byte("# fleet signer\n"+key.line+"\n"), VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(data, key.sign(t, DefaultNamespace, data)); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		sig  []byte
		want error
	}{
		{"unsigned", data, nil, ErrUnsigned},
		{"tampered_config", []byte("mirrors: {evil.example.com: {}}\n"), key.sign(t, DefaultNamespace, data), ErrBadSignature},
		{"other_key", data, other.sign(t, DefaultNamespace, data), ErrBadSignature},
		{"other_namespace", data, key.sign(t, "git", data), ErrBadSignature},
		{"garbage", data, []byte("not a signature"), ErrBadSignature},
		{"flipped_bit", data, flip(key.sign(t, DefaultNamespace, data)), ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := v.Verify(tc.data, tc.sig); !errors.Is(err, tc.want) {
				t.Errorf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

// flip changes one byte of the signature inside the armour.
func flip(armored []byte) []byte {
	b, _ := pem.Decode(armored)
	b.Bytes[len(b.Bytes)-5] ^= 1
	return pem.EncodeToMemory(b)
}

// The key file is read strictly: a restriction that is not understood is
// an error at start that names the line and the option, never dropped.
func TestParseVerifierLines(t *testing.T) {
	key := newTestKey(t)
	k := key.line
	const id = "fleet@example.com"
	for _, tc := range []struct {
		name, file, identity string
		want                 string // "" loads
	}{
		{"authorized_keys", "# fleet signer\n\n" + k + " fleet\n", "", ""},
		{"authorized_keys_with_identity", k + "\n", id, ""},
		{"allowed_signers", id + " " + k + " comment\n", id, ""},
		{"all_options", id + ` cert-authority,namespaces="mirrorctl,git",valid-after="20200101",valid-before="20991231235959Z" ` + k + "\n", id, ""},
		{"quoted_value_with_blank", id + ` namespaces="a b" ` + k + "\n", id, ""},
		{"escaped_quote", id + ` namespaces="a\"b" ` + k + "\n", id, ""},

		{"principals_need_identity", k + "\n" + id + " " + k + "\n", "", `line 2 names principals (fleet@example.com)`},
		{"options_need_identity", id + ` namespaces="mirrorctl" ` + k + "\n", "", "--signature-identity"},
		{"unsupported_option", id + ` namespaces="mirrorctl",verify-required ` + k + "\n", id, `line 1: unsupported option "verify-required"`},
		{"authorized_keys_option", id + ` no-touch-required ` + k + "\n", id, `line 1: unsupported option "no-touch-required"`},
		{"unquoted_value", id + ` namespaces=mirrorctl ` + k + "\n", id, `line 1: option "namespaces=mirrorctl": the value must be in double quotes`},
		{"twice", id + ` valid-after="20200101",valid-after="20210101" ` + k + "\n", id, "line 1: option valid-after given twice"},
		{"bad_time", id + ` valid-before="2020-01-01" ` + k + "\n", id, `line 1: option valid-before="2020-01-01": want YYYYMMDD`},
		{"time_out_of_range", id + ` valid-before="20201301" ` + k + "\n", id, "out of range"},
		{"epoch", id + ` valid-after="19700101Z" ` + k + "\n", id, "not after 1970"},
		{"window_backwards", id + ` valid-after="20300101Z",valid-before="20200101Z" ` + k + "\n", id, "line 1: valid-before is not after valid-after"},
		{"trailing_comma", id + ` cert-authority, ` + k + "\n", id, "end with a comma"},
		{"unclosed_quote", id + ` namespaces="x ` + k + "\n", id, "line 1: no closing quote"},
		{"no_key", id + "\n", id, "line 1: want \"principals [options] key\""},
		{"bad_key", "ssh-ed25519 notbase64\n", "", "line 1: no public key"},
		{"certificate_as_key", id + " " + testCertLine(t, key) + "\n", id, "line 1: the key is a certificate"},
		{"empty", "# nothing\n", "", "no public key in the file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseVerifier([]byte(tc.file), VerifierOptions{Identity: tc.identity})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// testCertLine is a user certificate of key, signed by a throwaway CA.
func testCertLine(t *testing.T, key testKey) string {
	t.Helper()
	ca := newTestKey(t)
	c := &ssh.Certificate{Key: key.signer.PublicKey(), CertType: ssh.UserCert, ValidPrincipals: []string{"fleet"}, ValidBefore: ssh.CertTimeInfinity}
	if err := c.SignCert(rand.Reader, ca.signer); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c)))
}

// A key without principals (authorized_keys form) is trusted for any
// identity; a line with principals only for those.
func TestVerifyIdentity(t *testing.T) {
	fleet, alice := newTestKey(t), newTestKey(t)
	data := []byte("x")
	file := []byte(fleet.line + "\nalice@example.com " + alice.line + "\n")
	for _, tc := range []struct {
		identity string
		key      testKey
		ok       bool
	}{
		{"fleet@example.com", fleet, true},
		{"alice@example.com", fleet, true},
		{"alice@example.com", alice, true},
		{"fleet@example.com", alice, false},
	} {
		v, err := ParseVerifier(file, VerifierOptions{Identity: tc.identity})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(data, tc.key.sign(t, DefaultNamespace, data)); (err == nil) != tc.ok {
			t.Errorf("identity %s: %v, want ok %v", tc.identity, err, tc.ok)
		}
	}
}

// Interoperability with OpenSSH itself: a signature from `ssh-keygen -Y
// sign` verifies here, and one made by the test signer verifies with
// `ssh-keygen -Y verify`, as the README's commands say.
func TestSSHKeygenInterop(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed")
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "fleet")
	run := func(stdin []byte, args ...string) string {
		t.Helper()
		cmd := exec.Command(keygen, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(nil, "-q", "-t", "ed25519", "-N", "", "-C", "fleet", "-f", keyFile)
	config := filepath.Join(dir, "config.yaml")
	data := []byte("mirrors:\n  docker.io:\n    endpoint: [https://m.example.com]\n")
	if err := os.WriteFile(config, data, 0o644); err != nil {
		t.Fatal(err)
	}
	run(nil, "-Y", "sign", "-f", keyFile, "-n", "mirrorctl", config)
	sig, err := os.ReadFile(config + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(keyFile+".pub", VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(data, sig); err != nil {
		t.Errorf("ssh-keygen's signature: %v", err)
	}
	if err := v.Verify(append(data, '#'), sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("ssh-keygen's signature over other bytes: %v", err)
	}

	// The other way round, with an allowed_signers file.
	key := newTestKey(t)
	signers := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(signers, []byte("fleet "+key.line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours.sig")
	if err := os.WriteFile(ours, key.sign(t, "mirrorctl", data), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(data, "-Y", "verify", "-f", signers, "-I", "fleet", "-n", "mirrorctl", "-s", ours)
	if !strings.Contains(out, "Good") {
		t.Errorf("ssh-keygen -Y verify: %s", out)
	}
	v, err = LoadVerifier(signers, VerifierOptions{Identity: "fleet"})
	if err != nil {
		t.Fatalf("allowed_signers as --signature-key: %v", err)
	}
	if err := v.Verify(data, []byte(mustRead(t, ours))); err != nil {
		t.Errorf("allowed_signers as --signature-key: %v", err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
