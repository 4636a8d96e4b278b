// CGI-06: header injection and malformed output from a script.
//
// Exploit: scripts emit a bare CR inside a value followed by
// "Set-Cookie", a header line of 9000 bytes, 5000 header lines, no blank
// line, a body without headers, their own Content-Length (5, then 10 body
// bytes), Transfer-Encoding: chunked, Connection: close, Upgrade: h2c,
// Keep-Alive and Trailer. net/http/cgi bounds the line length but not the
// number of lines.
//
// Expectation: no injected Set-Cookie; 502 for the oversized, endless,
// unterminated and header-less outputs; the server frames the body itself
// (the script's Content-Length and Transfer-Encoding are ignored and all
// 10 bytes arrive) and hop-by-hop fields never reach the client.
package security

import (
	"testing"
)

func TestCGI06MalformedOutput(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	const ct = "Content-Type: text/plain\\r\\n"
	a.script("cr.cgi", "printf 'X-Inj: a\\rSet-Cookie: s=1\\r\\n"+ct+"\\r\\nbody\\n'\n")
	a.script("longline.cgi", "printf 'X-Long: %9000s\\r\\n"+ct+"\\r\\nbody\\n' x\n")
	a.script("endless.cgi", "i=0; while [ $i -lt 5000 ]; do printf 'X-H%d: y\\r\\n' $i; i=$((i+1)); done; printf '\\r\\nbody\\n'\n")
	a.script("noblank.cgi", "printf '"+ct+"'\n")
	a.script("bodyonly.cgi", "echo just a body\n")
	a.script("framing.cgi", "printf 'Content-Length: 5\\r\\nTransfer-Encoding: chunked\\r\\nConnection: close\\r\\nUpgrade: h2c\\r\\nKeep-Alive: timeout=99\\r\\nTrailer: X-T\\r\\n"+ct+"\\r\\n0123456789'\n")
	p := start(t, w.config(cfg{}))

	r := p.get("a.test", "/cgi-bin/cr.cgi")
	if len(r.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("cr.cgi: a CR in a value created Set-Cookie %q", r.Header.Values("Set-Cookie"))
	}
	for _, script := range []string{"longline.cgi", "endless.cgi", "noblank.cgi", "bodyonly.cgi"} {
		if r := p.get("a.test", "/cgi-bin/"+script); r.Status != 502 {
			t.Errorf("%s: %d, want 502", script, r.Status)
		}
	}
	// Keep-alive request so that the server's framing decides.
	r = p.raw("GET /cgi-bin/framing.cgi HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if r.Status != 200 || r.Body != "0123456789" {
		t.Errorf("framing.cgi: %d %q, want all 10 bytes framed by the server", r.Status, r.Body)
	}
	for _, h := range []string{"Upgrade", "Keep-Alive", "Trailer", "Transfer-Encoding"} {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("framing.cgi: %s: %q reached the client", h, v)
		}
	}
	if r.Header.Get("Connection") == "close" {
		t.Errorf("framing.cgi: the script closed the client's connection")
	}
}
