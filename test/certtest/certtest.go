// Package certtest mints throw-away certificate authorities and leaf
// certificates for tests, so no key is ever committed to the repository.
// Every key is generated at test time; product code never imports it.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a self-signed certificate authority for one test.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	// Pool holds Cert, for clients that verify the chain.
	Pool *x509.CertPool
}

// NewCA creates an ECDSA P-256 certificate authority valid from an hour ago
// for a day.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("certtest: CA key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: "certtest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatalf("certtest: CA cert: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("certtest: parse CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Key: key, CertPEM: pemBlock("CERTIFICATE", der), Pool: pool}
}

// LeafOptions shape a leaf certificate. Zero fields take the defaults of Leaf.
type LeafOptions struct {
	Names     []string  // DNS SANs; the first is also the common name
	NotBefore time.Time // zero: an hour ago
	NotAfter  time.Time // zero: a day from now
	RSABits   int       // 0: ECDSA P-256; otherwise an RSA key of this size
	Key       crypto.Signer
}

// Leaf mints an ECDSA P-256 leaf for names, valid from an hour ago for a day.
// certPEM holds the leaf followed by the CA certificate (the chain).
func (ca *CA) Leaf(tb testing.TB, names ...string) (certPEM, keyPEM []byte) {
	tb.Helper()
	return ca.LeafWith(tb, LeafOptions{Names: names})
}

// LeafWith mints a leaf shaped by o.
func (ca *CA) LeafWith(tb testing.TB, o LeafOptions) (certPEM, keyPEM []byte) {
	tb.Helper()
	key := o.Key
	if key == nil {
		var err error
		if o.RSABits > 0 {
			key, err = rsa.GenerateKey(rand.Reader, o.RSABits)
		} else {
			key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			tb.Fatalf("certtest: leaf key: %v", err)
		}
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		DNSNames:     o.Names,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if len(o.Names) > 0 {
		tmpl.Subject.CommonName = o.Names[0]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		tb.Fatalf("certtest: leaf cert: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("certtest: marshal key: %v", err)
	}
	certPEM = append(pemBlock("CERTIFICATE", der), ca.CertPEM...)
	return certPEM, pemBlock("PRIVATE KEY", keyDER)
}

// WritePair writes certPEM and keyPEM as <dir>/<name>.crt and <dir>/<name>.key,
// the file store layout.
func WritePair(tb testing.TB, dir, name string, certPEM, keyPEM []byte) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), certPEM, 0o644); err != nil {
		tb.Fatalf("certtest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), keyPEM, 0o600); err != nil {
		tb.Fatalf("certtest: %v", err)
	}
}

func serial(tb testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatalf("certtest: serial: %v", err)
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
