package server

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"massvhost/vhost"
)

// writeChunk bounds the bytes written under one write deadline. With the
// default 60 s WriteTimeout a client must read at least 64 KiB a minute
// (about 1 KiB/s) to keep a download alive, the same order as Apache's
// Timeout applied to each write.
const writeChunk = 64 << 10

// responseWriter wraps the http.ResponseWriter of one request. It records
// the status and body bytes for the access log and turns WriteTimeout into
// a rolling deadline: before each chunk is written the connection's (or
// HTTP/2 stream's) write deadline moves to now+timeout, so a download that
// keeps moving completes however long it takes, while a client that stops
// reading is cut after timeout. A fixed http.Server.WriteTimeout would kill
// large legitimate downloads (THREATS HTTP-02).
//
// It is used by one handler goroutine only.
type responseWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	timeout  time.Duration
	deadline time.Time // the write deadline last set

	start       time.Time
	seq         uint64 // request sequence number, for the request ID
	idPrefix    string // the Server's, for the request ID
	host        string // canonical host or site name for the log; "" if invalid
	site        vhost.Site
	hasSite     bool // site was resolved
	status      int
	bytes       int64
	wroteHeader bool

	// cgiStart is when the request went to the CGI runner; the first
	// response header then records the elapsed time in cgiHist.
	cgiStart time.Time
	cgiHist  *histogram
}

func newResponseWriter(w http.ResponseWriter, timeout time.Duration, seq uint64, idPrefix string) *responseWriter {
	rw := &responseWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout, seq: seq, idPrefix: idPrefix, start: time.Now()}
	rw.extend()
	return rw
}

// extend moves the write deadline to now+timeout. To keep timer updates
// cheap on many small writes it skips the update while more than 7/8 of the
// window is left, so "no progress" is detected after between 7/8 and all of
// timeout.
func (w *responseWriter) extend() {
	now := time.Now()
	if w.deadline.Sub(now) > w.timeout-w.timeout/8 {
		return
	}
	w.deadline = now.Add(w.timeout)
	// ErrNotSupported (a recorder in tests) just means no deadline.
	_ = w.rc.SetWriteDeadline(w.deadline)
}

// WriteHeader records the status; informational (1xx) codes are passed on
// without ending the header phase.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return // net/http would only log "superfluous WriteHeader"
	}
	if code >= 200 || code < 100 {
		w.wroteHeader = true
		w.status = code
		w.headerWritten()
	}
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

// Write writes p in chunks of at most writeChunk bytes, extending the
// deadline before each.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.wroteHeader, w.status = true, http.StatusOK
		w.headerWritten()
	}
	var written int
	for len(p) > 0 {
		chunk := p
		if len(chunk) > writeChunk {
			chunk = chunk[:writeChunk]
		}
		w.extend()
		n, err := w.ResponseWriter.Write(chunk)
		written += n
		w.bytes += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// ReadFrom copies src in chunks of writeChunk bytes, extending the deadline
// before each. Each chunk is an *io.LimitedReader over the file itself (a
// LimitedReader from the caller is unwrapped, not nested), which is what
// net/http and *net.TCPConn need to keep using sendfile(2).
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.wroteHeader, w.status = true, http.StatusOK
		w.headerWritten()
	}
	outer, _ := src.(*io.LimitedReader)
	if outer != nil {
		src = outer.R
	}
	var total int64
	for outer == nil || outer.N > 0 {
		n := int64(writeChunk)
		if outer != nil {
			n = min(n, outer.N)
		}
		w.extend()
		m, err := io.Copy(w.ResponseWriter, &io.LimitedReader{R: src, N: n})
		total += m
		w.bytes += m
		if outer != nil {
			outer.N -= m
		}
		if err != nil || m < n {
			return total, err // m < n: src is exhausted
		}
	}
	return total, nil
}

// headerWritten runs once, when the response status is decided.
func (w *responseWriter) headerWritten() {
	if w.cgiHist != nil {
		w.cgiHist.observe(time.Since(w.cgiStart))
	}
}

// Flush sends buffered data to the client.
func (w *responseWriter) Flush() {
	_ = w.FlushError()
}

// FlushError sends buffered data to the client and reports a failure;
// http.ResponseController prefers it over Flush.
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.wroteHeader, w.status = true, http.StatusOK
		w.headerWritten()
	}
	w.extend()
	return w.rc.Flush()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

// statusOrOK is the status the client received: net/http sends 200 when a
// handler returns without writing.
func (w *responseWriter) statusOrOK() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// id is the request ID logged with errors: a per-process random prefix and
// the request's sequence number.
func (w *responseWriter) id() string {
	return w.idPrefix + "-" + strconv.FormatUint(w.seq, 16)
}

// requestID finds the ID of the request whose writer w wraps (CGI code may
// have wrapped ours), or makes a fresh one.
func requestID(w http.ResponseWriter, s *Server) string {
	for {
		switch x := w.(type) {
		case *responseWriter:
			return x.id()
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return s.idPrefix + "-" + strconv.FormatUint(s.reqSeq.Add(1), 16)
		}
	}
}

// Interface guards.
var (
	_ http.Flusher  = (*responseWriter)(nil)
	_ io.ReaderFrom = (*responseWriter)(nil)
	_ io.ReaderFrom = (*conn)(nil)
)
