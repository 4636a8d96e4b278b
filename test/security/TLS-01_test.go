// TLS-01: what a client gets for a name with no certificate, with no SNI,
// and never another tenant's certificate.
//
// Exploit: handshakes with an unknown name, with no SNI, and with a name
// that has a tenant directory but no certificate (local CA off).
//
// Expectation: alert unrecognized_name (112) for each, not
// internal_error, and never a certificate for another name; with
// certs.default set, no-SNI clients get that certificate only.
package security

import (
	"strings"
	"testing"
)

func TestTLS01NoCertificate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	w.addTenant("nocert.test")
	p := start(t, w.config(cfg{}))
	for _, sni := range []string{"nope.test", "", "nocert.test"} {
		c, err := p.dialTLS(sni, nil)
		if err == nil {
			t.Errorf("SNI %q: handshake succeeded with %v", sni, leafOf(c).DNSNames)
			c.Close()
			continue
		}
		if !strings.Contains(err.Error(), "unrecognized name") {
			t.Errorf("SNI %q: %v, want unrecognized_name", sni, err)
		}
	}
}
