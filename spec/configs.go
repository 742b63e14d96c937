package spec

import (
	"crypto/x509"
	"encoding/base64"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mirrorctl/mirrorctl/credentials"
)

func (p *parser) configs(s *Spec, n *yaml.Node) {
	if !p.mapping(n, "configs") {
		return
	}
	for _, e := range p.pairs(n) {
		if msg, hint := checkHost(e.k.Value); msg != "" {
			p.errorf(e.k, hint, "configs: host %s", msg)
		}
		c := s.Configs[e.k.Value]
		if c == nil {
			c = &Config{Pos: p.pos(e.k)}
			s.Configs[e.k.Value] = c
		}
		// A later file's auth or tls block replaces the earlier one, so a
		// central spec can leave the password to a node-local drop-in.
		p.fields(e.v, "configs."+redactURL(e.k.Value), []field{
			{"auth", func(k, v *yaml.Node) {
				if a := p.auth(k, v); a != nil {
					c.Auth = a
				}
			}},
			{"tls", func(k, v *yaml.Node) {
				if t := p.tls(k, v); t != nil {
					c.TLS = t
				}
			}},
		})
	}
}

// entry is a key as written and its value. A value of the wrong type is
// kept, marked bad, so that its key still counts as present and one mistake
// does not also read as "password missing".
type entry struct {
	k, v *yaml.Node
	bad  bool
}

func (e entry) set() bool { return e.k != nil }

// later returns whichever of two set entries comes later in the file, to
// report a conflict where the reader meets it.
func later(a, b entry) entry {
	if b.k.Line > a.k.Line || b.k.Line == a.k.Line && b.k.Column > a.k.Column {
		return b
	}
	return a
}

func (p *parser) auth(key, n *yaml.Node) *Auth {
	var user, pass, passFile, passEnv, b64, token entry
	keep := func(dst *entry) func(k, v *yaml.Node) {
		return func(k, v *yaml.Node) {
			_, ok := p.str(v, k.Value, "")
			*dst = entry{k, v, !ok}
		}
	}
	p.fields(n, "auth", []field{
		{"username", keep(&user)},
		{"password", keep(&pass)},
		{"auth", keep(&b64)},
		{"identity_token", keep(&token)},
		{"password_file", keep(&passFile)},
		{"password_env", keep(&passEnv)},
	})

	var pw entry // the one password source
	for _, e := range []entry{pass, passFile, passEnv} {
		if !e.set() {
			continue
		}
		if pw.set() {
			l := later(pw, e)
			p.errorf(l.k, "keep one of password, password_file and password_env",
				"both %s and %s are set", pw.k.Value, e.k.Value)
			continue
		}
		pw = e
	}
	basic := user
	if !basic.set() {
		basic = pw
	}
	var form entry // the one credential form
	for _, e := range []entry{basic, b64, token} {
		if !e.set() {
			continue
		}
		if form.set() {
			l := later(form, e)
			p.errorf(l.k, "use username with password (or password_file or password_env), or auth, or identity_token",
				"%s and %s are different kinds of credentials", form.k.Value, e.k.Value)
			continue
		}
		form = e
	}
	if !form.set() {
		return nil // an auth block with nothing in it
	}

	a := &Auth{Pos: p.pos(key)}
	switch {
	case user.set() && !pw.set():
		p.errorf(user.k, "add password_file: /etc/mirrorctl/secrets/<host> (or password, or password_env)",
			"username without a password")
	case pw.set() && !user.set():
		p.errorf(pw.k, "add username", "%s without a username", pw.k.Value)
	case user.set() && !user.bad && user.v.Value == "":
		p.errorf(user.v, "write the registry user name", "username is empty")
	}
	if user.set() {
		a.Username = user.v.Value
	}
	if pw.set() {
		a.Password = p.password(pw)
		switch pw.k.Value {
		case "password_file":
			a.PasswordFile = p.path(pw.v.Value)
		case "password_env":
			a.PasswordEnv = pw.v.Value
		}
	}
	if b64.set() && !b64.bad {
		p.checkAuth(b64.v)
		a.Auth = credentials.NewSecret(b64.v.Value)
	}
	if token.set() && !token.bad {
		if token.v.Value == "" {
			p.errorf(token.v, "write the token, or remove the key", "identity_token is empty")
		}
		a.IdentityToken = credentials.NewSecret(token.v.Value)
	}
	return a
}

// password resolves the password source e (password, password_file or
// password_env) to its value.
func (p *parser) password(e entry) credentials.Secret {
	if e.bad {
		return credentials.Secret{}
	}
	v := e.v.Value
	switch e.k.Value {
	case "password_file":
		if v == "" {
			p.errorf(e.v, "write the path of a file holding only the password", "password_file is empty")
			return credentials.Secret{}
		}
		b, err := p.opts.ReadFile(p.path(v))
		if err != nil {
			p.errorf(e.v, p.refHint(), "password_file: %v", err)
			return credentials.Secret{}
		}
		if len(b) > MaxFileSize {
			p.errorf(e.v, "a password file holds only the password", "password_file: %s is larger than %d bytes", p.path(v), MaxFileSize)
			return credentials.Secret{}
		}
		// Exactly one line ending goes: the one `echo pw > file` and editors
		// add. Anything more is taken to be part of the password.
		s := string(b)
		if t, ok := strings.CutSuffix(s, "\r\n"); ok {
			s = t
		} else {
			s = strings.TrimSuffix(s, "\n")
		}
		if s == "" {
			p.errorf(e.v, "put the password in the file", "password_file %s is empty", p.path(v))
		}
		return credentials.NewSecret(s)
	case "password_env":
		if v == "" || strings.Contains(v, "=") {
			p.errorf(e.v, "write the name of an environment variable, e.g. MIRROR_PASSWORD", "password_env: invalid variable name %q", v)
			return credentials.Secret{}
		}
		s, ok := p.opts.LookupEnv(v)
		switch {
		case !ok:
			p.errorf(e.v, "set it in mirrorctl's environment (the unit's Environment= or EnvironmentFile=), or use password_file",
				"password_env: environment variable %s is not set", v)
		case s == "":
			p.errorf(e.v, "set it to the password, or use password_file", "password_env: environment variable %s is empty", v)
		}
		return credentials.NewSecret(s)
	}
	return credentials.NewSecret(v)
}

// checkAuth checks a k3s/containerd `auth` value: base64 of "user:password".
// A trailing newline in the decoded value is the `echo user:pass | base64`
// mistake; containerd and the docker CLI keep it in the password and every
// pull gets 401 (docs/credentials.md#basic-auth-without-a-newline).
func (p *parser) checkAuth(n *yaml.Node) {
	const hint = "encode it with printf %s 'user:pass' | base64, or mirrorctl auth encode"
	if strings.ContainsAny(n.Value, " \t\r\n") {
		p.errorf(n, "write the base64 value on one line, with no spaces", "auth contains whitespace")
		return
	}
	dec, err := base64.StdEncoding.DecodeString(n.Value)
	if err != nil {
		p.errorf(n, hint, "auth is not valid base64")
		return
	}
	s := string(dec)
	user, _, ok := strings.Cut(s, ":")
	switch {
	case strings.HasSuffix(s, "\n"):
		p.errorf(n, hint, "auth decodes to a value ending in a newline, which becomes part of the password")
	case !ok:
		p.errorf(n, hint, "auth does not decode to user:password (no colon)")
	case user == "":
		p.errorf(n, hint, "auth decodes to an empty user name")
	}
}

func (p *parser) tls(key, n *yaml.Node) *TLS {
	t := &TLS{Pos: p.pos(key)}
	var ca, cert, privKey entry
	set := false
	file := func(dst *entry) func(k, v *yaml.Node) {
		return func(k, v *yaml.Node) {
			set = true
			_, ok := p.str(v, k.Value, "write a path to a PEM file")
			*dst = entry{k, v, !ok}
		}
	}
	p.fields(n, "tls", []field{
		{"ca_file", file(&ca)},
		{"cert_file", file(&cert)},
		{"key_file", file(&privKey)},
		{"insecure_skip_verify", func(k, v *yaml.Node) {
			set = true
			t.InsecureSkipVerify, _ = p.boolean(v, k.Value)
		}},
	})
	if !set {
		return nil // every key empty, as in the k3s docs' template
	}
	switch {
	case cert.set() && !privKey.set():
		p.errorf(cert.k, "add key_file: the client certificate's private key", "cert_file without key_file")
	case privKey.set() && !cert.set():
		p.errorf(privKey.k, "add cert_file: the client certificate for this key", "key_file without cert_file")
	}
	if ca.set() {
		var ok bool
		if t.CAFile, t.CA, ok = p.readTLS(ca); ok {
			if _, msg, hint := p.checkCertificates(ca.k.Value, t.CAFile, t.CA); msg != "" {
				p.errorf(ca.k, hint, "%s", msg)
			}
		}
	}
	var leaf *x509.Certificate
	if cert.set() {
		var ok bool
		if t.CertFile, t.Cert, ok = p.readTLS(cert); ok {
			certs, msg, hint := p.checkCertificates(cert.k.Value, t.CertFile, t.Cert)
			if msg != "" {
				p.errorf(cert.k, hint, "%s", msg)
			} else {
				leaf = certs[0]
			}
		}
	}
	if privKey.set() {
		name, b, ok := p.readTLS(privKey)
		t.KeyFile, t.Key = name, credentials.NewSecret(string(b))
		if ok {
			key, msg, hint := checkPrivateKey(name, b)
			switch {
			case msg != "":
				p.errorf(privKey.k, hint, "%s", msg)
			case leaf != nil && !keyMatches(leaf, key):
				p.errorf(privKey.k, "give the private key of that certificate (openssl x509 -noout -pubkey -in CERT and openssl pkey -pubout -in KEY print the same key for a pair)",
					"key_file: %s is not the key of the certificate in cert_file %s", name, t.CertFile)
			}
		}
	}
	return t
}

// readTLS reads a TLS file now, so that a bad path fails validation rather
// than a later pull. ok is false when the file could not be read or is
// empty (both reported).
func (p *parser) readTLS(e entry) (name string, data []byte, ok bool) {
	if e.bad {
		return "", nil, false
	}
	if e.v.Value == "" {
		p.errorf(e.v, "write a path to a PEM file, or remove the key", "%s is empty", e.k.Value)
		return "", nil, false
	}
	name = p.path(e.v.Value)
	b, err := p.opts.ReadFile(name)
	switch {
	case err != nil:
		p.errorf(e.v, p.refHint(), "%s: %v", e.k.Value, err)
		return name, nil, false
	case len(b) == 0:
		p.errorf(e.v, "", "%s: %s is empty", e.k.Value, name)
		return name, b, false
	case len(b) > MaxFileSize:
		p.errorf(e.v, "give a PEM file of the certificates or the key only", "%s: %s is larger than %d bytes", e.k.Value, name, MaxFileSize)
		return name, nil, false
	}
	return name, b, true
}

func (p *parser) refHint() string {
	return "files are read on mirrorctl's own filesystem (not under --root); relative paths start at " + p.dir
}
