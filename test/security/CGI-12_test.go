// CGI-12: invalid Status values from a script.
//
// Exploit: scripts answer "Status: 099", "-10", "1000", "abc", "101
// Switching Protocols", "103", "000", "20", " 200", "2000" and a Status
// twice. net/http/cgi passes 099 and -10 to WriteHeader, which panics
// (verified): the client sees a dropped connection and the log a stack.
//
// Expectation: 502 for every one of them, the server log has no panic,
// the panic counter stays 0, and a valid unusual status (299) passes.
package security

import (
	"fmt"
	"strings"
	"testing"
)

func TestCGI12InvalidStatus(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	bad := []string{"099", "-10", "1000", "abc", "101 Switching Protocols", "103 Early Hints", "000", "20", " 200x", "2000", "600", "1e2", "+200"}
	for i, status := range bad {
		a.script(fmt.Sprintf("status%d.cgi", i), fmt.Sprintf("printf 'Status: %s\\r\\nContent-Type: text/plain\\r\\n\\r\\nbody\\n'\n", status))
	}
	a.script("twice.cgi", "printf 'Status: 200\\r\\nStatus: 404\\r\\nContent-Type: text/plain\\r\\n\\r\\nbody\\n'\n")
	a.script("ok299.cgi", "printf 'Status: 299 Fine\\r\\nContent-Type: text/plain\\r\\n\\r\\nbody\\n'\n")
	p := start(t, w.config(cfg{}))

	for i, status := range bad {
		r := p.get("a.test", fmt.Sprintf("/cgi-bin/status%d.cgi", i))
		if r.Status != 502 {
			t.Errorf("Status: %q: %d %q, want 502", status, r.Status, r.Body)
		}
	}
	if r := p.get("a.test", "/cgi-bin/twice.cgi"); r.Status != 502 {
		t.Errorf("Status twice: %d, want 502", r.Status)
	}
	if r := p.get("a.test", "/cgi-bin/ok299.cgi"); r.Status != 299 || r.Body != "body\n" {
		t.Errorf("Status 299: %d %q", r.Status, r.Body)
	}
	// Over HTTP/2 too, where a bad WriteHeader would reset the stream.
	c := p.client(w, "a.test", true)
	resp, err := c.Get("https://a.test/cgi-bin/status0.cgi")
	if err != nil {
		t.Fatalf("h2 Status 099: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 || resp.ProtoMajor != 2 {
		t.Errorf("h2 Status 099: %d over %s, want 502 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	if n := p.metric("massvhost_http_panics_total"); n != 0 {
		t.Errorf("%v handler panics", n)
	}
	if out := p.Output(); strings.Contains(out, "panic") {
		t.Errorf("server log mentions a panic")
	}
}
