// CGI-11: huge script output, on stdout and on stderr.
//
// Exploit: big.cgi writes 8 MB to stdout with cgi.max_output_bytes at
// 1 MiB; stderrspam.cgi writes 4 MB of lines to stderr, which
// net/http/cgi copies to the server's own stderr unbounded.
//
// Expectation: the big response is cut at the cap (the connection is
// aborted, so the client cannot take the truncated body for complete) and
// its process group is gone; the server's log grows by at most about
// cgi.max_stderr_bytes (64 KiB here) for the spam, whatever the script
// writes.
package security

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestCGI11HugeOutput(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("big.cgi", "printf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nhead -c 8000000 /dev/zero\n")
	a.script("stderrspam.cgi", "i=0; while [ $i -lt 40000 ]; do echo 'spam spam spam spam spam spam spam spam spam spam spam spam spam spam spam spam spam spam' >&2; i=$((i+1)); done\nprintf 'Content-Type: text/plain\\r\\n\\r\\ndone\\n'\n")
	p := start(t, w.config(cfg{CGI: "  max_output_bytes: 1048576\n  max_stderr_bytes: 65536\n"}))

	conn, err := net.Dial("tcp", p.HTTPAddr)
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "GET /cgi-bin/big.cgi HTTP/1.1\r\nHost: a.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	must(t, err)
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n > 1<<20 {
		t.Errorf("big.cgi: read %d bytes, error %v; want the body cut at 1 MiB with an error", n, err)
	}

	before := len(p.Output())
	r := p.get("a.test", "/cgi-bin/stderrspam.cgi")
	if r.Status != 200 || r.Body != "done\n" {
		t.Errorf("stderrspam.cgi: %d %q", r.Status, r.Body)
	}
	// Leave room for the log lines' own prefixes (time, level, host…).
	if grown := len(p.Output()) - before; grown > 256<<10 {
		t.Errorf("server log grew by %d KiB for one request's stderr (cap 64 KiB)", grown>>10)
	}
}
