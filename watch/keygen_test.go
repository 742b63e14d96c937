package watch

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// keygen runs OpenSSH's ssh-keygen in a scratch directory, so tests compare
// mirrorctl with the reference implementation rather than with themselves.
type keygen struct {
	t   testing.TB
	bin string
	dir string
	n   int // names the scratch files
}

func newKeygen(t testing.TB) *keygen {
	t.Helper()
	bin, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed")
	}
	return &keygen{t: t, bin: bin, dir: t.TempDir()}
}

// cmd is ssh-keygen with args, without an agent (a developer's agent would
// otherwise be asked to sign), in the time zone tz ("" leaves it as it is).
func (k *keygen) cmd(stdin []byte, tz string, args ...string) *exec.Cmd {
	cmd := exec.Command(k.bin, args...)
	cmd.Dir = k.dir
	cmd.Stdin = bytes.NewReader(stdin)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SSH_AUTH_SOCK=") && !(tz != "" && strings.HasPrefix(e, "TZ=")) {
			cmd.Env = append(cmd.Env, e)
		}
	}
	if tz != "" {
		cmd.Env = append(cmd.Env, "TZ="+tz)
	}
	return cmd
}

func (k *keygen) run(args ...string) string {
	k.t.Helper()
	out, err := k.cmd(nil, "", args...).CombinedOutput()
	if err != nil {
		k.t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// key makes a key pair named name (ed25519 unless typ says otherwise) and
// returns the private key's path and the public key line.
func (k *keygen) key(name, typ string) (string, string) {
	k.t.Helper()
	if typ == "" {
		typ = "ed25519"
	}
	p := filepath.Join(k.dir, name)
	k.run("-q", "-t", typ, "-N", "", "-C", name, "-f", p)
	return p, k.pub(p + ".pub")
}

func (k *keygen) pub(path string) string {
	k.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		k.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// cert signs key's public half with the CA ca as `ssh-keygen -s ca -I id -n
// principals -V validity` does (no -n when principals is ""), plus extra
// options (-h for a host certificate), and returns the certificate's path:
// signing with it signs as the certificate.
func (k *keygen) cert(ca, key, principals, validity string, extra ...string) string {
	k.t.Helper()
	args := []string{"-q", "-s", ca, "-I", filepath.Base(key) + "-id", "-V", validity}
	if principals != "" {
		args = append(args, "-n", principals)
	}
	k.run(append(append(args, extra...), key+".pub")...)
	return key + "-cert.pub"
}

// signWith is sign with -O options.
func (k *keygen) signWith(key, ns string, data []byte, opts ...string) []byte {
	k.t.Helper()
	k.n++
	p := filepath.Join(k.dir, fmt.Sprintf("data-%d.txt", k.n))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		k.t.Fatal(err)
	}
	args := []string{"-Y", "sign", "-f", key, "-n", ns}
	for _, o := range opts {
		args = append(args, "-O", o)
	}
	k.run(append(args, p)...)
	sig, err := os.ReadFile(p + ".sig")
	if err != nil {
		k.t.Fatal(err)
	}
	return sig
}

// sign is `ssh-keygen -Y sign -f key -n ns` over data.
func (k *keygen) sign(key, ns string, data []byte) []byte {
	k.t.Helper()
	return k.signWith(key, ns, data)
}

// verify is `ssh-keygen -Y verify -f allowed -I identity -n ns -s sig
// -Overify-time=at < data` in the time zone tz: whether OpenSSH accepts,
// and what it said.
func (k *keygen) verify(allowed, identity, ns, at, tz string, data, sig []byte) (bool, string) {
	k.t.Helper()
	a, s := filepath.Join(k.dir, "allowed"), filepath.Join(k.dir, "sig")
	for p, b := range map[string][]byte{a: []byte(allowed), s: sig} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			k.t.Fatal(err)
		}
	}
	args := []string{"-Y", "verify", "-f", a, "-I", identity, "-n", ns, "-s", s}
	if at != "" {
		args = append(args, "-Overify-time="+at)
	}
	out, err := k.cmd(data, tz, args...).CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		k.t.Fatalf("ssh-keygen -Y verify: %v", err)
	}
	return err == nil, strings.TrimSpace(string(out))
}
