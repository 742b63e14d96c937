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
	v, err := ParseVerifier([]byte("# fleet signer\n"+key.line+"\n"), "")
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

// The allowed_signers file of `ssh-keygen -Y verify -f` works as the key file.
func TestParseVerifierAllowedSigners(t *testing.T) {
	key := newTestKey(t)
	v, err := ParseVerifier([]byte(`fleet@example.com namespaces="mirrorctl" `+key.line+" comment\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("x")
	if err := v.Verify(data, key.sign(t, DefaultNamespace, data)); err != nil {
		t.Errorf("allowed_signers line: %v", err)
	}
	if _, err := ParseVerifier([]byte("# nothing\n"), ""); err == nil {
		t.Error("a file without keys was accepted")
	}
	if _, err := ParseVerifier([]byte("ssh-ed25519 notbase64\n"), ""); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad key line: %v", err)
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
	v, err := LoadVerifier(keyFile+".pub", "")
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
	if _, err := LoadVerifier(signers, ""); err != nil {
		t.Errorf("allowed_signers as --signature-key: %v", err)
	}
}
