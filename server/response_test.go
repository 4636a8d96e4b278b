package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallBuffers makes the server's socket send buffer small, so its writes
// progress in step with the client's reads instead of finishing into
// megabytes of kernel buffer.
func smallBuffers(s *Server) {
	s.testHookAccepted = func(c net.Conn) {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetWriteBuffer(16 << 10)
		}
	}
}

// dialSmall connects with a small receive buffer, set before connect so the
// advertised window stays small.
func dialSmall(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRollingWriteDeadline: a client that keeps reading, slowly, gets the
// whole file although the download lasts several times WriteTimeout; a
// fixed write deadline would have cut it.
func TestRollingWriteDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := newFixture(t, func(o *Options) { o.WriteTimeout = timeout }, smallBuffers)
	const size = 4 << 20
	resp := f.startDownload(dialSmall(t, f.httpAddr), size)
	start := time.Now()
	buf := make([]byte, 8<<10)
	var got int64
	for {
		n, err := resp.Body.Read(buf)
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("slow download cut after %d of %d bytes: %v", got, size, err)
		}
		time.Sleep(time.Millisecond) // slow, but never stalled near timeout
	}
	if got != size {
		t.Fatalf("got %d bytes, want %d", got, size)
	}
	if elapsed := time.Since(start); elapsed < timeout {
		t.Logf("download took %v, under WriteTimeout %v: the test did not exercise the rolling deadline", elapsed, timeout)
	}
}

// lineSignal is an access log writer that signals each write.
type lineSignal struct{ lines chan string }

func (l lineSignal) Write(p []byte) (int, error) {
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if len(line) > 0 {
			l.lines <- string(line)
		}
	}
	return len(p), nil
}

// TestStalledReaderIsCut: a client that stops reading is disconnected after
// WriteTimeout; it never receives the whole file.
func TestStalledReaderIsCut(t *testing.T) {
	logged := lineSignal{lines: make(chan string, 16)}
	f := newFixture(t, func(o *Options) {
		o.WriteTimeout = 200 * time.Millisecond
		o.AccessLog = logged
	}, smallBuffers)
	const size = 4 << 20
	resp := f.startDownload(dialSmall(t, f.httpAddr), size)
	// Stall until the server has given up on the request.
	select {
	case <-logged.lines:
	case <-time.After(30 * time.Second):
		t.Fatal("the stalled download was never cut")
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n >= size {
		t.Fatalf("stalled reader got %d of %d bytes, err %v; want a cut connection", n, size, err)
	}
}

func TestResponseWriterRecordsStatusAndBytes(t *testing.T) {
	rec := &recorder{header: http.Header{}}
	w := newResponseWriter(rec, time.Minute, 1, "test")
	w.WriteHeader(http.StatusEarlyHints)
	if w.wroteHeader {
		t.Fatal("1xx ended the header phase")
	}
	w.WriteHeader(http.StatusAccepted)
	w.Write(make([]byte, 200<<10)) // several chunks
	n, err := w.ReadFrom(bytes.NewReader(make([]byte, 100)))
	if err != nil || n != 100 {
		t.Fatalf("ReadFrom: %d %v", n, err)
	}
	if w.statusOrOK() != http.StatusAccepted || w.bytes != 200<<10+100 || rec.body.Len() != 200<<10+100 {
		t.Fatalf("status %d bytes %d body %d", w.status, w.bytes, rec.body.Len())
	}
	if got := http.NewResponseController(w).Flush(); got != nil {
		t.Fatalf("Flush through Unwrap: %v", got)
	}
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
	codes  []int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *recorder) WriteHeader(code int)        { r.codes = append(r.codes, code) }
func (r *recorder) Flush()                      {}

// TestIdleConnectionGetsErrors: after a keep-alive connection sat idle for
// longer than WriteTimeout, an error net/http writes itself still arrives.
// The rolling deadline relies on net/http clearing the write deadline after
// each response (conn.serve does); this pins it.
func TestIdleConnectionGetsErrors(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.WriteTimeout = 50 * time.Millisecond; o.MaxHeaderBytes = 4096 })
	c := dialHTTP(t, f.httpAddr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /file.txt HTTP/1.1\r\nHost: a.test\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	time.Sleep(200 * time.Millisecond) // idle past the last write deadline
	io.WriteString(c, "GET /file.txt HTTP/1.1\r\nHost: a.test\r\nX-Big: "+strings.Repeat("a", 16<<10)+"\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized request after idle: %v %v, want 431", resp, err)
	}
}
