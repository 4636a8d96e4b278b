package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"massvhost/vhost"
)

const (
	// maxBatch is how many bytes of queued lines the writer joins into one
	// Write call.
	maxBatch = 64 << 10
	// errorReportInterval spaces the error-log reports of failing access
	// log writes (a full disk fails every write).
	errorReportInterval = time.Minute
)

// accessLog writes one line per request through a bounded queue and one
// writer goroutine. Handlers format their line and hand it over without
// blocking; when the queue is full (a slow pipe, a stalled NFS mount, a full
// disk retried by the OS) the line is dropped and counted instead, so the
// log can never slow down or stop request serving (THREATS FLT-03).
type accessLog struct {
	queue  chan *logEntry
	config atomic.Pointer[accessConfig] // nil: logging off
	logger func() *slog.Logger

	dropped      atomic.Uint64
	writeErrors  atomic.Uint64
	tenantErrors atomic.Uint64

	closeOnce sync.Once
	done      chan struct{} // closed by close: drain and stop
	stopped   chan struct{} // closed when the writer goroutine has returned
}

type accessConfig struct {
	w      io.Writer // nil: only tenant logs
	tenant TenantLogWriter
	format string
}

// logEntry is one formatted line and, for per-tenant logs, its site.
type logEntry struct {
	line    []byte
	site    vhost.Site
	hasSite bool
}

var logEntries = sync.Pool{New: func() any { return &logEntry{line: make([]byte, 0, 256)} }}

func newAccessLog(size int, logger func() *slog.Logger) *accessLog {
	l := &accessLog{
		queue:   make(chan *logEntry, size),
		logger:  logger,
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go l.run()
	return l
}

// configure sets the writers and format for lines recorded from now on.
func (l *accessLog) configure(w io.Writer, tenant TenantLogWriter, format string) {
	if w == nil && tenant == nil {
		l.config.Store(nil)
		return
	}
	l.config.Store(&accessConfig{w: w, tenant: tenant, format: format})
}

// record formats the line for a finished request and queues it.
func (l *accessLog) record(rw *responseWriter, r *http.Request, s *Server, end time.Time) {
	cfg := l.config.Load()
	if cfg == nil {
		return
	}
	e := logEntries.Get().(*logEntry)
	if cfg.format == FormatJSON {
		e.line = appendJSON(e.line[:0], rw, r, end)
	} else {
		e.line = appendCombined(e.line[:0], rw, r, end)
	}
	e.site, e.hasSite = rw.site, rw.hasSite && cfg.tenant != nil
	select {
	case l.queue <- e:
	default:
		l.dropped.Add(1)
		logEntries.Put(e)
	}
}

// run is the writer goroutine. It joins queued lines into batches of whole
// lines and writes each batch with one Write call, so a writer that
// switches files between calls (log reopening) never splits a line.
func (l *accessLog) run() {
	defer close(l.stopped)
	b := batch{buf: make([]byte, 0, maxBatch)}
	var lastReport time.Time
	flush := func() {
		cfg := l.config.Load()
		if len(b.buf) == 0 || cfg == nil {
			b.reset()
			return
		}
		if cfg.w != nil {
			if _, err := cfg.w.Write(b.buf); err != nil {
				n := l.writeErrors.Add(1)
				if now := time.Now(); now.Sub(lastReport) >= errorReportInterval {
					lastReport = now
					l.logger().Error("server: access log write failed", "err", err, "failures", n)
				}
			}
		}
		if cfg.tenant != nil {
			l.writeTenants(cfg.tenant, &b)
		}
		b.reset()
	}
	for {
		select {
		case e := <-l.queue:
			b.take(e)
		more:
			for len(b.buf) < maxBatch {
				select {
				case e := <-l.queue:
					b.take(e)
				default:
					break more
				}
			}
			flush()
		case <-l.done:
			for {
				select {
				case e := <-l.queue:
					b.take(e)
					if len(b.buf) >= maxBatch {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// batch is the writer's buffer of joined lines, with the site of each line
// that goes to a tenant log too.
type batch struct {
	buf   []byte
	spans []tenantSpan
}

type tenantSpan struct {
	site       vhost.Site
	start, end int
}

func (b *batch) take(e *logEntry) {
	start := len(b.buf)
	b.buf = append(b.buf, e.line...)
	if e.hasSite {
		b.spans = append(b.spans, tenantSpan{site: e.site, start: start, end: len(b.buf)})
	}
	e.site = vhost.Site{}
	logEntries.Put(e)
}

func (b *batch) reset() {
	b.buf = b.buf[:0]
	clear(b.spans)
	b.spans = b.spans[:0]
}

// writeTenants writes each tenant's lines of the batch with one call per
// tenant, in order.
func (l *accessLog) writeTenants(w TenantLogWriter, b *batch) {
	var joined []byte
	for i, sp := range b.spans {
		if sp.end < 0 {
			continue // written with an earlier line of its tenant
		}
		joined = append(joined[:0], b.buf[sp.start:sp.end]...)
		for j := i + 1; j < len(b.spans); j++ {
			if o := &b.spans[j]; o.end >= 0 && o.site.Tenant == sp.site.Tenant {
				joined = append(joined, b.buf[o.start:o.end]...)
				o.end = -1
			}
		}
		if err := w.WriteTenant(sp.site, joined); err != nil {
			l.tenantErrors.Add(1)
		}
	}
}

// close writes the queued lines and stops the writer, waiting at most
// until ctx is done (a writer blocked forever is abandoned, not waited
// for). Lines recorded after close are dropped.
func (l *accessLog) close(ctx context.Context) {
	l.closeOnce.Do(func() { close(l.done) })
	select {
	case <-l.stopped:
	case <-ctx.Done():
	}
}

// appendCombined appends Apache's vhost_combined line:
//
//	%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"
//
// %v is the site name, or the canonical requested host when no site
// answered (404, 421), or "-" for an invalid Host; %O counts body
// bytes only (net/http does not expose header bytes), and request fields
// are escaped as Apache does (\" \\ and \xhh for control and non-ASCII
// bytes), so a request cannot forge log lines.
func appendCombined(b []byte, rw *responseWriter, r *http.Request, end time.Time) []byte {
	b = appendOrDash(b, rw.host)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(localPort(r)), 10)
	b = append(b, ' ')
	b = append(b, remoteIP(r.RemoteAddr)...)
	b = append(b, " - - ["...)
	b = end.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "`...)
	b = appendEscaped(b, r.Method)
	b = append(b, ' ')
	b = appendEscaped(b, r.RequestURI)
	b = append(b, ' ')
	b = appendEscaped(b, r.Proto)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(rw.statusOrOK()), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, rw.bytes, 10)
	b = append(b, ` "`...)
	b = appendOrDash(b, r.Header.Get("Referer"))
	b = append(b, `" "`...)
	b = appendOrDash(b, r.Header.Get("User-Agent"))
	return append(b, "\"\n"...)
}

func appendOrDash(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendEscaped(b, s)
}

func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}

// jsonLine is the FormatJSON record.
type jsonLine struct {
	Time       string  `json:"time"`
	Host       string  `json:"host"`
	Port       int     `json:"port"`
	Remote     string  `json:"remote"`
	Method     string  `json:"method"`
	URI        string  `json:"uri"`
	Proto      string  `json:"proto"`
	Status     int     `json:"status"`
	Bytes      int64   `json:"bytes"`
	Referer    string  `json:"referer"`
	UserAgent  string  `json:"user_agent"`
	DurationMS float64 `json:"duration_ms"`
	ID         string  `json:"id"`
}

func appendJSON(b []byte, rw *responseWriter, r *http.Request, end time.Time) []byte {
	line, err := json.Marshal(jsonLine{
		Time:       end.Format(time.RFC3339Nano),
		Host:       rw.host,
		Port:       localPort(r),
		Remote:     remoteIP(r.RemoteAddr),
		Method:     r.Method,
		URI:        r.RequestURI,
		Proto:      r.Proto,
		Status:     rw.statusOrOK(),
		Bytes:      rw.bytes,
		Referer:    r.Header.Get("Referer"),
		UserAgent:  r.Header.Get("User-Agent"),
		DurationMS: float64(end.Sub(rw.start).Microseconds()) / 1000,
		ID:         rw.id(),
	})
	if err != nil {
		return b // all fields are strings and numbers: cannot fail
	}
	b = append(b, line...)
	return append(b, '\n')
}

// localPort is the server port the request arrived on (%p).
func localPort(r *http.Request) int {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		return a.Port
	}
	if r.TLS != nil {
		return 443
	}
	return 80
}

// remoteIP strips the port from an "ip:port" or "[ip]:port" RemoteAddr.
func remoteIP(addr string) string {
	if strings.HasPrefix(addr, "[") {
		if i := strings.IndexByte(addr, ']'); i > 0 {
			return addr[1:i]
		}
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[:i]
	}
	if addr == "" {
		return "-"
	}
	return addr
}
