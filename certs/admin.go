package certs

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"time"
)

// This file holds the operations behind `massvhost certs put|get|ls`. They
// take a Store, Writer or Lister so they work on files and on Redis alike,
// and they validate everything an operator types before any store sees it.

// CanonicalName returns the store name for an operator-typed name: a host
// through vhost.Normalize ("Example.COM." → "example.com") or a wildcard
// "*.parent" through vhost.NormalizeWildcard. Errors wrap
// vhost.ErrInvalidName.
func CanonicalName(name string) (string, error) {
	return canonicalStoreName(name)
}

// CheckPair validates a pair before it is stored: the PEM parses, the key
// matches the leaf, the leaf covers name (a "*.parent" name needs that
// literal wildcard SAN), the key is strong enough, both PEMs are within
// [MaxPEMSize], and now lies within the validity period unless force is set
// (force exists for staging a certificate before its NotBefore, or keeping an
// expired one while its renewal is fixed). It returns the parsed leaf.
// Errors wrap ErrInvalidCert.
func CheckPair(name string, certPEM, keyPEM []byte, now time.Time, force bool) (*x509.Certificate, error) {
	pair, err := parsePair(name, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf := pair.Leaf
	if !force {
		switch {
		case now.After(leaf.NotAfter):
			return nil, invalid(name, "certificate expired on "+leaf.NotAfter.UTC().Format(time.RFC3339)+" (force to store it anyway)", nil)
		case now.Before(leaf.NotBefore):
			return nil, invalid(name, "certificate not valid before "+leaf.NotBefore.UTC().Format(time.RFC3339)+" (force to store it anyway)", nil)
		}
	}
	return leaf, nil
}

// PutChecked is `certs put`: it canonicalizes name, validates the pair with
// CheckPair and writes it with one atomic Put (which, for a RedisStore, also
// publishes the invalidation). It returns the canonical name and the leaf.
func PutChecked(ctx context.Context, w Writer, name string, certPEM, keyPEM []byte, now time.Time, force bool) (string, *x509.Certificate, error) {
	canon, err := CanonicalName(name)
	if err != nil {
		return "", nil, err
	}
	leaf, err := CheckPair(canon, certPEM, keyPEM, now, force)
	if err != nil {
		return "", nil, err
	}
	if err := w.Put(ctx, canon, certPEM, keyPEM); err != nil {
		return "", nil, err
	}
	return canon, leaf, nil
}

// Description is what `certs get` shows about a certificate.
type Description struct {
	Subject   string
	DNSNames  []string // the DNS subject alternative names
	Issuer    string
	Serial    string // hexadecimal
	NotBefore time.Time
	NotAfter  time.Time
	// SHA256 is the fingerprint of the DER certificate, as colon-separated
	// upper-case hex pairs (the form `openssl x509 -fingerprint -sha256`
	// prints).
	SHA256 string
}

// Describe summarizes cert.
func Describe(cert *x509.Certificate) Description {
	sum := sha256.Sum256(cert.Raw)
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = strings.ToUpper(hex.EncodeToString([]byte{b}))
	}
	return Description{
		Subject:   cert.Subject.String(),
		DNSNames:  append([]string(nil), cert.DNSNames...),
		Issuer:    cert.Issuer.String(),
		Serial:    cert.SerialNumber.Text(16),
		NotBefore: cert.NotBefore,
		NotAfter:  cert.NotAfter,
		SHA256:    strings.Join(pairs, ":"),
	}
}

// Stored is a certificate as `certs get` reports it.
type Stored struct {
	Name string
	// Layout is the Redis layout the pair came from; "" for stores with
	// a single layout (files).
	Layout Layout
	Description
}

// layoutGetter is implemented by stores that report which layout answered.
type layoutGetter interface {
	GetWithLayout(ctx context.Context, name string) (certPEM, keyPEM []byte, layout Layout, err error)
}

// Inspect is `certs get`: it canonicalizes name, reads the pair from s and
// describes it. A pair that does not validate (see CheckPair, without the
// date check: an expired certificate is described, not refused) is an error
// wrapping ErrInvalidCert that says why.
func Inspect(ctx context.Context, s Store, name string) (Stored, error) {
	canon, err := CanonicalName(name)
	if err != nil {
		return Stored{}, err
	}
	var (
		certPEM, keyPEM []byte
		layout          Layout
	)
	if lg, ok := s.(layoutGetter); ok {
		certPEM, keyPEM, layout, err = lg.GetWithLayout(ctx, canon)
	} else {
		certPEM, keyPEM, err = s.Get(ctx, canon)
	}
	if err != nil {
		return Stored{}, err
	}
	leaf, err := CheckPair(canon, certPEM, keyPEM, time.Time{}, true)
	if err != nil {
		return Stored{}, err
	}
	return Stored{Name: canon, Layout: layout, Description: Describe(leaf)}, nil
}

// ListNames is `certs ls [--match GLOB]`: it streams the names of l that
// match the path.Match pattern match ("" matches all). The pattern is applied
// here, never passed to Redis, so the same syntax works for every store.
func ListNames(ctx context.Context, l Lister, match string, fn func(name string) error) error {
	if match != "" {
		if _, err := path.Match(match, ""); err != nil {
			return fmt.Errorf("certs: ls: pattern %q: %w", match, err)
		}
	}
	return l.List(ctx, func(name string) error {
		if match != "" {
			if ok, _ := path.Match(match, name); !ok {
				return nil
			}
		}
		return fn(name)
	})
}
