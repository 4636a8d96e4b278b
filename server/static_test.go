package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"massvhost/vhost"
)

// TestTraversal sends each target as raw bytes, over TLS and over plain
// TCP, so no client library normalizes it first.
func TestTraversal(t *testing.T) {
	f := newFixture(t, nil)
	targets := []string{
		"/../../etc/passwd",
		"/../b.test/htdocs/secret.txt",
		"/%2e%2e/%2e%2e/etc/passwd",
		"/%2E%2E/b.test/htdocs/secret.txt",
		"/%252e%252e/etc/passwd",
		"/..%2f..%2fetc/passwd",
		"/..%2fb.test%2fhtdocs%2fsecret.txt",
		"/..%5c..%5cetc/passwd",
		`/..\..\etc\passwd`,
		"/%c0%ae%c0%ae/etc/passwd",
		"/file.txt%00.html",
		"/./././../b.test/htdocs/secret.txt",
		"//etc/passwd",
		"/.%2e/.%2e/etc/passwd",
		"/sub/../../b.test/htdocs/secret.txt",
		"/sub/%2e%2e/%2e%2e/b.test/htdocs/secret.txt",
		"/cgi-bin/../../b.test/htdocs/secret.txt",
		"/l1", "/l2", "/rootlink/etc/passwd", "/bdir/secret.txt",
	}
	for _, target := range targets {
		for _, sni := range []string{"a.test", ""} {
			name := target + " over TCP"
			if sni != "" {
				name = target + " over TLS"
			}
			t.Run(name, func(t *testing.T) {
				resp, body := f.raw(sni, "GET "+target+" HTTP/1.1\r\nHost: a.test\r\n\r\n")
				if strings.Contains(body, secretB) || strings.Contains(body, "root:") {
					t.Fatalf("LEAK: %d %q", resp.StatusCode, body)
				}
				if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("%d %q, want 404 or 400", resp.StatusCode, body)
				}
			})
		}
	}
}

func TestSymlinks(t *testing.T) {
	eachOpenPath(t, func(t *testing.T, base string) {
		f := newFixture(t, nil)
		c := f.client(false)
		for _, tc := range []struct {
			path string
			want int
			body string
		}{
			{"/inner.txt", 200, "A-FILE"},
			{"/dirlink/x.txt", 200, "A-SUB-X"},
			{"/l1", 404, ""},                  // relative link into b.test
			{"/l2", 404, ""},                  // absolute link into b.test
			{"/rootlink/etc/passwd", 404, ""}, // link to /
			{"/bdir/secret.txt", 404, ""},     // directory link into b.test
			{"/bdir/", 404, ""},
			{"/loop", 404, ""},
			{"/dangling", 404, ""},
		} {
			t.Run(tc.path, func(t *testing.T) {
				resp, body := f.get(c, "GET", base+tc.path)
				if resp.StatusCode != tc.want || (tc.body != "" && body != tc.body) {
					t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tc.want, tc.body)
				}
				if strings.Contains(body, f.sites) {
					t.Fatalf("body reveals a path: %q", body)
				}
			})
		}
	})
}

// eachOpenPath runs test over plain HTTP and over TLS ("http://a.test" or
// "https://a.test" as base), each with the openat2 fast path (on Linux)
// and with the os.Root path alone: they confine and read files
// differently (RESOLVE_BENEATH or os.Root; sendfile, pread by descriptor or
// pread through os.File), and each must answer alike.
func eachOpenPath(t *testing.T, test func(t *testing.T, base string)) {
	for _, fast := range fastOpenModes {
		for _, scheme := range []string{"http", "https"} {
			t.Run(fmt.Sprintf("%s,fast=%v", scheme, fast), func(t *testing.T) {
				defer setFastOpen(fast)()
				test(t, scheme+"://a.test")
			})
		}
	}
}

func TestDotFiles(t *testing.T) {
	for _, acme := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllowACMEChallenge=%v", acme), func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.AllowACMEChallenge = acme })
			c := f.client(false)
			for _, p := range []string{
				"/.env", "/.git/config", "/.htaccess", "/sub/.hidden", "/sub/.git/HEAD",
				"/.%67it/config", "/%2egit/config", "/.git%2fconfig", "/sub/deeper/.hidden-dir/secret.txt",
				"/.well-known/security.txt", "/.well-known/acme-challenge-x/tok",
				"/.well-known/acme-challenge/.dottok",
			} {
				if resp, body := f.get(c, "GET", "http://a.test"+p); resp.StatusCode != http.StatusNotFound {
					t.Errorf("%s: %d %q, want 404", p, resp.StatusCode, body)
				}
			}
			want := http.StatusNotFound
			if acme {
				want = http.StatusOK
			}
			for _, p := range []string{"/.well-known/acme-challenge/tok", "/.well-known/acme-challenge/sub/tok2"} {
				if resp, _ := f.get(c, "GET", "http://a.test"+p); resp.StatusCode != want {
					t.Errorf("%s: %d, want %d", p, resp.StatusCode, want)
				}
			}
		})
	}
}

func TestDirectories(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(false)
	resp, body := f.get(c, "GET", "http://a.test/sub")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "./sub/" {
		t.Fatalf("/sub: %d Location %q, want 301 ./sub/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = f.get(c, "GET", "http://a.test/sub/deeper?x=1")
	if loc := resp.Header.Get("Location"); loc != "./deeper/?x=1" {
		t.Fatalf("Location %q, want ./deeper/?x=1", loc)
	}
	resp, _ = f.raw("", "GET //evil.example/%2e%2e HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "evil") {
		t.Fatalf("open redirect: Location %q", loc)
	}
	resp, body = f.get(c, "GET", "http://a.test/sub/")
	if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "<a href") {
		t.Fatalf("/sub/ without listing: %d %q, want 403", resp.StatusCode, body)
	}
	if resp, body := f.get(c, "GET", "http://a.test/"); body != "A-INDEX" {
		t.Fatalf("/: %d %q, want index.html", resp.StatusCode, body)
	}
	if resp, _ := f.get(c, "GET", "http://a.test/emptyindexdir/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a directory named index.html is no index: %d, want 403", resp.StatusCode)
	}

	opts := f.opts
	opts.Listing = true
	if err := f.srv.Swap(opts); err != nil {
		t.Fatal(err)
	}
	resp, body = f.get(c, "GET", "http://a.test/sub/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="./x.txt"`) || !strings.Contains(body, `href="./deeper/"`) {
		t.Fatalf("listing: %d %q", resp.StatusCode, body)
	}
	if strings.Contains(body, ".hidden") || strings.Contains(body, ".git") {
		t.Fatalf("listing shows dot entries: %q", body)
	}
	_, body = f.get(c, "GET", "http://a.test/dir%20with%20space/")
	if strings.Contains(body, "<b>") || !strings.Contains(body, "&lt;b&gt;&amp;amp;&#34;q&#34;.txt") {
		t.Fatalf("listing does not escape names: %q", body)
	}
	if resp, body := f.get(c, "GET", "http://a.test/dir%20with%20space/%3Cb%3E&amp;%22q%22.txt"); body != "odd" {
		t.Fatalf("odd name: %d %q", resp.StatusCode, body)
	}
}

func TestRanges(t *testing.T) {
	eachOpenPath(t, func(t *testing.T, base string) {
		f := newFixture(t, nil)
		const size = 300 << 10
		writeFile(t, filepath.Join(f.docroot("a.test"), "300k.bin"), size)
		c := f.client(false)
		many := func(n int, part string) string {
			return "bytes=" + strings.TrimSuffix(strings.Repeat(part+",", n), ",")
		}
		for _, tc := range []struct {
			name, rng string
			want      int
			wantLen   int // -1: do not check
		}{
			{"single", "bytes=0-99", 206, 100},
			{"suffix", "bytes=-10", 206, 10},
			{"two parts", "bytes=0-9,100-109", 206, -1},
			{"200 parts", many(200, "0-0"), 200, size}, // overlapping
			{"200 disjoint parts", disjoint(200), 206, -1},
			{"201 disjoint parts", disjoint(201), 200, size},
			{"5000 parts", many(5000, "0-0"), 200, size},
			{"overlap", "bytes=0-10,5-15", 200, size},
			{"sum beyond size", "bytes=0-,0-", 200, size},
			{"unsatisfiable", "bytes=999999-", 416, -1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := f.get(c, "GET", base+"/300k.bin", "Range", tc.rng)
				if resp.StatusCode != tc.want {
					t.Fatalf("%d, want %d", resp.StatusCode, tc.want)
				}
				if tc.wantLen >= 0 && len(body) != tc.wantLen {
					t.Fatalf("body %d bytes, want %d", len(body), tc.wantLen)
				}
			})
		}
	})
}

func disjoint(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%d-%d", i*10, i*10+1)
	}
	return "bytes=" + strings.Join(parts, ",")
}

func TestConditional(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(false)
	resp, _ := f.get(c, "GET", "http://a.test/file.txt")
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if !strings.HasPrefix(etag, `"`) || lastMod == "" {
		t.Fatalf("ETag %q Last-Modified %q", etag, lastMod)
	}
	for _, tc := range []struct {
		name string
		hdr  []string
		want int
		body string
	}{
		{"If-None-Match match", []string{"If-None-Match", etag}, 304, ""},
		{"If-None-Match list with *", []string{"If-None-Match", `"x", *`}, 304, ""},
		{"If-None-Match other", []string{"If-None-Match", `"other"`}, 200, "A-FILE"},
		{"If-Match mismatch", []string{"If-Match", `"nope"`}, 412, ""},
		{"If-Match match", []string{"If-Match", etag}, 200, "A-FILE"},
		{"If-Range stale", []string{"If-Range", `"old"`, "Range", "bytes=0-0"}, 200, "A-FILE"},
		{"If-Range current", []string{"If-Range", etag, "Range", "bytes=0-0"}, 206, "A"},
		{"If-Modified-Since garbage", []string{"If-Modified-Since", "garbage"}, 200, "A-FILE"},
		{"If-Modified-Since now", []string{"If-Modified-Since", lastMod}, 304, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.get(c, "GET", "http://a.test/file.txt", tc.hdr...)
			if resp.StatusCode != tc.want || (tc.body != "" && body != tc.body) {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tc.want, tc.body)
			}
		})
	}
	// The ETag depends on size and mtime only, so every node agrees.
	p := filepath.Join(f.docroot("a.test"), "file.txt")
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(p, mtime, mtime)
	copyPath := filepath.Join(f.docroot("a.test"), "copy.txt")
	os.WriteFile(copyPath, []byte("A-FILE"), 0o644)
	os.Chtimes(copyPath, mtime, mtime)
	r1, _ := f.get(c, "GET", "http://a.test/file.txt")
	r2, _ := f.get(c, "GET", "http://a.test/copy.txt")
	if r1.Header.Get("ETag") != r2.Header.Get("ETag") {
		t.Fatalf("ETags of equal size and mtime differ: %q %q", r1.Header.Get("ETag"), r2.Header.Get("ETag"))
	}
}

func TestContentType(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(false)
	for p, want := range map[string]string{
		"/page.html": "text/html; charset=utf-8",
		"/file.txt":  "text/plain; charset=utf-8",
		"/noext":     "application/octet-stream", // <script> content, not sniffed
		"/empty.txt": "text/plain; charset=utf-8",
	} {
		resp, _ := f.get(c, "GET", "http://a.test"+p)
		if got := resp.Header.Get("Content-Type"); got != want {
			t.Errorf("%s: Content-Type %q, want %q", p, got, want)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
	}
}

func TestFilesystemErrors(t *testing.T) {
	eachOpenPath(t, func(t *testing.T, base string) {
		f := newFixture(t, nil)
		c := f.client(false)
		a := f.docroot("a.test")
		if err := syscall.Mkfifo(filepath.Join(a, "fifo"), 0o644); err != nil {
			t.Fatal(err)
		}
		if resp, _ := f.get(c, "GET", base+"/fifo"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("FIFO: %d, want 404 (and no hang)", resp.StatusCode)
		}
		long := "/" + strings.Repeat("x", 300)
		if resp, body := f.get(c, "GET", base+long); resp.StatusCode != http.StatusRequestURITooLong || strings.Contains(body, "xxx") {
			t.Errorf("300-byte name: %d %q, want 414", resp.StatusCode, body)
		}
		if resp, _ := f.get(c, "GET", base+"/file.txt/"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("file with a trailing slash: %d, want 404", resp.StatusCode)
		}
		if resp, _ := f.get(c, "GET", base+"/file.txt/x"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("file used as a directory: %d, want 404", resp.StatusCode)
		}
		// A tenant whose docroot vanished is "not found", not an error.
		os.RemoveAll(a)
		if resp, _ := f.get(c, "GET", base+"/file.txt"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("vanished docroot: %d, want 404", resp.StatusCode)
		}
		// EACCES → 403 is covered by TestFSStatus: tests may run as root,
		// which reads everything.
	})
}

func TestFSStatus(t *testing.T) {
	pe := func(err error) error { return &fs.PathError{Op: "openat", Path: "x", Err: err} }
	for _, tc := range []struct {
		err  error
		want int
	}{
		{pe(syscall.ENOENT), 404},
		{pe(syscall.ENOTDIR), 404},
		{pe(syscall.ELOOP), 404},
		{pe(errors.New("path escapes from parent")), 404},
		{pe(syscall.EACCES), 403},
		{pe(syscall.EPERM), 403},
		{pe(syscall.ENAMETOOLONG), 414},
		{pe(syscall.EIO), 500},
	} {
		if got := fsStatus(tc.err); got != tc.want {
			t.Errorf("fsStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	// The text isPathEscape relies on is what os.Root returns.
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.Open("../x"); !isPathEscape(err) {
		t.Fatalf("os.Root escape error %v not recognized", err)
	}
}

func TestInternalErrorHasNoDetail(t *testing.T) {
	f := newFixture(t, nil)
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/x", nil)
	f.srv.fsError(w, r, &fs.PathError{Op: "openat", Path: "/srv/secret/path", Err: syscall.EIO})
	if w.Code != 500 || strings.Contains(w.Body.String(), "/srv") || strings.Contains(w.Body.String(), "input/output") {
		t.Fatalf("%d %q", w.Code, w.Body.String())
	}
	if !strings.Contains(f.logs.String(), "/srv/secret/path") {
		t.Fatal("the log must carry the detail")
	}
}

// BenchmarkStatic serves a small file through the whole handler (plain
// HTTP: an in-process TLS request would be refused by the 421 check), on
// the openat2 fast path and on the os.Root path.
func BenchmarkStatic(b *testing.B) {
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a.test", "htdocs"), 0o755); err != nil {
		b.Fatal(err)
	}
	writeFile(b, filepath.Join(dir, "a.test", "htdocs", "page.html"), 4096)
	srv := benchServer(b, dir)
	h := srv.Handler()
	for _, fast := range fastOpenModes {
		b.Run(fmt.Sprintf("fast=%v", fast), func(b *testing.B) {
			defer setFastOpen(fast)()
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", "http://a.test/page.html", nil))
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

func benchServer(b *testing.B, sites string) *Server {
	res, err := vhost.NewResolver(vhost.Options{Root: sites})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{HTTPAddr: "127.0.0.1:0", Sites: res})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv
}
