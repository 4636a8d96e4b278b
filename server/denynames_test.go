package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"massvhost/vhost"
)

func TestDenyListHides(t *testing.T) {
	def, err := compileDenyNames(DefaultDenyNames())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		want bool
	}{
		{"plain file", "/index.html", false},
		{"root", "/", false},
		{"tilde backup", "/index.html~", true},
		{"emacs autosave", "/#index.html#", true},
		{"lone hash", "/#", false},
		{"hash pair is a name too", "/##", true},
		{"hash prefix only", "/#notes", false},
		{"hash suffix only", "/c#", false},
		{"swap file", "/config.php.swp", true},
		{"second swap file", "/config.php.swo", true},
		{"bak", "/wp-config.php.bak", true},
		{"bak only as suffix", "/bak.txt", false},
		{"bak inside the name", "/x.bak.txt", false},
		{"orig", "/app.cgi.orig", true},
		{"save", "/notes.save", true},
		{"case differs", "/x.BAK", false},
		{"directory component", "/old~/index.html", true},
		{"middle directory", "/a/b.bak/c/d.txt", true},
		{"trailing slash", "/backup.bak/", true},
		{"script path info", "/cgi-bin/x.cgi/a.swp", true},
		{"tilde in the middle", "/~user/index.html", false},
		{"deep clean path", "/a/b/c/d/e/f/g.html", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := def.hides(tc.path); got != tc.want {
				t.Errorf("hides(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}

	// Patterns that are not a plain affix go through path.Match.
	d, err := compileDenyNames([]string{"core", "*.sw?", "[Tt]humbs.db", "*.old*"})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/core": true, "/core.1": false, "/x.swx": true, "/x.sw": false,
		"/Thumbs.db": true, "/thumbs.db": true, "/a.old.txt": true, "/a.txt": false,
	} {
		if got := d.hides(p); got != want {
			t.Errorf("custom list: hides(%q) = %v, want %v", p, got, want)
		}
	}
	var none denyList
	if none.hides("/x.bak") {
		t.Error("the zero denyList hides a name")
	}
}

func TestCompileDenyNamesErrors(t *testing.T) {
	for _, tc := range []struct{ name, pattern, want string }{
		{"unclosed class", "[a", "syntax error in pattern"},
		{"trailing backslash", `x\`, "syntax error in pattern"},
		{"slash", "a/*.bak", "without '/'"},
		{"empty", "", "non-empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileDenyNames([]string{"*.bak", tc.pattern})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "DenyNames") {
				t.Errorf("compileDenyNames(%q) = %v, want an error naming DenyNames and %q", tc.pattern, err, tc.want)
			}
		})
	}
	res, err := vhost.NewResolver(vhost.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{HTTPAddr: ":0", Sites: res, DenyNames: []string{"[x"}}); err == nil || !strings.Contains(err.Error(), `"[x"`) {
		t.Errorf("New with a malformed DenyNames pattern: %v, want an error naming it", err)
	}
}

// TestDenyNamesServed checks the routing: backups answer 404 like missing
// files, as files, directories and scripts; listings leave them out; an
// empty list serves them.
func TestDenyNamesServed(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(false)
	if resp, body := f.get(c, "GET", "http://a.test/index.html.bak"); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "A-BAK") {
		t.Errorf("/index.html.bak: %d %q, want 404", resp.StatusCode, body)
	}
	_, missing := f.get(c, "GET", "http://a.test/no-such-file")
	for _, p := range []string{"/cgi-bin/env.cgi~", "/cgi-bin/env.cgi/x.bak", "/script.cgi.swp", "/%23index.html%23", "/sub.bak/x.txt"} {
		if resp, body := f.get(c, "GET", "http://a.test"+p); resp.StatusCode != http.StatusNotFound || body != missing {
			t.Errorf("%s: %d %q, want the 404 of a missing file", p, resp.StatusCode, body)
		}
	}
	f.cgi.mu.Lock()
	calls := slices.Clone(f.cgi.calls)
	f.cgi.mu.Unlock()
	if len(calls) > 0 {
		t.Errorf("denied names reached the CGI runner: %v", calls)
	}

	opts := f.opts
	opts.Listing = true
	if err := f.srv.Swap(opts); err != nil {
		t.Fatal(err)
	}
	// a.test's root has an index; list a directory holding a backup.
	writeFile(t, f.docroot("a.test")+"/sub/x.txt~", 3)
	if _, body := f.get(c, "GET", "http://a.test/sub/"); !strings.Contains(body, "x.txt") || strings.Contains(body, "x.txt~") {
		t.Errorf("listing of /sub/ shows a backup name or lost x.txt: %q", body)
	}

	opts.DenyNames = []string{}
	if err := f.srv.Swap(opts); err != nil {
		t.Fatal(err)
	}
	if resp, body := f.get(c, "GET", "http://a.test/index.html.bak"); resp.StatusCode != http.StatusOK || body != "A-BAK" {
		t.Errorf("empty DenyNames: /index.html.bak %d %q, want 200", resp.StatusCode, body)
	}
}

// BenchmarkDenyHides measures the per-request check with the default list:
// a typical path, a deeper one, a very deep one, and a backup name (the
// slowest answer: every affix compared).
func BenchmarkDenyHides(b *testing.B) {
	d, err := compileDenyNames(DefaultDenyNames())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		path string
		want bool
	}{
		{"/index.html", false},
		{"/assets/css/site.min.css", false},
		{"/a/b/c/d/e/f/g/h/i/j/k.html", false},
		{"/wp-config.php.save", true},
	} {
		b.Run(bc.path, func(b *testing.B) {
			for b.Loop() {
				if d.hides(bc.path) != bc.want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}
