// CGI-04: Shellshock-style values in the environment (CVE-2014-6271).
//
// Exploit: "User-Agent: () { :;}; /bin/touch <marker>" and the same in
// a Cookie and in the query string, sent to a bash script and to a plain
// sh script.
//
// Expectation: the server never runs a shell of its own with request data
// (the marker is never created by the server); the value reaches the
// script verbatim, as RFC 3875 requires. Whether the system's bash is
// patched is the operator's duty; the bash case runs only if bash exists.
package security

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCGI04Shellshock(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("sh.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nua=%s\\n' \"$HTTP_USER_AGENT\"\n")
	if _, err := os.Stat("/bin/bash"); err == nil {
		a.write(a.CGIBin, "bash.cgi", "#!/bin/bash\nprintf 'Content-Type: text/plain\\r\\n\\r\\nua=%s\\n' \"$HTTP_USER_AGENT\"\n", 0o755)
	}
	marker := filepath.Join(w.Dir, "shellshocked")
	payload := "() { :;}; /bin/touch " + marker
	p := start(t, w.config(cfg{}))
	for _, script := range []string{"sh.cgi", "bash.cgi"} {
		if _, err := os.Stat(filepath.Join(a.CGIBin, script)); err != nil {
			continue
		}
		r := p.raw("GET /cgi-bin/" + script + "?x=" + strings.ReplaceAll(payload, " ", "%20") + " HTTP/1.1\r\nHost: a.test\r\nUser-Agent: " +
			payload + "\r\nCookie: c=" + payload + "\r\nConnection: close\r\n\r\n")
		if r.Status != 200 || r.Body != "ua="+payload+"\n" {
			t.Errorf("%s: %d %q, want the value verbatim", script, r.Status, r.Body)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the Shellshock payload ran: %s exists (the system bash is vulnerable, or a shell ran request data)", marker)
	}
}
