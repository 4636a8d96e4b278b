// HTTP-03: request header size and count limits, and the CGI environment
// they feed.
//
// Exploit: a 70 KB header (server.max_header_bytes is 64 KiB), a 64 KiB
// Cookie and 500 small headers sent to a CGI script, a 100 KB header list
// over HTTP/2 (many cookie crumbs), and, with max_header_bytes raised to
// 1 MiB by the operator, a 200 KB header to a script: one environment
// string over the kernel's MAX_ARG_STRLEN (128 KiB) makes execve fail with
// E2BIG. Then header counts at the limit: 101 small fields, well within
// max_header_bytes, to a script and a file, over HTTP/1.1 and HTTP/2.
//
// Expectation: 431 for what exceeds the limit; what fits reaches the
// script (200) or is refused with a 4xx; never a 5xx, and the server stays
// up. More than server.max_header_fields (100, Apache's
// LimitRequestFields) fields → 431 with the connection closed and no
// script started; exactly 100 → 200.
package security

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHTTP03HeaderLimits(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	w.tenant("a.test").script("env.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv | wc -c\n")
	p := start(t, w.config(cfg{}))
	req := func(path, headers string) response {
		return p.raw("GET " + path + " HTTP/1.1\r\nHost: a.test\r\n" + headers + "Connection: close\r\n\r\n")
	}
	if r := req("/", "X-Big: "+strings.Repeat("a", 70000)+"\r\n"); r.Status != 431 {
		t.Errorf("70 KB header: %d, want 431", r.Status)
	}
	if r := req("/cgi-bin/env.cgi", "Cookie: "+strings.Repeat("c", 80000)+"\r\n"); r.Status != 431 {
		t.Errorf("80 KB Cookie: %d, want 431", r.Status)
	}
	r := req("/cgi-bin/env.cgi", "Cookie: k="+strings.Repeat("c", 64<<10-2)+"\r\n")
	if r.Status != 200 && r.Status != 431 {
		t.Errorf("64 KiB Cookie to a script: %d %q, want 200 or 431", r.Status, r.Body)
	}
	var many strings.Builder
	for i := range 500 {
		fmt.Fprintf(&many, "X-H%d: v\r\n", i)
	}
	if r := req("/cgi-bin/env.cgi", many.String()); r.Status != 431 {
		t.Errorf("500 headers to a script: %d, want 431 (server.max_header_fields)", r.Status)
	}

	// HTTP/2: the header list limit is advertised and enforced.
	c := p.client(w, "a.test", true)
	h2 := func(n int) (int, error) {
		hr, _ := http.NewRequest("GET", "https://a.test/cgi-bin/env.cgi", nil)
		for i := range n {
			hr.Header.Add("Cookie", fmt.Sprintf("k%d=%s", i, strings.Repeat("v", 90)))
		}
		resp, err := c.Do(hr)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if status, err := h2(1000); err == nil && status != 431 {
		t.Errorf("h2 with a 100 KB header list: %d, want 431 or a refused stream", status)
	}
	if status, err := h2(10); err != nil || status != 200 {
		t.Errorf("h2 after the oversized list: %d %v", status, err)
	}

	// An operator raised the limit: the script environment must still not
	// turn into an execve failure.
	p = start(t, w.config(cfg{Server: "  max_header_bytes: 1048576\n"}))
	r = p.raw("GET /cgi-bin/env.cgi HTTP/1.1\r\nHost: a.test\r\nX-Huge: " + strings.Repeat("h", 200<<10) + "\r\nConnection: close\r\n\r\n")
	if r.Status >= 500 || r.Status == 0 {
		t.Errorf("200 KB header to a script (max_header_bytes 1 MiB): %d %q, want 200 or a 4xx, not an execve failure", r.Status, r.Body)
	}
}

// TestHTTP03HeaderFieldCount sends exactly server.max_header_fields (100)
// header fields and one more. Fields are counted as lines, Host included.
func TestHTTP03HeaderFieldCount(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	w.tenant("a.test").script("env.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'\n")
	p := start(t, w.config(cfg{}))

	// fields returns n header lines: Host, Connection and n-2 "X-Fn: v".
	fields := func(n int) string {
		var b strings.Builder
		b.WriteString("Host: a.test\r\nConnection: keep-alive\r\n")
		for i := range n - 2 {
			fmt.Fprintf(&b, "X-F%d: v\r\n", i)
		}
		return b.String()
	}
	spawned := p.metric("massvhost_cgi_spawned_total")
	for _, tc := range []struct {
		path string
		n    int
		want int
	}{
		{"/cgi-bin/env.cgi", 100, 200},
		{"/cgi-bin/env.cgi", 101, 431},
		{"/index.html", 100, 200},
		{"/index.html", 101, 431},
		{"/cgi-bin/env.cgi", 2000, 431},
	} {
		conn, err := net.DialTimeout("tcp", p.HTTPAddr, 5*time.Second)
		must(t, err)
		r := exchange(t, conn, "GET "+tc.path+" HTTP/1.1\r\n"+fields(tc.n)+"\r\n")
		if r.Status != tc.want {
			t.Errorf("%s with %d header fields: %d, want %d", tc.path, tc.n, r.Status, tc.want)
		}
		if tc.want == 431 {
			// The client asked for keep-alive; a 431 closes anyway.
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("%s with %d header fields: connection not closed after 431 (%d, %v)", tc.path, tc.n, n, err)
			}
		}
		conn.Close()
	}
	if d := p.metric("massvhost_cgi_spawned_total") - spawned; d != 1 {
		t.Errorf("%v scripts started, want 1: a request over the field limit must not reach the script", d)
	}

	// HTTP/2: :authority counts as Host; User-Agent and Accept-Encoding are
	// set so the client adds nothing.
	c := p.client(w, "a.test", true)
	for _, tc := range []struct{ n, want int }{{100, 200}, {101, 431}} {
		hr, _ := http.NewRequest("GET", "https://a.test/cgi-bin/env.cgi", nil)
		hr.Header.Set("User-Agent", "HTTP-03")
		hr.Header.Set("Accept-Encoding", "identity")
		for i := range tc.n - 3 {
			hr.Header.Set(fmt.Sprintf("X-F%d", i), "v")
		}
		resp, err := c.Do(hr)
		if err != nil {
			t.Errorf("h2 with %d header fields: %v", tc.n, err)
			continue
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != tc.want {
			t.Errorf("h2 with %d header fields: %s %d, want HTTP/2 %d", tc.n, resp.Proto, resp.StatusCode, tc.want)
		}
	}
	if d := p.metric("massvhost_cgi_spawned_total") - spawned; d != 2 {
		t.Errorf("%v scripts started in all, want 2 (one per protocol, within the limit)", d)
	}
}
