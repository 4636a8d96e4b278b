// CGI-05: the request body a script sees.
//
// Exploit: a pipelined POST with Content-Length 5 whose body is followed
// by another request; a chunked HTTP/1.1 POST and an HTTP/2 POST without
// content-length (net/http/cgi passed those without CONTENT_LENGTH, so
// PHP-style scripts saw an empty body); a body over cgi.max_body_bytes; a
// 10 MB body to a script that never reads its input.
//
// Expectation: the script reads exactly CONTENT_LENGTH bytes and never the
// next request; bodies of unknown length arrive with the right
// CONTENT_LENGTH; too large is 413 before anything runs; a script that
// ignores its input still answers and the server does not hang.
package security

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCGI05RequestBody(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("cat.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nlen=%s body=' \"$CONTENT_LENGTH\"\ncat\n")
	a.script("noread.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nignored\\n'\n")
	p := start(t, w.config(cfg{CGI: "  max_body_bytes: 1048576\n"}))

	conn, err := net.Dial("tcp", p.HTTPAddr)
	must(t, err)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	conn.Write([]byte("POST /cgi-bin/cat.cgi HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhelloGET /cgi-bin/cat.cgi HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"))
	rs := readResponses(conn, 3)
	conn.Close()
	if len(rs) != 2 || rs[0].Body != "len=5 body=hello" || rs[1].Body != "len= body=" {
		t.Errorf("pipelined POST then GET: %+v", rs)
	}

	r := p.raw("POST /cgi-bin/cat.cgi HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	if r.Body != "len=11 body=hello world" {
		t.Errorf("chunked POST: %d %q", r.Status, r.Body)
	}
	c := p.client(w, "a.test", true)
	req, _ := http.NewRequest("POST", "https://a.test/cgi-bin/cat.cgi", struct{ *strings.Reader }{strings.NewReader("h2 body")})
	req.ContentLength = -1 // unknown: no content-length on the wire
	resp, err := c.Do(req)
	must(t, err)
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || buf.String() != "len=7 body=h2 body" {
		t.Errorf("h2 POST without content-length: %s %q", resp.Proto, buf.String())
	}

	spawned := p.metric("massvhost_cgi_spawned_total")
	r = p.raw("POST /cgi-bin/cat.cgi HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n" + strings.Repeat("b", 2000000))
	if r.Status != 413 {
		t.Errorf("2 MB body over max_body_bytes 1 MiB: %d", r.Status)
	}
	if p.metric("massvhost_cgi_spawned_total") != spawned {
		t.Errorf("a script ran for a body over the limit")
	}
	r = p.raw("POST /cgi-bin/noread.cgi HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n" + strings.Repeat("n", 1000000))
	if r.Status != 200 || r.Body != "ignored\n" {
		t.Errorf("1 MB body to a script that does not read it: %d %q", r.Status, r.Body)
	}
}
