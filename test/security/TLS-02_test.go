// TLS-02: SNI used as a file path or store key.
//
// Exploit: a Go client (which sends whatever ServerName says) offers SNI
// values built to escape the certificate directory or to act as Redis
// patterns: "../../etc/passwd", "a/b", a NUL, "*", "a?test", "[a]", a
// 64-character label, a 261-character name, invalid punycode, a U-label,
// an underscore. crypto/tls hands all of these to the server raw.
//
// Expectation: each handshake fails with unrecognized_name (not
// internal_error), no certificate store lookup is made for any of them
// (the load counter does not move, and, when strace is installed, the
// server opens no file in the certificate directory meanwhile), and
// "A.TEST" gets a.test's certificate.
package security

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTLS02SNIBattery(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	// A file a traversal would reach if a name were joined to the dir.
	must(t, os.WriteFile(filepath.Join(w.Dir, "evil.crt"), []byte("not a cert"), 0o644))
	p := start(t, w.config(cfg{}))

	// Warm a.test's cache entry, so that A.TEST needs no load either.
	c, err := p.dialTLS("a.test", nil)
	must(t, err)
	c.Close()

	var strace *exec.Cmd
	var straceLog string
	var straceErr bytes.Buffer
	if path, err := exec.LookPath("strace"); err == nil {
		straceLog = filepath.Join(t.TempDir(), "strace.log")
		strace = exec.Command(path, "-f", "-e", "trace=open,openat,openat2,stat,newfstatat,statx",
			"-o", straceLog, "-p", strconv.Itoa(p.pid()))
		strace.Stderr = &lockedWriter{mu: &p.logMu, w: &straceErr}
		must(t, strace.Start())
		t.Cleanup(func() { strace.Process.Kill(); strace.Wait() })
		if !eventually(10*time.Second, func() bool {
			p.logMu.Lock()
			defer p.logMu.Unlock()
			return strings.Contains(straceErr.String(), "attached")
		}) {
			t.Fatalf("strace did not attach: %s", straceErr.String())
		}
	} else {
		t.Log("strace not installed: checking the store-load counter only")
	}

	loads := p.metric("massvhost_cert_loads_total")
	invalid := p.metric("massvhost_cert_invalid_names_total")
	names := []string{
		"../../etc/passwd", "../evil", "a/b", "a.test/../b.test", "a.test\x00.evil", "*", "*.test", "a?test", "[a]",
		strings.Repeat("a", 64) + ".test", strings.Repeat("a.", 130) + "test", "xn--zz.test", "ä.test",
		"a_b.test", "a..test", "-a.test", "a test", "a.test:443", `a\b.test`, "%2e%2e",
	}
	for _, sni := range names {
		c, err := p.dialTLS(sni, nil)
		if err == nil {
			t.Errorf("SNI %q: handshake succeeded with %v", sni, leafOf(c).DNSNames)
			c.Close()
			continue
		}
		if strings.Contains(err.Error(), "internal error") {
			t.Errorf("SNI %q: %v, want unrecognized_name (or a client-side refusal)", sni, err)
		}
	}
	c, err = p.dialTLS("A.TEST", nil)
	if err != nil {
		t.Fatalf("SNI A.TEST: %v", err)
	}
	if leaf := leafOf(c); leaf.VerifyHostname("a.test") != nil || leaf.VerifyHostname("b.test") == nil {
		t.Errorf("SNI A.TEST got a certificate for %v", leaf.DNSNames)
	}
	c.Close()

	if after := p.metric("massvhost_cert_loads_total"); after != loads {
		t.Errorf("certificate store loads moved from %v to %v during the invalid-SNI battery", loads, after)
	}
	if after := p.metric("massvhost_cert_invalid_names_total"); after <= invalid {
		t.Errorf("invalid-name counter did not move (%v): the names were not refused as invalid", after)
	}
	if strace != nil {
		// Control: a valid, uncached name is loaded from the directory,
		// and strace must see that.
		c, err := p.dialTLS("b.test", nil)
		must(t, err)
		c.Close()
		strace.Process.Signal(os.Interrupt)
		strace.Wait()
		log, err := os.ReadFile(straceLog)
		must(t, err)
		control := false
		for line := range strings.SplitSeq(string(log), "\n") {
			// Pairs are opened relative to the directory (os.Root), so
			// look for the names rather than for the directory's path.
			switch {
			case strings.Contains(line, `"b.test.crt"`) || strings.Contains(line, `"b.test.key"`):
				control = true
			case strings.Contains(line, ".crt") || strings.Contains(line, ".key") ||
				strings.Contains(line, "evil") || strings.Contains(line, "passwd"):
				t.Errorf("server touched a certificate path during the battery: %s", line)
			}
		}
		if !control {
			t.Errorf("strace did not see the control load of b.test.crt; the trace is not trustworthy:\n%s", tail(string(log), 4<<10))
		}
	}
}
