// TLS-05: certificate replacement while connections are open.
//
// Exploit: a.test's certificate is replaced in the store (a renewal)
// while an HTTP/2 connection made with the old one is open.
//
// Expectation: new handshakes pick up the new certificate within the cache
// TTL (1s here, bounded poll), and the open connection keeps working.
package security

import (
	"net/http"
	"testing"
	"time"
)

func TestTLS05HotReplacement(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	p := start(t, w.config(cfg{Certs: "  ttl: 1s\n"}))
	c, err := p.dialTLS("a.test", nil)
	must(t, err)
	oldSerial := leafOf(c).SerialNumber
	c.Close()
	h2 := p.client(w, "a.test", true)
	resp, err := h2.Get("https://a.test/")
	must(t, err)
	resp.Body.Close()

	w.addCert("a.test") // a new pair, new serial
	if !eventually(10*time.Second, func() bool {
		c, err := p.dialTLS("a.test", nil)
		if err != nil {
			return false
		}
		defer c.Close()
		return leafOf(c).SerialNumber.Cmp(oldSerial) != 0
	}) {
		t.Fatal("the replaced certificate was not picked up")
	}
	req, _ := http.NewRequest("GET", "https://a.test/", nil)
	resp, err = h2.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the open connection broke after the replacement: %v", err)
	}
	resp.Body.Close()
}
