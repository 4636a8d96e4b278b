package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCertificatePerSNI checks that each handshake gets the certificate of
// its own name, exact or wildcard, loaded lazily from the file store.
func TestCertificatePerSNI(t *testing.T) {
	w := newWorld(t, []string{"a.test", "b.test", "x.wild.test"}, "a.test", "b.test", "*.wild.test")
	p := start(t, w.config(""))
	for _, tc := range []struct {
		sni, wantSAN string
	}{
		{"a.test", "a.test"},
		{"b.test", "b.test"},
		{"x.wild.test", "*.wild.test"},
		{"A.Test", "a.test"},
	} {
		t.Run(tc.sni, func(t *testing.T) {
			conn, err := tls.Dial("tcp", p.HTTPSAddr, &tls.Config{ServerName: tc.sni, RootCAs: w.CA.Pool})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			leaf := conn.ConnectionState().PeerCertificates[0]
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != tc.wantSAN {
				t.Fatalf("served certificate for %v, want %s", leaf.DNSNames, tc.wantSAN)
			}
		})
	}
}

// TestUnknownSNIFailsHandshake checks that names without a certificate (and
// invalid names) fail the handshake with unrecognized_name, not a stranger's
// certificate.
func TestUnknownSNIFailsHandshake(t *testing.T) {
	w := newWorld(t, []string{"a.test"}, "a.test")
	p := start(t, w.config(""))
	for _, sni := range []string{"nope.test", "../../etc/passwd", "a_b.test", strings.Repeat("a", 64) + ".test"} {
		t.Run(sni, func(t *testing.T) {
			conn, err := tls.Dial("tcp", p.HTTPSAddr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
			if err == nil {
				leaf := conn.ConnectionState().PeerCertificates[0]
				conn.Close()
				t.Fatalf("handshake for %q succeeded with certificate for %v", sni, leaf.DNSNames)
			}
			if !strings.Contains(err.Error(), "unrecognized name") {
				t.Fatalf("handshake error %q, want the unrecognized_name alert", err)
			}
		})
	}
}

// TestMisdirectedRequest checks the 421 answer when the Host is not covered
// by the certificate chosen by SNI, over HTTP/1.1, HTTP/2 and with an
// absolute-form request target.
func TestMisdirectedRequest(t *testing.T) {
	w := newWorld(t, []string{"a.test", "b.test", "x.wild.test", "y.wild.test"}, "a.test", "b.test", "*.wild.test")
	p := start(t, w.config(""))
	for _, h2 := range []bool{false, true} {
		name := map[bool]string{false: "http1", true: "h2"}[h2]
		t.Run(name, func(t *testing.T) {
			c := tlsClient(p.HTTPSAddr, "a.test", w.CA.Pool, h2)
			req, _ := http.NewRequest("GET", "https://b.test/", nil)
			resp := do(t, c, req)
			if resp.StatusCode != http.StatusMisdirectedRequest {
				t.Fatalf("Host b.test over SNI a.test: status %d, want 421", resp.StatusCode)
			}
			if wantProto := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != wantProto {
				t.Fatalf("spoke HTTP/%d, want %d", resp.ProtoMajor, wantProto)
			}
			req, _ = http.NewRequest("GET", "https://a.test/", nil)
			if resp := do(t, c, req); resp.StatusCode != 200 {
				t.Fatalf("Host a.test over SNI a.test: status %d", resp.StatusCode)
			}
			// A name covered by the same wildcard certificate may share the
			// connection (HTTP/2 coalescing).
			cw := tlsClient(p.HTTPSAddr, "x.wild.test", w.CA.Pool, h2)
			req, _ = http.NewRequest("GET", "https://y.wild.test/", nil)
			if resp := do(t, cw, req); resp.StatusCode != 200 {
				t.Fatalf("y.wild.test over SNI x.wild.test: status %d, want 200", resp.StatusCode)
			}
		})
	}
	t.Run("absolute-form", func(t *testing.T) {
		conn, err := tls.Dial("tcp", p.HTTPSAddr, &tls.Config{ServerName: "a.test", RootCAs: w.CA.Pool, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET https://b.test/ HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Fatalf("absolute-form b.test over SNI a.test: status %d, want 421", resp.StatusCode)
		}
	})
}

// TestUnknownHost checks that a name with no tenant gets 404 with a body that
// does not depend on the name.
func TestUnknownHost(t *testing.T) {
	w := newWorld(t, []string{"a.test"})
	p := start(t, w.config(""))
	var bodies []string
	for _, host := range []string{"nope.test", "other.example"} {
		status, body := rawHTTP(t, p.HTTPAddr, fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host))
		if status != 404 {
			t.Fatalf("Host %s: status %d, want 404", host, status)
		}
		bodies = append(bodies, body)
	}
	if bodies[0] != bodies[1] {
		t.Fatalf("404 bodies differ by host: %q vs %q", bodies[0], bodies[1])
	}
	if status, _ := rawHTTP(t, p.HTTPAddr, "GET / HTTP/1.1\r\nHost: ..\r\nConnection: close\r\n\r\n"); status != 400 && status != 404 {
		t.Fatalf("Host '..': status %d, want 400 or 404", status)
	}
}

// TestConfinement sends traversal attempts as raw bytes (no client-side
// normalization) and checks that nothing outside the tenant's docroot is
// served, while a symlink inside the docroot works.
func TestConfinement(t *testing.T) {
	w := newWorld(t, []string{"a.test", "b.test"})
	w.writeFile(t, "b.test", "secret.txt", "TENANT-B-SECRET\n")
	w.writeFile(t, "a.test", "inner/real.txt", "inner file\n")
	w.writeFile(t, "a.test", ".env", "A-DOTFILE\n")
	w.writeFile(t, "a.test", ".git/config", "A-GIT\n")
	adoc := filepath.Join(w.Sites, "a.test", "htdocs")
	bsecret := filepath.Join(w.Sites, "b.test", "htdocs", "secret.txt")
	must(t, os.Symlink(bsecret, filepath.Join(adoc, "abs-link")))
	must(t, os.Symlink("../../b.test/htdocs/secret.txt", filepath.Join(adoc, "rel-link")))
	must(t, os.Symlink(filepath.Join(w.Sites, "b.test", "htdocs"), filepath.Join(adoc, "dir-link")))
	must(t, os.Symlink("inner/real.txt", filepath.Join(adoc, "good-link")))
	p := start(t, w.config(""))

	for _, path := range []string{
		"/../b.test/htdocs/secret.txt", "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
		"/%252e%252e/etc/passwd", "/..%2fb.test%2fhtdocs%2fsecret.txt", "/..%5c..%5cetc/passwd",
		"/..\\..\\etc\\passwd", "/index.html%00.txt", "//etc/passwd", "/.%2e/.%2e/etc/passwd",
		"/abs-link", "/rel-link", "/dir-link/secret.txt", "/.env", "/.git/config", "/%2eenv",
		"/inner/../.env", "/.git%2fconfig",
	} {
		t.Run(path, func(t *testing.T) {
			status, body := rawHTTP(t, p.HTTPAddr, "GET "+path+" HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
			if strings.Contains(body, "TENANT-B") || strings.Contains(body, "root:") || strings.Contains(body, "A-DOTFILE") || strings.Contains(body, "A-GIT") {
				t.Fatalf("leak: status %d body %q", status, body)
			}
			if status != 400 && status != 403 && status != 404 {
				t.Fatalf("status %d, want 400, 403 or 404", status)
			}
			if strings.Contains(body, w.Dir) {
				t.Fatalf("error body reveals a filesystem path: %q", body)
			}
		})
	}
	status, body := rawHTTP(t, p.HTTPAddr, "GET /good-link HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	if status != 200 || body != "inner file\n" {
		t.Fatalf("inner symlink: status %d body %q, want 200 and the file", status, body)
	}
}

// TestRangesAndConditionals checks ServeContent semantics and the cap on
// the number of ranges.
func TestRangesAndConditionals(t *testing.T) {
	w := newWorld(t, []string{"a.test"}, "a.test")
	w.writeFile(t, "a.test", "data.bin", strings.Repeat("0123456789", 3000))
	p := start(t, w.config(""))
	c := tlsClient(p.HTTPSAddr, "a.test", w.CA.Pool, false)
	get := func(hdr map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", "https://a.test/data.bin", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp := do(t, c, req)
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get(nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || len(body) != 30000 || etag == "" {
		t.Fatalf("plain GET: %d, %d bytes, ETag %q", resp.StatusCode, len(body), etag)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("missing nosniff")
	}
	if resp, body := get(map[string]string{"Range": "bytes=10-19"}); resp.StatusCode != 206 || body != "0123456789" {
		t.Fatalf("single range: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(map[string]string{"Range": "bytes=0-0,100-100"}); resp.StatusCode != 206 ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") {
		t.Fatalf("multi range: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	many := "bytes=" + strings.TrimSuffix(strings.Repeat("0-0,", 5000), ",")
	if resp, body := get(map[string]string{"Range": many}); resp.StatusCode != 200 || len(body) != 30000 {
		t.Fatalf("5000 ranges: %d with %d bytes, want 200 with the whole file", resp.StatusCode, len(body))
	}
	if resp, _ := get(map[string]string{"If-None-Match": etag}); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: %d, want 304", resp.StatusCode)
	}
	if resp, _ := get(map[string]string{"If-Match": `"nope"`}); resp.StatusCode != 412 {
		t.Fatalf("If-Match mismatch: %d, want 412", resp.StatusCode)
	}
	if resp, _ := get(map[string]string{"If-Range": `"old"`, "Range": "bytes=0-0"}); resp.StatusCode != 200 {
		t.Fatalf("stale If-Range: %d, want 200", resp.StatusCode)
	}
	req, _ := http.NewRequest("DELETE", "https://a.test/data.bin", nil)
	if resp := do(t, c, req); resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Fatalf("DELETE: %d Allow=%q, want 405 with Allow", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestNewTenantWithoutRestart checks that a tenant directory created while
// the server runs starts serving, and a removed one stops, without a restart.
func TestNewTenantWithoutRestart(t *testing.T) {
	w := newWorld(t, []string{"a.test"})
	p := start(t, strings.Replace(w.config(""), "sites:\n", "sites:\n  cache_ttl: 100ms\n", 1))
	req := "GET / HTTP/1.1\r\nHost: new.test\r\nConnection: close\r\n\r\n"
	if status, _ := rawHTTP(t, p.HTTPAddr, req); status != 404 {
		t.Fatalf("before creation: %d, want 404", status)
	}
	w.addTenant(t, "new.test")
	if !eventually(5*time.Second, func() bool { s, _ := rawHTTP(t, p.HTTPAddr, req); return s == 200 }) {
		t.Fatal("new tenant not served after its directory appeared")
	}
	must(t, os.RemoveAll(filepath.Join(w.Sites, "new.test")))
	if !eventually(5*time.Second, func() bool { s, _ := rawHTTP(t, p.HTTPAddr, req); return s == 404 }) {
		t.Fatal("removed tenant still served")
	}
}

// TestReload checks SIGHUP with a good configuration (applied) and with a
// broken and an empty one (rejected, the running configuration keeps serving).
func TestReload(t *testing.T) {
	w := newWorld(t, []string{"a.test"})
	w.writeFile(t, "a.test", "home.html", "home page\n")
	base := w.config("")
	p := start(t, base)
	req := "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
	if _, body := rawHTTP(t, p.HTTPAddr, req); body != "tenant a.test\n" {
		t.Fatalf("before reload: %q", body)
	}
	for i, bad := range []string{"sites: [\n", "", "sites:\n  cache_sise: 3\n"} {
		must(t, os.WriteFile(p.ConfigPath, []byte(bad), 0o644))
		p.signal(syscall.SIGHUP)
		if !p.waitOutputCount("reload failed", i+1, 10*time.Second) {
			t.Fatalf("bad config %q: no reload error logged", bad)
		}
		if status, body := rawHTTP(t, p.HTTPAddr, req); status != 200 || body != "tenant a.test\n" {
			t.Fatalf("after bad config %q: %d %q", bad, status, body)
		}
	}
	good := strings.Replace(base, "sites:\n", "sites:\n  index: [home.html]\n", 1)
	must(t, os.WriteFile(p.ConfigPath, []byte(good), 0o644))
	p.signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool { _, body := rawHTTP(t, p.HTTPAddr, req); return body == "home page\n" }) {
		t.Fatalf("good config not applied\n%s", p.Output())
	}
}

// TestGracefulShutdown checks that SIGTERM lets an in-flight slow download
// finish and that the process then exits 0.
func TestGracefulShutdown(t *testing.T) {
	w := newWorld(t, []string{"a.test"})
	const size = 4 << 20
	w.writeFile(t, "a.test", "big.bin", strings.Repeat("x", size))
	p := start(t, w.config(""))
	conn, err := net.Dial("tcp", p.HTTPAddr)
	must(t, err)
	defer conn.Close()
	// A small receive buffer keeps most of the body in flight at SIGTERM.
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(16 << 10)
	}
	fmt.Fprintf(conn, "GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	must(t, err)
	first := make([]byte, 64<<10)
	_, err = io.ReadFull(resp.Body, first)
	must(t, err)
	p.signal(syscall.SIGTERM)
	// New connections are refused once the listeners are closed.
	if !eventually(5*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", p.HTTPAddr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return true
	}) {
		t.Fatal("listener still accepting after SIGTERM")
	}
	n, err := io.Copy(io.Discard, slowReader{resp.Body})
	if err != nil || int(n)+len(first) != size {
		t.Fatalf("download cut by shutdown: got %d of %d bytes, err %v", int(n)+len(first), size, err)
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Fatalf("exit: %v", p.waitErr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("process did not exit after the drain")
	}
}

// slowReader reads in small pieces with pauses, as a slow client does.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(b []byte) (int, error) {
	if len(b) > 256<<10 {
		b = b[:256<<10]
	}
	time.Sleep(5 * time.Millisecond)
	return s.r.Read(b)
}
