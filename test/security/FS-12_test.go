// FS-12: a file truncated while it is being served.
//
// Exploit: start downloading a 32 MB file slowly and truncate it to zero
// mid-transfer (a tenant's deploy script, or a race provoked on purpose).
//
// Expectation: the download ends with an error rather than a hang or a
// silently short "complete" body (Content-Length can no longer be
// honoured), and the server keeps serving.
package security

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFS12TruncatedMidRead(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	const size = 32 << 20
	a.file("big.bin", strings.Repeat("z", size), 0o644)
	p := start(t, w.config(cfg{}))
	conn, err := net.Dial("tcp", p.HTTPAddr)
	must(t, err)
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(16 << 10)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	must(t, err)
	head := make([]byte, 64<<10)
	_, err = io.ReadFull(resp.Body, head)
	must(t, err)
	must(t, os.Truncate(filepath.Join(a.DocRoot, "big.bin"), 0))
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && int(n)+len(head) != size {
		t.Errorf("truncated file: got %d of %d bytes with no error: a short body looked complete", int(n)+len(head), size)
	}
	if r := p.get("a.test", "/"); r.Status != 200 {
		t.Errorf("server after the truncation: %d", r.Status)
	}
}
