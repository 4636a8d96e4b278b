// Package abuse attacks the real massvhost binary the way hostile tenants,
// hostile clients and failing infrastructure do, and checks that the damage
// stays where it belongs: one tenant's fork bomb, memory hog or disk filler
// does not slow another tenant down; slow, idle and half-open clients are
// cut at the configured timeouts and give their file descriptors back; a
// paused, partitioned or restarted Redis, a certificate file replaced while
// it is read and a full log disk never stop cached sites from being served.
//
// The binary is built once in TestMain and started per test with a
// configuration on loopback ports chosen by the OS. Tests that switch uids
// need root and skip otherwise. Every bound here is generous: they detect a
// missing protection (a connection that is never closed, a process that is
// never killed), not a slow machine.
package abuse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/test/proctest"
)

// binary is the massvhost binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	// The deployed pair: spawn cost outside the tenant's cgroup is the small
	// launcher's start-up, not the server binary's.
	proctest.Main(m, "abuse", &binary, true)
}

// Tenant uids. They are apart from the uids of other packages' fixtures,
// so that RLIMIT_NPROC (counted per uid) and the leftover-process scan see
// only this package's scripts even when packages run in parallel.
const (
	uidA = 20101
	uidB = 20102
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: scripts run as numeric tenant uids (CI runs as root)")
	}
}

// world is a generated tenant tree and certificate store.
type world struct {
	Dir     string
	Sites   string
	CertDir string
	DataDir string
	CA      *certtest.CA
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	proctest.MakeReachable(t, dir)
	w := &world{
		Dir:     dir,
		Sites:   filepath.Join(dir, "sites"),
		CertDir: filepath.Join(dir, "certs"),
		DataDir: filepath.Join(dir, "data"),
		CA:      certtest.NewCA(t),
	}
	for _, d := range []string{w.Sites, w.CertDir} {
		must(t, os.MkdirAll(d, 0o755))
	}
	return w
}

// addTenant creates <sites>/<host>/{htdocs,cgi-bin} with an index.html
// naming the host, owned by uid (gid = uid) when uid >= 0.
func (w *world) addTenant(t *testing.T, host string, uid int) {
	t.Helper()
	root := filepath.Join(w.Sites, host)
	for _, d := range []string{root, filepath.Join(root, "htdocs"), filepath.Join(root, "cgi-bin")} {
		must(t, os.MkdirAll(d, 0o755))
		w.own(t, d, uid)
	}
	w.writeFile(t, host, "htdocs/index.html", "tenant "+host+"\n", 0o644, uid)
}

// writeFile writes rel below the tenant directory of host.
func (w *world) writeFile(t *testing.T, host, rel, content string, mode os.FileMode, uid int) {
	t.Helper()
	p := filepath.Join(w.Sites, host, filepath.FromSlash(rel))
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), mode))
	must(t, os.Chmod(p, mode))
	w.own(t, p, uid)
}

// script installs a CGI script in host's cgi-bin.
func (w *world) script(t *testing.T, host, name, body string, uid int) {
	t.Helper()
	w.writeFile(t, host, "cgi-bin/"+name, body, 0o755, uid)
}

func (w *world) own(t *testing.T, p string, uid int) {
	t.Helper()
	if uid >= 0 {
		must(t, os.Lchown(p, uid, uid))
	}
}

// addCert stores a certificate for name in the file store.
func (w *world) addCert(t *testing.T, name string) {
	t.Helper()
	certPEM, keyPEM := w.CA.Leaf(t, name)
	certtest.WritePair(t, w.CertDir, name, certPEM, keyPEM)
}

// settings is a configuration as section → key → YAML value; config
// renders it on top of the world's base configuration, so that tests name
// only what they change and no key is ever written twice.
type settings map[string]map[string]string

func (w *world) config(over settings) string {
	base := settings{
		"listen":   {"http": `"127.0.0.1:0"`, "https": `"127.0.0.1:0"`},
		"data_dir": {"": strconv.Quote(w.DataDir)},
		"sites":    {"root": strconv.Quote(w.Sites)},
		"certs":    {"store": "files", "dir": strconv.Quote(w.CertDir), "local_ca": "false"},
		"log":      {"access": "off", "level": "info"},
		"admin":    {"listen": `"127.0.0.1:0"`},
		"server":   {"max_conns_per_ip": "0"},
	}
	for sec, kv := range over {
		if base[sec] == nil {
			base[sec] = map[string]string{}
		}
		for k, v := range kv {
			base[sec][k] = v
		}
	}
	var b strings.Builder
	for _, sec := range sortedKeys(base) {
		kv := base[sec]
		if v, ok := kv[""]; ok {
			fmt.Fprintf(&b, "%s: %s\n", sec, v)
			continue
		}
		fmt.Fprintf(&b, "%s:\n", sec)
		// Nested sections (cgi.limits) are written as "limits.cpu".
		nested := map[string][]string{}
		for _, k := range sortedKeys(kv) {
			if parent, child, ok := strings.Cut(k, "."); ok {
				nested[parent] = append(nested[parent], fmt.Sprintf("    %s: %s\n", child, kv[k]))
				continue
			}
			fmt.Fprintf(&b, "  %s: %s\n", k, kv[k])
		}
		for _, parent := range sortedKeys(nested) {
			fmt.Fprintf(&b, "  %s:\n%s", parent, strings.Join(nested[parent], ""))
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// proc is a running massvhost.
type proc struct {
	*proctest.Server
	t *testing.T
}

// start runs `massvhost serve` with cfg until the test ends.
func start(t *testing.T, cfg string) *proc {
	t.Helper()
	return &proc{Server: proctest.Start(t, binary, filepath.Join(t.TempDir(), "massvhost.yaml"), cfg), t: t}
}

func (p *proc) alive() bool                { return p.Alive() }
func (p *proc) reload(cfg string)          { p.Reload(cfg) }
func (p *proc) stats() proctest.Stats      { return p.Stats() }
func (p *proc) metric(name string) float64 { return p.Metric(name) }

var (
	uidProcs   = proctest.UIDProcs
	killUID    = proctest.KillUID
	eventually = proctest.Eventually
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// httpClient returns a plain-HTTP client that connects to addr whatever the
// URL's host says.
func httpClient(addr string, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 64,
		},
		Timeout: timeout,
	}
}

// tlsClient returns an HTTPS client that connects to addr with SNI sni,
// trusting pool; h2 selects HTTP/2. With fresh set, every request makes a
// new connection and a full handshake (no keep-alive, no resumption).
func tlsClient(addr, sni string, pool *x509.CertPool, h2, fresh bool, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{ServerName: sni, RootCAs: pool, SessionTicketsDisabled: fresh},
		ForceAttemptHTTP2:   h2,
		DisableKeepAlives:   fresh,
		MaxIdleConnsPerHost: 64,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// get performs a GET and returns the status and body (status 0 and the
// error text on a transport error).
func get(c *http.Client, url string) (int, string) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}
