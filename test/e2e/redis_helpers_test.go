package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/test/redistest"
)

// redisSetup describes how a world's configuration reaches Redis.
type redisSetup struct {
	Store   string   // certs.store: "redis" (default) or "redis+files"
	Addrs   []string // redis.addrs
	Cluster bool     // redis.cluster
	Prefix  string   // redis.key_prefix
	// Certs are extra lines for the certs section, indented two spaces.
	// Without them ttl and negative_ttl are 1h, so that anything a test
	// sees change was caused by an invalidation, not by expiry.
	Certs string
	// Sites are extra lines for the sites section, indented two spaces.
	Sites string
}

// defaultRedisCerts makes cached answers outlive any test: a change is seen
// only through an invalidation.
const defaultRedisCerts = "  ttl: 1h\n  negative_ttl: 1h\n  lookup_timeout: 1s\n"

// redisConfig returns w's configuration using the Redis store described by s.
func (w *world) redisConfig(s redisSetup) string {
	store := s.Store
	if store == "" {
		store = "redis"
	}
	certsExtra := s.Certs
	if certsExtra == "" {
		certsExtra = defaultRedisCerts
	}
	cfg := w.config("")
	cfg = strings.Replace(cfg, "certs:\n  store: files\n", "certs:\n  store: "+store+"\n"+certsExtra, 1)
	if s.Sites != "" {
		cfg = strings.Replace(cfg, "sites:\n", "sites:\n"+s.Sites, 1)
	}
	quoted := make([]string, len(s.Addrs))
	for i, a := range s.Addrs {
		quoted[i] = strconv.Quote(a)
	}
	cfg += fmt.Sprintf("redis:\n  addrs: [%s]\n  cluster: %t\n  key_prefix: %q\n  read_timeout: 300ms\n  write_timeout: 300ms\n  dial_timeout: 300ms\n",
		strings.Join(quoted, ", "), s.Cluster, s.Prefix)
	return cfg
}

// writeConfig stores cfg in a file for CLI commands and returns its path.
func writeConfig(t *testing.T, cfg string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "massvhost.yaml")
	must(t, os.WriteFile(p, []byte(cfg), 0o644))
	return p
}

// cliResult is the outcome of one massvhost admin command.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// cli runs `massvhost args... --config cfgPath` (bounded by a timeout) and
// returns its output and exit status; cfgPath "" passes no --config.
func cli(t *testing.T, cfgPath string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cfgPath != "" {
		args = append(args, "--config", cfgPath)
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		res.Code = exit.ExitCode()
	default:
		t.Fatalf("massvhost %s: %v\n%s", strings.Join(args, " "), err, res)
	}
	return res
}

// cliOK is cli that fails the test unless the command exits 0.
func cliOK(t *testing.T, cfgPath string, args ...string) cliResult {
	t.Helper()
	r := cli(t, cfgPath, args...)
	if r.Code != 0 {
		t.Fatalf("massvhost %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// pemFiles writes a pair to files for `certs put` and returns their paths.
func pemFiles(t *testing.T, certPEM, keyPEM []byte) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(certFile, certPEM, 0o644))
	must(t, os.WriteFile(keyFile, keyPEM, 0o600))
	return certFile, keyFile
}

// putCLI runs `massvhost certs put name` with the pair and extra flags.
func putCLI(t *testing.T, cfgPath, name string, certPEM, keyPEM []byte, extra ...string) cliResult {
	t.Helper()
	c, k := pemFiles(t, certPEM, keyPEM)
	return cli(t, cfgPath, append([]string{"certs", "put", name, "--cert", c, "--key", k}, extra...)...)
}

// handshake completes a TLS handshake with sni (a new connection, no
// session resumption) and returns the leaf the server sent.
func handshake(addr, sni string, pool *x509.CertPool) (*x509.Certificate, error) {
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config:    &tls.Config{ServerName: sni, RootCAs: pool},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// fingerprint is the SHA-256 of the DER certificate in the form
// `massvhost certs get` prints.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// pemFingerprint is fingerprint of the first certificate in certPEM.
func pemFingerprint(t *testing.T, certPEM []byte) string {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return fingerprint(c)
}

// servesFingerprint polls until a handshake with sni on addr returns the
// certificate with fingerprint want, or within passes.
func servesFingerprint(addr, sni string, pool *x509.CertPool, want string, within time.Duration) (last string, ok bool) {
	ok = eventually(within, func() bool {
		leaf, err := handshake(addr, sni, pool)
		if err != nil {
			last = "error: " + err.Error()
			return false
		}
		last = fingerprint(leaf)
		return last == want
	})
	return last, ok
}

// failsHandshake polls until a handshake with sni on addr fails.
func failsHandshake(addr, sni string, pool *x509.CertPool, within time.Duration) bool {
	return eventually(within, func() bool {
		_, err := handshake(addr, sni, pool)
		return err != nil
	})
}

// logLine returns the first line of p's output that contains every part,
// waiting (bounded) for it to appear.
func logLine(p *proc, parts ...string) (string, bool) {
	var found string
	ok := eventually(5*time.Second, func() bool {
		for _, line := range strings.Split(p.Output(), "\n") {
			all := true
			for _, part := range parts {
				all = all && strings.Contains(line, part)
			}
			if all {
				found = line
				return true
			}
		}
		return false
	})
	return found, ok
}

var cmdstatRE = regexp.MustCompile(`(?m)^cmdstat_([a-z|]+):calls=(\d+),`)

// commandCalls returns the calls per command from INFO commandstats.
func commandCalls(t *testing.T, srv *redistest.Server) map[string]int {
	t.Helper()
	calls := map[string]int{}
	for _, m := range cmdstatRE.FindAllStringSubmatch(srv.Do(t, "INFO", "commandstats"), -1) {
		n, _ := strconv.Atoi(m[2])
		calls[m[1]] = n
	}
	return calls
}

// mustLeafWith mints a leaf for name valid from notBefore to notAfter.
func mustLeafWith(t *testing.T, ca *certtest.CA, name string, notBefore, notAfter time.Time) ([]byte, []byte) {
	t.Helper()
	return ca.LeafWith(t, certtest.LeafOptions{Names: []string{name}, NotBefore: notBefore, NotAfter: notAfter})
}

// writeTemp writes b to a new file and returns its path.
func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "pem")
	must(t, err)
	_, err = f.Write(b)
	must(t, err)
	must(t, f.Close())
	return f.Name()
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
