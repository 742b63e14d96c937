// Package testpki holds real PEM fixtures for tests: a small CA, a client
// certificate it signed and that certificate's key in each encoding the spec
// accepts, an RSA client pair, and a key that matches nothing. They protect
// nothing (test keys, committed on purpose); regenerate them with
//
//	go test ./internal/testpki -run TestGenerate -regenerate
//
// which also rewrites the demo's CA (testdata/demo/certs/nexus-ca.crt).
package testpki

import _ "embed"

var (
	// CA is a self-signed CA certificate (ECDSA P-256).
	//go:embed ca.crt
	CA string
	// ClientCert is a client certificate signed by CA (ECDSA P-256).
	//go:embed client.crt
	ClientCert string
	// ClientKey is ClientCert's key as PKCS#8 ("PRIVATE KEY").
	//go:embed client.key
	ClientKey string
	// ClientKeyEC is the same key as SEC 1 ("EC PRIVATE KEY"), as
	// `openssl ecparam -genkey` writes it, EC PARAMETERS block first.
	//go:embed client-ec.key
	ClientKeyEC string
	// RSACert is a client certificate signed by CA (RSA 2048).
	//go:embed client-rsa.crt
	RSACert string
	// RSAKey is RSACert's key as PKCS#1 ("RSA PRIVATE KEY").
	//go:embed client-rsa.key
	RSAKey string
	// OtherKey is a PKCS#8 key that belongs to none of the certificates.
	//go:embed other.key
	OtherKey string
)
