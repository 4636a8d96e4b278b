package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestACMEHTTPHookFirst(t *testing.T) {
	var calls atomic.Int64
	hook := func(w http.ResponseWriter, r *http.Request) bool {
		calls.Add(1)
		if r.URL.Path != "/.well-known/acme-challenge/tok" {
			return false
		}
		_, _ = io.WriteString(w, "key-authorization")
		return true
	}
	f := newFixture(t, func(o *Options) { o.RedirectHTTPS, o.ACMEHTTP = true, hook })
	c := f.client(false)
	// Before redirect and Host resolution: a host with no site.
	if resp, body := f.get(c, "GET", "http://nope.test/.well-known/acme-challenge/tok"); resp.StatusCode != 200 || body != "key-authorization" {
		t.Fatalf("challenge: %d %q", resp.StatusCode, body)
	}
	// Anything else the hook declines is routed as usual.
	if resp, _ := f.get(c, "GET", "http://a.test/file.txt"); resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("declined request: %d, want 308", resp.StatusCode)
	}
	n := calls.Load()
	// The HTTPS listener never consults it.
	if resp, body := f.get(c, "GET", "https://a.test/file.txt"); body != "A-FILE" || calls.Load() != n {
		t.Fatalf("https: %d %q, hook calls %d → %d", resp.StatusCode, body, n, calls.Load())
	}
}

func TestACMETLSALPNHook(t *testing.T) {
	var f *fixture
	hook := func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		certPEM, keyPEM := f.ca.Leaf(t, hello.ServerName)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"acme-tls/1"}}, nil
	}
	f = newFixture(t, func(o *Options) { o.ACMETLSALPN = hook })
	dial := func(sni string, protos ...string) (*tls.Conn, error) {
		cfg := f.tlsConfig(sni)
		cfg.NextProtos = protos
		return tls.Dial("tcp", f.httpsAddr, cfg)
	}
	// A validation handshake for a name with no certificate gets the hook's.
	c, err := dial("new.test", "acme-tls/1")
	if err != nil {
		t.Fatalf("acme-tls/1 handshake: %v", err)
	}
	if st := c.ConnectionState(); st.NegotiatedProtocol != "acme-tls/1" || st.PeerCertificates[0].VerifyHostname("new.test") != nil {
		t.Fatalf("negotiated %q, certificate for %v", st.NegotiatedProtocol, st.PeerCertificates[0].DNSNames)
	}
	c.Close()
	// Ordinary handshakes still get the tenant certificate or no certificate.
	c, err = dial("a.test", "http/1.1")
	if err != nil {
		t.Fatalf("ordinary handshake: %v", err)
	}
	c.Close()
	if _, err := dial("new.test", "http/1.1"); err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Fatalf("ordinary handshake for a name without certificate: %v", err)
	}
	// Swapped out, validation handshakes get the tenant lookup again.
	opts := f.opts
	opts.ACMETLSALPN = nil
	if err := f.srv.Swap(opts); err != nil {
		t.Fatal(err)
	}
	if c, err := dial("new.test", "acme-tls/1"); err == nil {
		c.Close()
		t.Fatal("after Swap: validation handshake succeeded without the hook")
	}
}
