package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMaxHeaderFields sends exactly the limit and one more, over HTTP/1.1
// and HTTP/2, to a static file and to a script: one more is 431 before the
// CGI runner is reached, and the HTTP/1.1 connection is closed.
func TestMaxHeaderFields(t *testing.T) {
	f := newFixture(t, nil)
	// fields returns n-2 "X-N" lines: with Host and Connection, n fields.
	fields := func(n int) string {
		var b strings.Builder
		for i := range n - 2 {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		n    int
		want int
	}{{DefaultMaxHeaderFields, 200}, {DefaultMaxHeaderFields + 1, 431}, {1000, 431}} {
		for _, path := range []string{"/index.html", "/cgi-bin/env.cgi"} {
			t.Run(fmt.Sprintf("HTTP/1.1 %d fields %s", tc.n, path), func(t *testing.T) {
				c, err := net.Dial("tcp", f.httpAddr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				// Keep-alive requested: a 431 must close anyway.
				io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive\r\n"+fields(tc.n)+"\r\n")
				resp, body := readOne(t, c)
				if resp.StatusCode != tc.want {
					t.Fatalf("%d %q, want %d", resp.StatusCode, body, tc.want)
				}
				if tc.want == 431 {
					if !resp.Close {
						t.Error("431 without Connection: close")
					}
					if n, err := c.Read(make([]byte, 1)); err == nil {
						t.Errorf("connection still open after 431 (read %d bytes)", n)
					}
				}
			})
		}
	}
	f.cgi.mu.Lock()
	calls := slices.Clone(f.cgi.calls)
	f.cgi.mu.Unlock()
	if len(calls) != 1 {
		t.Errorf("CGI runner calls %v, want exactly the one request within the limit", calls)
	}

	h2 := f.client(true)
	for _, tc := range []struct{ n, want int }{{100, 200}, {101, 431}} {
		req, _ := http.NewRequest("GET", "https://a.test/index.html", nil)
		// :authority, User-Agent, Accept-Encoding and n-3 more.
		req.Header.Set("User-Agent", "test")
		req.Header.Set("Accept-Encoding", "identity")
		for i := range tc.n - 3 {
			req.Header.Set(fmt.Sprintf("X-H%d", i), "v")
		}
		resp, err := h2.Do(req)
		if err != nil {
			t.Fatalf("HTTP/2 %d fields: %v", tc.n, err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != tc.want {
			t.Errorf("HTTP/2 %d fields: %s %d, want HTTP/2 %d", tc.n, resp.Proto, resp.StatusCode, tc.want)
		}
	}
}

func TestMaxHeaderFieldsOption(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxHeaderFields = 5 })
	c := f.client(false)
	// Host, User-Agent, Accept-Encoding (added by the client) and two more.
	if resp, _ := f.get(c, "GET", "http://a.test/", "X-A", "1", "X-B", "2"); resp.StatusCode != http.StatusOK {
		t.Errorf("5 fields with MaxHeaderFields 5: %d, want 200", resp.StatusCode)
	}
	if resp, _ := f.get(c, "GET", "http://a.test/", "X-A", "1", "X-B", "2", "X-C", "3"); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("6 fields with MaxHeaderFields 5: %d, want 431", resp.StatusCode)
	}
}

func readOne(t *testing.T, c net.Conn) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
