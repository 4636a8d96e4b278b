package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSwapRebindsListeners checks that a new address is bound and serving
// before the old socket closes, that a request in flight on the old
// address completes, and that an address that cannot be bound changes
// nothing.
func TestSwapRebindsListeners(t *testing.T) {
	f := newFixture(t, nil)
	oldHTTP := f.httpAddr

	// A slow request on the old listener, in flight across the Swap.
	release := make(chan struct{})
	entered := make(chan struct{})
	f.cgi.mu.Lock()
	f.cgi.serve = func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "slow done")
	}
	f.cgi.mu.Unlock()
	slow := make(chan string, 1)
	go func() {
		_, body := getStatus(t, "http://"+oldHTTP+"/cgi-bin/slow.cgi", "a.test")
		slow <- body
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("slow request did not reach the CGI runner")
	}

	// A busy address: the Swap must fail and keep everything.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	next := f.opts
	next.HTTPAddr = busy.Addr().String()
	if err := f.srv.Swap(next); err == nil || !strings.Contains(err.Error(), "listen http") {
		t.Fatalf("Swap to a busy address: err = %v, want a listen error", err)
	}
	if h, _ := f.srv.Addrs(); h.String() != oldHTTP {
		t.Fatalf("after a failed Swap the address is %s, want %s", h, oldHTTP)
	}

	// 127.0.0.2 is loopback too, and a different address from the old one
	// even with port 0.
	next.HTTPAddr = "127.0.0.2:0"
	if err := f.srv.Swap(next); err != nil {
		t.Fatalf("Swap to a new address: %v", err)
	}
	h, _ := f.srv.Addrs()
	if h == nil || !strings.HasPrefix(h.String(), "127.0.0.2:") {
		t.Fatalf("Addrs after Swap: %v", h)
	}
	status, body := getStatus(t, "http://"+h.String()+"/file.txt", "a.test")
	if status != http.StatusOK || body != "A-FILE" {
		t.Fatalf("new listener: %d %q", status, body)
	}
	if c, err := net.DialTimeout("tcp", oldHTTP, time.Second); err == nil {
		c.Close()
		t.Fatal("old address still accepts connections after the Swap")
	}
	close(release)
	if got := <-slow; got != "slow done" {
		t.Fatalf("request in flight on the old listener: %q", got)
	}
}

// TestSwapNewServerParams checks that changed timeouts are applied by a
// new http.Server on the same socket, without refusing a connection.
func TestSwapNewServerParams(t *testing.T) {
	f := newFixture(t, nil)
	next := f.opts
	next.IdleTimeout = 7 * time.Second
	next.MaxHeaderBytes = 4096
	if err := f.srv.Swap(next); err != nil {
		t.Fatal(err)
	}
	f.srv.lifeMu.Lock()
	p := f.srv.ports[portHTTP]
	f.srv.lifeMu.Unlock()
	if p.srv.IdleTimeout != 7*time.Second || p.addr != f.opts.HTTPAddr {
		t.Fatalf("http.Server after Swap: IdleTimeout %v addr %s", p.srv.IdleTimeout, p.addr)
	}
	if h, _ := f.srv.Addrs(); h.String() != f.httpAddr {
		t.Fatalf("address moved: %s, want %s", h, f.httpAddr)
	}
	if p.srv.MaxHeaderBytes != 4096 {
		t.Fatalf("MaxHeaderBytes after Swap: %d", p.srv.MaxHeaderBytes)
	}
	// The same address keeps serving, now through the new http.Server.
	if status, body := getStatus(t, "http://"+f.httpAddr+"/file.txt", "a.test"); status != http.StatusOK || body != "A-FILE" {
		t.Fatalf("after Swap: %d %q", status, body)
	}
}

// TestSwapRetiredDrains checks that the channel from SwapRetired closes
// only after the last request using the old options has finished.
func TestSwapRetiredDrains(t *testing.T) {
	f := newFixture(t, nil)
	release := make(chan struct{})
	entered := make(chan struct{})
	f.cgi.mu.Lock()
	f.cgi.serve = func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}
	f.cgi.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		getStatus(t, "http://"+f.httpAddr+"/cgi-bin/x.cgi", "a.test")
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("request did not reach the CGI runner")
	}
	drained, err := f.srv.SwapRetired(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-drained:
		t.Fatal("drained while a request still runs")
	default:
	}
	close(release)
	<-done
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("not drained after the request finished")
	}
	// A Swap with nothing in flight drains at once.
	drained, err = f.srv.SwapRetired(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("idle state not drained")
	}
}

func getStatus(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	req.Host = host
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
