// Package soak runs massvhost for a long time under mixed traffic across
// many tenants while faults are injected, and reports whether anything
// accumulates: memory, goroutines, threads, descriptors, processes, or
// errors that no fault explains. It is opt-in and skipped by default:
//
//	go test ./test/soak/ -run Soak -soak -v -timeout 30m
//	go test ./test/soak/ -run Soak -soak -soak.duration 3m -soak.tenants 2000 -v
//
// The data set (tenant trees owned by a test uid when root, one
// certificate per tenant in a real Redis) is generated with
// test/bench/gen. Traffic is loopback only, bounded in concurrency and
// time, and stops by itself.
package soak

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"massvhost/test/proctest"
	"massvhost/test/redistest"
)

var (
	soak       = flag.Bool("soak", false, "run the soak test (long; off by default)")
	duration   = flag.Duration("soak.duration", 10*time.Minute, "how long traffic runs")
	tenantsN   = flag.Int("soak.tenants", 10000, "number of tenants")
	faultEvery = flag.Duration("soak.fault-every", time.Minute, "interval between injected faults")
	workers    = flag.Int("soak.workers", 6, "concurrent clients")
)

// soakUID owns the tenant trees when the test runs as root, so scripts run
// as a uid of their own and leftovers can be counted.
const soakUID = 20201

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if !*soak {
		os.Exit(m.Run()) // the test skips itself
	}
	proctest.Main(m, "soak", &binary, false)
}

// window is a period during which failures are explained by an injected
// fault; grace extends it for recovery (breaker cool-down, reconnects).
type window struct {
	kind       string
	start, end time.Time
}

const faultGrace = 10 * time.Second

// ledger counts outcomes by traffic kind and error class, attributing each
// failure to the fault window it fell into, if any.
type ledger struct {
	mu       sync.Mutex
	ok       map[string]int
	failed   map[string]int // "<window kind or unexplained> <traffic> <class>"
	examples map[string]string
	windows  []window
}

func newLedger() *ledger {
	return &ledger{ok: map[string]int{}, failed: map[string]int{}, examples: map[string]string{}}
}

func (l *ledger) open(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.windows = append(l.windows, window{kind: kind, start: time.Now()})
	return len(l.windows) - 1
}

func (l *ledger) close(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.windows[i].end = time.Now()
}

func (l *ledger) record(traffic string, started time.Time, err string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == "" {
		l.ok[traffic]++
		return
	}
	cause := "unexplained"
	for _, w := range l.windows {
		end := w.end
		if end.IsZero() {
			end = time.Now()
		}
		if !started.Before(w.start.Add(-time.Second)) && !started.After(end.Add(faultGrace)) {
			cause = w.kind
		}
	}
	key := cause + " " + traffic + " " + classify(err)
	if l.failed[key]++; l.failed[key] == 1 {
		l.examples[key] = err
	}
}

// classify names the class of an error text.
func classify(err string) string {
	switch {
	case strings.HasPrefix(err, "status "):
		return err[:len("status 5")] + "xx"
	case strings.Contains(err, "tls:") || strings.Contains(err, "handshake"):
		return "tls"
	case strings.Contains(err, "timeout") || strings.Contains(err, "deadline"):
		return "timeout"
	case strings.Contains(err, "refused"):
		return "refused"
	case strings.Contains(err, "reset") || strings.Contains(err, "EOF") || strings.Contains(err, "broken pipe"):
		return "reset"
	}
	return "other"
}

// sample is one point of the resource curves.
type sample struct {
	at                     time.Duration
	rssMiB                 int64
	threads, fds, procs    int
	goroutines, cgiRunning float64
	okTotal, failedTotal   int
	cacheEntries           float64
}

func TestSoak(t *testing.T) {
	if !*soak {
		t.Skip("opt-in: go test ./test/soak/ -run Soak -soak")
	}
	owner := -1
	if os.Geteuid() == 0 {
		owner = soakUID
	}
	r := redistest.StartServer(t)
	dir := t.TempDir()
	proctest.MakeReachable(t, dir)
	data := filepath.Join(dir, "data")
	genStart := time.Now()
	gen := exec.Command("go", "run", "./test/bench/gen", "-n", strconv.Itoa(*tenantsN), "-out", data,
		"-owner", strconv.Itoa(owner), "-group", strconv.Itoa(owner), "-redis", r.Addr, "-prefix", "soak:")
	gen.Dir = repoRoot(t)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generating tenants: %v\n%s", err, out)
	}
	r.Do(t, "SAVE") // restarts keep the data, as a persistent Redis does
	t.Logf("generated %d tenants and loaded their certificates into Redis in %v", *tenantsN, time.Since(genStart).Round(time.Second))
	hosts := readLines(t, filepath.Join(data, "hosts.txt"))
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(data, "ca", "ca.crt"))
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("reading the CA: %v", err)
	}

	cfg := func(cacheTTL string) string {
		return fmt.Sprintf(`listen: {http: "127.0.0.1:0", https: "127.0.0.1:0"}
data_dir: %q
sites: {root: %q, cache_ttl: %s}
certs: {store: redis, local_ca: false, cache_size: 2000, new_name_rate: 0, lookup_timeout: 1s}
redis: {addrs: [%q], key_prefix: "soak:"}
log: {access: %q, level: warn}
admin: {listen: "127.0.0.1:0"}
server: {max_conns_per_ip: 0}
`, filepath.Join(dir, "state"), filepath.Join(data, "sites"), cacheTTL, r.Addr, filepath.Join(dir, "access.log"))
	}
	p := proctest.Start(t, binary, filepath.Join(dir, "massvhost.yaml"), cfg("5s"))
	led := newLedger()
	httpC := plainClient()
	pick := func() string { return hosts[rand.IntN(len(hosts))] }

	// Traffic: each worker loops one kind until the deadline.
	kinds := []string{"static-keepalive", "new-handshake", "cgi", "h2-keepalive", "new-handshake", "static-keepalive"}
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for i := range *workers {
		kind := kinds[i%len(kinds)]
		wg.Go(func() {
			var h2 *http.Client
			var h2Host string
			for n := 0; time.Now().Before(deadline); n++ {
				host := pick()
				begin := time.Now()
				var err string
				switch kind {
				case "static-keepalive":
					err = fetch(httpC, "http://"+p.HTTPAddr+"/", host)
				case "cgi":
					err = fetch(httpC, "http://"+p.HTTPAddr+"/cgi-bin/hello.cgi", host)
				case "new-handshake":
					err = fetch(tlsClient(p.HTTPSAddr, host, pool, false, true), "https://"+host+"/", "")
				case "h2-keepalive":
					if h2 == nil || n%200 == 0 {
						if h2 != nil {
							h2.CloseIdleConnections()
						}
						h2Host = host
						h2 = tlsClient(p.HTTPSAddr, h2Host, pool, true, false)
					}
					err = fetch(h2, "https://"+h2Host+"/", "")
				}
				led.record(kind, begin, err)
			}
			if h2 != nil {
				h2.CloseIdleConnections()
			}
		})
	}

	// Faults: Redis restarts and config reloads (valid and broken), in turn.
	faults := []struct {
		kind string
		run  func()
	}{
		{"redis-restart", func() { r.Do(t, "SAVE"); r.Restart(t) }},
		{"reload", func() { p.Reload(cfg("6s")); time.Sleep(time.Second) }},
		{"redis-freeze", func() { r.Freeze(t); time.Sleep(3 * time.Second); r.Thaw(t) }},
		{"reload-broken", func() { p.Reload("sites: [\n"); time.Sleep(time.Second) }},
		{"reload", func() { p.Reload(cfg("5s")); time.Sleep(time.Second) }},
	}
	faultDone := make(chan struct{})
	var injected []string
	go func() {
		defer close(faultDone)
		for i := 0; ; i++ {
			select {
			case <-time.After(*faultEvery):
			case <-time.After(time.Until(deadline)):
				return
			}
			if time.Until(deadline) < 5*time.Second {
				return
			}
			f := faults[i%len(faults)]
			w := led.open(f.kind)
			f.run()
			led.close(w)
			injected = append(injected, f.kind)
		}
	}()

	// Curves: one sample every 10 s.
	var samples []sample
	began := time.Now()
	take := func() {
		st, _ := proctest.ReadStats(p.PID())
		s := sample{at: time.Since(began).Round(time.Second), rssMiB: st.RSS >> 20, threads: st.Threads, fds: st.FDs,
			procs: len(proctest.UIDProcs(owner)), goroutines: p.Metric("go_goroutines"), cgiRunning: p.Metric("massvhost_cgi_running"),
			cacheEntries: p.Metric("massvhost_cert_cache_entries")}
		led.mu.Lock()
		for _, v := range led.ok {
			s.okTotal += v
		}
		for _, v := range led.failed {
			s.failedTotal += v
		}
		led.mu.Unlock()
		samples = append(samples, s)
	}
	take()
	for time.Now().Before(deadline) {
		time.Sleep(min(10*time.Second, time.Until(deadline)+time.Millisecond))
		take()
	}
	wg.Wait()
	<-faultDone
	httpC.CloseIdleConnections()

	// Afterwards: no script left, resources back.
	leftover := proctest.UIDProcs(owner)
	proctest.Eventually(15*time.Second, func() bool { leftover = proctest.UIDProcs(owner); return len(leftover) == 0 })
	time.Sleep(2 * time.Second)
	take()

	report(t, led, samples, injected, leftover)
	if out := p.Output(); len(out) > 8000 {
		t.Logf("massvhost log (warnings and errors, tail):\n…%s", out[len(out)-8000:])
	} else {
		t.Logf("massvhost log (warnings and errors):\n%s", out)
	}
	unexplained := 0
	for key, n := range led.failed {
		if strings.HasPrefix(key, "unexplained ") || strings.HasPrefix(key, "reload") {
			unexplained += n
		}
	}
	if unexplained > 0 {
		t.Errorf("%d requests failed outside Redis fault windows (reloads and quiet periods must not fail requests)", unexplained)
	}
	if owner >= 0 && len(leftover) > 0 {
		t.Errorf("%d processes of the tenant uid left after the soak: %v", len(leftover), leftover)
	}
	// With every client connection closed, the server is back to its
	// idle state: what remains above the first sample has leaked.
	first, last := samples[0], samples[len(samples)-1]
	if last.goroutines > first.goroutines+20 || last.fds > first.fds+20 {
		t.Errorf("goroutines %.0f → %.0f, fds %d → %d between the idle start and the idle end",
			first.goroutines, last.goroutines, first.fds, last.fds)
	}
	if !p.Alive() {
		t.Fatal("server died")
	}
}

// report logs the totals, errors by class and cause, and the curves as a
// markdown table.
func report(t *testing.T, led *ledger, samples []sample, injected []string, leftover []int) {
	var b strings.Builder
	total, failed := 0, 0
	for _, k := range sortedKeys(led.ok) {
		total += led.ok[k]
		fmt.Fprintf(&b, "ok %-18s %d\n", k, led.ok[k])
	}
	for _, k := range sortedKeys(led.failed) {
		failed += led.failed[k]
		fmt.Fprintf(&b, "failed %-40s %d  e.g. %.120s\n", k, led.failed[k], led.examples[k])
	}
	fmt.Fprintf(&b, "requests %d ok, %d failed; faults injected: %s; leftover tenant processes: %d\n",
		total, failed, strings.Join(injected, ", "), len(leftover))
	b.WriteString("\n| t | requests ok | failed | RSS MiB | goroutines | threads | fds | tenant procs | CGI running | cert cache |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "| %v | %d | %d | %d | %.0f | %d | %d | %d | %.0f | %.0f |\n",
			s.at, s.okTotal, s.failedTotal, s.rssMiB, s.goroutines, s.threads, s.fds, s.procs, s.cgiRunning, s.cacheEntries)
	}
	t.Logf("soak report (%v, %d tenants, %d workers):\n%s", *duration, *tenantsN, *workers, b.String())
}

// fetch performs a GET (with Host host, if set) and returns "" on 200,
// else an error text.
func fetch(c *http.Client, url, host string) string {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return "status " + strconv.Itoa(resp.StatusCode)
	}
	return ""
}

// plainClient keeps a pool of connections to the HTTP listener, shared by
// every tenant (requests set Host).
func plainClient() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
}

// tlsClient connects to addr with SNI sni; fresh makes every request a new
// connection with a full handshake.
func tlsClient(addr, sni string, pool *x509.CertPool, h2, fresh bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{ServerName: sni, RootCAs: pool, SessionTicketsDisabled: fresh},
		ForceAttemptHTTP2: h2,
		DisableKeepAlives: fresh,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

func readLines(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// repoRoot is the module root, where `go run ./test/bench/gen` runs.
func repoRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
