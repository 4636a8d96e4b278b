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
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves tenant sites over HTTP and HTTPS. Create it with [New], bind
// with [Server.Start], reload with [Server.Swap], stop with
// [Server.Shutdown]. Its methods are safe for concurrent use.
type Server struct {
	// base holds the Options given to New (with defaults); the fields that
	// need a restart keep these values for the life of the Server.
	base  Options
	state atomic.Pointer[state]

	swapMu sync.Mutex // serializes Swap

	maxConnsPerIP atomic.Int64
	connsRefused  atomic.Uint64
	panics        atomic.Uint64
	reqSeq        atomic.Uint64
	idPrefix      string

	access    *accessLog
	tlsConfig *tls.Config
	// noResumeConfig is tlsConfig with session tickets disabled, for
	// handshakes whose certificate lookup failed.
	noResumeConfig *tls.Config
	errorLog       *log.Logger

	lifeMu     sync.Mutex // guards the fields below
	started    bool
	stopped    bool
	servers    []*http.Server
	httpAddr   net.Addr
	httpsAddr  net.Addr
	serveGroup sync.WaitGroup

	// testHookAccepted, if set, sees every accepted TCP connection before
	// it is served (tests shrink socket buffers with it).
	testHookAccepted func(net.Conn)
}

// state is everything a request reads that Swap can replace. A request
// loads it once and uses that snapshot throughout.
type state struct {
	opts  Options
	sites SiteResolver
	certs CertSource
	cgi   CGIRunner
}

// Stats are counters since New.
type Stats struct {
	AccessLogDropped     uint64 // lines dropped because the writer fell behind
	AccessLogWriteErrors uint64 // failed writes to the access log
	ConnsRefused         uint64 // connections closed at accept by MaxConnsPerIP
	Panics               uint64 // handler panics recovered
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
	s := &Server{base: o, idPrefix: hex.EncodeToString(prefix[:])}
	s.state.Store(newState(o))
	s.maxConnsPerIP.Store(int64(o.MaxConnsPerIP))
	s.errorLog = log.New(errorLogWriter{s}, "", 0)
	s.tlsConfig = s.newTLSConfig()
	s.access = newAccessLog(o.AccessLogBuffer, s.logger)
	s.access.configure(o.AccessLog, o.AccessFormat)
	return s, nil
}

func newState(o Options) *state {
	return &state{opts: o, sites: o.Sites, certs: o.Certs, cgi: o.CGI}
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
	var httpsLn, httpLn net.Listener
	var err error
	if s.base.HTTPSAddr != "" {
		if httpsLn, err = net.Listen("tcp", s.base.HTTPSAddr); err != nil {
			return fmt.Errorf("server: listen https %s: %w", s.base.HTTPSAddr, err)
		}
	}
	if s.base.HTTPAddr != "" {
		if httpLn, err = net.Listen("tcp", s.base.HTTPAddr); err != nil {
			if httpsLn != nil {
				httpsLn.Close()
			}
			return fmt.Errorf("server: listen http %s: %w", s.base.HTTPAddr, err)
		}
	}
	s.started = true
	if httpsLn != nil {
		s.httpsAddr = httpsLn.Addr()
		srv := s.newHTTPServer(http.HandlerFunc(s.ServeHTTP), true)
		s.serve(srv, tls.NewListener(newListener(httpsLn, s), s.tlsConfig))
	}
	if httpLn != nil {
		s.httpAddr = httpLn.Addr()
		srv := s.newHTTPServer(http.HandlerFunc(s.serveHTTPPort), false)
		s.serve(srv, newListener(httpLn, s))
	}
	return nil
}

// newHTTPServer configures an http.Server from the start-up Options.
// WriteTimeout stays zero: the rolling deadline in responseWriter replaces
// it. net/http bounds the TLS handshake by the smallest of ReadHeaderTimeout
// and ReadTimeout (conn.serve sets the deadline before HandshakeContext), so
// a client that connects and sends nothing is dropped after
// ReadHeaderTimeout (THREATS TLS-09).
func (s *Server) newHTTPServer(h http.Handler, secure bool) *http.Server {
	o := s.base
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(secure) // no cleartext HTTP/2 (h2c)
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          s.errorLog,
		Protocols:         &protos,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: o.MaxConcurrentStreams,
			// A connection whose peer accepts no data for this long is
			// closed, the HTTP/2 counterpart of the rolling deadline.
			WriteByteTimeout: o.WriteTimeout,
		},
		ConnContext: connContext,
	}
}

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	s.servers = append(s.servers, srv)
	s.serveGroup.Add(1)
	go func() {
		defer s.serveGroup.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger().Error("server: serve failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
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
// for a listener that is disabled or not started.
func (s *Server) Addrs() (httpAddr, httpsAddr net.Addr) {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.httpAddr, s.httpsAddr
}

// httpsPort is the port HTTP requests are redirected to.
func (s *Server) httpsPort() string {
	_, a := s.Addrs()
	addr := s.base.HTTPSAddr
	if a != nil {
		addr = a.String()
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}

// Swap replaces the routing state with one built from opts: Sites, Certs,
// CGI, Index, Listing, AllowACMEChallenge, RedirectHTTPS, WriteTimeout,
// MaxConnsPerIP, MaxRanges, AccessLog, AccessFormat and Logger take effect
// for requests and handshakes that start after Swap returns; requests in
// flight finish with the state they started with, and no connection is
// dropped.
//
// If opts is invalid, Swap returns the validation error and changes
// nothing. If opts changes fields that are fixed once listening
// (HTTPAddr, HTTPSAddr, ReadHeaderTimeout, ReadTimeout, IdleTimeout,
// MaxHeaderBytes, MaxConcurrentStreams, AccessLogBuffer), those keep their
// running values, everything else is applied, and the returned error wraps
// [ErrRestartRequired] and names them.
//
// A previous AccessLog writer may still receive the batch being written
// when Swap returns; close it a little later, not at once.
func (s *Server) Swap(opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	fixed := restartFields(s.base, o)
	if o.AccessLogBuffer != s.base.AccessLogBuffer {
		fixed = append(fixed, "AccessLogBuffer")
	}
	s.state.Store(newState(o))
	s.maxConnsPerIP.Store(int64(o.MaxConnsPerIP))
	s.access.configure(o.AccessLog, o.AccessFormat)
	if len(fixed) > 0 {
		return fmt.Errorf("%w for %s", ErrRestartRequired, strings.Join(fixed, ", "))
	}
	return nil
}

// Shutdown stops the listeners at once, waits for in-flight requests to
// finish until ctx is done, then closes the remaining connections, and
// finally flushes the access log. It returns ctx's error if connections had
// to be force-closed. HTTP/2 clients receive GOAWAY. CGI children are the
// CGI runner's to stop.
func (s *Server) Shutdown(ctx context.Context) error {
	s.lifeMu.Lock()
	servers := s.servers
	s.stopped = true
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

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		AccessLogDropped:     s.access.dropped.Load(),
		AccessLogWriteErrors: s.access.writeErrors.Load(),
		ConnsRefused:         s.connsRefused.Load(),
		Panics:               s.panics.Load(),
	}
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
