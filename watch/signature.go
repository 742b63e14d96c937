package watch

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// DefaultNamespace is the SSHSIG namespace mirrorctl signatures are made
// for: `ssh-keygen -Y sign -n mirrorctl`. A namespace keeps a signature made
// for something else (a git commit, a file) from passing as a config's.
const DefaultNamespace = "mirrorctl"

// Sentinels for a refused signature, wrapped by Verify.
var (
	// ErrUnsigned: a key is configured but the config has no signature.
	ErrUnsigned = errors.New("the config is not signed")
	// ErrBadSignature: the signature does not verify against any
	// configured key, or was made for another namespace.
	ErrBadSignature = errors.New("the signature does not match the config and the configured keys")
)

// A Verifier checks detached SSH signatures (the SSHSIG format of
// `ssh-keygen -Y sign`, PROTOCOL.sshsig in OpenSSH) against the public keys
// configured on the node.
type Verifier struct {
	keys      []ssh.PublicKey
	namespace string
}

// LoadVerifier reads public keys from path, one a line, in the form of
// authorized_keys ("ssh-ed25519 AAAA… comment") or of ssh-keygen's
// allowed_signers ("principal [options] ssh-ed25519 AAAA…"), so the file
// `ssh-keygen -Y verify -f` takes works here too. Blank lines and # comments
// are skipped. namespace "" means DefaultNamespace.
func LoadVerifier(path, namespace string) (*Verifier, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading signature keys: %w", err)
	}
	v, err := ParseVerifier(data, namespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// ParseVerifier is LoadVerifier on bytes.
func ParseVerifier(data []byte, namespace string) (*Verifier, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	v := &Verifier{namespace: namespace}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := parseKeyLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		v.keys = append(v.keys, k)
	}
	if len(v.keys) == 0 {
		return nil, errors.New("no public key in the file")
	}
	return v, nil
}

// parseKeyLine finds the key in an authorized_keys or allowed_signers line:
// the first field from which the rest parses as a key.
func parseKeyLine(line string) (ssh.PublicKey, error) {
	fields := strings.Fields(line)
	for i := range fields {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(fields[i:], " ")))
		if err == nil {
			return k, nil
		}
	}
	return nil, errors.New("no public key found (want \"ssh-ed25519 AAAA…\" or \"principal ssh-ed25519 AAAA…\")")
}

// sshsig is the signature blob of PROTOCOL.sshsig after its "SSHSIG" magic.
type sshsig struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  string
	HashAlg   string
	Signature []byte
}

// signedData is what the key actually signs, after the "SSHSIG" magic.
type signedData struct {
	Namespace string
	Reserved  string
	HashAlg   string
	Hash      []byte
}

const sigMagic = "SSHSIG"

// Verify checks armored, an "-----BEGIN SSH SIGNATURE-----" block, over
// data. A nil or empty armored wraps ErrUnsigned; anything else that does
// not verify wraps ErrBadSignature.
func (v *Verifier) Verify(data, armored []byte) error {
	if len(bytes.TrimSpace(armored)) == 0 {
		return ErrUnsigned
	}
	block, _ := pem.Decode(armored)
	if block == nil || block.Type != "SSH SIGNATURE" {
		return fmt.Errorf("%w: not an SSH signature (want the output of ssh-keygen -Y sign)", ErrBadSignature)
	}
	blob, ok := bytes.CutPrefix(block.Bytes, []byte(sigMagic))
	if !ok {
		return fmt.Errorf("%w: no SSHSIG magic", ErrBadSignature)
	}
	var sig sshsig
	if err := ssh.Unmarshal(blob, &sig); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if sig.Version != 1 {
		return fmt.Errorf("%w: SSHSIG version %d", ErrBadSignature, sig.Version)
	}
	if sig.Namespace != v.namespace {
		return fmt.Errorf("%w: made for namespace %q, want %q (ssh-keygen -Y sign -n %s)", ErrBadSignature, sig.Namespace, v.namespace, v.namespace)
	}
	key := v.key(sig.PublicKey)
	if key == nil {
		return fmt.Errorf("%w: signed by a key that is not configured", ErrBadSignature)
	}
	var hash []byte
	switch sig.HashAlg {
	case "sha512":
		h := sha512.Sum512(data)
		hash = h[:]
	case "sha256":
		h := sha256.Sum256(data)
		hash = h[:]
	default:
		return fmt.Errorf("%w: hash algorithm %q", ErrBadSignature, sig.HashAlg)
	}
	var s struct {
		Format string
		Blob   []byte
		Rest   []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(sig.Signature, &s); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	msg := append([]byte(sigMagic), ssh.Marshal(signedData{sig.Namespace, sig.Reserved, sig.HashAlg, hash})...)
	if err := key.Verify(msg, &ssh.Signature{Format: s.Format, Blob: s.Blob, Rest: s.Rest}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

func (v *Verifier) key(wire []byte) ssh.PublicKey {
	for _, k := range v.keys {
		if bytes.Equal(k.Marshal(), wire) {
			return k
		}
	}
	return nil
}

// verify checks data against sig for a source, as a FetchError.
func (v *Verifier) verify(name string, data, sig []byte) error {
	if err := v.Verify(data, sig); err != nil {
		return &FetchError{Reason: "signature", Err: fmt.Errorf("%s: refused: %w", name, err)}
	}
	return nil
}
