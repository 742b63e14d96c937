package watch

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

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
	// ErrBadSignature: the signature does not verify, was made for
	// another namespace, or no line of the key file accepts its key for
	// the identity, the namespace and the time.
	ErrBadSignature = errors.New("the signature does not match the config and the configured keys")
)

// A Verifier checks detached SSH signatures (the SSHSIG format of
// `ssh-keygen -Y sign`, PROTOCOL.sshsig in OpenSSH) as `ssh-keygen -Y
// verify -f FILE -I identity -n namespace` does, against the signers
// configured on the node (allowed_signers.go).
type Verifier struct {
	signers   []signer
	namespace string
	identity  string
	now       func() time.Time
}

// VerifierOptions are LoadVerifier's.
type VerifierOptions struct {
	// Namespace is the SSHSIG namespace (ssh-keygen -n); "" means
	// DefaultNamespace.
	Namespace string
	// Identity is the principal configs are signed as (ssh-keygen -Y
	// verify -I). It is required when the file has allowed_signers lines:
	// their principals are checked against it, never ignored.
	Identity string
	// Now is the clock that valid-after, valid-before and certificates are
	// checked against; nil means time.Now.
	Now func() time.Time
	// Location is the time zone of valid-after and valid-before times
	// written without Z; nil means time.Local, as ssh-keygen.
	Location *time.Location
}

// LoadVerifier reads the signers from path, one a line: ssh-keygen's
// allowed_signers form ("principals [options] ssh-ed25519 AAAA…", options
// cert-authority, namespaces=, valid-after= and valid-before=), so the file
// `ssh-keygen -Y verify -f` takes works here too, or the authorized_keys
// form without options ("ssh-ed25519 AAAA… comment"), a key trusted for any
// identity. Blank lines and # comments are skipped. A line that cannot be
// read, or an option that is not supported, is an error naming the line.
func LoadVerifier(path string, o VerifierOptions) (*Verifier, error) {
	data, err := readOwn(path)
	if err != nil {
		return nil, fmt.Errorf("reading signature keys: %w", err)
	}
	v, err := ParseVerifier(data, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// ParseVerifier is LoadVerifier on bytes.
func ParseVerifier(data []byte, o VerifierOptions) (*Verifier, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	signers, err := parseSigners(data, o.Location)
	if err != nil {
		return nil, err
	}
	if len(signers) == 0 {
		return nil, errors.New("no public key in the file")
	}
	if o.Identity == "" {
		for _, s := range signers {
			if s.principals != "" {
				return nil, fmt.Errorf("line %d names principals (%s), which are checked against --signature-identity: set it to the principal configs are signed as (the -I of ssh-keygen -Y verify)", s.line, s.principals)
			}
		}
	}
	return &Verifier{signers: signers, namespace: o.Namespace, identity: o.Identity, now: o.Now}, nil
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
	key, err := ssh.ParsePublicKey(sig.PublicKey)
	if err != nil {
		return fmt.Errorf("%w: the signature's key: %v", ErrBadSignature, err)
	}
	var s struct {
		Format string
		Blob   []byte
		Rest   []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(sig.Signature, &s); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	// As sshsig.c: RSA only with SHA-2, never ssh-rsa's SHA-1.
	plain := key
	if c, ok := key.(*ssh.Certificate); ok {
		plain = c.Key
	}
	if plain.Type() == ssh.KeyAlgoRSA && s.Format != ssh.KeyAlgoRSASHA256 && s.Format != ssh.KeyAlgoRSASHA512 {
		return fmt.Errorf("%w: RSA signature algorithm %q", ErrBadSignature, s.Format)
	}
	// Who may sign is checked before the signature itself: it is cheap,
	// and an unknown key's signature is never worth computing.
	if err := v.allowed(key); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	msg := append([]byte(sigMagic), ssh.Marshal(signedData{sig.Namespace, sig.Reserved, sig.HashAlg, hash})...)
	if err := key.Verify(msg, &ssh.Signature{Format: s.Format, Blob: s.Blob, Rest: s.Rest}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// allowed is sshsig_check_allowed_keys: some line must accept key for the
// identity, the namespace and now. The error gives the reason of the first
// line that was about this key, if any.
func (v *Verifier) allowed(key ssh.PublicKey) error {
	now := v.now()
	why := ""
	for i := range v.signers {
		matched, reason := v.signers[i].refusal(key, v.identity, v.namespace, now)
		if matched && reason == "" {
			return nil
		}
		if matched && why == "" {
			why = reason
		}
	}
	if why != "" {
		return errors.New(why)
	}
	if v.identity != "" {
		return fmt.Errorf("signed by a key that is not in the file for %q", v.identity)
	}
	return errors.New("signed by a key that is not in the file")
}

// verify checks data against sig for a source, as a FetchError.
func (v *Verifier) verify(name string, data, sig []byte) error {
	if err := v.Verify(data, sig); err != nil {
		return &FetchError{Reason: "signature", Err: fmt.Errorf("%s: refused: %w", name, err)}
	}
	return nil
}
