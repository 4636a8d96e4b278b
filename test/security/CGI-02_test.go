// CGI-02: only scripts execute; other executable files in the docroot are
// data.
//
// Exploit: a tenant uploads executable (0755) files with interpreter lines
// into htdocs — x.sh, x.pl, x.php, x.py and one without an extension — and
// requests them, hoping the server runs them.
//
// Expectation: each is served as its own bytes (the source, never the
// output); only the configured CGI extension (.cgi) runs in the docroot,
// as Apache's AddHandler cgi-script does, and /cgi-bin/.
package security

import (
	"strings"
	"testing"
)

func TestCGI02OnlyScriptsExecute(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	const src = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho EXECUTED\n"
	for _, name := range []string{"x.sh", "x.pl", "x.php", "x.py", "noext", "x.cgi.txt", "x.CGI", "dir.cgi/inner.sh"} {
		a.file(name, src, 0o755)
	}
	a.file("run.cgi", src, 0o755)
	p := start(t, w.config(cfg{}))
	for _, name := range []string{"x.sh", "x.pl", "x.php", "x.py", "noext", "x.cgi.txt", "x.CGI"} {
		r := p.get("a.test", "/"+name)
		if strings.Contains(r.Body, "EXECUTED\n") && !strings.Contains(r.Body, "echo EXECUTED") {
			t.Errorf("/%s was executed: %q", name, r.Body)
		}
		if r.Status != 200 || r.Body != src {
			t.Errorf("/%s: %d %q, want its bytes", name, r.Status, r.Body)
		}
	}
	if r := p.get("a.test", "/dir.cgi/inner.sh"); strings.Contains(r.Body, "EXECUTED\n") && !strings.Contains(r.Body, "echo") {
		t.Errorf("/dir.cgi/inner.sh was executed: %q", r.Body)
	}
	if r := p.get("a.test", "/run.cgi"); r.Status != 200 || r.Body != "EXECUTED\n" {
		t.Errorf("/run.cgi (the configured extension): %d %q, want it run", r.Status, r.Body)
	}
}
