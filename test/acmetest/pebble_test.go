package acmetest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"massvhost/test/acmetest"
)

func TestDNSAnswersLoopback(t *testing.T) {
	d := acmetest.StartDNS(t)
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "tcp", d.Addr)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"a.example.test", "deep.sub.tenant.example"} {
		ips, err := r.LookupIP(ctx, "ip4", name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ips) != 1 || !ips[0].Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("%s resolved to %v, want 127.0.0.1", name, ips)
		}
	}
}

func newClient(t *testing.T, p *acmetest.Pebble) *acme.Client {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &acme.Client{
		Key:          key,
		DirectoryURL: p.DirectoryURL,
		HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.TLSRoots}}},
	}
}

// TestPebbleIssuesAndRestarts drives Pebble with the bare ACME client in
// always-valid mode: the harness's config, roots and restart work.
func TestPebbleIssuesAndRestarts(t *testing.T) {
	p := acmetest.Start(t, acmetest.Options{AlwaysValid: true, Validity: time.Hour})
	if p.PID() == 0 {
		t.Fatal("no pid for a running pebble")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClient(t, p)
	if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	o, err := c.AuthorizeOrder(ctx, acme.DomainIDs("a.example.test"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range o.AuthzURLs {
		z, err := c.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range z.Challenges {
			if ch.Type == "http-01" {
				if _, err := c.Accept(ctx, ch); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.example.test"}}, key)
	der, _, err := c.CreateCertFromOrder(ctx, o, csr, true)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		t.Fatal(err)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > time.Hour {
		t.Errorf("validity %v, want at most the configured hour", life)
	}
	inter := x509.NewCertPool()
	for _, d := range der[1:] {
		ic, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ic)
	}
	roots := p.IssuerRoots(t)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "a.example.test", Roots: roots, Intermediates: inter}); err != nil {
		t.Fatalf("issued certificate does not verify against IssuerRoots: %v", err)
	}

	p.Restart(t)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "a.example.test", Roots: p.IssuerRoots(t), Intermediates: inter}); err == nil {
		t.Error("a restarted pebble kept its root; tests relying on a fresh CA would be wrong")
	}
	p.Stop()
	if p.PID() != 0 {
		t.Error("pid after Stop")
	}
}
