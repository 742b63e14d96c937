package watch

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// A signer is one line of the key file, read as OpenSSH reads an
// allowed_signers line (sshsig.c, ssh-keygen(1) "ALLOWED SIGNERS"):
//
//	principals [options] key
//
// or, mirrorctl's addition, an authorized_keys line without options ("key
// comment"), which trusts the key whatever the identity.
type signer struct {
	line int
	// principals is the pattern list the identity must match; "" on an
	// authorized_keys line.
	principals string
	key        ssh.PublicKey
	// ca: the key is a certificate authority, and signatures must be made
	// with a user certificate it signed (cert-authority).
	ca bool
	// namespaces, when set, is the pattern list the namespace must match.
	namespaces *string
	// validAfter and validBefore are seconds since the epoch; 0 is unset.
	validAfter, validBefore uint64
}

// whitespace is OpenSSH's WHITESPACE.
const whitespace = " \t\r\n"

// parseSigners reads every line of data. Times without a zone are in loc.
// A line OpenSSH would skip as invalid is an error here: a restriction
// that is not understood must not be dropped quietly.
func parseSigners(data []byte, loc *time.Location) ([]signer, error) {
	var out []signer
	for i, line := range strings.Split(string(data), "\n") {
		s, ok, err := parseSigner(line, loc)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if ok {
			s.line = i + 1
			out = append(out, s)
		}
	}
	return out, nil
}

// parseSigner reads one line; ok is false for a blank or comment line.
func parseSigner(line string, loc *time.Location) (s signer, ok bool, err error) {
	line = strings.TrimLeft(line, whitespace)
	if line == "" || line[0] == '#' {
		return s, false, nil
	}
	// An authorized_keys line starts with the key itself. One with
	// options is read as OpenSSH would, its first field as principals.
	if k, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil && opts == nil {
		s.key = k
		return s, true, checkSignerKey(s)
	}
	principals, rest, err := firstField(line)
	if err != nil {
		return s, false, err
	}
	if principals == "" || rest == "" {
		return s, false, errors.New(`want "principals [options] key", as ssh-keygen's allowed_signers, or an authorized_keys line "ssh-ed25519 AAAA…"`)
	}
	s.principals = principals
	// The key comes right after the principals, or after the options.
	if k, ok := keyAt(rest); ok {
		s.key = k
		return s, true, checkSignerKey(s)
	}
	end, err := optionsEnd(rest)
	if err != nil {
		return s, false, err
	}
	k, ok := keyAt(strings.TrimLeft(rest[end:], " \t"))
	if !ok {
		return s, false, fmt.Errorf("no public key after the options %q (want \"ssh-ed25519 AAAA…\")", rest[:end])
	}
	s.key = k
	if err := s.parseOptions(rest[:end], loc); err != nil {
		return s, false, err
	}
	return s, true, checkSignerKey(s)
}

// checkSignerKey refuses a certificate as a line's key: a CA is trusted by
// its own key, with cert-authority.
func checkSignerKey(s signer) error {
	if _, ok := s.key.(*ssh.Certificate); ok {
		return errors.New("the key is a certificate; trust its CA's public key with cert-authority instead")
	}
	return nil
}

// keyAt reads "type base64 [comment]" at the start of text, as sshkey_read.
func keyAt(text string) (ssh.PublicKey, bool) {
	k, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(text))
	return k, err == nil && opts == nil
}

// firstField splits off the principals as strdelimw does: up to blanks, a
// quoted part ("…") taken whole, its quotes removed.
func firstField(line string) (field, rest string, err error) {
	i := strings.IndexAny(line, whitespace+`"`)
	if i < 0 {
		return line, "", nil
	}
	if line[i] == '"' {
		j := strings.IndexByte(line[i+1:], '"')
		if j < 0 {
			return "", "", errors.New("no closing quote in the principals")
		}
		return line[:i] + line[i+1:i+1+j], strings.TrimLeft(line[i+1+j+1:], whitespace), nil
	}
	return line[:i], strings.TrimLeft(line[i+1:], whitespace), nil
}

// optionsEnd is sshkey_advance_past_options: the options end at the first
// blank outside quotes; \" does not end a quote.
func optionsEnd(text string) (int, error) {
	quoted := false
	i := 0
	for ; i < len(text) && (quoted || (text[i] != ' ' && text[i] != '\t')); i++ {
		switch {
		case text[i] == '\\' && i+1 < len(text) && text[i+1] == '"':
			i++
		case text[i] == '"':
			quoted = !quoted
		}
	}
	if quoted {
		return 0, errors.New("no closing quote in the options")
	}
	return i, nil
}

// parseOptions is sshsigopt_parse: option names in any case, values
// quoted, each at most once. Anything else is refused, naming it.
func (s *signer) parseOptions(opts string, loc *time.Location) error {
	seen := map[string]bool{}
	for opts != "" {
		start := opts
		name, val, err := nextOption(&opts)
		if err != nil {
			return fmt.Errorf("option %q: %w", optionText(start), err)
		}
		if seen[name] && name != "" && name != "cert-authority" {
			return fmt.Errorf("option %s given twice", name)
		}
		seen[name] = true
		switch name {
		case "":
			// Not an option OpenSSH knows; only a stray comma is let
			// through, as it does.
			if opts[0] != ',' {
				return unsupportedOption(start)
			}
		case "cert-authority":
			s.ca = true
		case "namespaces":
			s.namespaces = &val
		case "valid-after", "valid-before":
			t, err := parseAbsoluteTime(val, loc)
			if err != nil {
				return fmt.Errorf("option %s=%q: %w", name, val, err)
			}
			if name == "valid-after" {
				s.validAfter = t
			} else {
				s.validBefore = t
			}
		}
		if opts == "" {
			break
		}
		if opts[0] != ',' {
			return unsupportedOption(start) // "cert-authorityX", `namespaces="a"b`
		}
		if opts = opts[1:]; opts == "" {
			return errors.New("the options end with a comma")
		}
	}
	if s.validAfter != 0 && s.validBefore != 0 && s.validBefore <= s.validAfter {
		return errors.New("valid-before is not after valid-after")
	}
	return nil
}

func unsupportedOption(opts string) error {
	return fmt.Errorf("unsupported option %q: mirrorctl, as ssh-keygen, knows cert-authority, namespaces, valid-after and valid-before", optionText(opts))
}

// nextOption reads one option at the start of *opts, as opt_flag and
// opt_match do, and advances past it; name is "" when it is none of
// OpenSSH's, and *opts is left as it is.
func nextOption(opts *string) (name, val string, err error) {
	o := *opts
	const ca = "cert-authority"
	if len(o) >= len(ca) && strings.EqualFold(o[:len(ca)], ca) {
		*opts = o[len(ca):]
		return ca, "", nil
	}
	for _, n := range []string{"namespaces", "valid-after", "valid-before"} {
		if len(o) > len(n) && strings.EqualFold(o[:len(n)], n) && o[len(n)] == '=' {
			v, rest, err := dequote(o[len(n)+1:])
			if err != nil {
				return "", "", err
			}
			*opts = rest
			return n, v, nil
		}
	}
	return "", "", nil
}

// dequote is opt_dequote: a value in double quotes, \" standing for ".
func dequote(s string) (val, rest string, err error) {
	if s == "" || s[0] != '"' {
		return "", "", errors.New(`the value must be in double quotes, as name="value"`)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case s[i] == '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", errors.New("no closing quote")
}

// optionText is the option at the start of opts, for messages: up to a
// comma outside quotes.
func optionText(opts string) string {
	quoted := false
	for i := 0; i < len(opts); i++ {
		switch {
		case opts[i] == '"':
			quoted = !quoted
		case opts[i] == ',' && !quoted:
			return opts[:i]
		}
	}
	return opts
}

// refusal says why s does not accept a signature made with key for
// identity in namespace at now; matched is false when the line is not
// about this key (or identity) at all.
func (s *signer) refusal(key ssh.PublicKey, identity, namespace string, now time.Time) (matched bool, why string) {
	if identity != "" && s.principals != "" && matchPatternList(identity, s.principals) != 1 {
		return false, ""
	}
	cert, isCert := key.(*ssh.Certificate)
	switch {
	case !s.ca:
		// A certificate never equals a plain key: a line without
		// cert-authority does not accept one, even of its own key.
		if !bytes.Equal(s.key.Marshal(), key.Marshal()) {
			if isCert && bytes.Equal(s.key.Marshal(), cert.Key.Marshal()) {
				return true, fmt.Sprintf("line %d holds the certificate's key without cert-authority; a certificate is trusted only through its CA", s.line)
			}
			return false, ""
		}
	case !isCert:
		if bytes.Equal(s.key.Marshal(), key.Marshal()) {
			return true, fmt.Sprintf("line %d is a cert-authority line: sign with a certificate this CA issued, not with its key", s.line)
		}
		return false, ""
	case !bytes.Equal(s.key.Marshal(), cert.SignatureKey.Marshal()):
		return false, ""
	default:
		if err := checkCert(cert, identity, now); err != nil {
			return true, fmt.Sprintf("line %d: certificate not accepted: %v", s.line, err)
		}
	}
	if s.namespaces != nil && matchPatternList(namespace, *s.namespaces) != 1 {
		return true, fmt.Sprintf("line %d: the key is not allowed for namespace %q (namespaces=%q)", s.line, namespace, *s.namespaces)
	}
	t := uint64(max(now.Unix(), 0))
	if s.validAfter != 0 && t < s.validAfter {
		return true, fmt.Sprintf("line %d: the key is not valid before %s", s.line, time.Unix(int64(s.validAfter), 0).UTC().Format(time.RFC3339))
	}
	if s.validBefore != 0 && t > s.validBefore {
		return true, fmt.Sprintf("line %d: the key expired at %s", s.line, time.Unix(int64(s.validBefore), 0).UTC().Format(time.RFC3339))
	}
	return true, ""
}

// checkCert is sshkey_cert_check_authority for a signature: a user
// certificate, valid at now, that lists identity. CertChecker checks the
// CA's signature over it, the principal and the validity window; OpenSSH's
// other rules are added: x/crypto takes a certificate without principals
// as valid for anyone (OpenSSH: for no one) and does not look at its type.
// Critical options restrict logins (force-command, source-address) and
// sshsig ignores them, so they are let through.
func checkCert(cert *ssh.Certificate, identity string, now time.Time) error {
	if cert.CertType != ssh.UserCert {
		return errors.New("not a user certificate")
	}
	if len(cert.ValidPrincipals) == 0 {
		return errors.New("the certificate lists no principal")
	}
	c := ssh.CertChecker{
		Clock:                    func() time.Time { return now },
		SupportedCriticalOptions: slices.Collect(maps.Keys(cert.CriticalOptions)),
	}
	return c.CheckCert(identity, cert)
}
