package spec

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mirrorctl/mirrorctl/internal/testpki"
)

// keyLines are the lines of every private key fixture that carry key
// material: none may ever appear in a message.
func keyLines() []string {
	var out []string
	for _, k := range []string{testpki.ClientKey, testpki.ClientKeyEC, testpki.RSAKey, testpki.OtherKey} {
		for l := range strings.SplitSeq(k, "\n") {
			if l != "" && !strings.HasPrefix(l, "-----") {
				out = append(out, l)
			}
		}
	}
	return out
}

// TestTLSFilesAreWhatTheSpecSays: a ca_file or cert_file holds only
// certificates and a key_file only the certificate's private key. Each case
// is one mistake, reported as the only error at the key (file:line:column of
// `ca_file:`), with a message naming the file and what it holds, a hint
// saying what to write, and no byte of any key.
func TestTLSFilesAreWhatTheSpecSays(t *testing.T) {
	const (
		ca       = "configs:\n  r.example.com:\n    tls:\n      ca_file: f.pem\n"
		pair     = "configs:\n  r.example.com:\n    tls:\n      cert_file: c.pem\n      key_file: k.pem\n"
		garbage  = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VDQQ==\n-----END CERTIFICATE-----\n"
		badKey   = "-----BEGIN PRIVATE KEY-----\nTUlJRWZha2VLZXk=\n-----END PRIVATE KEY-----\n"
		pubKey   = "-----BEGIN PUBLIC KEY-----\nTUlJRWZha2VLZXk=\n-----END PUBLIC KEY-----\n"
		openssh  = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n"
		encPKCS8 = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nTUlJRWZha2VLZXk=\n-----END ENCRYPTED PRIVATE KEY-----\n"
	)
	// An unterminated key block after a good certificate: encoding/pem
	// skips it without a word.
	unterminated := testpki.CA + strings.TrimSuffix(testpki.ClientKey, "-----END PRIVATE KEY-----\n")
	// A legacy encrypted PEM key (openssl rsa -aes256).
	legacyEnc := strings.Replace(testpki.RSAKey, "-----BEGIN RSA PRIVATE KEY-----\n",
		"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\n", 1)
	caLines := strings.Count(testpki.CA, "\n")
	certLines := strings.Count(testpki.ClientCert, "\n")

	tests := []struct {
		name      string
		spec      string
		files     map[string]string
		pos       string
		msg, hint string
	}{
		// ca_file
		{name: "ca_is_a_key", spec: ca, files: map[string]string{"f.pem": testpki.ClientKey},
			pos: "4:7", msg: "ca_file: NAMEDIR/f.pem holds a PRIVATE KEY block (line 1), not a certificate",
			hint: "give the CA certificate (PEM) here; a private key must never be in it"},
		{name: "ca_with_a_key_after_it", spec: ca, files: map[string]string{"f.pem": testpki.CA + testpki.ClientKey},
			pos: "4:7", msg: "holds a PRIVATE KEY block (line " + strconv.Itoa(caLines+1) + "), not a certificate", hint: "world-readable"},
		{name: "ca_is_an_rsa_key", spec: ca, files: map[string]string{"f.pem": testpki.RSAKey},
			pos: "4:7", msg: "holds a RSA PRIVATE KEY block (line 1)", hint: "give the CA certificate"},
		{name: "ca_with_a_hidden_key", spec: ca, files: map[string]string{"f.pem": unterminated},
			pos: "4:7", msg: "ca_file: NAMEDIR/f.pem has a malformed PEM block at line " + strconv.Itoa(caLines+1), hint: "-----END"},
		{name: "ca_not_pem", spec: ca, files: map[string]string{"f.pem": "just some text\n"},
			pos: "4:7", msg: "ca_file: NAMEDIR/f.pem holds no PEM certificate", hint: "-----BEGIN CERTIFICATE-----"},
		{name: "ca_der", spec: ca, files: map[string]string{"f.pem": "\x30\x82\x01\x85\x30\x82"},
			pos: "4:7", msg: "holds no PEM certificate", hint: "openssl x509 -inform der"},
		{name: "ca_not_x509", spec: ca, files: map[string]string{"f.pem": testpki.CA + garbage},
			pos: "4:7", msg: "the CERTIFICATE block at line " + strconv.Itoa(caLines+1) + " is not a valid X.509 certificate", hint: "give the CA certificate"},
		{name: "ca_public_key", spec: ca, files: map[string]string{"f.pem": pubKey},
			pos: "4:7", msg: "holds a PUBLIC KEY block (line 1), not a certificate", hint: "keep only CERTIFICATE blocks"},

		// cert_file
		{name: "cert_is_a_key", spec: pair, files: map[string]string{"c.pem": testpki.ClientKey, "k.pem": testpki.ClientKey},
			pos: "4:7", msg: "cert_file: NAMEDIR/c.pem holds a PRIVATE KEY block (line 1), not a certificate", hint: "its private key goes in key_file"},
		{name: "cert_with_its_key", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert + testpki.ClientKey, "k.pem": testpki.ClientKey},
			pos: "4:7", msg: "holds a PRIVATE KEY block (line " + strconv.Itoa(certLines+1) + ")", hint: "world-readable"},
		{name: "cert_not_pem", spec: pair, files: map[string]string{"c.pem": "CERT", "k.pem": testpki.ClientKey},
			pos: "4:7", msg: "cert_file: NAMEDIR/c.pem holds no PEM certificate"},

		// key_file
		{name: "key_is_a_cert", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert, "k.pem": testpki.ClientCert},
			pos: "5:7", msg: "key_file: NAMEDIR/k.pem holds a CERTIFICATE block (line 1), not a private key", hint: "the certificate goes in cert_file"},
		{name: "key_with_its_cert", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert, "k.pem": testpki.ClientKey + testpki.ClientCert},
			pos: "5:7", msg: "holds a CERTIFICATE block", hint: "the certificate goes in cert_file"},
		{name: "key_not_pem", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert, "k.pem": "KEY-" + testPassword},
			pos: "5:7", msg: "key_file: NAMEDIR/k.pem holds no PEM private key", hint: "BEGIN PRIVATE KEY"},
		{name: "key_two_keys", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert, "k.pem": testpki.ClientKey + testpki.OtherKey},
			pos: "5:7", msg: "holds more than one private key (lines 1 and " + strconv.Itoa(strings.Count(testpki.ClientKey, "\n")+1) + ")"},
		{name: "key_does_not_parse", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert, "k.pem": badKey},
			pos: "5:7", msg: "the PRIVATE KEY block at line 1 does not parse as a private key"},
		{name: "key_openssh", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert, "k.pem": openssh},
			pos: "5:7", msg: "holds a OPENSSH PRIVATE KEY block (line 1), which engines do not read", hint: "PKCS#8"},
		{name: "key_encrypted_pkcs8", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert, "k.pem": encPKCS8},
			pos: "5:7", msg: "holds an encrypted private key", hint: "decrypt it"},
		{name: "key_encrypted_legacy", spec: pair, files: map[string]string{"c.pem": testpki.RSACert, "k.pem": legacyEnc},
			pos: "5:7", msg: "holds an encrypted private key"},
		{name: "key_not_the_certs", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert, "k.pem": testpki.OtherKey},
			pos: "5:7", msg: "key_file: NAMEDIR/k.pem is not the key of the certificate in cert_file NAMEDIR/c.pem", hint: "openssl pkey -pubout"},
		{name: "key_of_another_cert", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert, "k.pem": testpki.RSAKey},
			pos: "5:7", msg: "is not the key of the certificate"},
		{name: "key_with_a_hidden_block", spec: pair, files: map[string]string{"c.pem": testpki.ClientCert, "k.pem": testpki.ClientKey + "-----BEGIN CERTIFICATE-----\n"},
			pos: "5:7", msg: "has a malformed PEM block at line " + strconv.Itoa(strings.Count(testpki.ClientKey, "\n")+1)},

		// What is missing is named (and nothing is checked twice).
		{name: "cert_without_key", spec: "configs:\n  r.example.com:\n    tls:\n      cert_file: c.pem\n",
			files: map[string]string{"c.pem": testpki.ClientCert},
			pos:   "4:7", msg: "cert_file without key_file", hint: "add key_file: the client certificate's private key"},
		{name: "key_without_cert", spec: "configs:\n  r.example.com:\n    tls:\n      key_file: k.pem\n",
			files: map[string]string{"k.pem": testpki.ClientKey},
			pos:   "4:7", msg: "key_file without cert_file", hint: "add cert_file"},
	}
	root := t.TempDir()
	leaks := append(leakForms(), keyLines()...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFilesIn(t, filepath.Join(root, tt.name), tt.files)
			name := filepath.Join(dir, "spec.yaml")
			_, err := Parse(name, []byte(tt.spec), opts())
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse = %v, want spec.Errors", err)
			}
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(errs), err)
			}
			e := errs[0]
			expand := strings.NewReplacer("NAMEDIR", dir)
			if prefix := name + ":" + tt.pos + ": "; !strings.HasPrefix(e.Error(), prefix) {
				t.Errorf("error %q\ndoes not start with %q", e.Error(), prefix)
			}
			if msg := expand.Replace(tt.msg); !strings.Contains(e.Msg, msg) {
				t.Errorf("message %q\ndoes not contain %q", e.Msg, msg)
			}
			if !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("hint %q does not contain %q", e.Hint, tt.hint)
			}
			for _, leak := range leaks {
				if strings.Contains(e.Error(), leak) {
					t.Errorf("error %q contains key material %q", e.Error(), leak)
				}
			}
		})
	}
}

// TestTLSFilesAccepted: the forms real files take are accepted as they are,
// byte for byte.
func TestTLSFilesAccepted(t *testing.T) {
	// A system bundle has comment lines between its certificates.
	bundle := "# mirrorctl test CA\n" + testpki.CA + "\n# the client, as a second root\n" + testpki.ClientCert
	tests := []struct {
		name              string
		ca, cert, keyFile string
	}{
		{"pkcs8", testpki.CA, testpki.ClientCert, testpki.ClientKey},
		{"sec1_with_ec_parameters", testpki.CA, testpki.ClientCert, testpki.ClientKeyEC},
		{"pkcs1", testpki.CA, testpki.RSACert, testpki.RSAKey},
		{"bundle_with_comments", bundle, testpki.ClientCert + testpki.CA, testpki.ClientKey}, // a chain, leaf first
	}
	root := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFilesIn(t, filepath.Join(root, tt.name), map[string]string{"ca.pem": tt.ca, "c.pem": tt.cert, "k.pem": tt.keyFile})
			s, err := Parse(filepath.Join(dir, "spec.yaml"), []byte(
				"configs:\n  r.example.com:\n    tls: {ca_file: ca.pem, cert_file: c.pem, key_file: k.pem}\n"), opts())
			if err != nil {
				t.Fatal(err)
			}
			tls := s.Configs["r.example.com"].TLS
			if string(tls.CA) != tt.ca || string(tls.Cert) != tt.cert || tls.Key.Reveal() != tt.keyFile {
				t.Error("the files are not kept byte for byte")
			}
		})
	}
}

// One TLS file named by many configs is checked once, and each naming
// still gets its own error, at its own key, in its own words.
func TestOneTLSFileNamedTwice(t *testing.T) {
	const garbage = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VDQQ==\n-----END CERTIFICATE-----\n"
	dir := writeFilesIn(t, t.TempDir(), map[string]string{"bad.pem": garbage, "ca.pem": testpki.CA, "k.pem": testpki.ClientKey})
	name := filepath.Join(dir, "spec.yaml")
	_, err := Parse(name, []byte("configs:\n"+
		"  a.example.com:\n    tls: {ca_file: bad.pem}\n"+
		"  b.example.com:\n    tls: {ca_file: bad.pem}\n"+
		"  c.example.com:\n    tls: {cert_file: bad.pem, key_file: k.pem}\n"+
		"  d.example.com:\n    tls: {ca_file: ca.pem}\n"+
		"  e.example.com:\n    tls: {ca_file: ca.pem}\n"), opts())
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v, want spec.Errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, strings.TrimPrefix(e.Error(), name+":"))
	}
	want := []string{"3:11: ca_file: ", "5:11: ca_file: ", "7:11: cert_file: "}
	if len(got) != len(want) {
		t.Fatalf("errors:\n%s\nwant %d, starting %q", strings.Join(got, "\n"), len(want), want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) || !strings.Contains(got[i], "is not a valid X.509 certificate") {
			t.Errorf("error %d: %q, want it to start %q and name the invalid certificate", i, got[i], want[i])
		}
	}
	if !strings.Contains(errs[2].Hint, "its private key goes in key_file") {
		t.Errorf("cert_file's hint %q is ca_file's", errs[2].Hint)
	}
}
