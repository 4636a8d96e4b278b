// TLS-09: handshake resource limits.
//
// Exploit: 50 TCP connections to the TLS port that send nothing, and 50
// that send half a ClientHello, then wait.
//
// Expectation: the server closes every one of them at its handshake
// deadline (server.read_header_timeout, 1s here; bounded poll), and
// legitimate handshakes succeed meanwhile.
package security

import (
	"net"
	"sync"
	"testing"
	"time"
)

func TestTLS09HandshakeTimeout(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	p := start(t, w.config(cfg{Server: "  read_header_timeout: 1s\n"}))
	// The first bytes of a TLS 1.2 ClientHello record, cut short.
	partial := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			conn, err := net.Dial("tcp", p.HTTPSAddr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			if i%2 == 1 {
				conn.Write(partial)
			}
			conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			if _, err := conn.Read(make([]byte, 1)); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("connection %d still open after 15s", i)
				}
			}
		})
	}
	c, err := p.dialTLS("a.test", nil)
	if err != nil {
		t.Errorf("legitimate handshake during the stall: %v", err)
	} else {
		c.Close()
	}
	wg.Wait()
}
