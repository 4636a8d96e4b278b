package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"massvhost/certs"
	"massvhost/server"
	"massvhost/test/certtest"
	"massvhost/test/redistest"
	"massvhost/vhost"
)

// env is a running server over one tenant with its admin endpoints on an
// httptest server.
type env struct {
	t       *testing.T
	srv     *server.Server
	admin   *Admin
	adminTS *httptest.Server
	comp    Components
	http    string
}

func newEnv(t *testing.T, redis *certs.RedisStore) *env {
	t.Helper()
	dir := t.TempDir()
	sites, certDir := filepath.Join(dir, "sites"), filepath.Join(dir, "certs")
	for _, d := range []string{filepath.Join(sites, "a.test", "htdocs"), certDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sites, "a.test", "htdocs", "index.html"), []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Leaf(t, "a.test")
	certtest.WritePair(t, certDir, "a.test", certPEM, keyPEM)
	resolver, err := vhost.NewResolver(vhost.Options{Root: sites})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t}
	mgr, err := certs.NewManager(certs.Options{Store: certs.FileStore{Dir: certDir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	e.srv, err = server.New(server.Options{HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", Sites: resolver, Certs: mgr})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.srv.Shutdown(context.Background()) })
	h, _ := e.srv.Addrs()
	e.http = h.String()
	e.comp = Components{Certs: mgr, Redis: redis, StoreKind: "files", SitesRoot: sites, CertsDir: certDir,
		ConfigSource: "/etc/massvhost.yaml", ConfigLoaded: time.Unix(1700000000, 0)}
	e.admin, err = New(Options{Server: e.srv, Components: func() Components { return e.comp }, Version: "v-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.admin.Close() })
	e.adminTS = httptest.NewServer(e.admin.Handler())
	t.Cleanup(e.adminTS.Close)
	return e
}

// get fetches an admin path.
func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get(e.adminTS.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// request sends one request for a.test to the tenant listener.
func (e *env) request() {
	e.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+e.http+"/", nil)
	req.Host = "a.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// metric returns the value of the first exposition line starting with
// series (name and labels as printed).
func metric(t *testing.T, body, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("series %s not exported", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetricsMove(t *testing.T) {
	e := newEnv(t, nil)
	_, before := e.get("/metrics")
	const series = `massvhost_http_requests_total{code="2xx",proto="HTTP/1.1"}`
	n0 := metric(t, before, series)
	for range 3 {
		e.request()
	}
	e.admin.ObserveStoreLookup("files", 2*time.Millisecond, nil)
	e.admin.ObserveStoreLookup("files", time.Millisecond, fmt.Errorf("x: %w", certs.ErrNotFound))
	e.admin.ReloadDone(nil)
	e.admin.ReloadDone(errors.New("bad yaml"))
	_, after := e.get("/metrics")
	if n := metric(t, after, series); n != n0+3 {
		t.Errorf("%s went from %v to %v, want +3", series, n0, n)
	}
	for series, want := range map[string]float64{
		`massvhost_cert_store_lookup_seconds_count{result="found",store="files"}`:     1,
		`massvhost_cert_store_lookup_seconds_count{result="not_found",store="files"}`: 1,
		`massvhost_config_reloads_total{result="success"}`:                            1,
		`massvhost_config_reloads_total{result="failure"}`:                            1,
		`massvhost_config_loaded_timestamp_seconds`:                                   1.7e9,
		`massvhost_build_info{goversion="` + runtimeVersion() + `",version="v-test"}`: 1,
	} {
		if got := metric(t, after, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	for _, name := range []string{"massvhost_cert_cache_entries", "massvhost_tls_handshake_failures_total{reason=\"no_sni\"}",
		"massvhost_cgi_response_header_seconds_count", "process_resident_memory_bytes", "go_goroutines"} {
		metric(t, after, name)
	}
}

// The ACME counters are exported when the issuer is on, each from its
// own field (new and renewal split), and not at all when it is off.
func TestMetricsACME(t *testing.T) {
	e := newEnv(t, nil)
	if _, body := e.get("/metrics"); strings.Contains(body, "massvhost_acme_") {
		t.Error("ACME series exported with ACME off")
	}
	e.comp.ACME = func() certs.ACMEStats {
		return certs.ACMEStats{Orders: 11, Issued: 9, Renewed: 4, Failed: 7, RenewFailed: 2, CARateLimited: 1,
			RateLimited: 3, TooMany: 5, BackedOff: 6, InProgress: 8, LockWaits: 12, FromStore: 13, Jobs: 2}
	}
	_, body := e.get("/metrics")
	for series, want := range map[string]float64{
		`massvhost_acme_orders_total`:                       11,
		`massvhost_acme_issued_total{kind="new"}`:           5,
		`massvhost_acme_issued_total{kind="renewal"}`:       4,
		`massvhost_acme_failed_total{kind="new"}`:           5,
		`massvhost_acme_failed_total{kind="renewal"}`:       2,
		`massvhost_acme_ca_rate_limited_total`:              1,
		`massvhost_acme_refused_total{reason="rate_limit"}`: 3,
		`massvhost_acme_refused_total{reason="too_many"}`:   5,
		`massvhost_acme_refused_total{reason="backoff"}`:    6,
		`massvhost_acme_handshake_wait_expired_total`:       8,
		`massvhost_acme_lock_waits_total`:                   12,
		`massvhost_acme_from_store_total`:                   13,
		`massvhost_acme_jobs`:                               2,
	} {
		if got := metric(t, body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t, nil)
	if code, body := e.get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := e.get("/readyz")
	if code != 200 || !strings.HasPrefix(body, "ok\n") || !strings.Contains(body, "listeners: ok") {
		t.Errorf("/readyz = %d %q", code, body)
	}
	e.comp.CertsDir = filepath.Join(t.TempDir(), "gone")
	if code, body := e.get("/readyz"); code != 503 || !strings.Contains(body, "certs_dir: failed") {
		t.Errorf("/readyz with a missing certs dir = %d %q, want 503", code, body)
	}
	e.comp.CertsDir = ""
	e.srv.Shutdown(context.Background())
	if code, body := e.get("/readyz"); code != 503 || !strings.HasPrefix(body, "failed\n") {
		t.Errorf("/readyz after Shutdown = %d %q, want 503", code, body)
	}
}

func TestReadinessRedis(t *testing.T) {
	rs := redistest.StartServer(t)
	store, err := certs.NewRedisStore(certs.RedisOptions{Addrs: []string{rs.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := newEnv(t, store)
	if code, body := e.get("/readyz"); code != 200 || !strings.Contains(body, "redis: ok") {
		t.Fatalf("/readyz with Redis up = %d %q", code, body)
	}
	rs.Kill()
	code, body := e.get("/readyz")
	if code != 200 || !strings.HasPrefix(body, "degraded\n") || !strings.Contains(body, "redis: degraded") {
		t.Errorf("/readyz with Redis down = %d %q, want 200 degraded", code, body)
	}
	if code, _ := e.get("/readyz?strict"); code != 503 {
		t.Errorf("/readyz?strict with Redis down = %d, want 503", code)
	}
	if _, auto := e.get("/server-status?auto"); !strings.Contains(auto, "Redis: degraded") {
		t.Errorf("?auto does not show Redis degraded:\n%s", auto)
	}
	_, m := e.get("/metrics")
	metric(t, m, `massvhost_redis_pool_connections{state="total"}`)
}

func TestServerStatus(t *testing.T) {
	e := newEnv(t, nil)
	e.request()
	code, page := e.get("/server-status?refresh=5")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{`<meta http-equiv="refresh" content="5">`, `id="requests-total">1<`,
		"<td>a.test</td>", "/etc/massvhost.yaml", "v-test", "CGI is disabled"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if _, page := e.get("/server-status?refresh=-1"); strings.Contains(page, "http-equiv") {
		t.Error("negative refresh rendered")
	}
	_, auto := e.get("/server-status?auto")
	for _, want := range []string{"Total Accesses: 1\n", "Ready: ok\n", "TopTenant: a.test 1\n", "ConfigSource: /etc/massvhost.yaml\n"} {
		if !strings.Contains(auto, want) {
			t.Errorf("?auto lacks %q:\n%s", want, auto)
		}
	}
	resp, err := http.Get(e.adminTS.URL + "/server-status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
}

// TestSamplerRates checks the per-second rates against samples taken at
// known times.
func TestSamplerRates(t *testing.T) {
	cur := sample{at: time.Unix(100, 0), requests: 150}
	s := &sampler{ring: []sample{{at: time.Unix(80, 0), requests: 0}, {at: time.Unix(90, 0), requests: 50}, {at: time.Unix(95, 0), requests: 100}}}
	base, ok := s.base(cur)
	if !ok || !base.at.Equal(time.Unix(90, 0)) {
		t.Fatalf("base = %v %v, want the sample 10 s back", base.at, ok)
	}
	if r := rate(cur.requests, base.requests, cur.at.Sub(base.at)); r != 10 {
		t.Errorf("rate = %v, want 10/s", r)
	}
}

func runtimeVersion() string { return runtime.Version() }
