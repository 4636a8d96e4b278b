// CGI-18: HEAD, OPTIONS and odd methods to scripts.
//
// Exploit: HEAD to a script that writes a body, a method with a space
// ("FOO BAR"), a lowercase and an unknown token method.
//
// Expectation: HEAD gets the script's status and headers with no body;
// the invalid method is 400 before any script runs; REQUEST_METHOD is
// exactly the (valid) token sent.
package security

import (
	"testing"
)

func TestCGI18Methods(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("m.cgi", "printf 'Content-Type: text/plain\\r\\nX-Method: %s\\r\\n\\r\\nbody of %s\\n' \"$REQUEST_METHOD\" \"$REQUEST_METHOD\"\n")
	p := start(t, w.config(cfg{}))
	r := p.raw("HEAD /cgi-bin/m.cgi HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	if r.Status != 200 || r.Header.Get("X-Method") != "HEAD" || r.Body != "" {
		t.Errorf("HEAD: %d X-Method %q body %q", r.Status, r.Header.Get("X-Method"), r.Body)
	}
	before := p.metric("massvhost_cgi_spawned_total")
	if r := p.raw("FOO BAR /cgi-bin/m.cgi HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"); r.Status != 400 {
		t.Errorf("method with a space: %d, want 400", r.Status)
	}
	if p.metric("massvhost_cgi_spawned_total") != before {
		t.Errorf("a script ran for an invalid method")
	}
	for _, m := range []string{"get", "PROPFIND", "X-CUSTOM"} {
		r := p.raw(m + " /cgi-bin/m.cgi HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
		if r.Status != 200 || r.Header.Get("X-Method") != m {
			t.Errorf("%s: %d X-Method %q", m, r.Status, r.Header.Get("X-Method"))
		}
	}
}
