package certtest

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

func TestLeafVerifiesAgainstCA(t *testing.T) {
	ca := NewCA(t)
	for _, tc := range []struct {
		name string
		opts LeafOptions
	}{
		{"ecdsa", LeafOptions{Names: []string{"a.test", "*.a.test"}}},
		{"rsa", LeafOptions{Names: []string{"b.test"}, RSABits: 2048}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, keyPEM := ca.LeafWith(t, tc.opts)
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if len(pair.Certificate) != 2 {
				t.Fatalf("chain has %d certificates, want leaf + CA", len(pair.Certificate))
			}
			leaf, err := x509.ParseCertificate(pair.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: tc.opts.Names[0]}); err != nil {
				t.Fatalf("leaf does not verify: %v", err)
			}
		})
	}
}
