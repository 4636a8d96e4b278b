package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"massvhost/vhost"
)

func requestCount(st Stats, proto, class string) uint64 {
	for _, r := range st.Requests {
		if r.Proto == proto && r.Class == class {
			return r.Count
		}
	}
	return 0
}

// TestStatsRequests checks the counts by protocol and status class.
func TestStatsRequests(t *testing.T) {
	f := newFixture(t, nil)
	h1, h2 := f.client(false), f.client(true)
	f.get(h1, "GET", "https://a.test/file.txt")
	f.get(h1, "GET", "https://a.test/nope")
	f.get(h2, "GET", "https://a.test/file.txt")
	f.get(h2, "GET", "https://a.test/file.txt")
	f.raw("", "GET /file.txt HTTP/1.0\r\nHost: a.test\r\n\r\n")
	st := f.srv.Stats()
	for _, tc := range []struct {
		proto, class string
		want         uint64
	}{
		{"HTTP/1.1", "2xx", 1},
		{"HTTP/1.1", "4xx", 1},
		{"HTTP/2.0", "2xx", 2},
		{"HTTP/1.0", "2xx", 1},
		{"HTTP/1.1", "5xx", 0},
	} {
		if got := requestCount(st, tc.proto, tc.class); got != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.proto, tc.class, got, tc.want)
		}
	}
	if st.InFlight != 0 {
		t.Errorf("InFlight = %d after all requests finished", st.InFlight)
	}
	if len(st.Requests) != len(protoNames)*len(classNames) {
		t.Errorf("%d request series, want every protocol × class", len(st.Requests))
	}
}

// TestStatsTLSFailures checks each failure reason with real handshakes.
func TestStatsTLSFailures(t *testing.T) {
	f := newFixture(t, nil)
	f.certs.mu.Lock()
	f.certs.unavailable["down.test"] = true
	f.certs.mu.Unlock()
	dial := func(sni string) error {
		c, err := tls.Dial("tcp", f.httpsAddr, &tls.Config{ServerName: sni, RootCAs: f.ca.Pool, InsecureSkipVerify: sni == ""})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial("a.test"); err != nil {
		t.Fatalf("handshake a.test: %v", err)
	}
	for _, sni := range []string{"", "unknown.test", "bad_name.test", "down.test"} {
		if err := dial(sni); err == nil {
			t.Fatalf("handshake %q succeeded", sni)
		}
	}
	st := f.srv.Stats()
	want := map[string]uint64{TLSNoSNI: 1, TLSUnknownName: 1, TLSInvalidName: 1, TLSStoreUnavailable: 1, TLSBadCertificate: 0}
	for reason, n := range want {
		if st.TLSFailures[reason] != n {
			t.Errorf("TLSFailures[%s] = %d, want %d (all: %v)", reason, st.TLSFailures[reason], n, st.TLSFailures)
		}
	}
	if st.TLSHellos != 5 || st.TLSHandshakes != 1 {
		t.Errorf("TLSHellos = %d, TLSHandshakes = %d; want 5 and 1", st.TLSHellos, st.TLSHandshakes)
	}
	// net/http reports each failed handshake on its error log, possibly
	// after Dial has returned.
	deadline := time.Now().Add(5 * time.Second)
	for f.srv.Stats().TLSErrors < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.srv.Stats().TLSErrors; n < 4 {
		t.Errorf("TLSErrors = %d, want at least 4", n)
	}
}

// TestStatsCGI checks the CGI in-flight gauge, the per-tenant top and the
// header latency histogram.
func TestStatsCGI(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	f := newFixture(t, nil)
	f.cgi.mu.Lock()
	f.cgi.serve = func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.Write([]byte("done"))
	}
	f.cgi.mu.Unlock()
	c := f.client(false)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { f.get(c, "GET", "https://a.test/cgi-bin/env.cgi") })
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("CGI requests did not arrive")
		}
	}
	st := f.srv.Stats()
	top := f.srv.TopTenants(5)
	if st.CGIInFlight != 2 || len(top.ByCGI) != 1 || top.ByCGI[0] != (TenantCount{Tenant: "a.test", Count: 2}) {
		t.Errorf("while running: CGIInFlight %d, ByCGI %+v; want 2 for a.test", st.CGIInFlight, top.ByCGI)
	}
	close(release)
	wg.Wait()
	st = f.srv.Stats()
	if st.CGIInFlight != 0 || len(f.srv.TopTenants(5).ByCGI) != 0 {
		t.Errorf("after: CGIInFlight %d, ByCGI %+v; want none", st.CGIInFlight, f.srv.TopTenants(5).ByCGI)
	}
	if st.CGIHeaderLatency.Count != 2 || st.CGIHeaderLatency.Sum <= 0 {
		t.Errorf("CGIHeaderLatency = %+v, want 2 observations", st.CGIHeaderLatency)
	}
	if got := st.CGIHeaderLatency.Buckets[cgiHeaderBuckets[len(cgiHeaderBuckets)-1]]; got > 2 {
		t.Errorf("cumulative count in the last bucket %d exceeds the total", got)
	}
}

// TestTopTenantsByRequests checks that the busiest tenants lead the list
// and that requests for unknown hosts are not counted.
func TestTopTenantsByRequests(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(false)
	for range 3 {
		f.get(c, "GET", "https://a.test/file.txt")
	}
	f.get(c, "GET", "https://b.test/index.html")
	f.raw("", "GET / HTTP/1.1\r\nHost: unknown.test\r\nConnection: close\r\n\r\n")
	top := f.srv.TopTenants(10)
	want := []TenantCount{{Tenant: "a.test", Count: 3}, {Tenant: "b.test", Count: 1}}
	if len(top.ByRequests) != 2 || top.ByRequests[0] != want[0] || top.ByRequests[1] != want[1] {
		t.Fatalf("ByRequests = %+v, want %+v", top.ByRequests, want)
	}
	if top.Window <= 0 {
		t.Errorf("Window = %v", top.Window)
	}
}

// TestSpaceSavingBounded checks that the sketch keeps a fixed number of
// counters whatever the number of tenants, and still finds a heavy hitter
// among a flood of one-off names.
func TestSpaceSavingBounded(t *testing.T) {
	tt := newTenantTop()
	now := time.Now()
	for i := range 50000 {
		tt.add("flood-"+strconv.Itoa(i), now)
		if i%10 == 0 {
			tt.add("heavy.test", now)
		}
	}
	total := 0
	for i := range tt.shards {
		total += len(tt.shards[i].cur.entries) + len(tt.shards[i].prev.entries)
	}
	if total > topShards*topPerShard*2 {
		t.Errorf("%d counters kept, want at most %d", total, topShards*topPerShard*2)
	}
	top, _ := tt.top(1, now)
	if len(top) != 1 || top[0].Tenant != "heavy.test" || top[0].Count < 5000 {
		t.Fatalf("top = %+v, want heavy.test with at least 5000", top)
	}
}

// TestTopTenantsWindow checks that counts older than two windows are
// forgotten.
func TestTopTenantsWindow(t *testing.T) {
	tt := newTenantTop()
	start := time.Now()
	tt.add("old.test", start)
	if top, _ := tt.top(5, start.Add(topWindow+time.Second)); len(top) != 1 {
		t.Fatalf("one window later: %+v, want old.test still listed", top)
	}
	if top, _ := tt.top(5, start.Add(3*topWindow)); len(top) != 0 {
		t.Fatalf("three windows later: %+v, want nothing", top)
	}
}

// TestLogHandlerAddsRequestID checks that a record logged with a request's
// context carries the ID the 500 page shows.
func TestLogHandlerAddsRequestID(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(LogHandler(slog.NewTextHandler(&logs, nil)))
	f := newFixture(t, func(o *Options) { o.Logger = logger })
	f.cgi.mu.Lock()
	f.cgi.serve = func(w http.ResponseWriter, r *http.Request) {
		logger.ErrorContext(r.Context(), "script failed", "host", r.Host)
		w.WriteHeader(http.StatusBadGateway)
	}
	f.cgi.mu.Unlock()
	resp, _ := f.get(f.client(false), "GET", "https://a.test/cgi-bin/x.cgi")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d", resp.StatusCode)
	}
	line := logs.String()
	if !strings.Contains(line, "script failed") || !strings.Contains(line, " id="+f.srv.idPrefix+"-") {
		t.Fatalf("log line without request id: %q", line)
	}
	if RequestID(context.Background()) != "" {
		t.Error("RequestID outside a request is not empty")
	}
}

// tenantRecorder is a TenantLogWriter that keeps lines per tenant.
type tenantRecorder struct {
	mu    sync.Mutex
	lines map[string][]string
}

func (r *tenantRecorder) WriteTenant(site vhost.Site, lines []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lines == nil {
		r.lines = map[string][]string{}
	}
	for _, l := range strings.SplitAfter(string(lines), "\n") {
		if l != "" {
			r.lines[site.Tenant] = append(r.lines[site.Tenant], l)
		}
	}
	return nil
}

func (r *tenantRecorder) count(tenant string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lines[tenant])
}

// TestTenantAccessLog checks that every request that reached a site goes to
// its tenant's log as well as the main log, and others only to the main.
func TestTenantAccessLog(t *testing.T) {
	var main syncBuffer
	rec := &tenantRecorder{}
	f := newFixture(t, func(o *Options) { o.AccessLog = &main; o.TenantAccessLog = rec })
	c := f.client(false)
	for range 5 {
		f.get(c, "GET", "https://a.test/file.txt")
	}
	f.get(c, "GET", "https://b.test/index.html")
	f.raw("", "GET / HTTP/1.1\r\nHost: unknown.test\r\nConnection: close\r\n\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.srv.Shutdown(ctx) // flushes the log
	if n := strings.Count(main.String(), "\n"); n != 7 {
		t.Errorf("main log has %d lines, want 7", n)
	}
	if a, b := rec.count("a.test"), rec.count("b.test"); a != 5 || b != 1 {
		t.Errorf("tenant logs: a.test %d lines, b.test %d; want 5 and 1", a, b)
	}
}
