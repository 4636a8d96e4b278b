package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"massvhost/certs"
	"massvhost/test/certtest"
	"massvhost/vhost"
)

// fixture is a running Server over a tenant tree in t.TempDir():
//
//	a.test         index.html, file.txt, sub/x.txt, dot-files, symlinks in
//	               and out, script.cgi, cgidir/index.cgi, an ACME token
//	b.test         secret.txt (the target of a.test's escape attempts)
//	c.example.com, d.example.com   tenants under one wildcard certificate
//
// with certificates for a.test, b.test and *.example.com from a test CA.
type fixture struct {
	t         *testing.T
	sites     string
	ca        *certtest.CA
	certs     *testCerts
	cgi       *fakeCGI
	srv       *Server
	opts      Options
	logs      *syncBuffer // slog output
	httpAddr  string
	httpsAddr string
}

const secretB = "TENANT-B-SECRET"

// newFixture builds the tree and starts a Server; modify adjusts the
// Options and before, if given, sees the Server before Start.
func newFixture(t *testing.T, modify func(*Options), before ...func(*Server)) *fixture {
	t.Helper()
	f := &fixture{t: t, sites: t.TempDir(), ca: certtest.NewCA(t), cgi: &fakeCGI{}, logs: &syncBuffer{}}
	f.writeTree()
	f.certs = newTestCerts()
	for _, name := range []string{"a.test", "b.test", "*.example.com"} {
		certPEM, keyPEM := f.ca.Leaf(t, name)
		f.certs.add(t, name, certPEM, keyPEM)
	}
	resolver, err := vhost.NewResolver(vhost.Options{Root: f.sites, CacheTTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.opts = Options{
		HTTPAddr:  "127.0.0.1:0",
		HTTPSAddr: "127.0.0.1:0",
		Sites:     resolver,
		Certs:     f.certs,
		CGI:       f.cgi,
		Index:     []string{"index.html", "index.cgi"},
		Logger:    slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if modify != nil {
		modify(&f.opts)
	}
	f.start(before)
	return f
}

func (f *fixture) start(before []func(*Server)) {
	t := f.t
	srv, err := New(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range before {
		fn(srv)
	}
	f.srv = srv
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if strings.Contains(f.logs.String(), "panic serving") {
			t.Errorf("net/http logged a panic:\n%s", f.logs.String())
		}
	})
	h, s := srv.Addrs()
	if h != nil {
		f.httpAddr = h.String()
	}
	if s != nil {
		f.httpsAddr = s.String()
	}
}

func (f *fixture) writeTree() {
	t := f.t
	files := map[string]string{
		"a.test/htdocs/index.html":                          "A-INDEX",
		"a.test/htdocs/file.txt":                            "A-FILE",
		"a.test/htdocs/page.html":                           "<p>A</p>",
		"a.test/htdocs/noext":                               "<script>alert(1)</script>",
		"a.test/htdocs/sub/x.txt":                           "A-SUB-X",
		"a.test/htdocs/sub/.hidden":                         "A-HIDDEN",
		"a.test/htdocs/.env":                                "A-DOTENV",
		"a.test/htdocs/.git/config":                         "A-GIT",
		"a.test/htdocs/.well-known/acme-challenge/tok":      "A-ACME",
		"a.test/htdocs/.well-known/security.txt":            "A-SECTXT",
		"a.test/htdocs/script.cgi":                          "#!/bin/sh\necho SOURCE",
		"a.test/htdocs/cgidir/index.cgi":                    "#!/bin/sh\necho SOURCE",
		"a.test/htdocs/dir with space/<b>&amp;\"q\".txt":    "odd",
		"a.test/cgi-bin/env.cgi":                            "#!/bin/sh\necho SOURCE",
		"b.test/htdocs/secret.txt":                          secretB,
		"b.test/htdocs/index.html":                          "B-INDEX",
		"c.example.com/htdocs/index.html":                   "C-INDEX",
		"d.example.com/htdocs/index.html":                   "D-INDEX",
		"a.test/htdocs/empty/.keep":                         "",
		"a.test/htdocs/sub/deeper/y.txt":                    "A-Y",
		"a.test/htdocs/.well-known/acme-challenge/.dottok":  "A-DOT",
		"a.test/htdocs/.well-known/acme-challenge-x/tok":    "A-NOT-ACME",
		"a.test/htdocs/sub/.git/HEAD":                       "A-SUBGIT",
		"a.test/htdocs/.htaccess":                           "A-HTACCESS",
		"a.test/htdocs/a%2e%2e":                             "A-LITERAL-PERCENT",
		"a.test/htdocs/sub/%2e%2e/x":                        "A-LITERAL-PERCENT-DIR",
		"a.test/htdocs/sub/z.html":                          "<p>Z</p>",
		"a.test/htdocs/empty.txt":                           "",
		"a.test/htdocs/upper/INDEX.HTML":                    "A-UPPER",
		"a.test/htdocs/index.html.bak":                      "A-BAK",
		"a.test/htdocs/sub/deeper/.hidden-dir/secret.txt":   "A-HIDDEN-DIR",
		"a.test/htdocs/emptyindexdir/index.html/child.txt":  "A-DIR-NAMED-INDEX",
		"a.test/htdocs/.well-known/acme-challenge/sub/tok2": "A-ACME-SUB",
	}
	for name, body := range files {
		p := filepath.Join(f.sites, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := filepath.Join(f.sites, "a.test", "htdocs")
	links := map[string]string{
		"inner.txt": "file.txt",                                               // stays inside
		"dirlink":   "sub",                                                    // directory inside
		"l1":        "../../b.test/htdocs/secret.txt",                         // relative escape
		"l2":        filepath.Join(f.sites, "b.test", "htdocs", "secret.txt"), // absolute
		"rootlink":  "/",                                                      // the whole filesystem
		"bdir":      "../../b.test/htdocs",                                    // directory escape
		"loop":      "loop",                                                   // ELOOP
		"dangling":  "nothing-here",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(a, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) docroot(host string) string {
	return filepath.Join(f.sites, host, "htdocs")
}

// tlsConfig is a client config trusting the test CA.
func (f *fixture) tlsConfig(sni string) *tls.Config {
	return &tls.Config{ServerName: sni, RootCAs: f.ca.Pool, NextProtos: []string{"http/1.1"}}
}

// client returns an HTTP client that connects every https:// URL to the
// HTTPS listener and every http:// URL to the HTTP listener, whatever the
// host, so URLs can name tenants. h2 selects HTTP/2.
func (f *fixture) client(h2 bool) *http.Client {
	var d net.Dialer
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasSuffix(addr, ":443") {
				return d.DialContext(ctx, network, f.httpsAddr)
			}
			return d.DialContext(ctx, network, f.httpAddr)
		},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get performs a request and returns the response with its body read.
func (f *fixture) get(c *http.Client, method, url string, hdr ...string) (*http.Response, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(body)
}

// raw sends request bytes as they are over a new connection (TLS with sni
// when sni != "", else plain TCP) and parses one response.
func (f *fixture) raw(sni, request string) (*http.Response, string) {
	f.t.Helper()
	var c net.Conn
	var err error
	if sni != "" {
		c, err = tls.Dial("tcp", f.httpsAddr, f.tlsConfig(sni))
	} else {
		c, err = net.Dial("tcp", f.httpAddr)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, request); err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		f.t.Fatalf("raw %q: %v", request, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// testCerts is a CertSource over certificates minted by the test CA: exact
// names, then the one-level wildcard, with an optional default for no SNI.
type testCerts struct {
	mu          sync.Mutex
	byName      map[string]*tls.Certificate
	def         *tls.Certificate
	unavailable map[string]bool
	lookups     int
}

func newTestCerts() *testCerts {
	return &testCerts{byName: map[string]*tls.Certificate{}, unavailable: map[string]bool{}}
}

func (c *testCerts) add(t *testing.T, name string, certPEM, keyPEM []byte) *tls.Certificate {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byName[name] = &cert
	return &cert
}

func (c *testCerts) Lookup(ctx context.Context, sni string) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookups++
	if sni == "" {
		if c.def != nil {
			return c.def, nil
		}
		return nil, fmt.Errorf("no SNI: %w", certs.ErrNotFound)
	}
	name, err := vhost.Normalize(sni)
	if err != nil {
		return nil, err
	}
	if c.unavailable[name] {
		return nil, fmt.Errorf("lookup %q: %w", name, certs.ErrUnavailable)
	}
	if cert, ok := c.byName[name]; ok {
		return cert, nil
	}
	if w, ok := vhost.WildcardParent(name); ok {
		if cert, ok := c.byName[w]; ok {
			return cert, nil
		}
	}
	return nil, fmt.Errorf("lookup %q: %w", name, certs.ErrNotFound)
}

// fakeCGI stands in for the CGI runner: it answers with the mode and path
// it was given, so routing can be checked without running processes.
type fakeCGI struct {
	mu    sync.Mutex
	calls []string
	serve func(w http.ResponseWriter, r *http.Request) // optional override
}

func (c *fakeCGI) ServeCGI(w http.ResponseWriter, r *http.Request, site vhost.Site, mode CGIMode) {
	call := fmt.Sprintf("%s mode=%d path=%s", site.Name, mode, r.URL.Path)
	c.mu.Lock()
	c.calls = append(c.calls, call)
	serve := c.serve
	c.mu.Unlock()
	if serve != nil {
		serve(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "CGI "+call)
}

func (c *fakeCGI) IsScriptPath(p string) bool {
	return strings.HasSuffix(p, ".cgi")
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestNewRejectsBadOptions(t *testing.T) {
	res, err := vhost.NewResolver(vhost.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no listener", Options{Sites: res}, "both empty"},
		{"no sites", Options{HTTPAddr: ":0"}, "Sites is nil"},
		{"https without certs", Options{HTTPSAddr: ":0", Sites: res}, "Certs is nil"},
		{"redirect without https", Options{HTTPAddr: ":0", Sites: res, RedirectHTTPS: true}, "RedirectHTTPS"},
		{"bad format", Options{HTTPAddr: ":0", Sites: res, AccessFormat: "common"}, "AccessFormat"},
		{"bad index", Options{HTTPAddr: ":0", Sites: res, Index: []string{"../x"}}, "Index"},
		{"negative", Options{HTTPAddr: ":0", Sites: res, MaxRanges: -1}, "MaxRanges"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSwap(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(false)
	if resp, _ := f.get(c, "GET", "https://a.test/sub/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("before Swap: /sub/ = %d, want 403", resp.StatusCode)
	}

	next := f.opts
	next.Listing = true
	if err := f.srv.Swap(next); err != nil {
		t.Fatalf("Swap: %v", err)
	}
	// The keep-alive connection from before the Swap keeps working.
	if resp, body := f.get(c, "GET", "https://a.test/sub/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "x.txt") {
		t.Fatalf("after Swap: /sub/ = %d %q, want a listing", resp.StatusCode, body)
	}

	next.AccessLogBuffer = 7
	next.Listing = false
	err := f.srv.Swap(next)
	if !errors.Is(err, ErrRestartRequired) || !strings.Contains(err.Error(), "AccessLogBuffer") {
		t.Fatalf("Swap with a new AccessLogBuffer: err = %v, want ErrRestartRequired naming it", err)
	}
	if resp, _ := f.get(c, "GET", "https://a.test/sub/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the other fields must still apply: /sub/ = %d, want 403", resp.StatusCode)
	}

	bad := f.opts
	bad.Sites = nil
	if err := f.srv.Swap(bad); err == nil || errors.Is(err, ErrRestartRequired) {
		t.Fatalf("Swap with invalid options: err = %v, want a validation error", err)
	}
	if resp, _ := f.get(c, "GET", "https://a.test/file.txt"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a rejected Swap: %d, want 200", resp.StatusCode)
	}
}

func TestShutdownWaitsForSlowDownload(t *testing.T) {
	f := newFixture(t, nil)
	// Larger than what loopback socket buffers absorb, so the handler is
	// still writing while the client pauses.
	const size = 48 << 20
	resp := f.startDownload(dialHTTP(t, f.httpAddr), size)
	first := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- f.srv.Shutdown(context.Background()) }()

	// The listener closes at once: wait until new connections fail.
	for {
		c, err := net.Dial("tcp", f.httpAddr)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a download was in flight", err)
	default:
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size-int64(len(first)) {
		t.Fatalf("rest of download: %d bytes, %v; want %d", n, err, size-len(first))
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestShutdownForcesAfterDeadline(t *testing.T) {
	f := newFixture(t, nil)
	resp := f.startDownload(dialHTTP(t, f.httpAddr), 48<<20)
	// Never read the body: the handler stays blocked in Write.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with an expired context: %v, want context.Canceled", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Fatal("the stalled download completed; want it cut by the forced close")
	}
}

// startDownload writes a size-byte /big.bin into a.test's docroot, requests
// it over c and returns the response with its body unread.
func (f *fixture) startDownload(c net.Conn, size int) *http.Response {
	f.t.Helper()
	writeFile(f.t, filepath.Join(f.docroot("a.test"), "big.bin"), size)
	io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		f.t.Fatalf("download: %v %v", resp, err)
	}
	return resp
}

func writeFile(t testing.TB, p string, size int) {
	t.Helper()
	b := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The product implementations satisfy the interfaces consumed here.
var (
	_ SiteResolver = (*vhost.Resolver)(nil)
	_ CertSource   = (*certs.Manager)(nil)
)
