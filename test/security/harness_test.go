// Package security is massvhost's regression suite for the threat catalogue
// (THREATS.md): one file per threat ID, each replaying the exploit bytes
// against the real binary over loopback and checking the protection.
//
// The binary is built once in TestMain and every test starts its own server
// with a configuration file on ports chosen by the OS. Tests that switch
// identities (CGI as the tenant's uid, suEXEC-style ownership checks) need
// root; they run for real as root, as CI does, with fresh numeric uids
// chowned onto temporary tenant trees, and are skipped with the reason
// otherwise.
package security

import (
	"bufio"
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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/test/proctest"
)

// binary is the path of the massvhost binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	proctest.Main(m, "security", &binary, false)
}

// Tenant uids are allocated from firstUID up, a range apart from the other
// suites' fixtures (2000x in the abuse suite, 52001+ in package cgi), so that
// a scan of /proc by uid sees only one test's processes, and RLIMIT_NPROC
// (counted per uid) is not shared with anyone.
const firstUID = 41001

var nextUID atomic.Uint32

func init() { nextUID.Store(firstUID) }

func isRoot() bool { return os.Geteuid() == 0 }

// requireRoot skips a test that needs to switch identities.
func requireRoot(t *testing.T) {
	t.Helper()
	if !isRoot() {
		t.Skip("needs root: scripts run as per-tenant uids chowned onto the test tree (CI runs this suite as root)")
	}
}

// world is a generated tenant tree with a certificate store.
type world struct {
	t       *testing.T
	Dir     string // temp root, mode 0755 so tenant uids can reach their trees
	Sites   string // sites.root
	CertDir string // certs.dir
	DataDir string
	CA      *certtest.CA
	Access  string // access log file
	tenants map[string]*tenant
}

// tenant is one site: <sites>/<name>/{htdocs,cgi-bin}, owned by its own
// uid/gid when the suite runs as root. Its top directory is 0750, so no
// other tenant's scripts can enter it.
type tenant struct {
	w        *world
	Name     string
	UID, GID uint32
	Root     string
	DocRoot  string
	CGIBin   string
}

// newWorld creates the named tenants, each with htdocs/index.html reading
// "tenant <name>\n" and a certificate for its name.
func newWorld(t *testing.T, names ...string) *world {
	t.Helper()
	dir, err := os.MkdirTemp("", "massvhost-sec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	w := &world{
		t:       t,
		Dir:     dir,
		Sites:   filepath.Join(dir, "sites"),
		CertDir: filepath.Join(dir, "certs"),
		DataDir: filepath.Join(dir, "data"),
		CA:      certtest.NewCA(t),
		Access:  filepath.Join(dir, "access.log"),
		tenants: map[string]*tenant{},
	}
	must(t, os.MkdirAll(w.Sites, 0o755))
	must(t, os.MkdirAll(w.CertDir, 0o755))
	for _, name := range names {
		w.addTenant(name)
		w.addCert(name)
	}
	return w
}

// tenant returns the tenant named name.
func (w *world) tenant(name string) *tenant {
	tn, ok := w.tenants[name]
	if !ok {
		w.t.Fatalf("no tenant %s", name)
	}
	return tn
}

func (w *world) addTenant(name string) *tenant {
	w.t.Helper()
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	if isRoot() {
		uid = nextUID.Add(1) - 1
		gid = uid
	}
	root := filepath.Join(w.Sites, name)
	tn := &tenant{w: w, Name: name, UID: uid, GID: gid, Root: root,
		DocRoot: filepath.Join(root, "htdocs"), CGIBin: filepath.Join(root, "cgi-bin")}
	tn.mkdir(root, 0o750)
	tn.mkdir(tn.DocRoot, 0o755)
	tn.mkdir(tn.CGIBin, 0o755)
	tn.file("index.html", "tenant "+name+"\n", 0o644)
	w.tenants[name] = tn
	return tn
}

// addCert stores a certificate for name whose only SAN is name.
func (w *world) addCert(name string) {
	w.t.Helper()
	certPEM, keyPEM := w.CA.Leaf(w.t, name)
	certtest.WritePair(w.t, w.CertDir, name, certPEM, keyPEM)
}

func (tn *tenant) mkdir(p string, mode os.FileMode) {
	t := tn.w.t
	t.Helper()
	must(t, os.MkdirAll(p, mode))
	must(t, os.Chmod(p, mode))
	must(t, os.Lchown(p, int(tn.UID), int(tn.GID)))
}

// file writes rel below the docroot, owned by the tenant.
func (tn *tenant) file(rel, content string, mode os.FileMode) string {
	return tn.write(tn.DocRoot, rel, content, mode)
}

// script writes an executable CGI script into cgi-bin, owned by the tenant.
func (tn *tenant) script(rel, body string) string {
	return tn.write(tn.CGIBin, rel, "#!/bin/sh\n"+body, 0o755)
}

func (tn *tenant) write(base, rel, content string, mode os.FileMode) string {
	t := tn.w.t
	t.Helper()
	p := filepath.Join(base, filepath.FromSlash(rel))
	if d := filepath.Dir(p); d != base {
		tn.mkdir(d, 0o755)
	}
	must(t, os.WriteFile(p, []byte(content), mode))
	must(t, os.Chmod(p, mode))
	must(t, os.Lchown(p, int(tn.UID), int(tn.GID)))
	return p
}

// symlink creates a symlink at rel below the docroot, owned by the tenant.
func (tn *tenant) symlink(target, rel string) {
	t := tn.w.t
	t.Helper()
	p := filepath.Join(tn.DocRoot, filepath.FromSlash(rel))
	must(t, os.Symlink(target, p))
	must(t, os.Lchown(p, int(tn.UID), int(tn.GID)))
}

// cfg is what a test changes in the generated configuration. The string
// fields are extra YAML lines for their section, each indented two spaces.
type cfg struct {
	Sites, Certs, Server, CGI string
	LogLevel                  string // default info
	Tail                      string // extra top-level sections
}

// config returns a YAML configuration for the world: both listeners and the
// admin listener on loopback port 0, the file certificate store without a
// local CA, CGI with a 10s timeout unless c.CGI sets another.
func (w *world) config(c cfg) string {
	level := c.LogLevel
	if level == "" {
		level = "info"
	}
	cgiSection := c.CGI
	if !strings.Contains(cgiSection, "timeout:") {
		cgiSection = "  timeout: 10s\n" + cgiSection
	}
	return fmt.Sprintf(`listen:
  http: "127.0.0.1:0"
  https: "127.0.0.1:0"
data_dir: %q
sites:
  root: %q
  cache_ttl: 1s
%scerts:
  store: files
  dir: %q
  local_ca: false
%sserver:
  shutdown_timeout: 5s
%scgi:
  enabled: true
%slog:
  access: %q
  level: %s
admin:
  listen: "127.0.0.1:0"
`, w.DataDir, w.Sites, c.Sites, w.CertDir, c.Certs, c.Server, cgiSection, w.Access, level) + c.Tail
}

// proc is a running massvhost.
type proc struct {
	t          *testing.T
	cmd        *exec.Cmd
	HTTPAddr   string
	HTTPSAddr  string
	AdminAddr  string
	ConfigPath string
	logMu      sync.Mutex
	log        bytes.Buffer
	exited     chan struct{}
	waitErr    error
}

var listeningRE = regexp.MustCompile(`massvhost: listening http=(\S*) https=(\S*) admin=(\S*)`)

// startOpts change how the process is started.
type startOpts struct {
	ExtraFiles []*os.File // inherited without close-on-exec, as fds 3, 4, …
	Env        []string   // added to the environment
}

// start runs `massvhost serve --config <file>` and waits for its listening
// line. The process is killed (by its PID) when the test ends, after
// checking that its log holds no panic (HTTP-10).
func start(t *testing.T, config string, o ...startOpts) *proc {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "massvhost.yaml")
	must(t, os.WriteFile(cfgPath, []byte(config), 0o644))
	p := &proc{t: t, ConfigPath: cfgPath, exited: make(chan struct{})}
	p.cmd = exec.Command(binary, "serve", "--config", cfgPath)
	p.cmd.Env = os.Environ()
	for _, so := range o {
		p.cmd.ExtraFiles = append(p.cmd.ExtraFiles, so.ExtraFiles...)
		p.cmd.Env = append(p.cmd.Env, so.Env...)
	}
	stdout, err := p.cmd.StdoutPipe()
	must(t, err)
	p.cmd.Stderr = &lockedWriter{mu: &p.logMu, w: &p.log}
	must(t, p.cmd.Start())
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.logMu.Lock()
			p.log.WriteString(line + "\n")
			p.logMu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil && !sent {
				ready <- m[1:]
				sent = true
			}
		}
	}()
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		out := p.Output()
		for _, bad := range []string{"http: panic serving", "panic in handler", "goroutine "} {
			if strings.Contains(out, bad) {
				t.Errorf("HTTP-10: server log contains %q", bad)
			}
		}
		if t.Failed() {
			t.Logf("massvhost output (last 8 KiB):\n%s", tail(out, 8<<10))
		}
	})
	select {
	case addrs := <-ready:
		p.HTTPAddr, p.HTTPSAddr, p.AdminAddr = addrs[0], addrs[1], addrs[2]
	case <-p.exited:
		t.Fatalf("massvhost exited before listening: %v\n%s", p.waitErr, p.Output())
	case <-time.After(30 * time.Second):
		t.Fatalf("massvhost did not report its listeners\n%s", p.Output())
	}
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Output returns everything the process wrote to stdout and stderr.
func (p *proc) Output() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	must(p.t, p.cmd.Process.Signal(sig))
}

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
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

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or within passes; for state that
// changes asynchronously (process exit, reload), not for timing claims.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// response is one HTTP response read from a raw connection.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// rawHTTP writes raw request bytes to the plain-HTTP listener and returns
// the first response; Status 0 means the connection closed without one.
func (p *proc) raw(raw string) response {
	p.t.Helper()
	conn, err := net.DialTimeout("tcp", p.HTTPAddr, 5*time.Second)
	must(p.t, err)
	defer conn.Close()
	return exchange(p.t, conn, raw)
}

// rawTLS is raw over a TLS connection with the given SNI (certificate not
// verified; tests check it themselves where it matters).
func (p *proc) rawTLS(sni, raw string) response {
	p.t.Helper()
	conn, err := p.dialTLS(sni, nil)
	if err != nil {
		p.t.Fatalf("TLS dial with SNI %q: %v", sni, err)
	}
	defer conn.Close()
	return exchange(p.t, conn, raw)
}

func (p *proc) dialTLS(sni string, cfg *tls.Config) (*tls.Conn, error) {
	if cfg == nil {
		cfg = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	}
	cfg = cfg.Clone()
	cfg.ServerName = sni
	d := &net.Dialer{Timeout: 5 * time.Second}
	return tls.DialWithDialer(d, "tcp", p.HTTPSAddr, cfg)
}

func exchange(t *testing.T, conn net.Conn, raw string) response {
	t.Helper()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	rs := readResponses(conn, 1)
	if len(rs) == 0 {
		return response{}
	}
	return rs[0]
}

// readResponses reads up to max responses from conn until it is closed or
// goes quiet for a second after the last one.
func readResponses(conn net.Conn, max int) []response {
	br := bufio.NewReader(conn)
	var out []response
	for len(out) < max {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)})
		conn.SetReadDeadline(time.Now().Add(time.Second))
	}
	return out
}

// get is a GET for path with Host over the plain listener, closing the
// connection afterwards.
func (p *proc) get(host, path string) response {
	p.t.Helper()
	return p.raw("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")
}

// client returns an HTTP client that connects to the HTTPS listener
// whatever the URL's host, with SNI sni, trusting the world's CA. h2 selects
// HTTP/2.
func (p *proc) client(w *world, sni string, h2 bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, p.HTTPSAddr)
		},
		TLSClientConfig:   &tls.Config{ServerName: sni, RootCAs: w.CA.Pool},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// metrics returns the admin endpoint's Prometheus samples, keyed by the
// sample name with its labels as printed ("massvhost_cgi_spawned_total",
// `massvhost_config_reloads_total{result="failure"}`).
func (p *proc) metrics() map[string]float64 {
	p.t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + p.AdminAddr + "/metrics")
	must(p.t, err)
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// metric returns the sum of every sample of the metric name, whatever its
// labels.
func (p *proc) metric(name string) float64 {
	p.t.Helper()
	var sum float64
	for k, v := range p.metrics() {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum += v
		}
	}
	return sum
}

// tenantProc is a live process found in /proc.
type tenantProc struct {
	PID, PGID int
	UID       uint32
	Cmdline   string
}

func (tp tenantProc) String() string {
	return fmt.Sprintf("pid %d pgid %d uid %d %q", tp.PID, tp.PGID, tp.UID, tp.Cmdline)
}

// procsOf returns the live (not zombie) processes running as uid.
func procsOf(uid uint32) []tenantProc {
	entries, _ := os.ReadDir("/proc")
	var out []tenantProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(stat)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 4 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		var u uint64 = 1<<32 - 1
		for line := range strings.SplitSeq(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					u, _ = strconv.ParseUint(fs[0], 10, 32)
				}
				break
			}
		}
		if uint32(u) != uid {
			continue
		}
		pgid, _ := strconv.Atoi(f[2])
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, tenantProc{PID: pid, PGID: pgid, UID: uid,
			Cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))})
	}
	return out
}

// waitNoProcs polls until no live process runs as uid, failing the test
// with what is left after within.
func waitNoProcs(t *testing.T, uid uint32, within time.Duration) {
	t.Helper()
	var left []tenantProc
	if !eventually(within, func() bool { left = procsOf(uid); return len(left) == 0 }) {
		t.Errorf("tenant uid %d still has processes after %v: %v", uid, within, left)
	}
}

// killTenantProcs kills, by PID, processes a test's tenant left behind
// (only used for documented gaps, so the machine is left clean).
func killTenantProcs(uid uint32) {
	for _, tp := range procsOf(uid) {
		syscall.Kill(tp.PID, syscall.SIGKILL)
	}
}

// leafOf returns the certificate a TLS connection presented.
func leafOf(c *tls.Conn) *x509.Certificate {
	cs := c.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}

// abortWhen returns a context canceled as soon as cond holds (polled), or
// after a minute at the latest.
func abortWhen(cond func() bool) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	go func() {
		for ctx.Err() == nil && !cond() {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	return ctx
}
