// FS-02: tenant isolation through the Host-to-docroot mapping.
//
// Exploit: Host values that would build a filesystem path if joined into
// the directory pattern — "..", "..%2f..", "sites", "a.test/../b.test" (Go
// refuses '/'), "%2e%2e" — asking for b's secret and /etc/passwd.
//
// Expectation: 400 (or 404), never a file; the docroot comes only from a
// validated, known tenant name.
package security

import (
	"strings"
	"testing"
)

func TestFS02HostToDocroot(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	w.tenant("b.test").file("secret.txt", secretB+"\n", 0o644)
	p := start(t, w.config(cfg{}))
	for _, host := range []string{"..", "..%2f..", "%2e%2e", ".", "a.test/../b.test", "..:80", "...", "b.test%00a.test"} {
		for _, path := range []string{"/secret.txt", "/b.test/htdocs/secret.txt", "/etc/passwd"} {
			r := p.get(host, path)
			if r.Status != 400 && r.Status != 404 || strings.Contains(r.Body, secretB) || strings.Contains(r.Body, "root:") {
				t.Errorf("Host %q GET %s: %d %q", host, path, r.Status, r.Body)
			}
		}
	}
}
