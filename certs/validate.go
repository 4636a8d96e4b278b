package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"massvhost/vhost"
)

// MaxPEMSize bounds one certificate chain or one key as read from a store, so
// that a corrupt or hostile 100 MB value cannot exhaust memory. A chain of a
// leaf and two intermediates is under 8 KiB.
const MaxPEMSize = 1 << 20

// minRSABits is the smallest RSA modulus served. Shorter keys are factorable
// by well-funded attackers and refused by current browsers.
const minRSABits = 2048

// ErrInvalidCert reports that a store holds data for a name but the data is
// not a certificate the Manager may serve for it: unparsable or truncated
// PEM, a key that does not match the certificate, a certificate that does not
// cover the name, a weak key, or a value over [MaxPEMSize]. The Manager
// remembers such failures in its negative cache for NegativeTTL only, because
// a pair caught between the renames of a non-atomic writer repairs itself.
var ErrInvalidCert = errors.New("certs: invalid certificate")

// invalidError is a validation failure. It carries the reason separately so
// that logs can report it as an attribute.
type invalidError struct {
	name   string // the host (or store name) the pair was checked for
	reason string
	err    error // the underlying parser error, if any
}

func (e *invalidError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("certs: %q: invalid certificate: %s: %v", e.name, e.reason, e.err)
	}
	return fmt.Sprintf("certs: %q: invalid certificate: %s", e.name, e.reason)
}

func (e *invalidError) Unwrap() []error {
	if e.err != nil {
		return []error{ErrInvalidCert, e.err}
	}
	return []error{ErrInvalidCert}
}

// invalid returns an error wrapping ErrInvalidCert.
func invalid(name, reason string, err error) error {
	return &invalidError{name: name, reason: reason, err: err}
}

// invalidReason returns the reason of a validation failure, or "" if err is
// not one.
func invalidReason(err error) string {
	if ie, ok := errors.AsType[*invalidError](err); ok {
		return ie.reason
	}
	return ""
}

// parsePair turns a PEM chain and key into a certificate that may be served
// for name, which is a canonical host or a "*."-prefixed store name. It checks,
// in order: sizes, the PEM and key match (tls.X509KeyPair), the leaf parses,
// the leaf covers name (so a store mix-up can never serve b's certificate for
// a), and the key strength. The returned certificate has Leaf set and must not
// be modified. Validity dates are the caller's concern: an expired certificate
// is still returned. parsePair never panics, whatever the bytes.
func parsePair(name string, certPEM, keyPEM []byte) (*tls.Certificate, error) {
	if len(certPEM) > MaxPEMSize {
		return nil, invalid(name, fmt.Sprintf("certificate PEM of %d bytes exceeds %d", len(certPEM), MaxPEMSize), nil)
	}
	if len(keyPEM) > MaxPEMSize {
		return nil, invalid(name, fmt.Sprintf("key PEM of %d bytes exceeds %d", len(keyPEM), MaxPEMSize), nil)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, invalid(name, "unusable certificate/key pair", err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		leaf, err = x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, invalid(name, "unparsable leaf certificate", err)
		}
		pair.Leaf = leaf
	}
	// VerifyHostname matches a "*.example.com" store name only against a
	// literal "*.example.com" SAN, which is what a wildcard entry must hold.
	if err := leaf.VerifyHostname(name); err != nil {
		return nil, invalid(name, "certificate does not cover the name", err)
	}
	if reason := weakKey(leaf); reason != "" {
		return nil, invalid(name, reason, nil)
	}
	return &pair, nil
}

// weakKey returns why leaf's public key is refused, or "" if it is accepted.
func weakKey(leaf *x509.Certificate) string {
	switch k := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return fmt.Sprintf("RSA key of %d bits (minimum %d)", n, minRSABits)
		}
	case *ecdsa.PublicKey:
		if n := k.Curve.Params().BitSize; n < 256 {
			return fmt.Sprintf("ECDSA key of %d bits (minimum 256)", n)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Sprintf("unsupported public key type %T", k)
	}
	return ""
}

// checkStoreName reports an error wrapping vhost.ErrInvalidName unless name
// is a store name in canonical form: a host name that vhost.Normalize
// returns unchanged, or a wildcard name that vhost.NormalizeWildcard returns
// unchanged. Stores call it before building a path or key from name.
func checkStoreName(name string) error {
	canon, err := canonicalStoreName(name)
	if err != nil {
		return err
	}
	if canon != name {
		return fmt.Errorf("%w: %q is not in canonical form", vhost.ErrInvalidName, name)
	}
	return nil
}

// canonicalStoreName normalizes a host or wildcard store name.
func canonicalStoreName(name string) (string, error) {
	if isWildcard(name) {
		return vhost.NormalizeWildcard(name)
	}
	return vhost.Normalize(name)
}

// isWildcard reports whether name is a wildcard store name ("*.example.com").
func isWildcard(name string) bool { return strings.HasPrefix(name, "*.") }
