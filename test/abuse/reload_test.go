package abuse

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBadReloadKeepsRunningConfig is a short form of FLT-01 under the
// abuse harness: a reload with broken YAML, an empty file or a dangerous
// setting is refused and reported, the running configuration keeps
// serving, and a later valid reload is applied.
func TestBadReloadKeepsRunningConfig(t *testing.T) {
	w := newWorld(t)
	w.addTenant(t, "b.test", -1)
	w.writeFile(t, "b.test", "htdocs/home.html", "home of b\n", 0o644, -1)
	good := w.config(nil)
	p := start(t, good)
	c := httpClient(p.HTTPAddr, 10*time.Second)
	check := func(when, path, want string) {
		t.Helper()
		code, body := get(c, "http://b.test"+path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: GET %s = %d %q, want 200 with %q", when, path, code, body, want)
		}
	}
	check("before", "/", "tenant b.test")

	failed := 0
	for _, tc := range []struct{ name, cfg string }{
		{"broken YAML", "listen: [\n"},
		{"empty file", ""},
		{"dangerous: scripts as root", w.config(settings{"cgi": {"min_uid": "0"}})},
	} {
		p.reload(tc.cfg)
		failed++
		if !eventually(10*time.Second, func() bool {
			return strings.Count(p.Output(), "reload failed: keeping the running configuration") >= failed
		}) {
			t.Fatalf("%s: no reload failure reported", tc.name)
		}
		check("after "+tc.name, "/", "tenant b.test")
	}

	// A valid change is applied.
	p.reload(w.config(settings{"sites": {"index": "[home.html]"}}))
	if !eventually(10*time.Second, func() bool { return strings.Contains(p.Output(), "configuration reloaded") }) {
		t.Fatal("valid reload not applied")
	}
	check("after a valid reload", "/", "home of b")
	if !p.alive() {
		t.Fatal("server died")
	}
}
