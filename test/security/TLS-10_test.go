// TLS-10: a session (ticket) from one tenant's name resumed under another's.
//
// Exploit: all tenants share one tls.Config and so one ticket key. A client
// completes a handshake with SNI a.test, keeps the session, and offers it
// on a new connection whose SNI is b.test (a client session cache with its
// key forced to a.test's entry), over TLS 1.2 (session ticket) and TLS 1.3
// (PSK). Verified on go1.26.8: without binding, the server resumes, and
// the connection to "b.test" runs on a session authenticated as a.test.
//
// Expectation: no resumption across names (a full handshake with b.test's
// certificate instead); resumption under the same name still works (the
// control that proves the client really offered the session).
package security

import (
	"crypto/tls"
	"sync"
	"testing"
)

// oneSession is a ClientSessionCache that stores the last session under
// any key and offers it for every key.
type oneSession struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (o *oneSession) Get(string) (*tls.ClientSessionState, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cs, o.cs != nil
}

func (o *oneSession) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cs = cs
}

func TestTLS10CrossTenantResumption(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	p := start(t, w.config(cfg{}))
	for _, v := range []struct {
		name    string
		version uint16
	}{{"TLS 1.2", tls.VersionTLS12}, {"TLS 1.3", tls.VersionTLS13}} {
		t.Run(v.name, func(t *testing.T) {
			cache := &oneSession{}
			// InsecureSkipVerify: Go's client otherwise refuses to offer a
			// session whose certificate does not cover the new name; a
			// hostile client has no such scruple.
			conf := &tls.Config{InsecureSkipVerify: true, ClientSessionCache: cache,
				MinVersion: v.version, MaxVersion: v.version, NextProtos: []string{"http/1.1"}}
			connect := func(sni string) (resumed bool, dns []string) {
				c, err := p.dialTLS(sni, conf)
				if err != nil {
					t.Fatalf("%s: %v", sni, err)
				}
				defer c.Close()
				// A request/response lets the TLS 1.3 client read the
				// NewSessionTicket message.
				r := exchange(t, c, "GET / HTTP/1.1\r\nHost: "+sni+"\r\nConnection: close\r\n\r\n")
				if r.Status != 200 {
					t.Fatalf("%s: %d", sni, r.Status)
				}
				return c.ConnectionState().DidResume, leafOf(c).DNSNames
			}
			connect("a.test")
			if resumed, _ := connect("a.test"); !resumed {
				t.Fatal("control: the a.test session was not resumed under a.test; the test cannot see resumption")
			}
			resumed, dns := connect("b.test")
			if resumed {
				t.Errorf("a.test's session was resumed on a connection for b.test")
			}
			if len(dns) != 1 || dns[0] != "b.test" {
				t.Errorf("b.test connection presented %v", dns)
			}
		})
	}
}
