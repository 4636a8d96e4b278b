package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"massvhost/test/certtest"
)

func TestParsePairAcceptsStrongKeys(t *testing.T) {
	ca := certtest.NewCA(t)
	for _, tc := range []struct {
		name string
		opts certtest.LeafOptions
		host string
	}{
		{"ECDSA P-256", certtest.LeafOptions{Names: []string{"a.test"}}, "a.test"},
		{"RSA-2048", certtest.LeafOptions{Names: []string{"a.test"}, RSABits: 2048}, "a.test"},
		{"wildcard store name needs the literal SAN", certtest.LeafOptions{Names: []string{"*.a.test"}}, "*.a.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, keyPEM := ca.LeafWith(t, tc.opts)
			cert, err := parsePair(tc.host, certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if cert.Leaf == nil {
				t.Error("Leaf not set")
			}
		})
	}
	t.Run("exact certificate is not a wildcard", func(t *testing.T) {
		certPEM, keyPEM := ca.Leaf(t, "x.a.test")
		if _, err := parsePair("*.a.test", certPEM, keyPEM); !errors.Is(err, ErrInvalidCert) {
			t.Errorf("error = %v, want ErrInvalidCert", err)
		}
	})
}

// FuzzParsePair feeds arbitrary bytes as certificate and key. parsePair must
// never panic, and whatever it accepts must cover the name.
func FuzzParsePair(f *testing.F) {
	ca := certtest.NewCA(f)
	certPEM, keyPEM := ca.Leaf(f, "a.test")
	f.Add(certPEM, keyPEM)
	f.Add(certPEM[:len(certPEM)/2], keyPEM)
	f.Add(keyPEM, certPEM)
	if junk, err := os.ReadFile(filepath.Join("testdata", "malformed.pem")); err == nil {
		f.Add(junk, keyPEM)
		f.Add(certPEM, junk)
	}
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		cert, err := parsePair("a.test", certPEM, keyPEM)
		if err != nil {
			if !errors.Is(err, ErrInvalidCert) {
				t.Fatalf("error %v does not wrap ErrInvalidCert", err)
			}
			return
		}
		if err := cert.Leaf.VerifyHostname("a.test"); err != nil {
			t.Fatalf("accepted a certificate that does not cover the name: %v", err)
		}
	})
}

func TestInvalidPairs(t *testing.T) {
	const host = "bad.test"
	for _, tc := range []struct {
		name       string
		prepare    func(t *testing.T, f *fixture)
		wantReason string
	}{
		{"mismatched key", func(t *testing.T, f *fixture) {
			certPEM, _ := f.ca.Leaf(t, host)
			_, otherKey := f.ca.Leaf(t, host)
			certtest.WritePair(t, f.dir, host, certPEM, otherKey)
		}, "unusable certificate/key pair"},
		{"certificate for another host under this name", func(t *testing.T, f *fixture) {
			certPEM, keyPEM := f.ca.Leaf(t, "victim.test")
			certtest.WritePair(t, f.dir, host, certPEM, keyPEM)
		}, "does not cover the name"},
		{"wildcard for the names below", func(t *testing.T, f *fixture) {
			certPEM, keyPEM := f.ca.Leaf(t, "*."+host)
			certtest.WritePair(t, f.dir, host, certPEM, keyPEM)
		}, "does not cover the name"},
		{"truncated PEM", func(t *testing.T, f *fixture) {
			certPEM, keyPEM := f.ca.Leaf(t, host)
			certtest.WritePair(t, f.dir, host, certPEM[:len(certPEM)/3], keyPEM)
		}, "unusable certificate/key pair"},
		{"2 MiB certificate file", func(t *testing.T, f *fixture) {
			certPEM, keyPEM := f.ca.Leaf(t, host)
			huge := append(bytes.Repeat([]byte("#"), 2<<20), certPEM...)
			certtest.WritePair(t, f.dir, host, huge, keyPEM)
		}, "exceeds"},
		{"DER instead of PEM", func(t *testing.T, f *fixture) {
			certPEM, keyPEM := f.ca.Leaf(t, host)
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			certtest.WritePair(t, f.dir, host, pair.Certificate[0], keyPEM)
		}, "unusable certificate/key pair"},
		{"RSA-1024", func(t *testing.T, f *fixture) {
			certPEM, keyPEM := f.ca.LeafWith(t, certtest.LeafOptions{Names: []string{host}, RSABits: 1024})
			certtest.WritePair(t, f.dir, host, certPEM, keyPEM)
		}, "RSA key of 1024 bits"},
		{"empty files", func(t *testing.T, f *fixture) {
			certtest.WritePair(t, f.dir, host, nil, nil)
		}, "unusable certificate/key pair"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.prepare(t, f)
			m := f.manager(t)
			addr := serveTLS(t, m.GetCertificate)
			if _, err := handshake(addr, host, f.ca.Pool); err == nil {
				t.Fatal("handshake succeeded")
			}
			_, err := m.Lookup(context.Background(), host)
			if !errors.Is(err, ErrInvalidCert) {
				t.Fatalf("Lookup error = %v, want ErrInvalidCert", err)
			}
			if !strings.Contains(err.Error(), tc.wantReason) {
				t.Errorf("error %q does not give the reason %q", err, tc.wantReason)
			}
			if got := f.store.gets(host); got != 1 {
				t.Errorf("store Get calls = %d, want 1 (the failure is negative-cached)", got)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, "host="+host) || !strings.Contains(logs, "reason=") {
				t.Errorf("log does not name the host and reason:\n%s", logs)
			}
			if st := m.Stats(); st.Invalid != 1 {
				t.Errorf("Stats().Invalid = %d, want 1", st.Invalid)
			}
		})
	}
}
