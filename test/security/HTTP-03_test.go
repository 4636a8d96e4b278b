// HTTP-03: request header size and count limits, and the CGI environment
// they feed.
//
// Exploit: a 70 KB header (server.max_header_bytes is 64 KiB), a 64 KiB
// Cookie and 500 small headers sent to a CGI script, a 100 KB header list
// over HTTP/2 (many cookie crumbs), and, with max_header_bytes raised to
// 1 MiB by the operator, a 200 KB header to a script: one environment
// string over the kernel's MAX_ARG_STRLEN (128 KiB) makes execve fail with
// E2BIG.
//
// Expectation: 431 for what exceeds the limit; what fits reaches the
// script (200) or is refused with a 4xx; never a 5xx, and the server stays
// up.
package security

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
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
	if r := req("/cgi-bin/env.cgi", many.String()); r.Status >= 500 || r.Status == 0 {
		t.Errorf("500 headers to a script: %d, want 200 or a 4xx", r.Status)
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
