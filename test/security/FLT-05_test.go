// FLT-05: tenant churn at runtime.
//
// Exploit (or accident): a tenant's directory is moved away and replaced
// by a new one (a redeploy, or an account handed to someone else), and
// another tenant is removed together with its certificate, while the
// server runs.
//
// Expectation: the new directory is served, never the moved-away one
// (the server holds no long-lived handle on a docroot); the removed tenant
// gets 404 and its certificate stops being served, both within the
// configured cache TTLs (1s here; bounded polls).
package security

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFLT05TenantChurn(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	p := start(t, w.config(cfg{Certs: "  ttl: 1s\n  negative_ttl: 1s\n"}))
	if r := p.get("a.test", "/"); r.Body != "tenant a.test\n" {
		t.Fatalf("before: %q", r.Body)
	}
	if r := p.get("b.test", "/"); r.Body != "tenant b.test\n" {
		t.Fatalf("before: %q", r.Body)
	}
	c, err := p.dialTLS("b.test", nil) // b's certificate is now cached
	must(t, err)
	c.Close()
	a := w.tenant("a.test")
	must(t, os.Rename(a.Root, a.Root+".old"))
	delete(w.tenants, "a.test")
	na := w.addTenant("a.test")
	na.file("index.html", "new owner of a.test\n", 0o644)
	if !eventually(10*time.Second, func() bool { return p.get("a.test", "/").Body == "new owner of a.test\n" }) {
		t.Errorf("the replaced docroot is not served: %q", p.get("a.test", "/").Body)
	}

	b := w.tenant("b.test")
	must(t, os.RemoveAll(b.Root))
	must(t, os.Remove(filepath.Join(w.CertDir, "b.test.crt")))
	must(t, os.Remove(filepath.Join(w.CertDir, "b.test.key")))
	if !eventually(10*time.Second, func() bool { return p.get("b.test", "/").Status == 404 }) {
		t.Errorf("removed tenant still served")
	}
	if !eventually(10*time.Second, func() bool {
		c, err := p.dialTLS("b.test", nil)
		if err == nil {
			c.Close()
		}
		return err != nil
	}) {
		t.Errorf("removed tenant's certificate still served")
	}
}
