// HTTP-09: other HTTP/2 floods and unintended h2c.
//
// Exploit: the HTTP/2 preface and an "Upgrade: h2c" request on the plain
// port (h2c is not enabled); over TLS, 100,000 PING frames and then
// 100,000 SETTINGS frames from a client that never reads, so the
// server's acknowledgements pile up.
//
// Expectation: the plain port does not speak HTTP/2 (no 101, no
// SETTINGS); a flood the server cannot acknowledge ends with it closing
// the connection (Go's maxQueuedControlFrames, STD), and the server keeps
// serving other clients.
package security

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestHTTP09H2Floods(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	p := start(t, w.config(cfg{}))

	r := p.raw("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	if r.Status == 101 {
		t.Errorf("plain port upgraded to h2c")
	}
	conn, err := net.Dial("tcp", p.HTTPAddr)
	must(t, err)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, http2.ClientPreface)
	b, _ := io.ReadAll(conn)
	conn.Close()
	if !strings.HasPrefix(string(b), "HTTP/1.1 ") {
		t.Errorf("plain port answered the HTTP/2 preface with %q", tail(string(b), 40))
	}

	for _, kind := range []string{"PING", "SETTINGS"} {
		raw, err := net.Dial("tcp", p.HTTPSAddr)
		must(t, err)
		raw.(*net.TCPConn).SetReadBuffer(4096)
		tc := tls.Client(raw, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		tc.SetDeadline(time.Now().Add(60 * time.Second))
		must(t, tc.Handshake())
		io.WriteString(tc, http2.ClientPreface)
		fr := http2.NewFramer(tc, nil)
		fr.WriteSettings()
		closed := false
		for i := range 100000 {
			var err error
			if kind == "PING" {
				err = fr.WritePing(false, [8]byte{byte(i)})
			} else {
				err = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384})
			}
			if err != nil {
				closed = true
				break
			}
		}
		// Either the server closed the connection (its queue of
		// acknowledgements hit maxQueuedControlFrames) or it kept up with
		// the flood; what it must not do is stop serving.
		t.Logf("%s flood: connection closed by the server: %t", kind, closed)
		tc.Close()
	}
	if r := p.get("a.test", "/"); r.Status != 200 {
		t.Errorf("server after the floods: %d", r.Status)
	}
}
