// FS-11: MIME types and sniffing for static files.
//
// Exploit: HTML/script content in files with no extension, an unknown
// extension and ".txt", hoping a sniffed text/html makes the browser run it.
//
// Expectation: types come from the extension table only (.txt
// text/plain, .svg image/svg+xml, unknown application/octet-stream),
// nothing is sniffed into text/html, and every response carries
// X-Content-Type-Options: nosniff.
package security

import (
	"strings"
	"testing"
)

func TestFS11MIME(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	const html = "<!DOCTYPE html><html><script>alert(1)</script></html>"
	for _, f := range []string{"noext", "x.unknownext", "x.txt", "x.svg"} {
		a.file(f, html, 0o644)
	}
	p := start(t, w.config(cfg{}))
	for path, want := range map[string]string{"/noext": "application/octet-stream", "/x.unknownext": "application/octet-stream",
		"/x.txt": "text/plain", "/x.svg": "image/svg+xml"} {
		r := p.get("a.test", path)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("%s: Content-Type %q, want %s", path, ct, want)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
	}
}
