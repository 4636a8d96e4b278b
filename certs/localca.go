package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Validity of local CA certificates. Leaves are backdated to tolerate client
// clock skew; 90 days matches what ACME CAs issue, so local renewals exercise
// the same code paths.
const (
	localCAValidity   = 10 * 365 * 24 * time.Hour
	localLeafValidity = 90 * 24 * time.Hour
	backdate          = time.Hour
)

// Files of a local CA in its directory.
const (
	localCACertFile = "ca.crt"
	localCAKeyFile  = "ca.key"
)

// LocalCA is a private certificate authority that mints certificates for
// tenants without any network access, so that a fresh install serves HTTPS
// at once. Clients trust it only after an operator installs its certificate
// ([LocalCA.CertPEM], the ca.crt file) in their trust store; it is meant for
// development, intranets and tests, not for the public web.
//
// Anyone who can read ca.key can mint certificates for any name that the
// clients trusting this CA will accept, so the key is created mode 0600 in
// a 0700 directory. A LocalCA is safe for concurrent use. It implements
// [Issuer].
type LocalCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	now     func() time.Time
}

// OpenLocalCA loads the CA kept in dir (ca.key and ca.crt), creating dir
// (0700), the key (ECDSA P-256) and the self-signed certificate on first
// use. Processes starting together share one CA: each file is written to a
// temporary name and linked into place only if absent, so exactly one key
// and one certificate win and every process loads those. A certificate that
// is missing while the key exists (a crash between the two) is recreated
// from the key; a certificate that does not match the key is an error, never
// overwritten.
func OpenLocalCA(dir string) (*LocalCA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: local CA: %w", err)
	}
	keyPath := filepath.Join(dir, localCAKeyFile)
	keyPEM, err := readOrCreate(keyPath, 0o600, func() ([]byte, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	})
	if err != nil {
		return nil, fmt.Errorf("certs: local CA key: %w", err)
	}
	key, err := parseECKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: local CA key %s: %w", keyPath, err)
	}
	certPath := filepath.Join(dir, localCACertFile)
	certPEM, err := readOrCreate(certPath, 0o644, func() ([]byte, error) { return selfSign(key, time.Now()) })
	if err != nil {
		return nil, fmt.Errorf("certs: local CA certificate: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certs: local CA certificate %s: no CERTIFICATE PEM block", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: local CA certificate %s: %w", certPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("certs: local CA certificate %s does not match %s", certPath, keyPath)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("certs: local CA certificate %s is not a CA certificate", certPath)
	}
	return &LocalCA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		now:     time.Now,
	}, nil
}

// readOrCreate returns the contents of path, first creating it with the
// output of create if it does not exist. Creation writes a temporary file
// and hard-links it to path, which fails if path appeared meanwhile; the
// loser of that race reads the winner's file.
func readOrCreate(path string, perm os.FileMode, create func() ([]byte, error)) ([]byte, error) {
	data, err := os.ReadFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return data, err
	}
	data, err = create()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-ca-")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(perm)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, werr
	}
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return os.ReadFile(path)
	} else if err != nil {
		return nil, err
	}
	return data, nil
}

func parseECKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PRIVATE KEY PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ECDSA", k)
	}
	return ec, nil
}

// selfSign makes the CA certificate for key. MaxPathLenZero keeps it from
// vouching for intermediates: the CA signs leaves only.
func selfSign(key *ecdsa.PrivateKey, now time.Time) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "massvhost local CA", Organization: []string{"massvhost"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(localCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// Issue implements [Issuer]. It mints an ECDSA P-256 leaf for name (a
// canonical host or "*." plus one), valid from an hour ago for 90 days but
// never beyond the CA itself. certPEM holds the leaf followed by the CA
// certificate. Issue does not consult any policy: the Manager's HostPolicy
// decides which names reach it.
func (ca *LocalCA) Issue(ctx context.Context, name string) (certPEM, keyPEM []byte, err error) {
	if err := checkStoreName(name); err != nil {
		return nil, nil, fmt.Errorf("certs: local CA issue: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("certs: local CA issue %q: %w", name, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: local CA issue %q: %w", name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("certs: local CA issue %q: %w", name, err)
	}
	now := ca.now()
	notAfter := now.Add(localLeafValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: local CA issue %q: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: local CA issue %q: %w", name, err)
	}
	var chain bytes.Buffer
	pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	chain.Write(ca.certPEM)
	return chain.Bytes(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// CertPEM returns the CA certificate in PEM form, for clients to trust (the
// same bytes as the ca.crt file). The caller may modify the returned slice.
func (ca *LocalCA) CertPEM() []byte {
	return bytes.Clone(ca.certPEM)
}

// Certificate returns the parsed CA certificate. It must not be modified.
func (ca *LocalCA) Certificate() *x509.Certificate {
	return ca.cert
}

// Interface guard.
var _ Issuer = (*LocalCA)(nil)
