// TLS-03: random-SNI cache busting against the lazy certificate loader.
//
// Exploit: 2,000 handshakes, 8 at a time, each with a fresh syntactically
// valid name "<random>.test" that no tenant has, so that each one misses
// every cache; first against the file store, then against a Redis store.
//
// Expectation: the positive cache is untouched (no eviction, a.test and
// b.test still served from memory with their own certificates); the
// negative cache stays within certs.negative_cache_size; store lookups are
// bounded by certs.new_name_rate/new_name_burst rather than by the flood
// (counted by the server's load counter and, for Redis, by the commands
// Redis itself executed, INFO commandstats).
//
// Second exploit: the same flood from one client address (127.0.0.2)
// while another client (127.0.0.3) opens tenants no one has asked for yet.
// Without a per-client share the flood spends the global budget and the
// other client's new names fail their handshakes.
//
// Expectation: the flooding address is held to
// certs.new_name_rate_per_ip/new_name_burst_per_ip; every new name of the
// other client loads and is served.
package security

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"massvhost/test/redistest"
)

const (
	floodHandshakes = 2000
	floodRate       = 50
	floodBurst      = 50
)

// flood runs floodHandshakes handshakes with random unknown names and
// returns how long it took.
func flood(t *testing.T, p *proc) time.Duration {
	t.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	succeeded := 0
	per := floodHandshakes / 8
	for range 8 {
		wg.Go(func() {
			for range per {
				b := make([]byte, 8)
				rand.Read(b)
				c, err := p.dialTLS("x"+hex.EncodeToString(b)+".test", nil)
				if err == nil {
					c.Close()
					mu.Lock()
					succeeded++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if succeeded > 0 {
		t.Errorf("%d handshakes with unknown names succeeded", succeeded)
	}
	return time.Since(start)
}

// checkKnown verifies that name is still served with its own certificate.
func checkKnown(t *testing.T, p *proc, names ...string) {
	t.Helper()
	for _, name := range names {
		c, err := p.dialTLS(name, nil)
		if err != nil {
			t.Errorf("%s after the flood: %v", name, err)
			continue
		}
		if leafOf(c).VerifyHostname(name) != nil {
			t.Errorf("%s after the flood: certificate for %v", name, leafOf(c).DNSNames)
		}
		c.Close()
	}
}

// floodCerts measures the global budget alone: no per-client share.
func floodCerts() string {
	return fmt.Sprintf("  cache_size: 100\n  negative_cache_size: 500\n  new_name_rate: %d\n  new_name_burst: %d\n  new_name_rate_per_ip: 0\n  ttl: 1h\n  negative_ttl: 1h\n",
		floodRate, floodBurst)
}

// dialFrom is a TLS handshake with SNI sni from the local address from.
func dialFrom(p *proc, from, sni string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return tls.DialWithDialer(d, "tcp", p.HTTPSAddr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
}

func TestTLS03PerClientBudget(t *testing.T) {
	t.Parallel()
	const (
		perIPRate  = 5
		perIPBurst = 10
		legitNames = 10
	)
	names := []string{"a.test"}
	for i := range legitNames {
		names = append(names, fmt.Sprintf("c%d.test", i))
	}
	w := newWorld(t, names...)
	// A small global budget (20/s), so that a flood without a per-client
	// share empties it for everyone.
	p := start(t, w.config(cfg{Certs: fmt.Sprintf("  negative_ttl: 1h\n  new_name_rate: 20\n  new_name_burst: 20\n"+
		"  new_name_rate_per_ip: %d\n  new_name_burst_per_ip: %d\n", perIPRate, perIPBurst)}))
	if c, err := dialFrom(p, "127.0.0.2", "a.test"); err != nil {
		t.Skipf("cannot connect from 127.0.0.2 (loopback is 127.0.0.0/8 on Linux only): %v", err)
	} else {
		c.Close()
	}
	m0 := p.metrics()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	flooded, floodOK := 0, 0
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				b := make([]byte, 8)
				rand.Read(b)
				c, err := dialFrom(p, "127.0.0.2", "x"+hex.EncodeToString(b)+".test")
				mu.Lock()
				flooded++
				if err == nil {
					floodOK++
					c.Close()
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	time.Sleep(300 * time.Millisecond) // the flood has spent its burst
	for i := range legitNames {
		name := fmt.Sprintf("c%d.test", i)
		c, err := dialFrom(p, "127.0.0.3", name)
		if err != nil {
			t.Errorf("127.0.0.3, new name %s during the flood: %v", name, err)
		} else {
			if leafOf(c).VerifyHostname(name) != nil {
				t.Errorf("127.0.0.3, %s: certificate for %v", name, leafOf(c).DNSNames)
			}
			c.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	m1 := p.metrics()

	delta := func(name string) float64 { return sumMetric(m1, name) - sumMetric(m0, name) }
	loads := delta("massvhost_cert_loads_total")
	// The flood's share plus the other client's names (each at most two
	// reads: exact name and wildcard parent).
	bound := perIPBurst + perIPRate*(elapsed.Seconds()+1) + 2*legitNames
	t.Logf("%d flood handshakes from 127.0.0.2 in %v: %v store loads (bound %.0f), %v rate-limited",
		flooded, elapsed.Round(time.Millisecond), loads, bound, delta("massvhost_cert_rate_limited_total"))
	if floodOK > 0 {
		t.Errorf("%d handshakes with unknown names succeeded", floodOK)
	}
	if flooded < 200 {
		t.Errorf("only %d flood handshakes: the flood did not test the budget", flooded)
	}
	if loads > bound {
		t.Errorf("%v store loads, over the flooding client's share plus the other client's names (%.0f)", loads, bound)
	}
	checkKnown(t, p, "a.test")
}

func TestTLS03RandomSNIFloodFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	p := start(t, w.config(cfg{Certs: floodCerts()}))
	checkKnown(t, p, "a.test", "b.test")
	m0 := p.metrics()
	elapsed := flood(t, p)
	checkKnown(t, p, "a.test", "b.test")
	m1 := p.metrics()

	delta := func(name string) float64 { return sumMetric(m1, name) - sumMetric(m0, name) }
	if d := delta("massvhost_cert_cache_evictions_total"); d != 0 {
		t.Errorf("%v positive cache evictions during the flood", d)
	}
	if e0, e1 := sumMetric(m0, "massvhost_cert_cache_entries"), sumMetric(m1, "massvhost_cert_cache_entries"); e1 < e0 {
		t.Errorf("positive cache shrank from %v to %v entries", e0, e1)
	}
	if n := sumMetric(m1, "massvhost_cert_cache_negative_entries"); n > 500 {
		t.Errorf("%v negative entries, over certs.negative_cache_size 500", n)
	}
	if d := delta(`massvhost_cert_cache_hits_total`); d < 2 {
		t.Errorf("a.test and b.test were not answered from the cache after the flood (%v hits)", d)
	}
	loads := delta("massvhost_cert_loads_total")
	bound := floodBurst + floodRate*(elapsed.Seconds()+1)
	t.Logf("%d handshakes in %v: %v store loads (bound %.0f), %v rate-limited", floodHandshakes, elapsed.Round(time.Millisecond),
		loads, bound, delta("massvhost_cert_rate_limited_total"))
	if loads > bound {
		t.Errorf("%v store loads for %d random names in %v, over the new-name budget %.0f", loads, floodHandshakes, elapsed, bound)
	}
}

func TestTLS03RandomSNIFloodRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.StartServer(t)
	w := newWorld(t, "a.test", "b.test")
	for _, name := range []string{"a.test", "b.test"} {
		certPEM, keyPEM := w.CA.Leaf(t, name)
		rs.Do(t, "HSET", "cert:"+name, "crt", string(certPEM), "key", string(keyPEM))
	}
	config := w.config(cfg{Certs: floodCerts()})
	config = strings.Replace(config, "  store: files\n", "  store: redis\n", 1)
	config += fmt.Sprintf("redis:\n  addrs: [%q]\n", rs.Addr)
	p := start(t, config)
	checkKnown(t, p, "a.test", "b.test")

	rs.Do(t, "CONFIG", "RESETSTAT")
	elapsed := flood(t, p)
	checkKnown(t, p, "a.test", "b.test")
	stats := rs.Do(t, "INFO", "commandstats")
	total, execs := 0, 0
	for line := range strings.SplitSeq(stats, "\n") {
		// cmdstat_hgetall:calls=12,usec=...
		if !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info:") || strings.HasPrefix(line, "cmdstat_config") {
			continue
		}
		_, rest, _ := strings.Cut(line, "calls=")
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		total += n
		if strings.HasPrefix(line, "cmdstat_exec:") {
			execs = n
		}
	}
	// Each admitted read (the exact name, or its wildcard parent, each
	// taking a token) is one MULTI/EXEC round trip of 8 commands: MULTI,
	// EVAL and the HSTRLEN, HSTRLEN and HMGET it runs, two GETRANGE, EXEC.
	// The flood itself must not show.
	budget := floodBurst + floodRate*(elapsed.Seconds()+1)
	t.Logf("%d handshakes in %v: %d Redis round trips (budget %.0f), %d commands (bound %.0f)\n%s",
		floodHandshakes, elapsed.Round(time.Millisecond), execs, budget, total, 8*budget, stats)
	if float64(execs) > budget || float64(total) > 8*budget {
		t.Errorf("%d Redis round trips, %d commands for %d random names in %v: not bounded by new_name_rate", execs, total, floodHandshakes, elapsed)
	}
}

func sumMetric(m map[string]float64, name string) float64 {
	var sum float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum += v
		}
	}
	return sum
}
