package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves tenant sites over HTTP and HTTPS. Create it with [New], bind
// with [Server.Start], reload with [Server.Swap], stop with
// [Server.Shutdown]. Its methods are safe for concurrent use.
type Server struct {
	// base holds the Options given to New (with defaults), for the one
	// field that needs a restart (AccessLogBuffer).
	base  Options
	state atomic.Pointer[state]

	swapMu sync.Mutex // serializes Swap

	maxConnsPerIP atomic.Int64
	connsRefused  atomic.Uint64
	panics        atomic.Uint64
	reqSeq        atomic.Uint64
	idPrefix      string
	startedAt     time.Time

	metrics    metrics
	topTenants *tenantTop
	cgiTenants tenantGauge

	access    *accessLog
	tlsConfig *tls.Config
	// noResumeConfig is tlsConfig with session tickets disabled, for
	// handshakes whose certificate lookup failed.
	noResumeConfig *tls.Config
	errorLog       *log.Logger

	lifeMu  sync.Mutex // guards the fields below
	started bool
	stopped bool
	ports   [2]*port       // portHTTP, portHTTPS; nil when disabled
	retired []*http.Server // replaced by Swap, draining
	// serveGroup counts Serve goroutines, drainGroup the goroutines
	// draining retired servers.
	serveGroup sync.WaitGroup
	drainGroup sync.WaitGroup

	// testHookAccepted, if set, sees every accepted TCP connection before
	// it is served (tests shrink socket buffers with it).
	testHookAccepted func(net.Conn)
}

// Indexes of Server.ports.
const (
	portHTTP = iota
	portHTTPS
)

var portNames = [2]string{"http", "https"}

// port is one listening socket and the http.Server currently serving it.
// retireGrace is how long a retired http.Server keeps serving the
// connections it accepted before its Shutdown starts (see retireLocked).
const retireGrace = time.Second

type port struct {
	addr   string // as configured, e.g. "127.0.0.1:0"
	ln     *listener
	view   *view // srv's share of ln's connections
	srv    *http.Server
	params serverParams
}

// serverParams are the Options an http.Server is built from; a Swap that
// changes them replaces the http.Server (on the same socket).
type serverParams struct {
	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout time.Duration
	maxHeaderBytes, maxConcurrentStreams                      int
}

func paramsOf(o Options) serverParams {
	return serverParams{
		readHeaderTimeout:    o.ReadHeaderTimeout,
		readTimeout:          o.ReadTimeout,
		writeTimeout:         o.WriteTimeout,
		idleTimeout:          o.IdleTimeout,
		maxHeaderBytes:       o.MaxHeaderBytes,
		maxConcurrentStreams: o.MaxConcurrentStreams,
	}
}

// state is everything a request reads that Swap can replace. A request
// loads it once and uses that snapshot throughout.
type state struct {
	opts  Options
	sites SiteResolver
	certs CertSource
	cgi   CGIRunner

	// active counts the requests and handshakes using this state; once
	// retiring is set and active drops to zero, drained is closed.
	active      atomic.Int64
	retiring    atomic.Bool
	drained     chan struct{}
	drainedOnce sync.Once
}

// acquire returns the current state, counted as in use until release. A
// state that Swap retired between the load and the count is given back and
// the newer one taken, so no request starts on components whose drain
// already completed.
func (s *Server) acquire() *state {
	for {
		st := s.state.Load()
		st.active.Add(1)
		if !st.retiring.Load() {
			return st
		}
		st.release()
	}
}

func (st *state) release() {
	if st.active.Add(-1) == 0 && st.retiring.Load() {
		st.drainedOnce.Do(func() { close(st.drained) })
	}
}

// retire marks st as replaced; drained closes when its last user is done.
func (st *state) retire() {
	st.retiring.Store(true)
	if st.active.Load() == 0 {
		st.drainedOnce.Do(func() { close(st.drained) })
	}
}

// New validates opts and returns a Server that is not yet listening. It
// starts the access-log writer, so a Server from New must be stopped with
// Shutdown even if it was never started.
func New(opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var prefix [4]byte
	_, _ = rand.Read(prefix[:])
	s := &Server{
		base:       o,
		idPrefix:   hex.EncodeToString(prefix[:]),
		startedAt:  time.Now(),
		topTenants: newTenantTop(),
	}
	s.state.Store(newState(o))
	s.maxConnsPerIP.Store(int64(o.MaxConnsPerIP))
	s.errorLog = log.New(errorLogWriter{s}, "", 0)
	s.tlsConfig = s.newTLSConfig()
	s.access = newAccessLog(o.AccessLogBuffer, s.logger)
	s.access.configure(o.AccessLog, o.TenantAccessLog, o.AccessFormat)
	return s, nil
}

func newState(o Options) *state {
	return &state{opts: o, sites: o.Sites, certs: o.Certs, cgi: o.CGI, drained: make(chan struct{})}
}

func (s *Server) logger() *slog.Logger {
	return s.state.Load().opts.Logger
}

// Handler returns the routing handler (the HTTPS one), for tests and for
// embedding the router in another server.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.ServeHTTP)
}

// Start binds the configured listeners and serves them in the background.
// Start returns once both addresses are bound (see Addrs); it fails if a
// bind fails, leaving nothing open.
func (s *Server) Start() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.started || s.stopped {
		return errors.New("server: Start called twice or after Shutdown")
	}
	if err := s.rebindLocked(s.state.Load().opts); err != nil {
		return err
	}
	s.started = true
	return nil
}

// rebindLocked makes the ports match o: an address that is new is bound
// first (if any bind fails, every socket bound here is closed and nothing
// changes); then the new sockets start serving, and only after that are
// replaced ones closed and their servers drained. A port whose address is
// unchanged keeps its socket, so no connection attempt is refused; if its
// timeouts or limits changed, a new http.Server takes over the socket and
// the old one drains. The caller holds lifeMu.
func (s *Server) rebindLocked(o Options) error {
	want := [2]string{o.HTTPAddr, o.HTTPSAddr}
	var fresh [2]*listener
	for i := range want {
		if want[i] == "" || (s.ports[i] != nil && s.ports[i].addr == want[i]) {
			continue
		}
		ln, err := Listen(want[i])
		if err != nil {
			for _, f := range fresh {
				if f != nil {
					f.Close()
				}
			}
			return fmt.Errorf("server: listen %s %s: %w", portNames[i], want[i], err)
		}
		fresh[i] = newListener(ln, s)
	}
	params := paramsOf(o)
	for i := range want {
		old := s.ports[i]
		switch {
		case fresh[i] != nil:
			s.ports[i] = s.servePort(i, want[i], fresh[i], params)
			if old != nil {
				s.retireLocked(old, true)
			}
		case want[i] == "":
			s.ports[i] = nil
			if old != nil {
				s.retireLocked(old, true)
			}
		case old.params != params:
			s.ports[i] = s.servePort(i, old.addr, old.ln, params)
			s.retireLocked(old, false)
		}
	}
	return nil
}

// servePort starts an http.Server for port i on ln.
func (s *Server) servePort(i int, addr string, ln *listener, params serverParams) *port {
	var (
		h   http.Handler = http.HandlerFunc(s.serveHTTPPort)
		cfg *tls.Config
	)
	if i == portHTTPS {
		h, cfg = http.HandlerFunc(s.ServeHTTP), s.tlsConfig
	}
	srv := s.newHTTPServer(h, i == portHTTPS, params)
	v, nl := ln.newView(cfg)
	s.serve(srv, nl)
	return &port{addr: addr, ln: ln, view: v, srv: srv, params: params}
}

// retireLocked stops p's server from accepting and lets its requests
// finish within the current ShutdownTimeout in the background; with
// closeSocket the socket is closed too, so the address stops accepting at
// once. Shutdown forces what is still draining. The caller holds lifeMu.
func (s *Server) retireLocked(p *port, closeSocket bool) {
	if closeSocket {
		p.ln.Close()
	}
	// Stop handing p.srv new connections now, and let the ones it already
	// holds finish their current request without keep-alive. Its Shutdown
	// comes a moment later: net/http drops, unanswered, a connection whose
	// first request is read after Shutdown began, and a client that
	// connected just before the swap sends that request within
	// milliseconds.
	p.view.Close()
	p.srv.SetKeepAlivesEnabled(false)
	grace := min(p.params.readHeaderTimeout, retireGrace)
	s.retired = append(s.retired, p.srv)
	timeout := s.state.Load().opts.ShutdownTimeout
	s.drainGroup.Go(func() {
		time.Sleep(grace)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := p.srv.Shutdown(ctx); err != nil {
			p.srv.Close()
		}
		s.lifeMu.Lock()
		defer s.lifeMu.Unlock()
		s.retired = slices.DeleteFunc(s.retired, func(r *http.Server) bool { return r == p.srv })
	})
}

// newHTTPServer configures an http.Server. WriteTimeout stays zero: the
// rolling deadline in responseWriter replaces it. net/http bounds the TLS
// handshake by the smallest of ReadHeaderTimeout and ReadTimeout
// (conn.serve sets the deadline before HandshakeContext), so a client that
// connects and sends nothing is dropped after ReadHeaderTimeout (THREATS
// TLS-09).
func (s *Server) newHTTPServer(h http.Handler, secure bool, p serverParams) *http.Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(secure) // no cleartext HTTP/2 (h2c)
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: p.readHeaderTimeout,
		ReadTimeout:       p.readTimeout,
		IdleTimeout:       p.idleTimeout,
		MaxHeaderBytes:    p.maxHeaderBytes,
		ErrorLog:          s.errorLog,
		Protocols:         &protos,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: p.maxConcurrentStreams,
			// A connection whose peer accepts no data for this long is
			// closed, the HTTP/2 counterpart of the rolling deadline.
			WriteByteTimeout: p.writeTimeout,
		},
		ConnContext: connContext,
	}
}

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	s.serveGroup.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.logger().Error("server: serve failed", "addr", ln.Addr().String(), "err", err)
		}
	})
}

type connKey struct{}

// connContext makes the accepted *conn reachable from the request context,
// for the 421 check.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if mc, ok := c.(*conn); ok {
		return context.WithValue(ctx, connKey{}, mc)
	}
	return ctx
}

// Addrs returns the bound addresses of the HTTP and HTTPS listeners; nil
// for a listener that is disabled or not started. They change when a Swap
// moves a listener.
func (s *Server) Addrs() (httpAddr, httpsAddr net.Addr) {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if p := s.ports[portHTTP]; p != nil {
		httpAddr = p.ln.Addr()
	}
	if p := s.ports[portHTTPS]; p != nil {
		httpsAddr = p.ln.Addr()
	}
	return httpAddr, httpsAddr
}

// Serving reports whether the Server has been started, is not shutting
// down, and every configured listener is bound (a readiness check).
func (s *Server) Serving() bool {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.started && !s.stopped
}

// httpsPort is the port HTTP requests are redirected to.
func (s *Server) httpsPort() string {
	_, a := s.Addrs()
	addr := s.state.Load().opts.HTTPSAddr
	if a != nil {
		addr = a.String()
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}

// Swap replaces the routing state with one built from opts. Sites, Certs,
// CGI, Index, Listing, DenyNames, AllowACMEChallenge, RedirectHTTPS,
// WriteTimeout, MaxConnsPerIP, MaxHeaderFields, MaxRanges, AccessLog,
// TenantAccessLog, AccessFormat, ShutdownTimeout and Logger take effect for
// requests and handshakes that start after Swap returns; requests in flight
// finish with the state they started with, and no connection is dropped.
//
// A changed HTTPAddr or HTTPSAddr is rebound: the new address is bound and
// serving before the old socket is closed, and requests in flight on the
// old one finish within ShutdownTimeout. Changed ReadHeaderTimeout,
// ReadTimeout, IdleTimeout, MaxHeaderBytes or MaxConcurrentStreams apply to
// connections accepted after Swap: a new http.Server takes over the same
// socket and the old one drains the same way.
//
// If opts is invalid or a new address cannot be bound, Swap returns the
// error and changes nothing. AccessLogBuffer cannot change: if opts changes
// it, everything else is applied and the returned error wraps
// [ErrRestartRequired].
//
// A previous AccessLog writer may still receive the batch being written
// when Swap returns; close it a little later, not at once.
func (s *Server) Swap(opts Options) error {
	_, err := s.SwapRetired(opts)
	return err
}

// SwapRetired is [Server.Swap], also returning a channel that is closed
// once no request or handshake is still using the replaced Options (it is
// nil when Swap changed nothing). Close the replaced Sites, Certs and CGI
// after it closes: closing a CGI runner at once would kill the scripts of
// requests still in flight.
func (s *Server) SwapRetired(opts Options) (<-chan struct{}, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	s.lifeMu.Lock()
	if s.started && !s.stopped {
		err = s.rebindLocked(o)
	}
	s.lifeMu.Unlock()
	if err != nil {
		return nil, err
	}
	old := s.state.Swap(newState(o))
	old.retire()
	s.maxConnsPerIP.Store(int64(o.MaxConnsPerIP))
	s.access.configure(o.AccessLog, o.TenantAccessLog, o.AccessFormat)
	if o.AccessLogBuffer != s.base.AccessLogBuffer {
		return old.drained, fmt.Errorf("%w for AccessLogBuffer", ErrRestartRequired)
	}
	return old.drained, nil
}

// Shutdown stops the listeners at once, waits for in-flight requests to
// finish until ctx is done, then closes the remaining connections, and
// finally flushes the access log. It returns ctx's error if connections had
// to be force-closed. HTTP/2 clients receive GOAWAY. CGI children are the
// CGI runner's to stop.
func (s *Server) Shutdown(ctx context.Context) error {
	s.lifeMu.Lock()
	s.stopped = true
	var servers []*http.Server
	for _, p := range s.ports {
		if p != nil {
			p.ln.Close() // refuse new connections at once
			servers = append(servers, p.srv)
		}
	}
	servers = append(servers, s.retired...)
	s.lifeMu.Unlock()

	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				errs[i] = err
				srv.Close()
			}
		})
	}
	wg.Wait()
	s.drainGroup.Wait()
	s.serveGroup.Wait()

	flushCtx := ctx
	if ctx.Err() != nil {
		// Connections were cut; still give the log writer a moment.
		var cancel context.CancelFunc
		flushCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
	}
	s.access.close(flushCtx)
	return errors.Join(errs...)
}

// errorLogWriter bridges http.Server.ErrorLog to the current slog logger.
// Unlike slog.NewLogLogger it picks the level per message: TLS handshake
// failures are the daily noise of scanners and clients with unknown SNI
// (debug); anything else from net/http is worth a warning.
type errorLogWriter struct{ s *Server }

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
		w.s.metrics.tlsErrors.Add(1)
	}
	w.s.logger().Log(context.Background(), level, msg, "source", "net/http")
	return len(p), nil
}

func remoteString(c net.Conn) string {
	if c == nil || c.RemoteAddr() == nil {
		return ""
	}
	return c.RemoteAddr().String()
}
