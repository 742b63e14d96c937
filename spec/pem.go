package spec

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// The TLS files of a configs: entry are taken for what the spec says they
// are: engines copy a ca_file and a cert_file world-readable and only a
// key_file as a secret, so a private key named as a CA would be published.
// Each file is checked when the spec is loaded, and a message names the
// file and what it holds (a block type and a line), never its content.

// pemBlock is one PEM block of a file and the line its BEGIN is on.
type pemBlock struct {
	*pem.Block
	line int
}

// pemBlocks splits a file into its PEM blocks. Text between blocks is
// allowed (system CA bundles have comment lines, `openssl x509 -text` puts
// the decoded certificate first), but a BEGIN line that does not start a
// well-formed block is not: encoding/pem would skip it silently, and a key
// might hide there. bad is the line of such a BEGIN, or 0.
func pemBlocks(data []byte) (blocks []pemBlock, bad int) {
	begin := []byte("-----BEGIN")
	rest := data
	for {
		start := bytes.Index(rest, begin)
		if start < 0 {
			return blocks, 0
		}
		line := lineOf(data, len(data)-len(rest)+start)
		b, after := pem.Decode(rest)
		if b == nil {
			return blocks, line
		}
		// pem.Decode skips a malformed block and returns a later one: the
		// bytes it consumed hold exactly one BEGIN when nothing was skipped.
		if bytes.Count(rest[:len(rest)-len(after)], begin) != 1 {
			return blocks, line
		}
		blocks = append(blocks, pemBlock{b, line})
		rest = after
	}
}

func lineOf(data []byte, off int) int {
	return bytes.Count(data[:off], []byte("\n")) + 1
}

func isKeyBlock(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }

// certInput is what checkCertificates's answer depends on.
type certInput struct{ what, name, data string }

// certCheck is checkCertificates's answer.
type certCheck struct {
	certs     []*x509.Certificate
	msg, hint string
}

// checkCertificates is the function of that name, parsing each distinct
// file once: a spec of 2,000 mirrors behind one CA names the same file
// 2,000 times.
func (p *parser) checkCertificates(what, name string, data []byte) (certs []*x509.Certificate, msg, hint string) {
	in := certInput{what, name, string(data)}
	if c, ok := p.certs[in]; ok {
		return c.certs, c.msg, c.hint
	}
	certs, msg, hint = checkCertificates(what, name, data)
	if p.certs == nil {
		p.certs = map[certInput]certCheck{}
	}
	p.certs[in] = certCheck{certs, msg, hint}
	return certs, msg, hint
}

// checkCertificates checks that a ca_file or cert_file holds one or more
// CERTIFICATE blocks, each an X.509 certificate, and nothing else. It
// returns the certificates; msg and hint say what is wrong.
func checkCertificates(what, name string, data []byte) (certs []*x509.Certificate, msg, hint string) {
	hint = "give the CA certificate (PEM) here"
	if what == "cert_file" {
		hint = "give the client certificate (PEM) here; its private key goes in key_file"
	}
	blocks, bad := pemBlocks(data)
	if bad > 0 {
		return nil, fmt.Sprintf("%s: %s has a malformed PEM block at line %d", what, name, bad),
			"check its -----BEGIN and -----END lines; " + hint
	}
	for _, b := range blocks {
		switch {
		case isKeyBlock(b.Type):
			return nil, fmt.Sprintf("%s: %s holds a %s block (line %d), not a certificate", what, name, b.Type, b.line),
				hint + "; a private key must never be in it: this file is copied world-readable"
		case b.Type != "CERTIFICATE":
			return nil, fmt.Sprintf("%s: %s holds a %s block (line %d), not a certificate", what, name, b.Type, b.line),
				hint + "; keep only CERTIFICATE blocks in it"
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Sprintf("%s: %s: the CERTIFICATE block at line %d is not a valid X.509 certificate", what, name, b.line), hint
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Sprintf("%s: %s holds no PEM certificate", what, name),
			hint + ", starting -----BEGIN CERTIFICATE----- (openssl x509 -inform der -in cert.der -out cert.pem converts a DER file)"
	}
	return certs, "", ""
}

// checkPrivateKey checks that a key_file holds exactly one unencrypted
// private key, PKCS#8, PKCS#1 (RSA) or SEC 1 (EC), of a type TLS clients
// use. The EC PARAMETERS block `openssl ecparam -genkey` writes before an EC
// key is allowed; nothing else is.
func checkPrivateKey(name string, data []byte) (key crypto.Signer, msg, hint string) {
	const give = "give the client certificate's private key (PEM) here"
	blocks, bad := pemBlocks(data)
	if bad > 0 {
		return nil, fmt.Sprintf("key_file: %s has a malformed PEM block at line %d", name, bad),
			"check its -----BEGIN and -----END lines; " + give
	}
	var found *pemBlock
	for i := range blocks {
		b := &blocks[i]
		switch {
		case b.Type == "EC PARAMETERS":
			continue
		case !isKeyBlock(b.Type):
			return nil, fmt.Sprintf("key_file: %s holds a %s block (line %d), not a private key", name, b.Type, b.line),
				give + "; the certificate goes in cert_file"
		case found != nil:
			return nil, fmt.Sprintf("key_file: %s holds more than one private key (lines %d and %d)", name, found.line, b.line),
				"keep only the key of the certificate in cert_file"
		}
		found = b
	}
	if found == nil {
		return nil, fmt.Sprintf("key_file: %s holds no PEM private key", name),
			give + ", starting -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY, EC PRIVATE KEY)"
	}
	if found.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(found.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, fmt.Sprintf("key_file: %s holds an encrypted private key", name),
			"engines cannot read encrypted keys: decrypt it (openssl pkey -in key.pem -out plain.pem) and keep that file 0600"
	}
	var parsed any
	var err error
	switch found.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(found.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(found.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(found.Bytes)
	default:
		return nil, fmt.Sprintf("key_file: %s holds a %s block (line %d), which engines do not read", name, found.Type, found.line),
			"convert it to PKCS#8: openssl pkcs8 -topk8 -nocrypt -in key.pem -out key8.pem"
	}
	// The parsers' own errors are left out: they are about the key's bytes.
	if err != nil {
		return nil, fmt.Sprintf("key_file: %s: the %s block at line %d does not parse as a private key", name, found.Type, found.line), give
	}
	switch k := parsed.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), "", ""
	}
	return nil, fmt.Sprintf("key_file: %s holds a key of a type TLS clients cannot use", name),
		"use an RSA, ECDSA or Ed25519 key"
}

// keyMatches reports whether key is the private key of cert.
func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}
