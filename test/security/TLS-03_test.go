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
package security

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

func floodCerts() string {
	return fmt.Sprintf("  cache_size: 100\n  negative_cache_size: 500\n  new_name_rate: %d\n  new_name_burst: %d\n  ttl: 1h\n  negative_ttl: 1h\n",
		floodRate, floodBurst)
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
	total := 0
	for line := range strings.SplitSeq(stats, "\n") {
		// cmdstat_hgetall:calls=12,usec=...
		if !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info:") || strings.HasPrefix(line, "cmdstat_config") {
			continue
		}
		_, rest, _ := strings.Cut(line, "calls=")
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		total += n
	}
	// Each admitted lookup costs a few commands (hash layout, legacy
	// layout, wildcard parent); the flood itself must not show.
	bound := 6 * (floodBurst + floodRate*(elapsed.Seconds()+1))
	t.Logf("%d handshakes in %v: %d Redis commands (bound %.0f)\n%s", floodHandshakes, elapsed.Round(time.Millisecond), total, bound, stats)
	if float64(total) > bound {
		t.Errorf("%d Redis commands for %d random names in %v: not bounded by new_name_rate", total, floodHandshakes, elapsed)
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
