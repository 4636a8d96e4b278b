// Package e2e drives the real massvhost binary: it is built once in TestMain,
// started with a configuration file on loopback ports chosen by the OS, and
// exercised with real TLS and HTTP clients.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/test/proctest"
)

// binary is the path of the massvhost binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	proctest.Main(m, "e2e", &binary, false)
}

// world is a generated tenant tree with a certificate store.
type world struct {
	Dir     string // temp root
	Sites   string // sites.root
	CertDir string // certs.dir
	DataDir string
	CA      *certtest.CA
	LogFile string
}

// newWorld creates tenants (each with htdocs/index.html naming the tenant)
// and, for each name in certNames, a certificate pair in the file store.
func newWorld(t *testing.T, tenants []string, certNames ...string) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{
		Dir:     dir,
		Sites:   filepath.Join(dir, "sites"),
		CertDir: filepath.Join(dir, "certs"),
		DataDir: filepath.Join(dir, "data"),
		CA:      certtest.NewCA(t),
		LogFile: filepath.Join(dir, "access.log"),
	}
	for _, d := range []string{w.Sites, w.CertDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tenant := range tenants {
		w.addTenant(t, tenant)
	}
	for _, name := range certNames {
		w.addCert(t, name)
	}
	return w
}

func (w *world) addTenant(t *testing.T, host string) {
	t.Helper()
	docroot := filepath.Join(w.Sites, host, "htdocs")
	if err := os.MkdirAll(docroot, 0o755); err != nil {
		t.Fatal(err)
	}
	w.writeFile(t, host, "index.html", "tenant "+host+"\n")
}

func (w *world) writeFile(t *testing.T, host, rel, content string) {
	t.Helper()
	p := filepath.Join(w.Sites, host, "htdocs", filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// addCert stores a certificate for name ("a.test" or "*.a.test") whose SANs
// are name itself.
func (w *world) addCert(t *testing.T, name string) {
	t.Helper()
	certPEM, keyPEM := w.CA.Leaf(t, name)
	certtest.WritePair(t, w.CertDir, name, certPEM, keyPEM)
}

// config returns a YAML configuration for the world; extra is appended
// (later keys of a YAML document must not repeat earlier ones, so callers
// pass sections not already present).
func (w *world) config(extra string) string {
	return fmt.Sprintf(`listen:
  http: "127.0.0.1:0"
  https: "127.0.0.1:0"
data_dir: %q
sites:
  root: %q
certs:
  store: files
  dir: %q
  local_ca: false
log:
  access: %q
  level: debug
admin:
  listen: ""
`, w.DataDir, w.Sites, w.CertDir, w.LogFile) + extra
}

// proc is a running massvhost.
type proc struct {
	t          *testing.T
	cmd        *exec.Cmd
	HTTPAddr   string
	HTTPSAddr  string
	ConfigPath string
	logMu      sync.Mutex
	log        bytes.Buffer
	exited     chan struct{}
	waitErr    error
}

var listeningRE = regexp.MustCompile(`massvhost: listening http=(\S*) https=(\S*)`)

// start runs `massvhost serve --config <file>` with cfg and waits for its
// listening line.
func start(t *testing.T, cfg string, extraArgs ...string) *proc {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "massvhost.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, procOptions{args: append([]string{"--config", cfgPath}, extraArgs...)})
	p.ConfigPath = cfgPath
	return p
}

func (p *proc) Output() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

// waitOutput waits (bounded) until the process output contains s.
func (p *proc) waitOutput(s string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), s) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// tlsClient returns an HTTP client that connects to addr whatever the URL's
// host, with SNI sni and trusting pool. h2 selects HTTP/2.
func tlsClient(addr, sni string, pool *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{ServerName: sni, RootCAs: pool},
		ForceAttemptHTTP2: h2,
		DisableKeepAlives: false,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
