package abuse

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2conn is a raw HTTP/2 client connection, for sending frames that
// net/http's client never sends in that order.
type h2conn struct {
	t  *testing.T
	c  *tls.Conn
	mu sync.Mutex // serializes frame writes: a Framer is not safe for concurrent use
	fr *http2.Framer
}

func dialH2(t *testing.T, addr, sni string, w *world) *h2conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		ServerName: sni, RootCAs: w.CA.Pool, NextProtos: []string{"h2"},
	})
	must(t, err)
	if got := c.ConnectionState().NegotiatedProtocol; got != "h2" {
		c.Close()
		t.Fatalf("negotiated %q, want h2", got)
	}
	_, err = io.WriteString(c, http2.ClientPreface)
	must(t, err)
	fr := http2.NewFramer(c, c)
	must(t, fr.WriteSettings())
	h := &h2conn{t: t, c: c, fr: fr}
	t.Cleanup(func() { c.Close() })
	// Answer the server's frames (settings ack) and drop the rest.
	go func() {
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
				h.mu.Lock()
				_ = fr.WriteSettingsAck()
				h.mu.Unlock()
			}
		}
	}()
	return h
}

// get opens stream id with a GET for path on authority.
func (h *h2conn) get(id uint32, authority, path string) error {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", authority}, {":path", path}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true})
}

// reset sends RST_STREAM(CANCEL) for stream id.
func (h *h2conn) reset(id uint32) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fr.WriteRSTStream(id, http2.ErrCodeCancel)
}

// TestH2ResetKillsCGI is HTTP-08: a stream reset cancels the request, and
// with it the script it started; a rapid-reset flood never runs more
// scripts than the tenant's cap, and leaves none behind.
func TestH2ResetKillsCGI(t *testing.T) {
	requireRoot(t)
	w := abuseWorld(t)
	const limit = 4
	p := start(t, w.config(settings{"cgi": {"max_per_tenant": strconv.Itoa(limit), "timeout": "60s"}}))

	t.Run("one reset", func(t *testing.T) {
		h := dialH2(t, p.HTTPSAddr, "a.test", w)
		must(t, h.get(1, "a.test", "/cgi-bin/sleep.cgi"))
		if !eventually(10*time.Second, func() bool { return len(uidProcs(uidA)) > 0 }) {
			t.Fatal("the script never started")
		}
		must(t, h.reset(1))
		// The connection stays open: only the reset can end the script.
		start := time.Now()
		if !eventually(10*time.Second, func() bool { return len(uidProcs(uidA)) == 0 }) {
			t.Fatalf("processes of the reset stream's script still alive: %v", uidProcs(uidA))
		}
		t.Logf("script gone %v after RST_STREAM", time.Since(start).Round(time.Millisecond))
	})

	t.Run("rapid reset", func(t *testing.T) {
		const conns, streams = 4, 250
		peak := 0
		for range conns {
			h := dialH2(t, p.HTTPSAddr, "a.test", w)
			for i := range streams {
				id := uint32(2*i + 1)
				if h.get(id, "a.test", "/cgi-bin/sleep.cgi") != nil {
					break // GOAWAY and close: the server's own defence
				}
				if h.reset(id) != nil {
					break
				}
				if i%25 == 0 {
					peak = max(peak, int(p.metric("massvhost_cgi_running")))
				}
			}
		}
		t.Logf("peak scripts running during %d×%d resets: %d (cap %d)", conns, streams, peak, limit)
		if peak > limit {
			t.Errorf("%d scripts ran at once, above the per-tenant cap %d", peak, limit)
		}
		// A script still in its launcher runs as root, so the requests are
		// counted too.
		if !eventually(15*time.Second, func() bool {
			return len(uidProcs(uidA)) == 0 && p.metric("massvhost_cgi_requests_in_flight") == 0
		}) {
			t.Errorf("scripts of reset streams still alive: %v", uidProcs(uidA))
			for _, pid := range uidProcs(uidA) {
				st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Logf("pid %d: %s | %q", pid, st, cmd)
			}
			t.Logf("cgi_running=%v in_flight=%v http_in_flight=%v", p.metric("massvhost_cgi_running"), p.metric("massvhost_cgi_requests_in_flight"), p.metric("massvhost_http_requests_in_flight"))
		}
		if code, _ := get(httpClient(p.HTTPAddr, 10*time.Second), "http://a.test/cgi-bin/hello.cgi"); code != 200 {
			t.Errorf("a.test hello.cgi after the flood: %d", code)
		}
	})
}
