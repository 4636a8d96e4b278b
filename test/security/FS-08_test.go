// FS-08: directory redirects and open redirects.
//
// Exploit: "//evil.example/.." and "/%2f%2fevil.example/index.html" and a
// directory name that looks like a scheme ("javascript:x"), hoping for a
// Location that sends the browser to another host.
//
// Expectation: every Location the server itself writes is relative
// ("./x/"), never "//host" or a scheme.
package security

import (
	"strings"
	"testing"
)

func TestFS08NoOpenRedirect(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.file("evil.example/index.html", "x\n", 0o644)
	a.file("javascript:x/index.html", "x\n", 0o644)
	a.file("sub/index.html", "x\n", 0o644)
	p := start(t, w.config(cfg{}))
	if loc := p.get("a.test", "/sub").Header.Get("Location"); loc != "./sub/" {
		t.Errorf("control: /sub redirects to %q, want ./sub/", loc)
	}
	for _, path := range []string{"//evil.example/..", "//evil.example", "/%2f%2fevil.example/index.html", "/%2f%2fevil.example",
		"/javascript:x", "/sub", "/sub?next=//evil.example", "///evil.example", "/\\evil.example"} {
		r := p.get("a.test", path)
		loc := r.Header.Get("Location")
		if loc == "" {
			continue
		}
		if strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) || strings.Contains(strings.SplitN(loc, "/", 2)[0], ":") && !strings.HasPrefix(loc, "./") {
			t.Errorf("GET %s: Location %q leaves the site", path, loc)
		}
		if !strings.HasPrefix(loc, "./") {
			t.Errorf("GET %s: Location %q is not relative", path, loc)
		}
	}
}
