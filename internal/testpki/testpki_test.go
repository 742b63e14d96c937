package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var regenerate = flag.Bool("regenerate", false, "write new fixtures (keys and certificates)")

// TestFixtures: the fixtures are what their names say, so that tests built
// on them test what they claim.
func TestFixtures(t *testing.T) {
	roots := x509.NewCertPool()
	ca := parseCert(t, CA)
	if !ca.IsCA {
		t.Error("CA is not a CA certificate")
	}
	roots.AddCert(ca)
	for name, pair := range map[string][2]string{
		"ClientCert/ClientKey":   {ClientCert, ClientKey},
		"ClientCert/ClientKeyEC": {ClientCert, ClientKeyEC},
		"RSACert/RSAKey":         {RSACert, RSAKey},
	} {
		if _, err := tls.X509KeyPair([]byte(pair[0]), []byte(pair[1])); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			CurrentTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
		if _, err := parseCert(t, pair[0]).Verify(opts); err != nil {
			t.Errorf("%s: not a client certificate of CA: %v", name, err)
		}
	}
	if _, err := tls.X509KeyPair([]byte(ClientCert), []byte(OtherKey)); err == nil {
		t.Error("OtherKey matches ClientCert")
	}
	for name, want := range map[string]string{"ClientKey": "PRIVATE KEY", "RSAKey": "RSA PRIVATE KEY", "OtherKey": "PRIVATE KEY"} {
		b, _ := pem.Decode([]byte(map[string]string{"ClientKey": ClientKey, "RSAKey": RSAKey, "OtherKey": OtherKey}[name]))
		if b == nil || b.Type != want {
			t.Errorf("%s is not a %s block", name, want)
		}
	}
	demo, err := os.ReadFile("../../testdata/demo/certs/nexus-ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	if c := parseCert(t, string(demo)); !c.IsCA {
		t.Error("the demo's nexus-ca.crt is not a CA certificate")
	}
}

func parseCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatal("not a PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGenerate writes the fixtures, with -regenerate only.
func TestGenerate(t *testing.T) {
	if !*regenerate {
		t.Skip("run with -regenerate to write new fixtures")
	}
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	until := from.AddDate(100, 0, 0)
	serial := int64(1)
	tmpl := func(cn string) *x509.Certificate {
		serial++
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: from, NotAfter: until}
	}
	ecKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caCert := func(cn string) (*x509.Certificate, crypto.Signer, []byte) {
		k := ecKey()
		c := tmpl(cn)
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		der, err := x509.CreateCertificate(rand.Reader, c, c, k.Public(), k)
		if err != nil {
			t.Fatal(err)
		}
		parsed, _ := x509.ParseCertificate(der)
		return parsed, k, pemOf("CERTIFICATE", der)
	}
	client := func(parent *x509.Certificate, signer crypto.Signer, pub crypto.PublicKey, cn string) []byte {
		c := tmpl(cn)
		c.KeyUsage = x509.KeyUsageDigitalSignature
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		der, err := x509.CreateCertificate(rand.Reader, c, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("CERTIFICATE", der)
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("PRIVATE KEY", der)
	}

	ca, caKey, caPEM := caCert("mirrorctl test CA")
	ck := ecKey()
	sec1, err := x509.MarshalECPrivateKey(ck)
	if err != nil {
		t.Fatal(err)
	}
	oid, _ := pem.Decode([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")) // prime256v1
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, _, demoPEM := caCert("nexus.example.internal demo CA")
	files := map[string][]byte{
		"ca.crt":         caPEM,
		"client.crt":     client(ca, caKey, ck.Public(), "mirrorctl test client"),
		"client.key":     pkcs8(ck),
		"client-ec.key":  append(pemOf(oid.Type, oid.Bytes), pemOf("EC PRIVATE KEY", sec1)...),
		"client-rsa.crt": client(ca, caKey, rk.Public(), "mirrorctl test RSA client"),
		"client-rsa.key": pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)),
		"other.key":      pkcs8(ecKey()),
		filepath.Join("..", "..", "testdata", "demo", "certs", "nexus-ca.crt"): demoPEM,
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
