// VH-01: Host canonicalization.
//
// Exploit: raw requests whose Host spells a tenant differently (case,
// trailing dot, port) or is malformed (bad port, empty label, leading
// hyphen, underscore, a U-label in UTF-8, invalid punycode, a 64-character
// label, a 254-character name, "..", "..%2f..", an IP literal), over plain
// HTTP and over TLS. Caddy GHSA-x76f-jf84-rqj8 became case-sensitive above
// 100 hosts, so case is also checked against a thousand tenants.
//
// Expectation: the spellings of a.test all reach tenant a; every malformed
// Host is 400 (or 404), never any tenant's content.
package security

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestVH01HostCanonicalization(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	p := start(t, w.config(cfg{}))

	for _, host := range []string{"a.test", "A.TEST", "A.test", "a.test.", "a.test:443", "a.test.:443", "a.test:80", "A.TEST.:8443"} {
		if r := p.get(host, "/"); r.Status != 200 || r.Body != "tenant a.test\n" {
			t.Errorf("Host %q: %d %q, want tenant a", host, r.Status, r.Body)
		}
		if r := p.rawTLS("a.test", "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); r.Status != 200 || r.Body != "tenant a.test\n" {
			t.Errorf("TLS, Host %q: %d %q, want tenant a", host, r.Status, r.Body)
		}
	}
	bad := []string{
		"a.test:abc", "a.test:", "a.test:99999", "a..test", ".a.test", "-a.test", "a-.test", "a_test.test",
		"\xc3\xa4.test", "xn--zz.test", strings.Repeat("a", 64) + ".test",
		strings.Repeat("a.", 125) + "test", "..", "..%2f..", "a.test/../b.test", "a.test%2f..%2fb.test",
		"127.0.0.1", "[::1]", "a.test\\b.test", "*.test", "a.test..", "a.test:443:443", "a test",
	}
	for _, host := range bad {
		r := p.get(host, "/")
		if r.Status != 400 && r.Status != 404 {
			t.Errorf("Host %q: status %d, want 400 or 404", host, r.Status)
		}
		if strings.Contains(r.Body, "tenant ") {
			t.Errorf("Host %q: served a tenant: %q", host, r.Body)
		}
		r = p.rawTLS("a.test", "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if r.Status < 400 || strings.Contains(r.Body, "tenant ") {
			t.Errorf("TLS, Host %q: %d %q, want an error status", host, r.Status, r.Body)
		}
	}
}

func TestVH01CaseAtScale(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const n = 1000
	for i := range n {
		w.addTenant(fmt.Sprintf("site%04d.test", i))
	}
	p := start(t, w.config(cfg{}))
	for range 200 {
		name := fmt.Sprintf("site%04d.test", rand.IntN(n))
		r := p.get(strings.ToUpper(name)+".", "/")
		if r.Status != 200 || r.Body != "tenant "+name+"\n" {
			t.Errorf("Host %q: %d %q, want tenant %s", strings.ToUpper(name)+".", r.Status, r.Body, name)
		}
	}
}
