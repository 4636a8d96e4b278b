package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"massvhost/test/redistest"
)

// Operations tests: metrics, health, log rotation, reload and shutdown
// under load, against the real binary. Every load is bounded in requests
// or by an explicit stop, and every wait has a deadline.

// withAdmin turns the admin listener on (loopback, free port) in a world
// configuration.
func withAdmin(cfg string) string {
	return strings.Replace(cfg, "admin:\n  listen: \"\"\n", "admin:\n  listen: \"127.0.0.1:0\"\n", 1)
}

var adminRE = regexp.MustCompile(`massvhost: listening http=(\S*) https=(\S*) admin=(\S*)`)

// addrs returns the addresses of the most recent listening line.
func (p *proc) addrs() (httpAddr, httpsAddr, adminAddr string) {
	m := adminRE.FindAllStringSubmatch(p.Output(), -1)
	if len(m) == 0 {
		p.t.Fatalf("no listening line\n%s", p.Output())
	}
	last := m[len(m)-1]
	return last[1], last[2], last[3]
}

func (p *proc) admin() string {
	_, _, a := p.addrs()
	if a == "" {
		p.t.Fatal("admin listener is off")
	}
	return a
}

// adminGet fetches a path from the admin listener.
func adminGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("admin %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metricValue returns the sample of one series (name{labels} as exposed),
// or -1 when it is absent.
func metricValue(body, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// httpClient sends every request to addr (plain HTTP), whatever the URL's
// host, keeping up to n idle connections.
func httpClient(addr string, n int) *http.Client {
	var d net.Dialer
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: n,
		},
	}
}

// loadResult counts the outcome of a load run.
type loadResult struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
}

func (r *loadResult) fail(msg string) {
	r.failed.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 5 {
		r.errs = append(r.errs, msg)
	}
}

func (r *loadResult) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%d ok, %d failed %v", r.ok.Load(), r.failed.Load(), r.errs)
}

// runLoad runs workers, each sending GET url (Host a.test, body want)
// until it has sent perWorker requests or stop is closed; it returns once
// all workers are done.
func runLoad(c *http.Client, workers, perWorker int, url, want string, stop <-chan struct{}) *loadResult {
	res := &loadResult{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := 0; i < perWorker; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err != nil {
					res.fail(err.Error())
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(b) != want {
					res.fail(fmt.Sprintf("status %d body %q err %v", resp.StatusCode, b, err))
					continue
				}
				res.ok.Add(1)
			}
		})
	}
	wg.Wait()
	return res
}

// TestOpsMetrics checks that the metrics appear and move when requests,
// handshakes and certificate loads happen.
func TestOpsMetrics(t *testing.T) {
	w := newWorld(t, []string{"a.test"}, "a.test")
	p := start(t, withAdmin(w.config("")))
	admin := p.admin()
	_, before := adminGet(t, admin, "/metrics")
	const reqSeries = `massvhost_http_requests_total{code="2xx",proto="HTTP/1.1"}`
	for series, want := range map[string]float64{
		reqSeries: 0,
		`massvhost_tls_handshake_failures_total{reason="unknown_name"}`: 0,
		`massvhost_cert_cache_entries`:                                  0,
	} {
		if got := metricValue(before, series); got != want {
			t.Fatalf("before: %s = %v, want %v", series, got, want)
		}
	}

	c := tlsClient(p.HTTPSAddr, "a.test", w.CA.Pool, false)
	for range 5 {
		req, _ := http.NewRequest("GET", "https://a.test/", nil)
		if resp := do(t, c, req); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	for _, sni := range []string{"nope.test", ""} {
		conn, err := tls.Dial("tcp", p.HTTPSAddr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			t.Fatalf("handshake %q succeeded", sni)
		}
	}

	_, after := adminGet(t, admin, "/metrics")
	for series, want := range map[string]float64{
		reqSeries: 5,
		`massvhost_tls_handshake_failures_total{reason="unknown_name"}`:               1,
		`massvhost_tls_handshake_failures_total{reason="no_sni"}`:                     1,
		`massvhost_tls_handshakes_total`:                                              1,
		`massvhost_cert_cache_entries`:                                                1,
		`massvhost_cert_store_lookup_seconds_count{result="found",store="files"}`:     1,
		`massvhost_cert_store_lookup_seconds_count{result="not_found",store="files"}`: 1,
	} {
		if got := metricValue(after, series); got != want {
			t.Errorf("after: %s = %v, want %v", series, got, want)
		}
	}
	if rss := metricValue(after, "process_resident_memory_bytes"); rss <= 0 {
		t.Errorf("process_resident_memory_bytes = %v", rss)
	}
	if hits := metricValue(after, `massvhost_cert_cache_hits_total{state="fresh"}`); hits < 0 {
		t.Error("cert cache hits not exported")
	}
}

// TestOpsReadinessRedis checks /readyz while Redis runs and after it is
// stopped: degraded but serving (200), and 503 with ?strict.
func TestOpsReadinessRedis(t *testing.T) {
	rs := redistest.StartServer(t)
	w := newWorld(t, []string{"a.test"}, "a.test")
	cfg := strings.Replace(withAdmin(w.config("")), "store: files", "store: redis+files", 1) +
		fmt.Sprintf("redis:\n  addrs: [%q]\n", rs.Addr)
	p := start(t, cfg)
	admin := p.admin()
	if code, body := adminGet(t, admin, "/readyz"); code != 200 || !strings.HasPrefix(body, "ok\n") || !strings.Contains(body, "redis: ok") {
		t.Fatalf("/readyz with Redis up: %d %q", code, body)
	}
	rs.Kill()
	code, body := adminGet(t, admin, "/readyz")
	if code != 200 || !strings.HasPrefix(body, "degraded\n") || !strings.Contains(body, "redis: degraded") {
		t.Fatalf("/readyz with Redis down: %d %q, want 200 degraded", code, body)
	}
	if code, _ := adminGet(t, admin, "/readyz?strict"); code != 503 {
		t.Fatalf("/readyz?strict with Redis down: %d, want 503", code)
	}
	// Still serving: the certificate comes from the file tier.
	c := tlsClient(p.HTTPSAddr, "a.test", w.CA.Pool, false)
	req, _ := http.NewRequest("GET", "https://a.test/", nil)
	if resp := do(t, c, req); resp.StatusCode != 200 {
		t.Fatalf("request with Redis down: %d", resp.StatusCode)
	}
	if code, _ := adminGet(t, admin, "/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
}

var combinedRE = regexp.MustCompile(`^a\.test:\d+ 127\.0\.0\.1 - - \[[^\]]+\] "GET /n/\d+ HTTP/1\.1" 200 \d+ "-" "[^"]*"$`)

// TestOpsLogReopenUnderLoad rotates the access log twice (mv + SIGUSR1)
// while requests run, and checks that every request has exactly one whole
// line across the files.
func TestOpsLogReopenUnderLoad(t *testing.T) {
	w := newWorld(t, []string{"a.test"})
	for i := range 20 {
		w.writeFile(t, "a.test", fmt.Sprintf("n/%d", i), "x")
	}
	p := start(t, withAdmin(w.config("")))
	c := httpClient(p.HTTPAddr, 8)
	const workers, perWorker = 8, 250
	var sent atomic.Int64
	res := &loadResult{}
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			for i := range perWorker {
				resp, err := c.Get(fmt.Sprintf("http://a.test/n/%d", (k*perWorker+i)%20))
				sent.Add(1)
				if err != nil {
					res.fail(err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				res.ok.Add(1)
			}
		})
	}
	for i := 1; i <= 2; i++ {
		target := int64(i * workers * perWorker / 3)
		if !eventually(30*time.Second, func() bool { return sent.Load() >= target }) {
			t.Fatal("load stalled")
		}
		must(t, os.Rename(w.LogFile, fmt.Sprintf("%s.%d", w.LogFile, i)))
		p.signal(syscall.SIGUSR1)
		if !p.waitOutputCount("logs reopened", i, 10*time.Second) {
			t.Fatalf("no reopen logged\n%s", p.Output())
		}
	}
	wg.Wait()
	if res.failed.Load() != 0 {
		t.Fatalf("load: %v", res)
	}
	total := workers * perWorker
	var lines []string
	if !eventually(10*time.Second, func() bool {
		lines = nil
		for _, name := range []string{w.LogFile + ".1", w.LogFile + ".2", w.LogFile} {
			b, err := os.ReadFile(name)
			if err != nil {
				return false
			}
			lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
		}
		return len(lines) >= total
	}) {
		t.Fatalf("%d log lines across the rotation, want %d", len(lines), total)
	}
	if len(lines) != total {
		t.Fatalf("%d log lines, want exactly %d", len(lines), total)
	}
	for _, l := range lines {
		if !combinedRE.MatchString(l) {
			t.Fatalf("torn or malformed line: %q", l)
		}
	}
	for i := 1; i <= 2; i++ {
		if b, _ := os.ReadFile(fmt.Sprintf("%s.%d", w.LogFile, i)); len(b) == 0 {
			t.Errorf("rotated file %d is empty: the rotation did not happen under load", i)
		}
	}
	_, m := adminGet(t, p.admin(), "/metrics")
	if v := metricValue(m, "massvhost_access_log_dropped_total"); v != 0 {
		t.Errorf("access_log_dropped_total = %v", v)
	}
}

// TestOpsReloadUnderLoad sends SIGHUP five times while requests run, one
// of the reloads changing server timeouts (a new http.Server takes over the
// sockets), and expects no failed request.
func TestOpsReloadUnderLoad(t *testing.T) {
	w := newWorld(t, []string{"a.test"}, "a.test")
	base := withAdmin(w.config(""))
	p := start(t, base)
	c := httpClient(p.HTTPAddr, 16)
	stop := make(chan struct{})
	resCh := make(chan *loadResult, 1)
	go func() { resCh <- runLoad(c, 16, 1_000_000, "http://a.test/", "tenant a.test\n", stop) }()
	for i := 1; i <= 5; i++ {
		if i == 3 {
			must(t, os.WriteFile(p.ConfigPath, []byte(base+"server:\n  idle_timeout: 30s\n  read_header_timeout: 7s\n"), 0o644))
		}
		time.Sleep(100 * time.Millisecond) // let requests run across the swap
		p.signal(syscall.SIGHUP)
		if !p.waitOutputCount("configuration reloaded", i, 10*time.Second) {
			close(stop)
			t.Fatalf("reload %d not applied\n%s", i, p.Output())
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	res := <-resCh
	if res.failed.Load() != 0 || res.ok.Load() == 0 {
		t.Fatalf("load across reloads: %v", res)
	}
	t.Logf("load across 5 reloads: %v", res)
	_, m := adminGet(t, p.admin(), "/metrics")
	if v := metricValue(m, `massvhost_config_reloads_total{result="success"}`); v != 5 {
		t.Errorf("config_reloads_total{success} = %v, want 5", v)
	}
}

// TestOpsReloadRebinds moves the HTTP and admin listeners with SIGHUP: the
// new addresses serve, the old ones stop accepting.
func TestOpsReloadRebinds(t *testing.T) {
	w := newWorld(t, []string{"a.test"})
	base := withAdmin(w.config(""))
	p := start(t, base)
	oldHTTP, _, oldAdmin := p.addrs()
	moved := strings.Replace(base, `http: "127.0.0.1:0"`, `http: "127.0.0.2:0"`, 1)
	moved = strings.Replace(moved, `listen: "127.0.0.1:0"`, `listen: "127.0.0.2:0"`, 1)
	must(t, os.WriteFile(p.ConfigPath, []byte(moved), 0o644))
	p.signal(syscall.SIGHUP)
	if !p.waitOutputCount("massvhost: listening", 2, 10*time.Second) {
		t.Fatalf("no new listening line after the reload\n%s", p.Output())
	}
	newHTTP, _, newAdmin := p.addrs()
	if !strings.HasPrefix(newHTTP, "127.0.0.2:") || !strings.HasPrefix(newAdmin, "127.0.0.2:") {
		t.Fatalf("after reload: http=%s admin=%s", newHTTP, newAdmin)
	}
	if s, body := rawHTTP(t, newHTTP, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"); s != 200 || body != "tenant a.test\n" {
		t.Fatalf("new address: %d %q", s, body)
	}
	if code, _ := adminGet(t, newAdmin, "/healthz"); code != 200 {
		t.Fatalf("new admin address: %d", code)
	}
	for _, old := range []string{oldHTTP, oldAdmin} {
		if !eventually(10*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", old, time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		}) {
			t.Errorf("old address %s still accepts connections", old)
		}
	}
}

// TestOpsShutdownUnderLoad sends SIGTERM while slow downloads are in
// flight and short requests keep coming: every request that got its
// response headers completes, the listeners refuse new connections, and
// the process exits 0 within server.shutdown_timeout.
func TestOpsShutdownUnderLoad(t *testing.T) {
	w := newWorld(t, []string{"a.test"})
	const size = 8 << 20
	w.writeFile(t, "a.test", "big.bin", strings.Repeat("y", size))
	p := start(t, withAdmin(w.config("server:\n  shutdown_timeout: 25s\n")))
	admin := p.admin()

	// Slow downloads: headers received before SIGTERM.
	const downloads = 4
	type result struct {
		n   int64
		err error
	}
	results := make(chan result, downloads)
	started := make(chan struct{}, downloads)
	for range downloads {
		go func() {
			conn, err := net.Dial("tcp", p.HTTPAddr)
			if err != nil {
				results <- result{err: err}
				started <- struct{}{}
				return
			}
			defer conn.Close()
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetReadBuffer(16 << 10)
			}
			fmt.Fprintf(conn, "GET /big.bin HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			started <- struct{}{}
			if err != nil {
				results <- result{err: err}
				return
			}
			n, err := io.Copy(io.Discard, slowReader{resp.Body})
			results <- result{n: n, err: err}
		}()
	}
	for range downloads {
		<-started
	}

	// Short requests: each one that got headers must get its whole body.
	var truncated, completed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	c := httpClient(p.HTTPAddr, 8)
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://a.test/")
				if err != nil {
					continue // refused after SIGTERM: not an in-flight request
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != "tenant a.test\n" {
					truncated.Add(1)
					continue
				}
				completed.Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	p.signal(syscall.SIGTERM)
	if !eventually(10*time.Second, func() bool {
		code, _ := readyz(admin)
		return code == 503 || code == 0
	}) {
		t.Error("/readyz did not report not-ready during the drain")
	}
	if !eventually(10*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", p.HTTPAddr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	}) {
		t.Error("listener still accepting after SIGTERM")
	}
	close(stop)
	wg.Wait()
	for range downloads {
		r := <-results
		if r.err != nil || r.n != size {
			t.Errorf("download cut by shutdown: %d of %d bytes, err %v", r.n, size, r.err)
		}
	}
	if truncated.Load() != 0 || completed.Load() == 0 {
		t.Errorf("short requests: %d completed, %d cut after their headers", completed.Load(), truncated.Load())
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Fatalf("exit: %v\n%s", p.waitErr, p.Output())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("process did not exit after the drain")
	}
	if !strings.Contains(p.Output(), "msg=stopped") {
		t.Errorf("no clean stop logged\n%s", p.Output())
	}
}

// readyz returns the /readyz status, 0 when the admin listener is gone.
func readyz(addr string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOpsTenantAccessLog checks per-tenant access logs under a pattern.
func TestOpsTenantAccessLog(t *testing.T) {
	w := newWorld(t, []string{"a.test", "b.test"})
	for _, h := range []string{"a.test", "b.test"} {
		must(t, os.MkdirAll(filepath.Join(w.Sites, h, "logs"), 0o755))
	}
	cfg := strings.Replace(w.config(""), "log:\n", "log:\n  access_per_tenant: \"%0/logs/access.log\"\n  max_open_files: 1\n", 1)
	p := start(t, cfg)
	for i := range 6 {
		host := []string{"a.test", "b.test"}[i%2]
		if s, _ := rawHTTP(t, p.HTTPAddr, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); s != 200 {
			t.Fatalf("%s: %d", host, s)
		}
	}
	for _, h := range []string{"a.test", "b.test"} {
		path := filepath.Join(w.Sites, h, "logs", "access.log")
		if !eventually(10*time.Second, func() bool {
			b, _ := os.ReadFile(path)
			return strings.Count(string(b), "\n") == 3
		}) {
			b, _ := os.ReadFile(path)
			t.Errorf("%s log: %q, want 3 lines", h, b)
			continue
		}
		b, _ := os.ReadFile(path)
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if !strings.HasPrefix(l, h+":") {
				t.Errorf("%s log holds a foreign line: %q", h, l)
			}
		}
	}
}
