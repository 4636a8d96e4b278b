// Package acmetest runs Pebble, Let's Encrypt's ACME test server, for
// tests: a real RFC 8555 CA on loopback ports whose validation authority
// connects back to the test's own HTTP and TLS listeners, through a small
// DNS server ([DNS]) that resolves every name to 127.0.0.1. Challenges are
// therefore really validated, unless a test asks for Pebble's
// always-valid mode.
//
// The Pebble binary is installed on first use with `go install` (pinned to
// [PebbleVersion], into the user cache directory) and its test certificate
// for the ACME endpoint is read from the module cache. When that is not
// possible (no network, no go command) the test is skipped, unless the CI
// environment variable is set: there it fails, so a broken CI image cannot
// turn the ACME tests green by skipping them.
//
// Every Pebble process is stopped by PID when the test ends. Product code
// never imports this package.
package acmetest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PebbleVersion is the Pebble release the harness installs.
const PebbleVersion = "v2.10.1"

const (
	pebbleModule  = "github.com/letsencrypt/pebble/v2"
	pebbleCommand = pebbleModule + "/cmd/pebble"
	startTimeout  = 20 * time.Second
	startAttempts = 3
)

// Options configure a Pebble.
type Options struct {
	// HTTPPort and TLSPort are where Pebble's validation authority
	// connects, on 127.0.0.1, for http-01 and tls-alpn-01 challenges: the
	// ports of the test's listeners. Zero means a port nothing listens on.
	HTTPPort, TLSPort int
	// AlwaysValid makes Pebble accept every challenge without connecting
	// (PEBBLE_VA_ALWAYS_VALID), for tests about something else.
	AlwaysValid bool
	// Validity is the lifetime of issued certificates, in whole seconds;
	// if zero, Pebble's default (90 days).
	Validity time.Duration
	// EAB, if non-empty, maps external account key IDs to base64url HMAC
	// keys, and makes Pebble require external account binding.
	EAB map[string]string
}

// Pebble is one running Pebble process. Its methods are safe for
// concurrent use.
type Pebble struct {
	// DirectoryURL is the ACME directory, https://127.0.0.1:port/dir.
	DirectoryURL string
	// ManagementURL is the management API's base URL.
	ManagementURL string
	// TLSRoots trusts Pebble's own HTTPS endpoints (the directory and the
	// management API); give it to the ACME client. It does not cover the
	// certificates Pebble issues: see IssuerRoots.
	TLSRoots *x509.CertPool
	// DNS resolves names for Pebble's validation authority.
	DNS *DNS
	// Dir holds the config and Pebble's log (pebble.log).
	Dir string

	bin, conf string
	env       []string // PEBBLE_* settings, kept for Restart

	procMu sync.Mutex
	proc   *exec.Cmd
	exited chan struct{}
}

// Start runs Pebble configured by opts on free loopback ports, and stops it
// when the test ends.
func Start(tb testing.TB, opts Options) *Pebble {
	tb.Helper()
	inst := install(tb)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(inst.minica) {
		tb.Fatalf("acmetest: no certificate in pebble.minica.pem")
	}
	p := &Pebble{TLSRoots: roots, DNS: StartDNS(tb), Dir: tb.TempDir(), bin: inst.bin}
	// No random validation delays, no rejected nonces, no reused
	// authorizations: every order validates, promptly.
	p.env = []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}
	if opts.AlwaysValid {
		p.env = append(p.env, "PEBBLE_VA_ALWAYS_VALID=1")
	}
	tb.Cleanup(p.Stop)
	var lastErr error
	for range startAttempts {
		acmeAddr, mgmtAddr := freeAddr(tb), freeAddr(tb)
		if err := p.writeConfig(inst, opts, acmeAddr, mgmtAddr); err != nil {
			tb.Fatalf("acmetest: %v", err)
		}
		p.DirectoryURL = "https://" + acmeAddr + "/dir"
		p.ManagementURL = "https://" + mgmtAddr
		if lastErr = p.launch(); lastErr == nil {
			return p
		}
	}
	tb.Fatalf("acmetest: could not start pebble after %d attempts: %v", startAttempts, lastErr)
	return nil
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("acmetest: probe free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeConfig writes Pebble's JSON configuration.
func (p *Pebble) writeConfig(inst *installation, opts Options, acmeAddr, mgmtAddr string) error {
	httpPort, tlsPort := opts.HTTPPort, opts.TLSPort
	if httpPort == 0 {
		httpPort = 1 // nothing listens there: validations fail, never reach a stranger
	}
	if tlsPort == 0 {
		tlsPort = 1
	}
	profile := map[string]any{"description": "acmetest"}
	if opts.Validity > 0 {
		profile["validityPeriod"] = int64(opts.Validity / time.Second)
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  acmeAddr,
		"managementListenAddress":        mgmtAddr,
		"certificate":                    inst.cert,
		"privateKey":                     inst.key,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": len(opts.EAB) > 0,
		"externalAccountMACKeys":         opts.EAB,
		"domainBlocklist":                []string{"blocked-domain.example"},
		"retryAfter":                     map[string]int{"authz": 0, "order": 0},
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       map[string]any{"default": profile},
	}}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	p.conf = filepath.Join(p.Dir, "pebble-config.json")
	return os.WriteFile(p.conf, data, 0o600)
}

// launch starts the process and waits until the directory answers.
func (p *Pebble) launch() error {
	logf, err := os.OpenFile(filepath.Join(p.Dir, "pebble.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, "-config", p.conf, "-dnsserver", p.DNS.Addr)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies without running cleanups, the kernel kills
	// Pebble instead of leaving it behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pebble: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.procMu.Lock()
	p.proc, p.exited = cmd, exited
	p.procMu.Unlock()
	if err := p.waitReady(exited); err != nil {
		p.Stop()
		return fmt.Errorf("pebble at %s: %w (log: %s)", p.DirectoryURL, err, p.LogTail())
	}
	return nil
}

func (p *Pebble) httpClient() *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.TLSRoots}},
	}
}

func (p *Pebble) waitReady(exited <-chan struct{}) error {
	c := p.httpClient()
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(startTimeout)
	get := func(url string) error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s answered %s", url, resp.Status)
		}
		return nil
	}
	for {
		// Both listeners: Pebble binds the management one in the
		// background and exits if its port was taken meanwhile.
		err := get(p.DirectoryURL)
		if err == nil {
			if err = get(p.ManagementURL + "/roots/0"); err == nil {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("process exited before serving")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving within %v: %v", startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills Pebble and waits for it to be reaped; every account, order and
// certificate it knew is forgotten. Stopping a stopped Pebble does nothing.
func (p *Pebble) Stop() {
	p.procMu.Lock()
	cmd, exited := p.proc, p.exited
	p.proc, p.exited = nil, nil
	p.procMu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts Pebble again on the same ports after Stop, as a CA coming
// back from an outage would, except that it has lost its state (accounts)
// and has new roots. It fails the test if Pebble does not come back.
func (p *Pebble) Restart(tb testing.TB) {
	tb.Helper()
	p.Stop()
	var err error
	for range startAttempts {
		if err = p.launch(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("acmetest: restart pebble: %v", err)
}

// PID returns Pebble's process id, or 0 while it is stopped.
func (p *Pebble) PID() int {
	p.procMu.Lock()
	defer p.procMu.Unlock()
	if p.proc == nil {
		return 0
	}
	return p.proc.Process.Pid
}

// IssuerRoots returns a pool with the root that signs this Pebble run's
// certificates, read from the management API. Pebble makes a new root at
// every start.
func (p *Pebble) IssuerRoots(tb testing.TB) *x509.CertPool {
	tb.Helper()
	c := p.httpClient()
	defer c.CloseIdleConnections()
	resp, err := c.Get(p.ManagementURL + "/roots/0")
	if err != nil {
		tb.Fatalf("acmetest: pebble root: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("acmetest: pebble root: %s %v", resp.Status, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) {
		tb.Fatalf("acmetest: pebble root: no certificate in %q", body)
	}
	return pool
}

// LogTail returns the end of Pebble's log, for failure messages.
func (p *Pebble) LogTail() string {
	b, err := os.ReadFile(filepath.Join(p.Dir, "pebble.log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return strings.TrimSpace(string(b))
}

// installation is what install finds: the binary and the test files from
// the module source.
type installation struct {
	bin, cert, key string
	minica         []byte
}

var (
	installOnce sync.Once
	installed   *installation
	installErr  error
)

// install finds or installs the Pebble binary and module source once per
// test process. It skips the test when that fails, or fails it under CI.
func install(tb testing.TB) *installation {
	tb.Helper()
	installOnce.Do(func() { installed, installErr = doInstall() })
	if installErr != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("acmetest: pebble unavailable (CI is set, so this fails instead of skipping): %v", installErr)
		}
		tb.Skipf("acmetest: pebble unavailable, skipping: %v", installErr)
	}
	return installed
}

func doInstall() (*installation, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	binDir := filepath.Join(cache, "massvhost", "pebble-"+PebbleVersion)
	bin := filepath.Join(binDir, "pebble")
	// Outside any module, with no inherited flags, so the repository's
	// go.mod is neither consulted nor changed.
	env := append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GO111MODULE=on", "GOBIN="+binDir)
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(goBin, args...)
		cmd.Dir = os.TempDir()
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	if _, err := os.Stat(bin); err != nil {
		if _, err := run("install", pebbleCommand+"@"+PebbleVersion); err != nil {
			return nil, err
		}
	}
	out, err := run("mod", "download", "-json", pebbleModule+"@"+PebbleVersion)
	if err != nil {
		return nil, err
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return nil, fmt.Errorf("go mod download: no module directory in %q", out)
	}
	inst := &installation{
		bin:  bin,
		cert: filepath.Join(mod.Dir, "test", "certs", "localhost", "cert.pem"),
		key:  filepath.Join(mod.Dir, "test", "certs", "localhost", "key.pem"),
	}
	if inst.minica, err = os.ReadFile(filepath.Join(mod.Dir, "test", "certs", "pebble.minica.pem")); err != nil {
		return nil, err
	}
	for _, f := range []string{inst.cert, inst.key} {
		if _, err := os.Stat(f); err != nil {
			return nil, err
		}
	}
	return inst, nil
}

// Port returns the port of a listener address, for Options.
func Port(tb testing.TB, addr net.Addr) int {
	tb.Helper()
	_, p, err := net.SplitHostPort(addr.String())
	if err != nil {
		tb.Fatalf("acmetest: %v", err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		tb.Fatalf("acmetest: %v", err)
	}
	return n
}
