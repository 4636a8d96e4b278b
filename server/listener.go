package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// listener owns one bound TCP socket. Its accept loop caps concurrent
// connections per client IP (HTTP-05: one client must not hold every file
// descriptor) and hands each connection, as a *conn carrying the
// certificate chosen during its TLS handshake, to whichever [view] is
// accepting.
//
// The socket and the http.Server serving it are separate so that a reload
// can replace the http.Server (new timeouts or limits) without closing the
// socket: the new server's view starts accepting, then the old server is
// shut down gracefully, and no connection attempt is ever refused in
// between.
type listener struct {
	inner net.Listener
	srv   *Server

	perIPMu sync.Mutex
	perIP   map[netip.Addr]int // open connections by client address

	conns     chan *conn    // accepted connections waiting for a view
	closed    chan struct{} // closed by Close
	loopDone  chan struct{} // closed when the accept loop has returned
	closeOnce sync.Once
}

// Accept-loop back-off after a temporary error such as EMFILE, the same
// bounds net/http's Serve uses.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

func newListener(inner net.Listener, srv *Server) *listener {
	l := &listener{
		inner:    inner,
		srv:      srv,
		perIP:    make(map[netip.Addr]int),
		conns:    make(chan *conn),
		closed:   make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	go l.acceptLoop()
	return l
}

// acceptLoop accepts until the socket is closed. A connection over its
// client's cap is closed at once, before any byte is read, and counted in
// Stats.ConnsRefused.
func (l *listener) acceptLoop() {
	defer close(l.loopDone)
	var backoff time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
				select {
				case <-time.After(backoff):
					continue
				case <-l.closed:
					return
				}
			}
			select {
			case <-l.closed:
			default:
				l.srv.logger().Error("server: accept failed; listener stopped", "addr", l.inner.Addr().String(), "err", err)
			}
			return
		}
		backoff = 0
		ip := remoteAddr(c)
		if !l.acquire(ip) {
			l.srv.connsRefused.Add(1)
			c.Close()
			continue
		}
		tuneConn(c)
		if hook := l.srv.testHookAccepted; hook != nil {
			hook(c)
		}
		mc := &conn{Conn: c, l: l, ip: ip}
		select {
		case l.conns <- mc:
		case <-l.closed:
			mc.Close()
			return
		}
	}
}

// isTemporary reports whether an accept error is worth retrying
// (EMFILE, ENFILE, ECONNABORTED…); net/http's Serve asks the same question.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Close closes the socket: new connection attempts are refused from now
// on. Connections already handed to a view are not affected.
func (l *listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.inner.Close()
	})
	return err
}

// Addr returns the bound address.
func (l *listener) Addr() net.Addr { return l.inner.Addr() }

// newView returns a view of l for one http.Server, and the net.Listener
// that server accepts from: the view itself, or the view wrapped in TLS
// with cfg.
func (l *listener) newView(cfg *tls.Config) (*view, net.Listener) {
	v := &view{l: l, closed: make(chan struct{})}
	if cfg != nil {
		return v, tls.NewListener(v, cfg)
	}
	return v, v
}

// acquire counts a new connection from ip and reports whether it is within
// the current MaxConnsPerIP. Connections are counted even when the cap is
// zero (unlimited), so a cap set later by Swap sees the true numbers.
func (l *listener) acquire(ip netip.Addr) bool {
	limit := int(l.srv.maxConnsPerIP.Load())
	l.perIPMu.Lock()
	defer l.perIPMu.Unlock()
	n := l.perIP[ip]
	if limit > 0 && n >= limit {
		return false
	}
	l.perIP[ip] = n + 1
	return true
}

func (l *listener) release(ip netip.Addr) {
	l.perIPMu.Lock()
	defer l.perIPMu.Unlock()
	if n := l.perIP[ip]; n > 1 {
		l.perIP[ip] = n - 1
	} else {
		delete(l.perIP, ip)
	}
}

// view is the net.Listener one http.Server serves. Closing it (which
// http.Server.Shutdown does) stops that server's accepting without closing
// the socket, so another view may take over.
type view struct {
	l         *listener
	closed    chan struct{}
	closeOnce sync.Once
}

// Accept hands out the next connection of the shared socket. A view closed
// by a retiring http.Server (a reload that changed timeouts) must not take
// a connection any more: that server is shutting down and would drop it, so
// a connection received while the view closes is handed back for the
// view that replaced it.
func (v *view) Accept() (net.Conn, error) {
	select {
	case <-v.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-v.l.conns:
		select {
		case <-v.closed:
			go v.l.requeue(c)
			return nil, net.ErrClosed
		default:
		}
		return c, nil
	case <-v.closed:
	case <-v.l.loopDone:
	}
	return nil, net.ErrClosed
}

// requeue gives c back to the views of the socket, or closes it when the
// socket is closed.
func (l *listener) requeue(c *conn) {
	select {
	case l.conns <- c:
	case <-l.loopDone:
		c.Close()
	}
}

func (v *view) Close() error {
	v.closeOnce.Do(func() { close(v.closed) })
	return nil
}

func (v *view) Addr() net.Addr { return v.l.Addr() }

func remoteAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// conn is one accepted connection.
type conn struct {
	net.Conn
	l         *listener
	ip        netip.Addr
	closeOnce sync.Once

	// hello is the outcome of the certificate lookup for this connection's
	// ClientHello, recorded by the TLS config before the certificate is
	// sent and read by the handler for the 421 check.
	hello atomic.Pointer[helloResult]
	// coveredHost is the last Host found covered by hello's certificate. A
	// keep-alive connection names the same host request after request,
	// and the certificate of a connection never changes, so the check
	// (VerifyHostname splits and compares every name of the leaf) runs
	// once per host rather than once per request.
	coveredHost atomic.Pointer[string]
}

// helloResult is the certificate chosen for a connection, or why none was.
type helloResult struct {
	cert *tls.Certificate
	err  error
}

// ReadFrom passes through to the TCP connection, so that net/http still
// sends files with sendfile(2) on plain HTTP.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// Close closes the connection and releases its per-IP slot once.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.l.release(c.ip) })
	return err
}
