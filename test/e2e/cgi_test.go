package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cgiWorld is a world with two tenants carrying CGI scripts: a.test (owned
// by uid 20001 when the tests run as root) and b.test (uid 20002). The
// long-running scripts sleep for mark, so their processes can be found.
type cgiWorld struct {
	*world
	mark string
}

func newCGIWorld(t *testing.T) *cgiWorld {
	t.Helper()
	w := &cgiWorld{world: newWorld(t, []string{"a.test", "b.test"}, "a.test", "b.test"), mark: newCGIMark()}
	text := "Content-Type: text/plain\n"
	for _, s := range []struct{ host, rel, content string }{
		{"a.test", "cgi-bin/hello.cgi", cgiScript(text, `echo "hello from $SERVER_NAME"`)},
		{"a.test", "cgi-bin/env.cgi", cgiScript(text, "env")},
		{"a.test", "cgi-bin/echo.cgi", cgiScript(text, "cat")},
		{"a.test", "cgi-bin/id.cgi", cgiScript(text, "id -u; id -g; id -G")},
		// slow answers at once, then keeps running with a grandchild;
		// hang never answers. Both run until killed.
		{"a.test", "cgi-bin/slow.cgi", cgiScript(text, "sleep "+w.mark+" &\necho started\nsleep "+w.mark)},
		{"a.test", "cgi-bin/hang.cgi", "#!/bin/sh\nsleep " + w.mark + " &\nsleep " + w.mark + "\n"},
		{"a.test", "cgi-bin/local.cgi", cgiScript("Location: /landing.txt\n", "")},
		{"a.test", "cgi-bin/cross.cgi", cgiScript("Location: //b.test/secret.txt\n", "")},
		{"a.test", "htdocs/x.cgi", cgiScript(text, "echo docroot script ran")},
		{"a.test", "htdocs/x.sh", "#!/bin/sh\necho EXECUTED\n"},
		{"a.test", "htdocs/app/index.cgi", cgiScript(text, "echo index script ran")},
		{"b.test", "cgi-bin/hello.cgi", cgiScript(text, `echo "hello from $SERVER_NAME"`)},
	} {
		w.addScript(t, s.host, s.rel, s.content)
	}
	w.writeFile(t, "a.test", "landing.txt", "landing of a.test\n")
	w.writeFile(t, "b.test", "secret.txt", "secret of b.test\n")
	w.chownTenant(t, "a.test", cgiTenantUID)
	w.chownTenant(t, "b.test", cgiOtherUID)
	return w
}

// serve starts massvhost for w with extra configuration (sections other
// than listen, data_dir, sites, certs, log and admin) and environment, and
// checks at the end of the test that no script process outlived it.
func (w *cgiWorld) serve(t *testing.T, extra string, env ...string) *proc {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "massvhost.yaml")
	must(t, os.WriteFile(cfgPath, []byte(w.config(extra)), 0o644))
	p := startServe(t, procOptions{args: []string{"--config", cfgPath}, env: env})
	checkNoStrays(t, p, w.mark)
	return p
}

func (w *cgiWorld) client(p *proc, host string, h2 bool) *http.Client {
	return tlsClient(p.HTTPSAddr, host, w.CA.Pool, h2)
}

func cgiGet(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	must(t, err)
	resp := do(t, c, req)
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestCGIHello runs a cgi-bin script over HTTPS with HTTP/1.1 and HTTP/2.
func TestCGIHello(t *testing.T) {
	w := newCGIWorld(t)
	p := w.serve(t, "")
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "h2"}[h2], func(t *testing.T) {
			resp, body := cgiGet(t, w.client(p, "a.test", h2), "https://a.test/cgi-bin/hello.cgi")
			if resp.StatusCode != http.StatusOK || body != "hello from a.test\n" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			if wantMajor := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != wantMajor {
				t.Errorf("protocol %s", resp.Proto)
			}
		})
	}
}

// TestCGIDocroot: a docroot file with a CGI extension runs (AddHandler-like),
// index.cgi serves its directory, and an executable file without a CGI
// extension is served as its bytes, never run.
func TestCGIDocroot(t *testing.T) {
	w := newCGIWorld(t)
	p := w.serve(t, "", "MASSVHOST_SITES_INDEX=index.html,index.cgi")
	c := w.client(p, "a.test", false)
	for _, tc := range []struct{ path, want string }{
		{"/x.cgi", "docroot script ran\n"},
		{"/app/", "index script ran\n"},
		{"/x.sh", "#!/bin/sh\necho EXECUTED\n"},
	} {
		resp, body := cgiGet(t, c, "https://a.test"+tc.path)
		if resp.StatusCode != http.StatusOK || body != tc.want {
			t.Errorf("%s: status %d body %q, want 200 %q", tc.path, resp.StatusCode, body, tc.want)
		}
	}
}

// TestCGIEnvironment checks the RFC 3875 variables a script sees, and that
// neither a Proxy header (httpoxy) nor the server's own environment reaches
// it.
func TestCGIEnvironment(t *testing.T) {
	w := newCGIWorld(t)
	secret := "s3cr3t-" + rand.Text()
	p := w.serve(t, "", "SECRET_TOKEN="+secret)
	req, err := http.NewRequest(http.MethodGet, "https://a.test/cgi-bin/env.cgi/extra/path?q=1", nil)
	must(t, err)
	req.Header.Set("Proxy", "http://evil.example:1")
	req.Header.Set("X-Custom", "yes")
	resp := do(t, w.client(p, "a.test", false), req)
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	env := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	_, httpsPort, _ := strings.Cut(p.HTTPSAddr, ":")
	for k, want := range map[string]string{
		"SERVER_NAME":       "a.test",
		"HTTPS":             "on",
		"REQUEST_SCHEME":    "https",
		"SERVER_PORT":       httpsPort,
		"DOCUMENT_ROOT":     filepath.Join(w.Sites, "a.test", "htdocs"),
		"GATEWAY_INTERFACE": "CGI/1.1",
		"REQUEST_METHOD":    "GET",
		"SCRIPT_NAME":       "/cgi-bin/env.cgi",
		"SCRIPT_FILENAME":   filepath.Join(w.Sites, "a.test", "cgi-bin", "env.cgi"),
		"PATH_INFO":         "/extra/path",
		"QUERY_STRING":      "q=1",
		"REQUEST_URI":       "/cgi-bin/env.cgi/extra/path?q=1",
		"HTTP_X_CUSTOM":     "yes",
		"PATH":              "/usr/local/bin:/usr/bin:/bin",
		"REMOTE_ADDR":       "127.0.0.1",
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if v, ok := env["HTTP_PROXY"]; ok {
		t.Errorf("HTTP_PROXY = %q reached the script", v)
	}
	if strings.Contains(body, secret) || strings.Contains(body, "SECRET_TOKEN") {
		t.Errorf("the server's environment reached the script:\n%s", body)
	}
}

// TestCGIPost echoes a request body through a script and refuses one above
// cgi.max_body_bytes with 413.
func TestCGIPost(t *testing.T) {
	w := newCGIWorld(t)
	p := w.serve(t, "cgi:\n  max_body_bytes: 1024\n")
	for _, h2 := range []bool{false, true} {
		c := w.client(p, "a.test", h2)
		small := []byte(rand.Text() + rand.Text())
		req, err := http.NewRequest(http.MethodPost, "https://a.test/cgi-bin/echo.cgi", bytes.NewReader(small))
		must(t, err)
		resp := do(t, c, req)
		if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || !bytes.Equal(body, small) {
			t.Errorf("h2=%v: echo: status %d body %q, want %q", h2, resp.StatusCode, body, small)
		}
		req, err = http.NewRequest(http.MethodPost, "https://a.test/cgi-bin/echo.cgi", bytes.NewReader(make([]byte, 2000)))
		must(t, err)
		if resp := do(t, c, req); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("h2=%v: 2000-byte body: status %d, want 413", h2, resp.StatusCode)
		}
	}
}

// TestCGITimeout: a script that never answers gets 504 after cgi.timeout,
// and its whole process group, the grandchild included, is gone.
func TestCGITimeout(t *testing.T) {
	w := newCGIWorld(t)
	p := w.serve(t, "cgi:\n  timeout: 1s\n")
	resp, _ := cgiGet(t, w.client(p, "a.test", false), "https://a.test/cgi-bin/hang.cgi")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	waitNoMarked(t, w.mark, 10*time.Second)
}

// TestCGIClientDisconnect: a client that goes away mid-response takes the
// script's process group with it.
func TestCGIClientDisconnect(t *testing.T) {
	w := newCGIWorld(t)
	p := w.serve(t, "")
	conn, err := tls.Dial("tcp", p.HTTPSAddr, &tls.Config{ServerName: "a.test", RootCAs: w.CA.Pool})
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = io.WriteString(conn, "GET /cgi-bin/slow.cgi HTTP/1.1\r\nHost: a.test\r\n\r\n")
	must(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	must(t, err)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "started\n" {
		t.Fatalf("status %d, first line %q, %v", resp.StatusCode, line, err)
	}
	waitMarkedCount(t, w.mark, 2) // the script's sleep and its background one
	conn.Close()
	waitNoMarked(t, w.mark, 10*time.Second)
}

// TestCGIConcurrencyCap: beyond cgi.max_per_tenant a tenant's request gets
// 503 with Retry-After at once, while another tenant is unaffected.
func TestCGIConcurrencyCap(t *testing.T) {
	w := newCGIWorld(t)
	p := w.serve(t, "cgi:\n  max_per_tenant: 1\n  max_total: 4\n")
	busy := w.client(p, "a.test", false)
	resp, err := busy.Get("https://a.test/cgi-bin/slow.cgi")
	must(t, err)
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("slow.cgi: status %d, first line %q, %v", resp.StatusCode, line, err)
	}
	waitMarkedCount(t, w.mark, 2)
	over, _ := cgiGet(t, w.client(p, "a.test", false), "https://a.test/cgi-bin/hello.cgi")
	if over.StatusCode != http.StatusServiceUnavailable || over.Header.Get("Retry-After") == "" {
		t.Errorf("second script of a.test: status %d Retry-After %q, want 503 with Retry-After",
			over.StatusCode, over.Header.Get("Retry-After"))
	}
	if other, body := cgiGet(t, w.client(p, "b.test", false), "https://b.test/cgi-bin/hello.cgi"); other.StatusCode != http.StatusOK {
		t.Errorf("b.test while a.test is at its cap: status %d %q", other.StatusCode, body)
	}
	resp.Body.Close() // unfinished: the connection closes, the script is killed
	busy.CloseIdleConnections()
	waitNoMarked(t, w.mark, 10*time.Second)
	if again, _ := cgiGet(t, w.client(p, "a.test", false), "https://a.test/cgi-bin/hello.cgi"); again.StatusCode != http.StatusOK {
		t.Errorf("after the slot was released: status %d", again.StatusCode)
	}
}

// TestCGIRedirects: "Location: /path" is served within the same site;
// "Location: //b.test/..." goes to the client and never serves b.test's
// content under a.test.
func TestCGIRedirects(t *testing.T) {
	w := newCGIWorld(t)
	p := w.serve(t, "")
	c := w.client(p, "a.test", false)
	if resp, body := cgiGet(t, c, "https://a.test/cgi-bin/local.cgi"); resp.StatusCode != http.StatusOK || body != "landing of a.test\n" {
		t.Errorf("local redirect: status %d body %q", resp.StatusCode, body)
	}
	resp, body := cgiGet(t, c, "https://a.test/cgi-bin/cross.cgi")
	if strings.Contains(body, "secret of b.test") {
		t.Fatalf("a.test's script served b.test's file: status %d body %q", resp.StatusCode, body)
	}
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "//b.test/secret.txt" {
		t.Errorf("scheme-relative Location: status %d Location %q, want a 302 to the client",
			resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestCGIIdentity, as root: a script runs as the uid and gid owning its
// tenant's tree, with no other group; a root-owned tenant (like the shipped
// examples) runs as cgi.anonymous_user, nobody by default.
func TestCGIIdentity(t *testing.T) {
	if !cgiAsRoot() {
		t.Skip("needs root: scripts run as the server's user otherwise")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	w := newCGIWorld(t)
	w.addTenant(t, "root.test")
	w.addCert(t, "root.test")
	w.addScript(t, "root.test", "cgi-bin/id.cgi", cgiScript("Content-Type: text/plain\n", "id -u; id -g; id -G"))
	p := w.serve(t, "")
	for _, tc := range []struct{ host, want string }{
		{"a.test", "20001\n20001\n20001\n"},
		{"root.test", fmt.Sprintf("%s\n%s\n%s\n", nobody.Uid, nobody.Gid, nobody.Gid)},
	} {
		resp, body := cgiGet(t, w.client(p, tc.host, false), "https://"+tc.host+"/cgi-bin/id.cgi")
		if resp.StatusCode != http.StatusOK || body != tc.want {
			t.Errorf("%s: status %d, id says %q, want %q", tc.host, resp.StatusCode, body, tc.want)
		}
	}
	// With anonymous_user "" a root-owned tenant runs nothing.
	p = w.serve(t, "cgi:\n  anonymous_user: \"\"\n")
	if resp, _ := cgiGet(t, w.client(p, "root.test", false), "https://root.test/cgi-bin/id.cgi"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("root-owned tenant without anonymous_user: status %d, want 403", resp.StatusCode)
	}
}

// TestCGIZeroConfigDemo runs the binary as `massvhost serve` from the
// repository root with no configuration file, as the README's demo does,
// and runs an example tenant's script: as root, as the anonymous user
// (the examples are root-owned then); otherwise as the server's user.
func TestCGIZeroConfigDemo(t *testing.T) {
	repo, err := filepath.Abs("../..")
	must(t, err)
	if _, err := os.Stat(filepath.Join(repo, "examples/sites/alpha.test/cgi-bin/hello.cgi")); err != nil {
		t.Skipf("no example tenant: %v", err)
	}
	p := startServe(t, procOptions{dir: repo, env: []string{
		"MASSVHOST_DATA_DIR=" + t.TempDir(),
		"MASSVHOST_LISTEN_HTTP=127.0.0.1:0",
		"MASSVHOST_LISTEN_HTTPS=127.0.0.1:0",
		"MASSVHOST_ADMIN_LISTEN=",
	}})
	checkNoStrays(t, p)
	status, body := rawHTTP(t, p.HTTPAddr, "GET /cgi-bin/hello.cgi HTTP/1.1\r\nHost: alpha.test\r\nConnection: close\r\n\r\n")
	if status != http.StatusOK || !strings.Contains(body, "hello from alpha.test") {
		t.Fatalf("status %d body %q", status, body)
	}
}
