package certs

import (
	"context"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"massvhost/test/certtest"
)

// BenchmarkACMEFirstHandshake measures a tenant's first HTTPS visit with
// no certificate anywhere: from the ClientHello to a completed handshake
// with a certificate Pebble issued after really validating http-01 against
// the fixture's listener, stored in Redis. It is loopback latency: a real
// CA adds its network round trips and validation from the internet.
func BenchmarkACMEFirstHandshake(b *testing.B) {
	f := newACMEFixture(b, acmeFixtureOptions{})
	f.node(b, func(o *ACMEOptions) {
		o.Policy.PerDomainBurst, o.Policy.GlobalBurst = 1<<20, 1<<20
	})
	roots := f.pebble.IssuerRoots(b)
	i := 0
	var total time.Duration
	for b.Loop() {
		name := fmt.Sprintf("n%d.bench.test", i)
		i++
		f.addTenant(name)
		start := time.Now()
		if _, err := handshake(f.tlsAddr, name, roots); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(i), "ms/issue")
}

// BenchmarkACMEIssuedHandshake compares full TLS handshakes for a name whose
// certificate ACME issued with one whose certificate was put in Redis by
// hand: once cached, both are the same Manager hit, and an Issuer costs
// nothing on the hot path.
func BenchmarkACMEIssuedHandshake(b *testing.B) {
	f := newACMEFixture(b, acmeFixtureOptions{})
	f.addTenant("issued.bench.test")
	f.node(b)
	roots := f.pebble.IssuerRoots(b)
	if _, err := handshake(f.tlsAddr, "issued.bench.test", roots); err != nil {
		b.Fatal(err)
	}
	ca := certtest.NewCA(b)
	c, k := ca.Leaf(b, "put.bench.test")
	if err := f.store.Put(context.Background(), "put.bench.test", c, k); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name, host string
		roots      *x509.CertPool
	}{
		{"acme-issued", "issued.bench.test", roots},
		{"redis-put", "put.bench.test", ca.Pool},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := handshake(f.tlsAddr, bc.host, bc.roots); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
