package cgi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// confinementTree builds a tenant with scripts, links and traps in both the
// cgi-bin and the document root.
func confinementTree(t *testing.T) *tenant {
	tn := newTenant(t, "a.test")
	tn.install("info.cgi", "x.cgi")
	tn.install("info.cgi", "sub/y.cgi")
	tn.install("info.cgi", filepath.Join(tn.site.DocRoot, "page.cgi"))
	tn.install("info.cgi", filepath.Join(tn.site.DocRoot, "dir/index.cgi"))
	tn.install("info.cgi", filepath.Join(tn.site.DocRoot, "x.sh"))
	tn.install("info.cgi", filepath.Join(tn.site.DocRoot, ".hidden.cgi"))
	tn.install("info.cgi", filepath.Join(tn.site.DocRoot, "dir.cgi/inner.txt"))
	tn.write(filepath.Join(tn.site.DocRoot, "static.html"), "<p>static</p>")
	for link, target := range map[string]string{
		"link.cgi": "x.cgi", "out": "/bin", "sh": "/bin/sh", "up": "..",
	} {
		path := filepath.Join(tn.site.CGIBin, link)
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		tn.chown(path)
	}
	if err := unix.Mkfifo(filepath.Join(tn.site.CGIBin, "fifo.cgi"), 0o755); err != nil {
		t.Fatal(err)
	}
	tn.chown(filepath.Join(tn.site.CGIBin, "fifo.cgi"))
	return tn
}

func TestConfinement(t *testing.T) {
	tn := confinementTree(t)
	h, _ := newTestHandler(t, Options{})
	tests := []struct {
		name   string
		mode   Mode
		path   string // r.URL.Path as net/http decodes it
		status int
		info   string // expected line in the script's output
	}{
		{"script", ScriptAlias, "/cgi-bin/x.cgi", 200, "SCRIPT_NAME=/cgi-bin/x.cgi"},
		{"path info", ScriptAlias, "/cgi-bin/sub/y.cgi/a//b/", 200, "PATH_INFO=/a//b/"},
		{"trailing slash", ScriptAlias, "/cgi-bin/x.cgi/", 200, "PATH_INFO=/"},
		{"dot dot", ScriptAlias, "/cgi-bin/../../../../bin/sh", 400, ""},
		{"encoded dot dot", ScriptAlias, "/cgi-bin/.%2e/.%2e/bin/sh", 400, ""},
		{"dot dot slash encoded", ScriptAlias, "/cgi-bin/..%2f..%2fbin/sh", 400, ""},
		{"dot", ScriptAlias, "/cgi-bin/./x.cgi", 400, ""},
		{"dot dot in path info", ScriptAlias, "/cgi-bin/x.cgi/../../etc/passwd", 400, ""},
		{"backslash", ScriptAlias, `/cgi-bin/..\..\bin\sh`, 400, ""},
		{"nul", ScriptAlias, "/cgi-bin/x.cgi%00.txt", 400, ""},
		{"relative", ScriptAlias, "cgi-bin/x.cgi", 400, ""},
		{"double slash", ScriptAlias, "/cgi-bin//x.cgi", 404, ""},
		{"case", ScriptAlias, "/CGI-BIN/x.cgi", 404, ""},
		{"cgi-bin itself", ScriptAlias, "/cgi-bin/", 404, ""},
		{"cgi-bin no slash", ScriptAlias, "/cgi-bin", 404, ""},
		{"directory", ScriptAlias, "/cgi-bin/sub", 404, ""},
		{"directory slash", ScriptAlias, "/cgi-bin/sub/", 404, ""},
		{"missing", ScriptAlias, "/cgi-bin/missing.cgi", 404, ""},
		{"hidden", ScriptAlias, "/cgi-bin/.x.cgi", 404, ""},
		{"long name", ScriptAlias, "/cgi-bin/" + strings.Repeat("n", 300), 404, ""},
		{"symlinked script", ScriptAlias, "/cgi-bin/link.cgi", 403, ""},
		{"symlink to /bin", ScriptAlias, "/cgi-bin/out/sh", 403, ""},
		{"symlink to a shell", ScriptAlias, "/cgi-bin/sh", 403, ""},
		{"symlink up", ScriptAlias, "/cgi-bin/up/cgi-bin/x.cgi", 403, ""},
		{"fifo", ScriptAlias, "/cgi-bin/fifo.cgi", 403, ""},
		{"docroot script", Docroot, "/page.cgi", 200, "SCRIPT_NAME=/page.cgi"},
		{"docroot path info", Docroot, "/page.cgi/extra/x", 200, "PATH_TRANSLATED=" + filepath.Join(tn.site.DocRoot, "extra/x")},
		{"docroot index", Docroot, "/dir/index.cgi", 200, "SCRIPT_NAME=/dir/index.cgi"},
		{"docroot without extension", Docroot, "/x.sh", 404, ""},
		{"docroot static", Docroot, "/static.html", 404, ""},
		{"docroot hidden", Docroot, "/.hidden.cgi", 404, ""},
		{"docroot directory with extension", Docroot, "/dir.cgi/inner.txt", 404, ""},
		{"docroot dot dot", Docroot, "/../cgi-bin/x.cgi", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.Stats().Spawned
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("echo;id"))
			path, err := url.PathUnescape(tc.path) // what net/http hands a handler
			if err != nil {
				t.Fatal(err)
			}
			r.URL.Path = path
			w := serve(h, tn.site, tc.mode, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tc.status, w.Body)
			}
			spawned := h.Stats().Spawned - before
			if tc.status != 200 {
				if spawned != 0 {
					t.Errorf("spawned %d processes for a refused path", spawned)
				}
				if body := w.Body.String(); body != http.StatusText(tc.status)+"\n" {
					t.Errorf("body %q, want only the status text", body)
				}
				return
			}
			if !strings.Contains(w.Body.String(), tc.info+"\n") {
				t.Errorf("output %q lacks %q", w.Body, tc.info)
			}
		})
	}
}

// A cgi-bin (or docroot) that is itself a symlink is refused: a tenant owns
// its root directory and could point cgi-bin anywhere.
func TestConfinementSymlinkedBase(t *testing.T) {
	tn := newTenant(t, "a.test")
	other := newTenant(t, "b.test")
	other.install("info.cgi", "x.cgi")
	if err := os.Remove(tn.site.CGIBin); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other.site.CGIBin, tn.site.CGIBin); err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHandler(t, Options{})
	if w := get(h, tn.site, "/cgi-bin/x.cgi"); w.Code != http.StatusForbidden {
		t.Fatalf("status %d, want 403", w.Code)
	}
	if h.Stats().Spawned != 0 {
		t.Fatal("spawned through a symlinked cgi-bin")
	}
}

func TestIsScriptPath(t *testing.T) {
	h, _ := newTestHandler(t, Options{Extensions: []string{".cgi", ".pl"}})
	for path, want := range map[string]bool{
		"/x.cgi":            true,
		"/dir/x.pl":         true,
		"/x.cgi/path/info":  true,
		"/dir/index.cgi":    true,
		"/x.html":           false,
		"/.cgi":             false,
		"/dir.cgix/x":       false,
		"/":                 false,
		"/x.CGI":            false,
		"/cgi-bin/x":        false,
		"/a/b/c/d.cgi.html": false,
	} {
		if got := h.IsScriptPath(path); got != want {
			t.Errorf("IsScriptPath(%q) = %v, want %v", path, got, want)
		}
	}
}
