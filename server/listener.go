package server

import (
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// listener wraps a TCP listener. It caps concurrent connections per client
// IP (HTTP-05: one client must not hold every file descriptor) and returns
// each connection as a *conn, which carries the certificate chosen during
// its TLS handshake to the request handler.
type listener struct {
	net.Listener
	srv *Server

	perIPMu sync.Mutex
	perIP   map[netip.Addr]int // open connections by client address
}

func newListener(inner net.Listener, srv *Server) *listener {
	return &listener{Listener: inner, srv: srv, perIP: make(map[netip.Addr]int)}
}

// Accept returns the next connection whose client is under its cap. A
// connection over the cap is closed at once, before any byte is read, and
// counted in Stats.ConnsRefused; Accept then waits for the next one.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteAddr(c)
		if !l.acquire(ip) {
			l.srv.connsRefused.Add(1)
			c.Close()
			continue
		}
		if hook := l.srv.testHookAccepted; hook != nil {
			hook(c)
		}
		return &conn{Conn: c, l: l, ip: ip}, nil
	}
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
