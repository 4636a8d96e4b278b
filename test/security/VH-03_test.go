// VH-03: requests that name no host (HTTP/1.0 without Host, an IP-only
// client, TLS without SNI).
//
// Exploit: "GET / HTTP/1.0" with no Host, "Host: 127.0.0.1", and the same
// over a TLS connection that sent no SNI, hoping the server falls back to
// the first or a random tenant.
//
// Expectation: without sites.default, 400 or 404 (plain) or 400/a failed handshake
// (TLS), never a tenant's page; with sites.default set, exactly the default
// site's page; HTTP/1.1 without Host is 400.
package security

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestVH03NoHost(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test", "default.test")
	p := start(t, w.config(cfg{}))
	for _, raw := range []string{
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\nConnection: close\r\n\r\n",
	} {
		if r := p.raw(raw); r.Status != 400 && r.Status != 404 || strings.Contains(r.Body, "tenant ") {
			t.Errorf("%q without sites.default: %d %q, want 400 or 404", raw, r.Status, r.Body)
		}
	}
	if r := p.raw("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"); r.Status != 400 {
		t.Errorf("HTTP/1.1 without Host: %d, want 400", r.Status)
	}
	// No SNI and no certs.default: the handshake fails.
	if c, err := p.dialTLS("", nil); err == nil {
		c.Close()
		t.Error("TLS without SNI and without certs.default: handshake succeeded")
	}

	// With a default site and a default certificate.
	p = start(t, w.config(cfg{Sites: "  default: default.test\n", Certs: "  default: default.test\n"}))
	for _, raw := range []string{
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: unknown.test\r\nConnection: close\r\n\r\n",
	} {
		if r := p.raw(raw); r.Status != 200 || r.Body != "tenant default.test\n" {
			t.Errorf("%q with sites.default: %d %q, want the default site", raw, r.Status, r.Body)
		}
	}
	c, err := p.dialTLS("", &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS without SNI, certs.default set: %v", err)
	}
	defer c.Close()
	if leaf := leafOf(c); leaf == nil || leaf.VerifyHostname("default.test") != nil {
		t.Errorf("no-SNI certificate is not default.test's")
	}
	r := exchange(t, c, "GET / HTTP/1.0\r\n\r\n")
	if r.Status == 200 && r.Body != "tenant default.test\n" || strings.Contains(r.Body, "tenant a.test") || strings.Contains(r.Body, "tenant b.test") {
		t.Errorf("TLS without SNI or Host: %d %q", r.Status, r.Body)
	}
}
