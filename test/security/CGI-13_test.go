// CGI-13: content sniffing of script output (compare CVE-2020-24553).
//
// Exploit: nosniff.cgi answers "Status: 200" and "<script>alert(1)</script>"
// with no Content-Type; net/http would sniff it into text/html.
//
// Expectation: the response is application/octet-stream with
// X-Content-Type-Options: nosniff, never text/html; static files carry
// nosniff too.
package security

import (
	"strings"
	"testing"
)

func TestCGI13NoSniff(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("nosniff.cgi", "printf 'Status: 200\\r\\n\\r\\n<html><script>alert(1)</script>'\n")
	a.file("noext", "<html><script>alert(1)</script>", 0o644)
	p := start(t, w.config(cfg{}))
	for _, path := range []string{"/cgi-bin/nosniff.cgi", "/noext"} {
		r := p.get("a.test", path)
		if r.Status != 200 || strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d Content-Type %q, want a non-HTML type", path, r.Status, r.Header.Get("Content-Type"))
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no X-Content-Type-Options: nosniff", path)
		}
	}
}
