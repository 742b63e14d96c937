package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// writeCerts writes the e2e's key material into dir:
//
//	jwt.key, jwt.crt       the token signer (ES256); jwt.crt is distribution's rootcertbundle
//	ca.crt, ca.key         the mirrors' CA
//	server.crt, server.key a server certificate for 127.0.0.1 and localhost, signed by ca
//	other-ca.crt           a CA that signed nothing here (the wrong ca_file)
func writeCerts(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	jwtKey, jwtDER, err := selfSigned("mirrorctl-e2e token signer", now, false)
	if err != nil {
		return err
	}
	caKey, caDER, err := selfSigned("mirrorctl-e2e CA", now, true)
	if err != nil {
		return err
	}
	_, otherDER, err := selfSigned("mirrorctl-e2e other CA", now, true)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "mirrorctl-e2e mirror"},
		NotBefore:    now, NotAfter: now.Add(48 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	files := []struct {
		name, typ string
		der       []byte
	}{
		{"jwt.crt", "CERTIFICATE", jwtDER}, {"ca.crt", "CERTIFICATE", caDER},
		{"other-ca.crt", "CERTIFICATE", otherDER}, {"server.crt", "CERTIFICATE", srvDER},
	}
	for _, k := range []struct {
		name string
		key  *ecdsa.PrivateKey
	}{{"jwt.key", jwtKey}, {"ca.key", caKey}, {"server.key", srvKey}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return err
		}
		files = append(files, struct {
			name, typ string
			der       []byte
		}{k.name, "PRIVATE KEY", der})
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(filepath.Join(dir, f.name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func selfSigned(cn string, now time.Time, isCA bool) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now, NotAfter: now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return key, der, err
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errNoPEM(path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errNoPEM(path)
	}
	return ec, nil
}

func readCertDER(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errNoPEM(path)
	}
	return blk.Bytes, nil
}

type errNoPEM string

func (e errNoPEM) Error() string { return string(e) + ": no PEM key or certificate" }
