// CGI-14: Location handling and internal redirects.
//
// Exploit: a script in tenant a answers "Location: //b.test/cgi-bin/env.cgi"
// (net/http/cgi re-dispatched it with Host b.test: verified cross-tenant),
// "Location: /\b.test/…", "Location: http://b.test/…", and a self-loop
// "Location: /cgi-bin/loop.cgi" that net/http/cgi follows without limit; a
// POST with a body is redirected to check that the body and method do not
// follow.
//
// Expectation: never b's content — the protocol-relative and backslash
// forms reach the client as 302 redirects; the loop ends with 500 after 10
// internal redirects (11 runs); a local redirect stays in tenant a, as GET
// without the body; the server keeps serving.
package security

import (
	"strings"
	"testing"
)

func TestCGI14LocationRedirects(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	a, b := w.tenant("a.test"), w.tenant("b.test")
	b.script("env.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nTENANT-B-SCRIPT\\n'\n")
	b.file("secret.txt", "TENANT-B-SECRET\n", 0o644)
	a.script("env.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nTENANT-A-SCRIPT\\n'\n")
	loc := func(name, location string) {
		a.script(name, "printf 'Location: "+location+"\\r\\n\\r\\n'\n")
	}
	loc("proto-rel.cgi", "//b.test/cgi-bin/env.cgi")
	loc("proto-rel-static.cgi", "//b.test/secret.txt")
	loc("backslash.cgi", `/\\b.test/secret.txt`)
	loc("absolute.cgi", "http://b.test/secret.txt")
	loc("local.cgi", "/cgi-bin/env.cgi")
	loc("localstatic.cgi", "/index.html")
	loc("loop.cgi", "/cgi-bin/loop.cgi")
	a.script("method.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nmethod=%s length=%s\\n' \"$REQUEST_METHOD\" \"${CONTENT_LENGTH:-none}\"\n")
	loc("post.cgi", "/cgi-bin/method.cgi")
	p := start(t, w.config(cfg{}))

	for _, tc := range []struct{ script, location string }{
		{"proto-rel.cgi", "//b.test/cgi-bin/env.cgi"},
		{"proto-rel-static.cgi", "//b.test/secret.txt"},
		{"backslash.cgi", `/\b.test/secret.txt`},
		{"absolute.cgi", "http://b.test/secret.txt"},
	} {
		r := p.get("a.test", "/cgi-bin/"+tc.script)
		if strings.Contains(r.Body, "TENANT-B") {
			t.Errorf("%s: served tenant b's content: %d %q", tc.script, r.Status, r.Body)
		}
		if r.Status != 302 || r.Header.Get("Location") != tc.location {
			t.Errorf("%s: %d Location %q, want a 302 to the client with %q", tc.script, r.Status, r.Header.Get("Location"), tc.location)
		}
	}
	if r := p.get("a.test", "/cgi-bin/local.cgi"); r.Status != 200 || r.Body != "TENANT-A-SCRIPT\n" {
		t.Errorf("local redirect to a script: %d %q", r.Status, r.Body)
	}
	if r := p.get("a.test", "/cgi-bin/localstatic.cgi"); r.Status != 200 || r.Body != "tenant a.test\n" {
		t.Errorf("local redirect to a file: %d %q", r.Status, r.Body)
	}
	r := p.raw("POST /cgi-bin/post.cgi HTTP/1.1\r\nHost: a.test\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
	if r.Status != 200 || r.Body != "method=GET length=none\n" {
		t.Errorf("local redirect of a POST: %d %q, want GET without a body", r.Status, r.Body)
	}

	before := p.metric("massvhost_cgi_spawned_total")
	if r := p.get("a.test", "/cgi-bin/loop.cgi"); r.Status != 500 {
		t.Errorf("self-loop: %d %q, want 500", r.Status, r.Body)
	}
	if runs := p.metric("massvhost_cgi_spawned_total") - before; runs != 11 {
		t.Errorf("self-loop ran the script %v times, want 11 (10 internal redirects)", runs)
	}
	// Over HTTP/2 as well, where the redirect is served on the same stream.
	c := p.client(w, "a.test", true)
	resp, err := c.Get("https://a.test/cgi-bin/loop.cgi")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("h2 self-loop: %d, want 500", resp.StatusCode)
	}
	if r := p.get("a.test", "/"); r.Status != 200 {
		t.Errorf("server after the loops: %d", r.Status)
	}
}
