// HTTP-07: HTTP/2 CONTINUATION flood (CVE-2023-45288 in Go,
// CVE-2024-27316 in Apache).
//
// Exploit: over TLS with ALPN h2, a HEADERS frame without END_HEADERS
// followed by an endless stream of 16 KB CONTINUATION frames of HPACK
// bytes (literal headers with Huffman-coded values, which cost the most to
// decode), written with golang.org/x/net/http2.Framer while another
// goroutine reads what the server sends.
//
// Expectation: the server ends the connection (GOAWAY or close) after a
// bounded amount — within about 1 MiB of header block, far from the 64 MiB
// the client is willing to send — and keeps serving other clients.
package security

import (
	"bytes"
	"crypto/tls"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestHTTP07ContinuationFlood(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	p := start(t, w.config(cfg{}))
	conn, err := p.dialTLS("a.test", &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	must2(io.WriteString(conn, http2.ClientPreface))(t)
	fr := http2.NewFramer(conn, conn)
	must(t, fr.WriteSettings())

	var first bytes.Buffer
	enc := hpack.NewEncoder(&first)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "a.test"}, {Name: ":path", Value: "/"}} {
		enc.WriteField(f)
	}
	// A block of never-indexed literal fields with Huffman-coded values.
	var block bytes.Buffer
	henc := hpack.NewEncoder(&block)
	for block.Len() < 16<<10-64 {
		henc.WriteField(hpack.HeaderField{Name: "x-flood", Value: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Sensitive: true})
	}
	chunk := block.Bytes()

	var ended atomic.Bool
	var goaway atomic.Bool
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		rfr := http2.NewFramer(io.Discard, conn)
		for {
			f, err := rfr.ReadFrame()
			if err != nil {
				ended.Store(true)
				return
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				goaway.Store(true)
				ended.Store(true)
			}
		}
	}()
	must(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first.Bytes(), EndStream: true, EndHeaders: false}))
	sent := 0
	const limit = 64 << 20
	for sent < limit && !ended.Load() {
		if err := fr.WriteContinuation(1, false, chunk); err != nil {
			break
		}
		sent += len(chunk)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	<-readDone
	t.Logf("sent %d KiB of CONTINUATION before the server ended the connection (GOAWAY: %t)", sent>>10, goaway.Load())
	if !ended.Load() || sent >= limit {
		t.Fatalf("the server accepted %d MiB of CONTINUATION frames without ending the connection", sent>>20)
	}
	// Socket buffers let the client write past the point where the
	// server stopped reading; 4 MiB leaves room for them.
	if sent > 4<<20 {
		t.Errorf("server read %d KiB of one header block before ending the connection, want about 1 MiB at most", sent>>10)
	}
	if r := p.get("a.test", "/"); r.Status != 200 {
		t.Errorf("server after the flood: %d", r.Status)
	}
}
