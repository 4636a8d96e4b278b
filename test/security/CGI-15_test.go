// CGI-15: PATH_INFO, SCRIPT_NAME and PATH_TRANSLATED.
//
// Exploit: "/cgi-bin/env.cgi/../../etc/passwd" and its encoded forms,
// hoping for a PATH_INFO or PATH_TRANSLATED that names a file outside the
// tenant, and a plain "/cgi-bin/env.cgi/extra/info".
//
// Expectation: dot segments after the script are refused (400/404)
// without running it; a clean path info gives PATH_INFO "/extra/info",
// SCRIPT_NAME "/cgi-bin/env.cgi" and a PATH_TRANSLATED inside the docroot.
package security

import (
	"strings"
	"testing"
)

func TestCGI15PathInfo(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("env.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"PATH_INFO=$PATH_INFO\"\necho \"SCRIPT_NAME=$SCRIPT_NAME\"\necho \"PATH_TRANSLATED=$PATH_TRANSLATED\"\n")
	p := start(t, w.config(cfg{}))
	before := p.metric("massvhost_cgi_spawned_total")
	for _, path := range []string{"/cgi-bin/env.cgi/../../etc/passwd", "/cgi-bin/env.cgi/%2e%2e/%2e%2e/etc/passwd",
		"/cgi-bin/env.cgi/..%2f..%2fetc/passwd", "/cgi-bin/env.cgi/./x", "/cgi-bin/env.cgi/.hidden"} {
		r := p.get("a.test", path)
		if r.Status != 400 && r.Status != 404 || strings.Contains(r.Body, "PATH_INFO") {
			t.Errorf("%s: %d %q, want 400 or 404", path, r.Status, r.Body)
		}
	}
	if p.metric("massvhost_cgi_spawned_total") != before {
		t.Errorf("a script ran for a path info with dot segments")
	}
	r := p.get("a.test", "/cgi-bin/env.cgi/extra/info")
	want := "PATH_INFO=/extra/info\nSCRIPT_NAME=/cgi-bin/env.cgi\nPATH_TRANSLATED=" + a.DocRoot + "/extra/info\n"
	if r.Status != 200 || r.Body != want {
		t.Errorf("path info: %d %q, want %q", r.Status, r.Body, want)
	}
}
