// VH-05: SNI ≠ Host (domain fronting, cross-tenant confusion), and VH-02,
// the absolute-form target.
//
// Exploit: a TLS connection authenticated as a.test asks for b.test — by
// Host over HTTP/1.1, by :authority over HTTP/2 (also after a legitimate
// request on the same connection), and by an absolute-form target
// "GET https://b.test/ HTTP/1.1" with "Host: a.test" (Go takes the
// target's host). Caddy CVE-2018-21246 was this bypass.
//
// Expectation: 421 Misdirected Request every time, the HTTP/2 connection
// survives the 421, names covered by the same (wildcard) certificate are
// still served on one connection (coalescing), and an absolute-form target
// naming the connection's own host is served.
package security

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

func TestVH05SNIHostMismatch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	w.addTenant("x.w.test")
	w.addTenant("y.w.test")
	w.addCert("*.w.test")
	p := start(t, w.config(cfg{}))

	for name, raw := range map[string]string{
		"Host":               "GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n",
		"Host with port":     "GET / HTTP/1.1\r\nHost: B.TEST.:443\r\nConnection: close\r\n\r\n",
		"absolute https":     "GET https://b.test/ HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
		"absolute http":      "GET http://b.test/index.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
		"absolute uppercase": "GET https://B.TEST/ HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
	} {
		r := p.rawTLS("a.test", raw)
		if r.Status != 421 || strings.Contains(r.Body, "tenant b.test") {
			t.Errorf("%s: %d %q, want 421", name, r.Status, r.Body)
		}
	}
	// The absolute-form target wins over Host consistently (VH-02).
	if r := p.rawTLS("a.test", "GET https://a.test/ HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n"); r.Status != 200 || r.Body != "tenant a.test\n" {
		t.Errorf("absolute-form a.test with Host b.test: %d %q, want a's page", r.Status, r.Body)
	}
	// Plain HTTP has no SNI to compare: the absolute-form host decides.
	if r := p.raw("GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"); r.Body != "tenant b.test\n" {
		t.Errorf("plain absolute-form b.test: %d %q, want b's page", r.Status, r.Body)
	}

	// HTTP/2: one connection with SNI a.test; :authority a.test, then
	// b.test, then a.test again.
	conn, err := p.dialTLS("a.test", &tls.Config{RootCAs: w.CA.Pool, NextProtos: []string{"h2"}})
	must(t, err)
	defer conn.Close()
	if conn.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("negotiated %q, want h2", conn.ConnectionState().NegotiatedProtocol)
	}
	cc, err := (&http2.Transport{}).NewClientConn(conn)
	must(t, err)
	h2get := func(authority string) (int, string) {
		req, _ := http.NewRequest("GET", "https://"+authority+"/", nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatalf(":authority %s: %v", authority, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, step := range []struct {
		authority, body string
		status          int
	}{
		{"a.test", "tenant a.test\n", 200},
		{"b.test", "", 421},
		{"B.TEST:443", "", 421},
		{"a.test", "tenant a.test\n", 200},
	} {
		status, body := h2get(step.authority)
		if status != step.status || step.status == 200 && body != step.body || strings.Contains(body, "tenant b.test") {
			t.Errorf("h2 :authority %s: %d %q, want %d", step.authority, status, body, step.status)
		}
	}

	// Coalescing: the wildcard certificate covers both names.
	r := p.rawTLS("x.w.test", "GET / HTTP/1.1\r\nHost: y.w.test\r\nConnection: close\r\n\r\n")
	if r.Status != 200 || r.Body != "tenant y.w.test\n" {
		t.Errorf("SNI x.w.test, Host y.w.test (same wildcard cert): %d %q, want y's page", r.Status, r.Body)
	}
	r = p.rawTLS("x.w.test", "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	if r.Status != 421 {
		t.Errorf("SNI x.w.test, Host a.test: %d, want 421", r.Status)
	}
}
