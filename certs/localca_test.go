package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"massvhost/vhost"
)

func TestOpenLocalCACreatesOnceAndReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ca, err := OpenLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkModes(t, dir, map[string]os.FileMode{"": 0o700, "ca.key": 0o600, "ca.crt": 0o644})
	onDisk, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, ca.CertPEM()) {
		t.Error("CertPEM differs from ca.crt")
	}
	cert := ca.Certificate()
	if !cert.IsCA || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("CA certificate: IsCA=%v MaxPathLen=%d", cert.IsCA, cert.MaxPathLen)
	}
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", cert.PublicKey)
	}

	again, err := OpenLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Certificate().Equal(cert) {
		t.Error("reopening created a new CA")
	}
}

func TestOpenLocalCAConcurrentStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	const n = 16
	cas := make([]*LocalCA, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			cas[i], errs[i] = OpenLocalCA(dir)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		if !cas[i].Certificate().Equal(cas[0].Certificate()) {
			t.Fatalf("open %d got a different CA", i)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("data directory holds %d files, want ca.crt and ca.key only", len(entries))
	}
}

func TestOpenLocalCARepairs(t *testing.T) {
	t.Run("certificate recreated from the existing key", func(t *testing.T) {
		dir := t.TempDir()
		first, err := OpenLocalCA(dir)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "ca.crt"))
		second, err := OpenLocalCA(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !second.key.Equal(first.key) {
			t.Error("key changed")
		}
		// Leaves of the first certificate verify under the second: same key and name.
		if _, err := issueAndVerify(t, first, second, "a.test"); err != nil {
			t.Error(err)
		}
	})
	t.Run("certificate of another key is refused", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		if _, err := OpenLocalCA(a); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenLocalCA(b); err != nil {
			t.Fatal(err)
		}
		other, _ := os.ReadFile(filepath.Join(b, "ca.crt"))
		os.WriteFile(filepath.Join(a, "ca.crt"), other, 0o644)
		if _, err := OpenLocalCA(a); err == nil {
			t.Fatal("mismatched ca.crt accepted")
		}
	})
	t.Run("garbage key is refused", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "ca.key"), []byte("not a key"), 0o600)
		if _, err := OpenLocalCA(dir); err == nil {
			t.Fatal("garbage key accepted")
		}
	})
}

// issueAndVerify has issuer mint a leaf for name and verifies it against
// trust's certificate.
func issueAndVerify(t *testing.T, issuer, trust *LocalCA, name string) (*x509.Certificate, error) {
	t.Helper()
	certPEM, keyPEM, err := issuer.Issue(context.Background(), name)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(trust.Certificate())
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
		return nil, err
	}
	return pair.Leaf, nil
}

func TestLocalCAIssue(t *testing.T) {
	ca, err := OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, name := range []string{"a.test", "*.wild.test", "xn--bcher-kva.test"} {
		t.Run(name, func(t *testing.T) {
			probe := name
			if isWildcard(name) {
				probe = "x" + name[1:]
			}
			leaf, err := issueAndVerify(t, ca, ca, name)
			if err == nil {
				err = leaf.VerifyHostname(probe)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != localLeafValidity+backdate {
				t.Errorf("validity %v, want %v", got, localLeafValidity+backdate)
			}
			if leaf.NotBefore.After(now.Add(-59 * time.Minute)) {
				t.Errorf("NotBefore %v is not backdated by an hour", leaf.NotBefore)
			}
			if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
				t.Errorf("leaf key is %T, want ECDSA P-256", leaf.PublicKey)
			}
		})
	}
	t.Run("chain is leaf then CA", func(t *testing.T) {
		certPEM, _, err := ca.Issue(context.Background(), "a.test")
		if err != nil {
			t.Fatal(err)
		}
		var blocks []*pem.Block
		for rest := certPEM; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			blocks = append(blocks, b)
		}
		if len(blocks) != 2 || !bytes.Equal(blocks[1].Bytes, ca.Certificate().Raw) {
			t.Errorf("chain has %d blocks, want leaf + CA", len(blocks))
		}
	})
	for _, name := range []string{"", "../x", "A.test", "*.test", "1.2.3.4"} {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, _, err := ca.Issue(context.Background(), name); !errors.Is(err, vhost.ErrInvalidName) {
				t.Errorf("Issue(%q) error = %v, want vhost.ErrInvalidName", name, err)
			}
		})
	}
	t.Run("honors ctx", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := ca.Issue(ctx, "a.test"); !errors.Is(err, context.Canceled) {
			t.Errorf("Issue error = %v, want context.Canceled", err)
		}
	})
}
