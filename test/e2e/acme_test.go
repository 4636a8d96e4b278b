package e2e

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"massvhost/test/acmetest"
)

// TestACMEOnDemand runs the binary against a real Pebble whose validation
// authority connects back to the binary's listeners: a tenant without a
// certificate gets one from the CA at its first handshakes, and a name no
// tenant serves gets no order. Each challenge type is validated on its
// own, so both listeners' hooks are exercised.
func TestACMEOnDemand(t *testing.T) {
	for _, challenge := range []string{"tls-alpn-01", "http-01"} {
		t.Run(challenge, func(t *testing.T) { testACMEOnDemand(t, challenge) })
	}
}

func testACMEOnDemand(t *testing.T, challenge string) {
	// Pebble is told the validation ports before it starts, so the
	// listeners' ports are chosen first and handed to the binary.
	httpAddr, httpsAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	peb := acmetest.Start(t, acmetest.Options{
		HTTPPort: portOf(t, httpAddr),
		TLSPort:  portOf(t, httpsAddr),
	})
	w := newWorld(t, []string{"a.test"})
	roots := filepath.Join(w.Dir, "pebble-roots.pem")
	writePebbleRoot(t, peb, roots)

	// The HTTP listener redirects everything else to HTTPS: the http-01
	// validation must be answered before that.
	cfg := strings.Replace(withAdmin(w.config(`http:
  redirect_https: true
acme:
  enabled: true
  accept_terms: true
  challenges: [`+challenge+`]
  directory: `+peb.DirectoryURL+`
  ca_roots: `+roots+`
  handshake_wait: 10s
  order_timeout: 1m
`)), `listen:
  http: "127.0.0.1:0"
  https: "127.0.0.1:0"`, `listen:
  http: "`+httpAddr+`"
  https: "`+httpsAddr+`"`, 1)
	p := start(t, cfg)
	if p.HTTPSAddr != httpsAddr || p.HTTPAddr != httpAddr {
		t.Fatalf("listening on %s %s, want %s %s", p.HTTPAddr, p.HTTPSAddr, httpAddr, httpsAddr)
	}
	issuer := peb.IssuerRoots(t)

	// The first handshake starts the order and waits up to handshake_wait;
	// if the CA is slower the order finishes in the background and a later
	// handshake gets the certificate.
	var cert *tls.Certificate
	deadline := time.Now().Add(90 * time.Second)
	for {
		conn, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: "a.test", RootCAs: issuer, NextProtos: []string{"http/1.1"}})
		if err == nil {
			st := conn.ConnectionState()
			cert = &tls.Certificate{Leaf: st.PeerCertificates[0]}
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for a.test from Pebble: %v\npebble log:\n%s", err, peb.LogTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := cert.Leaf.VerifyHostname("a.test"); err != nil {
		t.Fatal(err)
	}
	// It is in the store, so a restart or another node serves it.
	if _, err := os.Stat(filepath.Join(w.CertDir, "a.test.crt")); err != nil {
		t.Fatalf("issued certificate not stored: %v", err)
	}
	c := tlsClient(httpsAddr, "a.test", issuer, false)
	resp, err := c.Get("https://a.test/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "tenant a.test\n" {
		t.Fatalf("GET https://a.test/: %d %q", resp.StatusCode, body)
	}

	// No tenant, no order: the handshake fails at once.
	_, err = tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: "nope.test", RootCAs: issuer})
	if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Fatalf("handshake for a name without tenant: %v, want unrecognized_name", err)
	}
	if _, err := os.Stat(filepath.Join(w.CertDir, "nope.test.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("certificate stored for a name without tenant: %v", err)
	}
	for line := range strings.SplitSeq(p.Output(), "\n") {
		if strings.Contains(line, `msg="certs: acme:`) && strings.Contains(line, "nope.test") {
			t.Fatalf("an ACME event for a name without tenant: %s", line)
		}
	}
	if n := strings.Count(p.Output(), "certs: acme: certificate obtained"); n != 1 {
		t.Fatalf("%d certificates obtained, want 1", n)
	}
	_, m := adminGet(t, p.admin(), "/metrics")
	for series, want := range map[string]float64{
		"massvhost_acme_orders_total":             1,
		`massvhost_acme_issued_total{kind="new"}`: 1,
		`massvhost_acme_failed_total{kind="new"}`: 0,
	} {
		if got := metricValue(m, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.Port
}

// writePebbleRoot writes the root of Pebble's own HTTPS endpoint as PEM,
// for acme.ca_roots: the last certificate of the verified chain.
func writePebbleRoot(t *testing.T, peb *acmetest.Pebble, path string) {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimSuffix(peb.DirectoryURL, "/dir"), "https://")
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: peb.TLSRoots})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	chain := conn.ConnectionState().VerifiedChains[0]
	root := chain[len(chain)-1]
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
}
