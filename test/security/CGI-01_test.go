// CGI-01: script path confinement (traversal to an interpreter).
//
// Exploit: Apache CVE-2021-41773/42013 — POST "echo;id" to
// /cgi-bin/.%2e/.%2e/bin/sh and its variants (plain "..", %2e, double
// encoding, encoded slashes, backslashes, NUL, case), sent as raw bytes so
// that no client normalizes the path. net/http hands a handler the decoded
// path uncleaned, so filepath.Join(cgiBin, "../../bin/sh") would be /bin/sh.
//
// Expectation: no form runs anything (the server's spawn counter does not
// move) and no response carries `uid=`; a real script still runs (the
// counter moves by one), proving the counter is the right witness.
package security

import (
	"strings"
	"testing"
)

func TestCGI01TraversalToInterpreter(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("hello.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nhello\\n'\n")
	p := start(t, w.config(cfg{LogLevel: "debug"}))

	paths := []string{
		"/cgi-bin/../../../../bin/sh",
		"/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh",
		"/cgi-bin/%2e%2e/%2e%2e/%2e%2e/%2e%2e/bin/sh",
		"/cgi-bin/%%32%65%%32%65/%%32%65%%32%65/bin/sh",
		"/cgi-bin/..%2f..%2f..%2f..%2fbin/sh",
		"/cgi-bin/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fbin%2fsh",
		`/cgi-bin/..\..\..\..\bin\sh`,
		"/cgi-bin/x.cgi%00.txt",
		"/cgi-bin//x.cgi",
		"/cgi-bin/./x.cgi",
		"/CGI-BIN/x.cgi",
		"/cgi-bin/hello.cgi/../../../../bin/sh",
		"/cgi-bin/%2e%2e/%2e%2e/%2e%2e/%2e%2e/usr/bin/id",
		"/..%2f..%2f..%2f..%2fbin/sh",
		"/.%2e/.%2e/.%2e/.%2e/bin/sh",
	}
	before := p.metric("massvhost_cgi_spawned_total")
	for _, path := range paths {
		r := p.raw("POST " + path + " HTTP/1.1\r\nHost: a.test\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nConnection: close\r\n\r\necho;id")
		if strings.Contains(r.Body, "uid=") {
			t.Errorf("%s: %d and the body holds id output: %q", path, r.Status, r.Body)
		}
		if r.Status == 200 || r.Status >= 500 {
			t.Errorf("%s: status %d, want 400/403/404/405", path, r.Status)
		}
	}
	if after := p.metric("massvhost_cgi_spawned_total"); after != before {
		t.Errorf("spawn counter moved from %v to %v: a traversal form ran something", before, after)
	}

	// Control: the tenant's own script runs and is counted.
	r := p.raw("GET /cgi-bin/hello.cgi HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	if r.Status != 200 || r.Body != "hello\n" {
		t.Fatalf("control script: %d %q", r.Status, r.Body)
	}
	if after := p.metric("massvhost_cgi_spawned_total"); after != before+1 {
		t.Errorf("spawn counter %v after one script, want %v", after, before+1)
	}
}
