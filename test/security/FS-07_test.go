// FS-07: directory listings.
//
// Exploit: ask for a directory without an index file (/sub/, /sub) and for
// the cgi-bin directory, hoping for http.FileServer's listing of file
// names the tenant never linked.
//
// Expectation: 403 or 404 without any "<a href", "/sub" redirects with a
// relative Location to "./sub/", and cgi-bin is never listed and no
// script's source is served.
package security

import (
	"strings"
	"testing"
)

func TestFS07NoListing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.file("sub/unlinked-name.txt", "x\n", 0o644)
	a.script("secret-script.cgi", "# SCRIPT-SOURCE\nprintf 'Content-Type: text/plain\\r\\n\\r\\nran\\n'\n")
	p := start(t, w.config(cfg{}))
	for _, path := range []string{"/sub/", "/cgi-bin/", "/cgi-bin", "/sub/?C=M;O=A"} {
		r := p.get("a.test", path)
		if r.Status != 403 && r.Status != 404 {
			t.Errorf("GET %s: %d, want 403 or 404", path, r.Status)
		}
		for _, leak := range []string{"<a href", "unlinked-name", "secret-script", "SCRIPT-SOURCE"} {
			if strings.Contains(r.Body, leak) {
				t.Errorf("GET %s: body reveals %q: %q", path, leak, r.Body)
			}
		}
	}
	r := p.get("a.test", "/sub")
	if r.Status != 301 || r.Header.Get("Location") != "./sub/" {
		t.Errorf("GET /sub: %d Location %q, want 301 to ./sub/", r.Status, r.Header.Get("Location"))
	}
	for _, path := range []string{"/cgi-bin/secret-script.cgi", "/cgi-bin/secret-script.cgi/"} {
		if r := p.get("a.test", path); strings.Contains(r.Body, "SCRIPT-SOURCE") {
			t.Errorf("GET %s served the script's source: %q", path, r.Body)
		}
	}
}
