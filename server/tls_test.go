package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCertificatePerSNI(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct{ sni, covers string }{
		{"a.test", "a.test"},
		{"b.test", "b.test"},
		{"A.TEST", "a.test"},
		{"c.example.com", "c.example.com"},
		{"d.example.com", "d.example.com"},
	} {
		t.Run(tc.sni, func(t *testing.T) {
			c, err := tls.Dial("tcp", f.httpsAddr, f.tlsConfig(tc.sni))
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			leaf := c.ConnectionState().PeerCertificates[0]
			if err := leaf.VerifyHostname(tc.covers); err != nil {
				t.Fatalf("certificate for SNI %q does not cover %q: %v", tc.sni, tc.covers, err)
			}
			if other := map[string]string{"a.test": "b.test", "b.test": "a.test"}[tc.covers]; other != "" {
				if leaf.VerifyHostname(other) == nil {
					t.Fatalf("certificate for %q also covers %q", tc.sni, other)
				}
			}
		})
	}
}

func TestTLSProfile(t *testing.T) {
	f := newFixture(t, nil)
	cfg := f.tlsConfig("a.test")
	cfg.MaxVersion = tls.VersionTLS11
	if c, err := tls.Dial("tcp", f.httpsAddr, cfg); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	cfg = f.tlsConfig("a.test")
	cfg.MaxVersion = tls.VersionTLS12
	cfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
	if c, err := tls.Dial("tcp", f.httpsAddr, cfg); err == nil {
		c.Close()
		t.Fatal("a CBC suite was accepted")
	}
	cfg = f.tlsConfig("a.test")
	cfg.NextProtos = []string{"h2", "http/1.1"}
	c, err := tls.Dial("tcp", f.httpsAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN: %q, want h2", p)
	}
}

// TestHandshakeAlerts checks the alert a client receives: unrecognized_name
// (112) for names without a certificate, internal_error (80) when the store
// cannot be asked.
func TestHandshakeAlerts(t *testing.T) {
	f := newFixture(t, nil)
	f.certs.mu.Lock()
	f.certs.unavailable["down.test"] = true
	f.certs.mu.Unlock()
	for _, tc := range []struct{ name, sni, want string }{
		{"unknown", "nope.test", "unrecognized name"},
		{"traversal", "../../etc/passwd", "unrecognized name"},
		{"slash", "a/b", "unrecognized name"},
		{"label too long", strings.Repeat("a", 64) + ".test", "unrecognized name"},
		{"no SNI without default", "", "unrecognized name"},
		{"store unavailable", "down.test", "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true}
			c, err := tls.Dial("tcp", f.httpsAddr, cfg)
			if err == nil {
				c.Close()
				t.Fatal("handshake succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("handshake error %q, want alert %q", err, tc.want)
			}
		})
	}
}

func TestNoSNIDefaultCertificate(t *testing.T) {
	f := newFixture(t, nil)
	f.certs.mu.Lock()
	f.certs.def = f.certs.byName["a.test"]
	f.certs.mu.Unlock()

	c, err := tls.Dial("tcp", f.httpsAddr, &tls.Config{RootCAs: f.ca.Pool, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("no-SNI handshake with a default certificate: %v", err)
	}
	defer c.Close()
	if err := c.ConnectionState().PeerCertificates[0].VerifyHostname("a.test"); err != nil {
		t.Fatalf("no-SNI client got %v", err)
	}
	// Hosts the default certificate covers are served; others get 421.
	for host, want := range map[string]int{"a.test": 200, "b.test": 421} {
		io.WriteString(c, "GET /index.html HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("no SNI, Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// forcedCache is a ClientSessionCache that stores sessions under their real
// key but returns the session of key "a.test" for every lookup, the way a
// hostile client offers a.test's ticket on a connection naming b.test.
type forcedCache struct {
	mu       sync.Mutex
	sessions map[string]*tls.ClientSessionState
	force    string
}

func (c *forcedCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[c.force]
	return s, ok
}

func (c *forcedCache) Put(key string, s *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s != nil && strings.Contains(key, c.force) {
		c.sessions[c.force] = s
	}
}

func TestSessionNotResumedAcrossSNI(t *testing.T) {
	f := newFixture(t, nil)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			cache := &forcedCache{sessions: map[string]*tls.ClientSessionState{}, force: "a.test"}
			dial := func(sni string) tls.ConnectionState {
				t.Helper()
				cfg := &tls.Config{
					ServerName:         sni,
					InsecureSkipVerify: true, // the hostile client does not check
					ClientSessionCache: cache,
					MinVersion:         version,
					MaxVersion:         version,
				}
				c, err := tls.Dial("tcp", f.httpsAddr, cfg)
				if err != nil {
					t.Fatalf("dial %s: %v", sni, err)
				}
				defer c.Close()
				// A TLS 1.3 ticket arrives after the handshake: read a
				// response so the client processes it.
				io.WriteString(c, "GET /index.html HTTP/1.1\r\nHost: "+sni+"\r\nConnection: close\r\n\r\n")
				io.Copy(io.Discard, c)
				return c.ConnectionState()
			}
			if st := dial("a.test"); st.DidResume {
				t.Fatal("first connection resumed")
			}
			if st := dial("a.test"); !st.DidResume {
				t.Fatal("same-SNI resumption failed: the test would prove nothing")
			}
			st := dial("b.test")
			if st.DidResume {
				t.Fatal("a.test's session resumed on a connection for b.test")
			}
			if err := st.PeerCertificates[0].VerifyHostname("b.test"); err != nil {
				t.Fatalf("full handshake for b.test sent %v", err)
			}
		})
	}
}

func TestHandshakeTimeout(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.ReadHeaderTimeout = 50 * time.Millisecond })
	c, err := net.Dial("tcp", f.httpsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Send nothing: the server must give up on the handshake and close.
	// The client deadline only turns a hang into a failure.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
		t.Fatalf("read: %v; want the server to close the connection", err)
	}
}

// TestNoResumptionAfterCertificateRemoved: once a name has no certificate,
// a ticket issued before does not resume; the handshake fails like any
// other for an unknown name.
func TestNoResumptionAfterCertificateRemoved(t *testing.T) {
	f := newFixture(t, nil)
	cache := tls.NewLRUClientSessionCache(4)
	dial := func() (tls.ConnectionState, error) {
		cfg := f.tlsConfig("a.test")
		cfg.ClientSessionCache = cache
		c, err := tls.Dial("tcp", f.httpsAddr, cfg)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
		io.Copy(io.Discard, c)
		return c.ConnectionState(), nil
	}
	if _, err := dial(); err != nil {
		t.Fatal(err)
	}
	if st, err := dial(); err != nil || !st.DidResume {
		t.Fatalf("resumption before removal: %v %v", st.DidResume, err)
	}
	f.certs.mu.Lock()
	delete(f.certs.byName, "a.test")
	f.certs.mu.Unlock()
	st, err := dial()
	if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Fatalf("after removal: resumed=%v err=%v; want alert unrecognized name", st.DidResume, err)
	}
}
