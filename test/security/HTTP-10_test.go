// HTTP-10: panics and error hygiene.
//
// Exploit: a battery of odd but cheap inputs across the server's paths —
// methods that are not tokens, CONNECT and OPTIONS *, absolute-form
// targets with user info and odd schemes, bad percent-encoding, a NUL in
// the path, HEAD and OPTIONS to scripts, scripts answering with invalid
// headers (no blank line, a 5000-byte line, endless header lines, a body
// only, invalid field names, Status 099), over HTTP/1.1 and HTTP/2.
//
// Expectation: every request gets an answer or a clean close, the panic
// counter stays 0 and the log never shows "http: panic serving" or a
// stack. (Every test in this package also fails if its server's log shows
// a panic; see start.)
package security

import (
	"net/http"
	"strings"
	"testing"
)

func TestHTTP10NoPanics(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	for name, script := range map[string]string{
		"noblank.cgi":  "printf 'Content-Type: text/plain\\r\\n'\n",
		"longline.cgi": "printf 'X-Long: %5000s\\r\\n\\r\\nbody\\n' x\n",
		"endless.cgi":  "i=0; while [ $i -lt 5000 ]; do printf 'X-H%d: y\\r\\n' $i; i=$((i+1)); done\n",
		"bodyonly.cgi": "echo just a body\n",
		"badname.cgi":  "printf 'Bad Name: x\\r\\nContent-Type: text/plain\\r\\n\\r\\nbody\\n'\n",
		"status.cgi":   "printf 'Status: 099\\r\\n\\r\\n'\n",
		"crlf.cgi":     "printf 'X-Inj: a\\rSet-Cookie: s=1\\r\\nContent-Type: text/plain\\r\\n\\r\\nbody\\n'\n",
		"hello.cgi":    "printf 'Content-Type: text/plain\\r\\n\\r\\nhello\\n'\n",
		"empty.cgi":    "exit 0\n",
		"fail.cgi":     "exit 3\n",
	} {
		a.script(name, script)
	}
	p := start(t, w.config(cfg{}))

	raws := []string{
		"FOO BAR / HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET http://user:pw@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET ftp://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET /a%00b HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET /cgi-bin/hello.cgi%00 HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET /?%zz=%zz HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"HEAD /cgi-bin/hello.cgi HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"OPTIONS /cgi-bin/hello.cgi HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET / HTTP/9.9\r\nHost: a.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nRange: bytes=-0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nRange: bytes=99999999999999999999-\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.test\r\nIf-Modified-Since: garbage\r\nIf-None-Match: \"x\", *\r\n\r\n",
		"GET /" + strings.Repeat("%2e%2e/", 2000) + " HTTP/1.1\r\nHost: a.test\r\n\r\n",
	}
	for _, script := range []string{"noblank", "longline", "endless", "bodyonly", "badname", "status", "crlf", "empty", "fail"} {
		raws = append(raws, "GET /cgi-bin/"+script+".cgi HTTP/1.1\r\nHost: a.test\r\n\r\n")
	}
	for _, raw := range raws {
		r := p.raw(strings.Replace(raw, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1))
		if r.Status >= 500 && r.Status != 502 && r.Status != 501 && r.Status != 505 {
			t.Errorf("%q: %d", tail(raw, 80), r.Status)
		}
		if strings.Contains(r.Header.Get("Set-Cookie"), "s=1") {
			t.Errorf("%q: a script's CR split its header", tail(raw, 80))
		}
	}
	c := p.client(w, "a.test", true)
	for _, path := range []string{"/cgi-bin/status.cgi", "/cgi-bin/endless.cgi", "/cgi-bin/noblank.cgi", "/cgi-bin/hello.cgi"} {
		for _, method := range []string{"GET", "HEAD", "OPTIONS", "DELETE"} {
			req, _ := http.NewRequest(method, "https://a.test"+path, nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Errorf("h2 %s %s: %v", method, path, err)
				continue
			}
			resp.Body.Close()
		}
	}
	if n := p.metric("massvhost_http_panics_total"); n != 0 {
		t.Errorf("%v handler panics", n)
	}
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(p.Output(), bad) {
			t.Errorf("server log contains %q", bad)
		}
	}
}
