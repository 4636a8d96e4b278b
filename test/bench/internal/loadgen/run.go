package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"

	"massvhost/test/bench/internal/hist"
)

var errWrongCert = errors.New("certificate does not cover the SNI name")

// Summary is a latency distribution in milliseconds.
type Summary struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
	N    uint64  `json:"n"`
}

func summarize(h *hist.Histogram) Summary {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return Summary{P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)),
		Max: ms(h.Max()), Mean: ms(h.Mean()), N: h.Count()}
}

// Result is the outcome of one run. RPS counts responses with the expected
// status; HPS counts completed TLS handshakes.
type Result struct {
	Config        Config            `json:"config"`
	Started       time.Time         `json:"started"`
	ElapsedS      float64           `json:"elapsed_s"`
	OK            uint64            `json:"ok"`
	Errors        uint64            `json:"errors"`
	ErrorKinds    map[string]uint64 `json:"error_kinds"`
	ErrorSamples  map[string]string `json:"error_samples,omitempty"` // first message of each kind
	Handshakes    uint64            `json:"handshakes"`
	RPS           float64           `json:"rps"`
	HPS           float64           `json:"hps"`
	BodyBytes     uint64            `json:"body_bytes"`
	Negotiated    string            `json:"negotiated"` // version, suite, group, ALPN of one connection
	Latency       Summary           `json:"latency"`    // per request; includes the handshake in newconn mode
	Handshake     Summary           `json:"handshake"`  // TCP connect + TLS handshake
	LatencyHist   hist.Histogram    `json:"latency_hist"`
	HandshakeHist hist.Histogram    `json:"handshake_hist"`
}

type workerStats struct {
	lat, hs    hist.Histogram
	ok, hsN    uint64
	bytes      uint64
	errs       map[string]uint64
	samples    map[string]string
	negotiated string
}

func (s *workerStats) fail(kind string, err error) {
	s.errs[kind]++
	if _, ok := s.samples[kind]; !ok && err != nil {
		s.samples[kind] = err.Error()
	}
}

// Run drives load as cfg describes until its bound is reached or ctx ends.
// An error is returned only for an invalid configuration; failed requests
// are counted in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	base, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, base: base, h2: &http2.Transport{}}
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer cancel()

	stats := make([]*workerStats, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range stats {
		s := &workerStats{errs: map[string]uint64{}, samples: map[string]string{}}
		stats[i] = s
		wg.Go(func() {
			if cfg.Mode == ModeNewConn {
				r.newConnLoop(ctx, s)
			} else {
				r.keepAliveLoop(ctx, s)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &Result{Config: cfg, Started: start.UTC(), ElapsedS: elapsed.Seconds(),
		ErrorKinds: map[string]uint64{}, ErrorSamples: map[string]string{}}
	for _, s := range stats {
		res.LatencyHist.Merge(&s.lat)
		res.HandshakeHist.Merge(&s.hs)
		res.OK += s.ok
		res.Handshakes += s.hsN
		res.BodyBytes += s.bytes
		for k, v := range s.errs {
			res.ErrorKinds[k] += v
			res.Errors += v
		}
		for k, v := range s.samples {
			if _, ok := res.ErrorSamples[k]; !ok {
				res.ErrorSamples[k] = v
			}
		}
		if res.Negotiated == "" {
			res.Negotiated = s.negotiated
		}
	}
	if res.ElapsedS > 0 {
		res.RPS = float64(res.OK) / res.ElapsedS
		res.HPS = float64(res.Handshakes) / res.ElapsedS
	}
	res.Latency = summarize(&res.LatencyHist)
	res.Handshake = summarize(&res.HandshakeHist)
	return res, nil
}

type runner struct {
	cfg    Config
	base   *tls.Config
	h2     *http2.Transport
	issued atomic.Int64
	host   atomic.Uint64
}

// take reports whether another request may be issued under the Requests bound.
func (r *runner) take(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	return r.cfg.Requests <= 0 || r.issued.Add(1) <= int64(r.cfg.Requests)
}

func (r *runner) nextHost() string {
	i := r.host.Add(1) - 1
	return r.cfg.Hosts[(uint64(r.cfg.Offset)+i)%uint64(len(r.cfg.Hosts))]
}

func (r *runner) newConnLoop(ctx context.Context, s *workerStats) {
	for r.take(ctx) {
		host := r.nextHost()
		t0 := time.Now()
		c, err := r.dial(ctx, host, s)
		if err != nil {
			continue
		}
		st, n, _, err := c.do(ctx, host, true)
		c.close()
		r.finish(ctx, s, t0, st, n, err)
	}
}

func (r *runner) keepAliveLoop(ctx context.Context, s *workerStats) {
	var c conn
	var host string
	used := 0
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	for r.take(ctx) {
		if c == nil || (r.cfg.PerConn > 0 && used >= r.cfg.PerConn) {
			if c != nil {
				c.close()
				c = nil
			}
			host = r.nextHost()
			var err error
			if c, err = r.dial(ctx, host, s); err != nil {
				c = nil
				continue
			}
			used = 0
		}
		t0 := time.Now()
		st, n, closed, err := c.do(ctx, host, false)
		used++
		if err != nil || closed {
			c.close()
			c = nil
		}
		r.finish(ctx, s, t0, st, n, err)
	}
}

func (r *runner) finish(ctx context.Context, s *workerStats, t0 time.Time, status int, n int64, err error) {
	switch {
	case err != nil:
		if ended(ctx) {
			return // cut off by the end of the run, not a server failure
		}
		s.fail(classify("request", err), err)
	case status != r.cfg.Status:
		s.fail(fmt.Sprintf("status %d", status), nil)
	default:
		s.lat.Record(time.Since(t0))
		s.ok++
		s.bytes += uint64(n)
	}
}

// ended reports whether the run is over. Connection deadlines equal the
// run's deadline, so an I/O timeout can fire a moment before ctx reports it.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func (r *runner) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(r.cfg.Timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// dial connects and completes a full handshake with SNI host, recording
// the handshake time and any failure.
func (r *runner) dial(ctx context.Context, host string, s *workerStats) (conn, error) {
	t0 := time.Now()
	dl := r.deadline(ctx)
	d := net.Dialer{Deadline: dl}
	raw, err := d.DialContext(ctx, "tcp", r.cfg.Addr)
	if err != nil {
		if !ended(ctx) {
			s.fail(classify("dial", err), err)
		}
		return nil, err
	}
	cfg := r.base.Clone()
	cfg.ServerName = host
	tc := tls.Client(raw, cfg)
	tc.SetDeadline(dl)
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		if !ended(ctx) {
			s.fail(classify("handshake", err), err)
		}
		return nil, err
	}
	s.hs.Record(time.Since(t0))
	s.hsN++
	cs := tc.ConnectionState()
	if s.negotiated == "" {
		s.negotiated = fmt.Sprintf("%s %s %s %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), cs.CurveID, cs.NegotiatedProtocol)
	}
	if r.cfg.Proto == ProtoH2 {
		if cs.NegotiatedProtocol != "h2" {
			tc.Close()
			err := fmt.Errorf("server chose ALPN %q, not h2", cs.NegotiatedProtocol)
			s.fail("handshake: no h2", err)
			return nil, err
		}
		cc, err := r.h2.NewClientConn(tc)
		if err != nil {
			tc.Close()
			s.fail(classify("h2 setup", err), err)
			return nil, err
		}
		return &h2Conn{cc: cc, r: r}, nil
	}
	return &h1Conn{tc: tc, br: bufio.NewReaderSize(tc, 16<<10), r: r}, nil
}

// conn is one established TLS connection speaking h1 or h2.
type conn interface {
	// do sends one GET with Host host; closed reports that the server
	// ended the connection after the response.
	do(ctx context.Context, host string, last bool) (status int, n int64, closed bool, err error)
	close()
}

type h1Conn struct {
	tc  *tls.Conn
	br  *bufio.Reader
	r   *runner
	req []byte
}

func (c *h1Conn) do(ctx context.Context, host string, last bool) (int, int64, bool, error) {
	c.tc.SetDeadline(c.r.deadline(ctx))
	c.req = append(c.req[:0], "GET "...)
	c.req = append(c.req, c.r.cfg.Path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, host...)
	c.req = append(c.req, "\r\nUser-Agent: massvhost-bench\r\nAccept: */*\r\n"...)
	if last {
		c.req = append(c.req, "Connection: close\r\n"...)
	}
	c.req = append(c.req, "\r\n"...)
	if _, err := c.tc.Write(c.req); err != nil {
		return 0, 0, true, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, 0, true, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, n, resp.Close, err
}

func (c *h1Conn) close() { c.tc.Close() }

type h2Conn struct {
	cc *http2.ClientConn
	r  *runner
}

func (c *h2Conn) do(ctx context.Context, host string, _ bool) (int, int64, bool, error) {
	rctx, cancel := context.WithDeadline(ctx, c.r.deadline(ctx))
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "https://"+host+c.r.cfg.Path, nil)
	if err != nil {
		return 0, 0, true, err
	}
	req.Header.Set("User-Agent", "massvhost-bench")
	resp, err := c.cc.RoundTrip(req)
	if err != nil {
		return 0, 0, true, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, n, !c.cc.CanTakeNewRequest(), err
}

func (c *h2Conn) close() { c.cc.Close() }

// classify maps an error to a short, bounded kind such as
// "handshake: alert unrecognized name" or "dial: connection refused".
func classify(stage string, err error) string {
	var ne net.Error
	msg := err.Error()
	switch {
	case errors.Is(err, errWrongCert):
		return stage + ": wrong certificate"
	case strings.Contains(msg, "remote error: tls: "):
		alert := msg[strings.Index(msg, "remote error: tls: ")+len("remote error: tls: "):]
		return stage + ": alert " + alert
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return stage + ": timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return stage + ": connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return stage + ": connection reset"
	case errors.Is(err, syscall.EPIPE):
		return stage + ": broken pipe"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return stage + ": no free local port"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return stage + ": eof"
	case strings.Contains(msg, "malformed HTTP"):
		return stage + ": malformed response"
	}
	return stage + ": other"
}
