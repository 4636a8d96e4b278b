package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/vhost"
)

func TestMisdirectedRequest(t *testing.T) {
	f := newFixture(t, nil)
	h1, h2 := f.client(false), f.client(true)

	t.Run("HTTP/1.1 Host", func(t *testing.T) {
		resp, body := f.get(h1, "GET", "https://a.test/index.html", "Host", "b.test")
		if resp.StatusCode != http.StatusMisdirectedRequest || strings.Contains(body, "B-INDEX") {
			t.Fatalf("SNI a.test, Host b.test: %d %q, want 421", resp.StatusCode, body)
		}
	})
	t.Run("HTTP/1.1 raw", func(t *testing.T) {
		resp, _ := f.raw("a.test", "GET /secret.txt HTTP/1.1\r\nHost: b.test\r\n\r\n")
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Fatalf("%d, want 421", resp.StatusCode)
		}
	})
	t.Run("absolute-form target", func(t *testing.T) {
		resp, body := f.raw("a.test", "GET https://b.test/secret.txt HTTP/1.1\r\nHost: a.test\r\n\r\n")
		if resp.StatusCode != http.StatusMisdirectedRequest || strings.Contains(body, secretB) {
			t.Fatalf("%d %q, want 421", resp.StatusCode, body)
		}
	})
	t.Run("HTTP/2 :authority", func(t *testing.T) {
		resp, body := f.get(h2, "GET", "https://a.test/secret.txt", "Host", "b.test")
		if resp.ProtoMajor != 2 {
			t.Fatalf("negotiated %s, want HTTP/2", resp.Proto)
		}
		if resp.StatusCode != http.StatusMisdirectedRequest || strings.Contains(body, secretB) {
			t.Fatalf("%d %q, want 421", resp.StatusCode, body)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatal("421 without nosniff")
		}
	})
	t.Run("HTTP/2 connection survives", func(t *testing.T) {
		// One connection (SNI a.test): a.test, b.test, a.test again.
		for i, tc := range []struct {
			host string
			want int
		}{{"a.test", 200}, {"b.test", 421}, {"a.test", 200}} {
			req, _ := http.NewRequest("GET", "https://a.test/index.html", nil)
			req.Host = tc.host
			var reused bool
			req = withConnTrace(req, &reused)
			resp, err := h2.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("request %d (Host %s): %d, want %d", i, tc.host, resp.StatusCode, tc.want)
			}
			if i > 0 && !reused {
				t.Fatalf("request %d used a new connection", i)
			}
		}
	})
	t.Run("wildcard coalescing", func(t *testing.T) {
		// SNI c.example.com, Host d.example.com: the same certificate
		// covers both, so HTTP/2 coalescing keeps working.
		resp, body := f.get(h2, "GET", "https://c.example.com/", "Host", "d.example.com")
		if resp.StatusCode != http.StatusOK || body != "D-INDEX" {
			t.Fatalf("%d %q, want 200 D-INDEX", resp.StatusCode, body)
		}
	})
	t.Run("port and case", func(t *testing.T) {
		resp, body := f.raw("a.test", "GET /index.html HTTP/1.1\r\nHost: A.Test.:443\r\n\r\n")
		if resp.StatusCode != http.StatusOK || body != "A-INDEX" {
			t.Fatalf("%d %q, want 200", resp.StatusCode, body)
		}
	})
}

func TestHostValidation(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, sni, host string
		want            int
	}{
		{"dotdot over TCP", "", "..", 400},
		{"underscore", "", "a_b.test", 400},
		{"IP without default site", "", "127.0.0.1", 400},
		{"missing Host over TLS", "a.test", "", 400},
		{"unknown name", "", "nope.test", 404},
		{"unknown under wildcard certificate", "c.example.com", "zz.example.com", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := "GET / HTTP/1.1\r\nHost: " + tc.host + "\r\n\r\n"
			if tc.host == "" {
				req = "GET / HTTP/1.0\r\n\r\n"
			}
			resp, body := f.raw(tc.sni, req)
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
	// Unknown names all get the same answer.
	_, b1 := f.raw("", "GET / HTTP/1.1\r\nHost: nope.test\r\n\r\n")
	_, b2 := f.raw("", "GET / HTTP/1.1\r\nHost: other.example\r\n\r\n")
	if b1 != b2 {
		t.Fatalf("404 bodies differ: %q vs %q", b1, b2)
	}
}

func TestDefaultSiteForIPHost(t *testing.T) {
	f := newFixture(t, nil)
	res, err := vhost.NewResolver(vhost.Options{Root: f.sites, Default: "b.test"})
	if err != nil {
		t.Fatal(err)
	}
	opts := f.opts
	opts.Sites = res
	if err := f.srv.Swap(opts); err != nil {
		t.Fatal(err)
	}
	resp, body := f.raw("", "GET /index.html HTTP/1.0\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "B-INDEX" {
		t.Fatalf("HTTP/1.0 without Host: %d %q, want the default site", resp.StatusCode, body)
	}
}

func TestRedirectHTTPS(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.RedirectHTTPS = true })
	c := f.client(false)
	_, port, _ := strings.Cut(f.httpsAddr, ":")
	resp, _ := f.get(c, "GET", "http://A.TEST/sub/x.txt?q=1&r=%2F")
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("status %d, want 308", resp.StatusCode)
	}
	if loc, want := resp.Header.Get("Location"), "https://a.test:"+port+"/sub/x.txt?q=1&r=%2F"; loc != want {
		t.Fatalf("Location %q, want %q", loc, want)
	}
	resp, _ = f.raw("", "GET //evil.example/x HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "https://a.test:"+port+"/") {
		t.Fatalf("Location %q leaves a.test", loc)
	}
	for host, want := range map[string]int{"nope.test": 404, "127.0.0.1": 400, "..": 400} {
		resp, _ := f.raw("", "GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		if resp.StatusCode != want || resp.Header.Get("Location") != "" {
			t.Errorf("Host %s: %d Location %q, want %d without redirect", host, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// HTTPS still serves.
	if resp, body := f.get(c, "GET", "https://a.test/file.txt"); body != "A-FILE" {
		t.Fatalf("https: %d %q", resp.StatusCode, body)
	}
}

func TestCGIRouting(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(false)
	for _, tc := range []struct{ path, want string }{
		{"/cgi-bin/env.cgi", "mode=1 path=/cgi-bin/env.cgi"},
		{"/cgi-bin/env.cgi/extra/info", "mode=1 path=/cgi-bin/env.cgi/extra/info"},
		{"/cgi-bin", "mode=1 path=/cgi-bin"},
		{"//cgi-bin//env.cgi", "mode=1 path=/cgi-bin/env.cgi"},
		{"/script.cgi", "mode=2 path=/script.cgi"},
		{"/cgidir/", "mode=2 path=/cgidir/index.cgi"},
		{"/missing.cgi", "mode=2 path=/missing.cgi"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := f.raw("", "POST "+tc.path+" HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %q, want CGI %q", resp.StatusCode, body, tc.want)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatal("CGI response without nosniff")
			}
		})
	}
	for _, p := range []string{"/cgi-bin/../script.cgi", "/cgi-bin/.%2e/x", "/cgi-binx", "/CGI-BIN/x"} {
		resp, body := f.get(c, "GET", "http://a.test"+p)
		if strings.Contains(body, "CGI ") {
			t.Errorf("%s reached CGI: %d %q", p, resp.StatusCode, body)
		}
	}
	// Only the exact lower-case prefix is the ScriptAlias; elsewhere a .cgi
	// name is a docroot script, looked up in the docroot.
	if _, body := f.get(c, "GET", "http://a.test/CGI-BIN/env.cgi"); !strings.Contains(body, "mode=2 ") {
		t.Errorf("/CGI-BIN/env.cgi: %q, want docroot mode", body)
	}
}

func TestCGIDisabled(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.CGI = nil; o.Index = []string{"index.html"} })
	c := f.client(false)
	for _, p := range []string{"/cgi-bin/env.cgi", "/cgi-bin"} {
		if resp, body := f.get(c, "GET", "http://a.test"+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s with CGI disabled: %d %q, want 404", p, resp.StatusCode, body)
		}
	}
	if resp, _ := f.get(c, "GET", "http://a.test/cgidir/"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("directory with only index.cgi, CGI disabled: %d, want 403", resp.StatusCode)
	}
}

func TestPanicRecovered(t *testing.T) {
	f := newFixture(t, nil)
	f.cgi.serve = func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "late") {
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
		}
		panic("boom")
	}
	c := f.client(false)
	resp, body := f.get(c, "GET", "http://a.test/cgi-bin/early")
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "boom") || !strings.Contains(body, "request id") {
		t.Fatalf("panic before writing: %d %q, want 500 with an ID and no detail", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("GET", "http://a.test/cgi-bin/late", nil)
	if resp, err := c.Do(req); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatal("panic after writing: the response completed; want it aborted")
		}
	}
	if n := f.srv.Stats().Panics; n != 2 {
		t.Fatalf("Stats.Panics = %d, want 2", n)
	}
	if logs := f.logs.String(); strings.Count(logs, "panic in handler") != 2 {
		t.Fatalf("want each panic logged once:\n%s", logs)
	}
	// The cleanup checks that net/http never logged "http: panic serving".
}

func TestMethods(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(false)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/file.txt", 200},
		{"HEAD", "/file.txt", 200},
		{"OPTIONS", "/file.txt", 204},
		{"POST", "/file.txt", 405},
		{"PUT", "/file.txt", 405},
		{"DELETE", "/", 405},
		{"POST", "/missing", 404},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			resp, body := f.get(c, tc.method, "http://a.test"+tc.path)
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want == 405 || tc.want == 204 {
				if got := resp.Header.Get("Allow"); got != "GET, HEAD, OPTIONS" {
					t.Fatalf("Allow %q", got)
				}
			}
			if tc.method == "HEAD" && body != "" {
				t.Fatalf("HEAD with a body %q", body)
			}
		})
	}
}

func TestNosniffEverywhere(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(false)
	for _, u := range []string{
		"http://a.test/file.txt", "http://a.test/missing", "http://nope.test/",
		"http://a.test/.env", "http://a.test/sub/", "http://a.test/sub", "http://a.test/cgi-bin/x",
		"https://a.test/", "https://b.test/index.html",
	} {
		req, _ := http.NewRequest("GET", u, nil)
		if strings.HasPrefix(u, "https://b.test") {
			req, _ = http.NewRequest("GET", "https://a.test/", nil)
			req.Host = "b.test"
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s (%d): no nosniff", u, resp.StatusCode)
		}
	}
}

func TestHandlerWithoutListener(t *testing.T) {
	// Handler() works in-process; a TLS request that did not come through
	// the listener is checked against the CertSource's answer for its SNI.
	f := newFixture(t, nil)
	h := f.srv.Handler()
	for host, want := range map[string]int{"a.test": 200, "b.test": 421} {
		r := httptest.NewRequest("GET", "https://a.test/file.txt", nil)
		r.Host = host
		r.TLS = &tls.ConnectionState{ServerName: "a.test"}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %s over SNI a.test: %d, want %d", host, w.Code, want)
		}
	}
}

// withConnTrace reports through *reused whether the request reused a
// connection.
func withConnTrace(r *http.Request, reused *bool) *http.Request {
	return r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { *reused = info.Reused },
	}))
}

func dialHTTP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestMaxConnsPerIP(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxConnsPerIP = 2 })
	for i := 0; i < 2; i++ { // both stay open until the test ends
		c := dialHTTP(t, f.httpAddr)
		io.WriteString(c, "GET /file.txt HTTP/1.1\r\nHost: a.test\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	c := dialHTTP(t, f.httpAddr)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "GET /file.txt HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Fatal("third connection from one IP was served")
	}
	if n := f.srv.Stats().ConnsRefused; n != 1 {
		t.Fatalf("ConnsRefused = %d, want 1", n)
	}
}

// nopCGI answers 204: BenchmarkRouting measures the router, not a handler.
type nopCGI struct{}

func (nopCGI) ServeCGI(w http.ResponseWriter, r *http.Request, site vhost.Site, mode CGIMode) {
	w.WriteHeader(http.StatusNoContent)
}
func (nopCGI) IsScriptPath(p string) bool { return strings.HasSuffix(p, ".cgi") }

// BenchmarkRouting measures Host normalization, the 421 check, site
// resolution (a cache hit) and dispatch, ending in a no-op CGI runner.
func BenchmarkRouting(b *testing.B) {
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a.test", "htdocs"), 0o755); err != nil {
		b.Fatal(err)
	}
	srv := benchServer(b, dir)
	certs := newTestCerts()
	ca := certtest.NewCA(b)
	certPEM, keyPEM := ca.Leaf(b, "a.test")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	certs.byName["a.test"] = &cert
	opts := srv.base
	opts.CGI = nopCGI{}
	opts.Certs = certs
	if err := srv.Swap(opts); err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	for _, bc := range []struct {
		name string
		tls  bool
	}{{"http", false}, {"https", true}} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "http://A.Test:8443/cgi-bin/x", nil)
			if bc.tls {
				r.TLS = &tls.ConnectionState{ServerName: "a.test"}
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusNoContent {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

// TestMisdirectedSameConnection sends, on one keep-alive connection, a
// request for the SNI name, then one for another tenant, then the first
// again: the per-connection memo of the covered host must not let the
// second through.
func TestMisdirectedSameConnection(t *testing.T) {
	f := newFixture(t, nil)
	c, err := tls.Dial("tcp", f.httpsAddr, f.tlsConfig("a.test"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, tc := range []struct {
		host string
		want int
	}{{"a.test", 200}, {"b.test", 421}, {"a.test", 200}, {"b.test", 421}} {
		if _, err := io.WriteString(c, "GET /index.html HTTP/1.1\r\nHost: "+tc.host+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Host %s on a connection for a.test: %d, want %d", tc.host, resp.StatusCode, tc.want)
		}
	}
}
