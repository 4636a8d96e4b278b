package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Socket activation: the listening sockets come from outside (systemd;
// here the test passes them the same way, descriptors 3 and 4 with
// LISTEN_FDS and LISTEN_FDNAMES), so a restart refuses no connection.
// Requests sent while no server runs wait in the sockets' backlog, which
// the test holds open as systemd would, and the next process answers them.
func TestSocketActivation(t *testing.T) {
	w := newWorld(t, []string{"a.test"}, "a.test")
	var files []*os.File
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		f, err := ln.(*net.TCPListener).File()
		must(t, err)
		ln.Close() // f is a duplicate: the socket stays open and listening
		t.Cleanup(func() { f.Close() })
		files, addrs = append(files, f), append(addrs, ln.Addr().String())
	}
	cfg := strings.Replace(w.config(""), "listen:\n  http: \"127.0.0.1:0\"\n  https: \"127.0.0.1:0\"\n",
		"listen:\n  http: \"systemd:web\"\n  https: \"systemd:tls\"\n", 1)
	cfgPath := filepath.Join(t.TempDir(), "massvhost.yaml")
	must(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	opts := procOptions{args: []string{"--config", cfgPath}, sockets: files, socketNames: []string{"web", "tls"}}

	p := startServe(t, opts)
	if p.HTTPAddr != addrs[0] || p.HTTPSAddr != addrs[1] {
		t.Fatalf("serving %s and %s, want the passed sockets %v", p.HTTPAddr, p.HTTPSAddr, addrs)
	}
	get := func() error {
		for _, c := range []struct {
			url    string
			client interface {
				Get(string) (*http.Response, error)
			}
		}{
			{"http://a.test/", httpClient(addrs[0], 1)},
			{"https://a.test/", tlsClient(addrs[1], "a.test", w.CA.Pool, false)},
		} {
			resp, err := c.client.Get(c.url)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "tenant a.test\n" {
				return fmt.Errorf("%s: %d %q", c.url, resp.StatusCode, body)
			}
		}
		return nil
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}

	// Stop the server; send requests while none runs; start the next one.
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("massvhost did not stop on SIGTERM")
	}
	const waiting = 4
	results := make(chan error, waiting)
	for range waiting {
		go func() { results <- get() }()
	}
	time.Sleep(300 * time.Millisecond) // the connections now wait in the backlog
	p2 := startServe(t, opts)
	for range waiting {
		select {
		case err := <-results:
			if err != nil {
				t.Errorf("a request sent during the restart: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a request sent during the restart got no answer")
		}
	}
	if p2.HTTPSAddr != addrs[1] {
		t.Errorf("after the restart serving %s, want %s", p2.HTTPSAddr, addrs[1])
	}

	// A reload that moves plain HTTP to an address of its own gives the
	// passed socket up; one that moves it back is refused, naming the
	// socket, and the running configuration goes on serving.
	moved := strings.Replace(cfg, `http: "systemd:web"`, `http: "127.0.0.1:0"`, 1)
	must(t, os.WriteFile(cfgPath, []byte(moved), 0o644))
	p2.signal(syscall.SIGHUP)
	if !p2.waitOutput("configuration reloaded", 10*time.Second) {
		t.Fatalf("the reload to a plain address did not take\n%s", p2.Output())
	}
	must(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	p2.signal(syscall.SIGHUP)
	if !p2.waitOutput("reload failed", 10*time.Second) || !strings.Contains(p2.Output(), `no socket named \"web\"`) {
		t.Fatalf("the reload back to systemd:web was not refused by name\n%s", p2.Output())
	}
	resp, err := tlsClient(addrs[1], "a.test", w.CA.Pool, false).Get("https://a.test/")
	if err != nil {
		t.Fatalf("after the refused reload: %v", err)
	}
	resp.Body.Close()
}
