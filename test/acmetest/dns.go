package acmetest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a tiny authoritative DNS server on a loopback TCP port that
// answers every A question with 127.0.0.1 and every other question with
// no records. Pebble's validation authority resolves names through it
// (Pebble's -dnsserver flag, which speaks DNS over TCP), so that any test
// name ("a.example.test") leads Pebble back to the test's own listeners and
// challenges are really validated.
type DNS struct {
	// Addr is "127.0.0.1:port".
	Addr string

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// StartDNS starts a DNS server; it is stopped when the test ends.
func StartDNS(tb testing.TB) *DNS {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("acmetest: dns: %v", err)
	}
	d := &DNS{Addr: ln.Addr().String(), ln: ln, conns: make(map[net.Conn]struct{})}
	d.wg.Add(1)
	go d.serve()
	tb.Cleanup(d.Close)
	return d
}

// Close stops the server and waits for its goroutines.
func (d *DNS) Close() {
	_ = d.ln.Close()
	d.mu.Lock()
	for c := range d.conns {
		_ = c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *DNS) serve() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		d.conns[c] = struct{}{}
		d.mu.Unlock()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer func() {
				d.mu.Lock()
				delete(d.conns, c)
				d.mu.Unlock()
				_ = c.Close()
			}()
			_ = handleDNSConn(c)
		}()
	}
}

// handleDNSConn answers length-prefixed queries on c until it closes.
func handleDNSConn(c net.Conn) error {
	for {
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return err
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return err
		}
		q := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return err
		}
		resp, err := answer(q)
		if err != nil {
			return err
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return err
		}
	}
}

// answer builds the response to one query message.
func answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	questions, err := p.AllQuestions()
	if err != nil {
		return nil, err
	}
	if len(questions) != 1 {
		return nil, errors.New("acmetest: dns: want exactly one question")
	}
	q := questions[0]
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{
		ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired,
		RCode: dnsmessage.RCodeSuccess,
	})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 0}
		if err := b.AResource(rh, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
