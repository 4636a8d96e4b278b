// VH-04: unknown hosts.
//
// Exploit: requests for names no tenant has, looking for differences that
// reveal which tenants exist or any tenant's content, over plain HTTP and
// over TLS.
//
// Expectation: the same 404 (status, headers that matter, body) for every
// unknown name, which is also what a removed tenant gets, and no tenant
// name in it; TLS handshakes for unknown names fail with
// unrecognized_name.
package security

import (
	"strings"
	"testing"
)

func TestVH04UnknownHost(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	p := start(t, w.config(cfg{}))
	var first response
	for i, host := range []string{"nope.test", "a.test.evil", "www.a.test", "b.tes", "x.y.z.test"} {
		r := p.get(host, "/")
		if r.Status != 404 || strings.Contains(r.Body, "tenant") || strings.Contains(r.Body, "a.test") {
			t.Errorf("Host %s: %d %q", host, r.Status, r.Body)
		}
		if i == 0 {
			first = r
		} else if r.Body != first.Body || r.Header.Get("Content-Type") != first.Header.Get("Content-Type") {
			t.Errorf("Host %s: answer differs from the other unknown names: %q vs %q", host, r.Body, first.Body)
		}
		if c, err := p.dialTLS(host, nil); err == nil {
			c.Close()
			t.Errorf("SNI %s: handshake succeeded", host)
		} else if !strings.Contains(err.Error(), "unrecognized name") {
			t.Errorf("SNI %s: %v, want unrecognized_name", host, err)
		}
	}
}
