package abuse

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Scripts of the hostile tenant A (CGI-10) and the plain ones both tenants
// have.
const (
	// forkBomb forks without bound; RLIMIT_NPROC stops the forks and the
	// timeout kills the process group.
	forkBomb = "#!/bin/sh\nbomb() { bomb | bomb & }\nbomb\nwait\n"
	// memHog allocates 64 MiB at a time, touching every page, until the
	// allocator refuses (RLIMIT_AS), then reports how far it got.
	memHog = `#!/usr/bin/python3
import sys, time
got = []
try:
    while True:
        got.append(bytearray(64 << 20))
except MemoryError:
    pass
sys.stdout.write("Content-Type: text/plain\r\n\r\nheld %d MiB\n" % (64 * len(got)))
sys.stdout.flush()
time.sleep(1)
`
	// diskFill writes until RLIMIT_FSIZE stops it (SIGXFSZ), then reports
	// the size reached.
	diskFill = "#!/bin/sh\nf=../spool/big.$$\nyes > $f 2>/dev/null\nst=$?\nsz=$(wc -c < $f)\nrm -f $f\nprintf 'Content-Type: text/plain\\r\\n\\r\\nstatus=%s size=%s\\n' $st $sz\n"
	// sleepy holds a process (and a grandchild) before any header.
	sleepy = "#!/bin/sh\nsleep ${QUERY_STRING:-30}\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslept\\n'\n"
	// spin keeps one CPU busy for QUERY_STRING seconds.
	spin  = "#!/bin/sh\ntimeout ${QUERY_STRING:-3} sh -c 'while :; do :; done'\nprintf 'Content-Type: text/plain\\r\\n\\r\\nspun\\n'\n"
	hello = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello from %s\\n' \"$SERVER_NAME\"\n"
)

// abuseWorld has tenant a.test (uid A) with the hostile scripts and
// tenant b.test (uid B) with a static page and hello.cgi.
func abuseWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	w.addTenant(t, "a.test", uidA)
	w.addTenant(t, "b.test", uidB)
	for name, body := range map[string]string{
		"forkbomb.cgi": forkBomb, "memhog.cgi": memHog, "diskfill.cgi": diskFill,
		"sleep.cgi": sleepy, "hello.cgi": hello, "spin.cgi": spin,
	} {
		w.script(t, "a.test", name, body, uidA)
	}
	spool := filepath.Join(w.Sites, "a.test", "spool")
	must(t, os.MkdirAll(spool, 0o755))
	w.own(t, spool, uidA)
	w.script(t, "b.test", "hello.cgi", hello, uidB)
	w.writeFile(t, "b.test", "htdocs/page.html", strings.Repeat("static page of b\n", 256), 0o644, uidB)
	w.addCert(t, "a.test")
	w.addCert(t, "b.test")
	t.Cleanup(func() { killUID(uidA); killUID(uidB) })
	return w
}

// maxP99Ratio bounds tenant B's p99 under abuse as a multiple of its
// baseline p99 (the median over rounds), and latencyFloor is the smallest
// baseline the ratio is taken against: below it, a p99 of 200 samples is
// scheduler noise on a shared machine (sub-millisecond static pages). See
// TestIsolationUnderAbuse. The bound is far above the measured medians
// (about 3.5x with cgroups, 5x without; docs/RELIABILITY.md) because
// single runs on a busy 2-core machine have reached 15x; a tenant that is
// not contained makes B fail or wait for A's timeouts (hundreds of times
// the floor), which it still catches.
const (
	maxP99Ratio  = 25
	latencyFloor = 10 * time.Millisecond
)

// isolationCgroups is cgi.cgroups for TestIsolationUnderAbuse; "off"
// measures the server without per-tenant cgroups.
var (
	isolationCgroups = flag.String("isolation.cgroups", "auto", "cgi.cgroups for TestIsolationUnderAbuse: auto, on or off")
	isolationCPUMax  = flag.String("isolation.cpumax", "", "cgi.tenant_cpu_max for TestIsolationUnderAbuse (default: the server's default)")
	isolationDemote  = flag.String("isolation.demote", "", "cgi.tenant_cpu_demote for TestIsolationUnderAbuse (default: the server's default; 0: never demote)")
	isolationConc    = flag.Int("isolation.conc", 2, "tenant B's concurrent clients per kind (static, CGI) in TestIsolationUnderAbuse")
	isolationAbusers = flag.String("isolation.abusers", "forkbomb,forkbomb,forkbomb,memhog,memhog,diskfill,diskfill",
		"tenant A's concurrent abusers under abuse (scripts without .cgi), to tell which one costs B what; "+
			"idlespin is a CPU spinner at SCHED_IDLE outside the server, to measure the machine's floor")
)

// fileSizeLimit is RLIMIT_FSIZE for the abuse tests: small, so the disk
// filler hits it in a fraction of a second.
const fileSizeLimit = 16 << 20

// latencies measures n requests for each of B's static page and B's CGI,
// with conc workers per kind, and returns the two samples and the failures.
func latencies(c *http.Client, n, conc int) (static, cgi []time.Duration, failures []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	run := func(url string, out *[]time.Duration) {
		var next atomic.Int64
		for range conc {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					start := time.Now()
					code, body := get(c, url)
					d := time.Since(start)
					mu.Lock()
					if code == http.StatusOK {
						*out = append(*out, d)
					} else {
						failures = append(failures, fmt.Sprintf("%s: %d %.200s", url, code, body))
					}
					mu.Unlock()
				}
			})
		}
	}
	run("http://b.test/page.html", &static)
	run("http://b.test/cgi-bin/hello.cgi", &cgi)
	wg.Wait()
	return static, cgi, failures
}

// TestIsolationUnderAbuse is CGI-10: tenant A runs a fork bomb, a memory
// hog and a disk filler over and over while tenant B's static page and CGI
// are measured. B keeps being served with a p99 close to its baseline,
// A's scripts are contained by their rlimits and killed at the timeout,
// no process of A survives, and both tenants can spawn afterwards.
//
// The 2x p99 goal of the threat catalogue is measured and logged, with
// whether per-tenant cgroups were on; the test asserts looser bounds.
// rlimits contain a tenant's processes, memory and files but cannot
// apportion CPU. Per-tenant cgroups share contended CPU per tenant, but
// they cannot give B more than its share: the test logs how much of the
// machine B's baseline keeps busy (nearly all of a 2-core machine), and
// whatever A is given then comes out of B's requests. The server's work
// for A's spawns is outside any tenant's weight. A missing containment
// shows as B's requests failing or timing out, far beyond these bounds.
// Run with -isolation.cgroups=off to compare without cgroups,
// -isolation.cpumax to cap each tenant, -isolation.demote to demote CPU
// hogs, -isolation.abusers to pick A's abusers (idlespin: the machine's
// floor, spinners at idle priority instead of A's scripts).
// docs/RELIABILITY.md records measured ratios.
func TestIsolationUnderAbuse(t *testing.T) {
	requireRoot(t)
	w := abuseWorld(t)
	cfg := settings{
		"cgi": {
			"timeout": "3s", "max_per_tenant": "8", "max_total": "64",
			"limits.processes": "64", "limits.file_size": strconv.Itoa(fileSizeLimit),
			"limits.cpu": "3s", "limits.address_space": strconv.Itoa(512 << 20),
			"cgroups": *isolationCgroups,
		},
	}
	if *isolationCPUMax != "" {
		cfg["cgi"]["tenant_cpu_max"] = *isolationCPUMax
	}
	if *isolationDemote != "" {
		cfg["cgi"]["tenant_cpu_demote"] = *isolationDemote
	}
	p := start(t, w.config(cfg))
	// The line is logged before the server listens, but its copy from the
	// server's stderr may trail the readiness check.
	eventually(5*time.Second, func() bool { return strings.Contains(p.Output(), "per-tenant cgroups") })
	cgroupsOn := strings.Contains(p.Output(), "per-tenant cgroups on")
	for line := range strings.SplitSeq(p.Output(), "\n") {
		if strings.Contains(line, "cgroup") {
			t.Logf("server: %s", line)
		}
	}
	t.Logf("per-tenant cgroups: %v (cgi.cgroups %s, cgi.tenant_cpu_max %q)", cgroupsOn, *isolationCgroups, *isolationCPUMax)
	c := httpClient(p.HTTPAddr, 30*time.Second)
	n, conc := 200, *isolationConc

	// Each hostile script alone first: its own rlimit contains it.
	for _, tc := range []struct{ script, want string }{
		{"diskfill.cgi", "200 status=153 size=" + strconv.Itoa(fileSizeLimit)}, // 128+SIGXFSZ
		{"memhog.cgi", "200 held "},
		{"forkbomb.cgi", ""},
	} {
		code, body := get(c, "http://a.test/cgi-bin/"+tc.script)
		got := fmt.Sprintf("%d %s", code, strings.TrimSpace(body))
		t.Logf("%s alone: %q", tc.script, got)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s alone: got %q, want prefix %q", tc.script, got, tc.want)
		}
		if !eventually(15*time.Second, func() bool { return len(uidProcs(uidA)) == 0 }) {
			t.Errorf("%s left processes: %v", tc.script, uidProcs(uidA))
		}
	}

	// Rounds of baseline then abuse; the p99 ratio of each round is
	// computed within the round, and the median over rounds is judged, so
	// one noisy sample on a shared machine does not decide the outcome.
	latencies(c, 20, conc) // warm up: page cache, first spawn
	abuseResults := map[string][]string{}
	peakA := 0
	var ratiosStatic, ratiosCGI, judgedStatic, judgedCGI []float64
	const rounds = 3
	for round := range rounds {
		baseBusy := cpuBusy()
		baseStatic, baseCGI, fails := latencies(c, n, conc)
		machine, client := baseBusy()
		if len(fails) > 0 {
			t.Fatalf("baseline failures: %q", fails[:min(len(fails), 5)])
		}
		t.Logf("round %d: baseline kept %.2f of %d CPUs busy (the load client %.2f of them)", round+1, machine, runtime.NumCPU(), client)
		abStatic, abCGI, fails, peak := underAbuse(t, p, abuseResults, func() ([]time.Duration, []time.Duration, []string) {
			return latencies(c, n, conc)
		})
		peakA = max(peakA, peak)
		if len(fails) > 0 {
			t.Errorf("tenant B failed under abuse (%d): %q", len(fails), fails[:min(len(fails), 5)])
		}
		ratio := func(abused, base []time.Duration, floor time.Duration) float64 {
			return float64(percentile(abused, 99)) / float64(max(percentile(base, 99), floor))
		}
		rs, rc := ratio(abStatic, baseStatic, time.Microsecond), ratio(abCGI, baseCGI, time.Microsecond)
		ratiosStatic, ratiosCGI = append(ratiosStatic, rs), append(ratiosCGI, rc)
		judgedStatic = append(judgedStatic, ratio(abStatic, baseStatic, latencyFloor))
		judgedCGI = append(judgedCGI, ratio(abCGI, baseCGI, latencyFloor))
		t.Logf("round %d: B static p50/p99 baseline %v/%v, under abuse %v/%v (p99 ratio %.2f)", round+1,
			percentile(baseStatic, 50).Round(time.Microsecond), percentile(baseStatic, 99).Round(time.Microsecond),
			percentile(abStatic, 50).Round(time.Microsecond), percentile(abStatic, 99).Round(time.Microsecond), rs)
		t.Logf("round %d: B CGI    p50/p99 baseline %v/%v, under abuse %v/%v (p99 ratio %.2f)", round+1,
			percentile(baseCGI, 50).Round(time.Microsecond), percentile(baseCGI, 99).Round(time.Microsecond),
			percentile(abCGI, 50).Round(time.Microsecond), percentile(abCGI, 99).Round(time.Microsecond), rc)
	}
	t.Logf("median p99 ratio over %d rounds, cgroups %v: static %.2f, CGI %.2f (against a baseline of at least %v: %.2f, %.2f); tenant A peak process count %d (RLIMIT_NPROC 64)",
		rounds, cgroupsOn, median(ratiosStatic), median(ratiosCGI), latencyFloor, median(judgedStatic), median(judgedCGI), peakA)
	demotions := 0
	for line := range strings.SplitSeq(p.Output(), "\n") {
		if strings.Contains(line, "demoted to idle") || strings.Contains(line, "priority restored") {
			if demotions++; demotions <= 6 {
				t.Logf("server: %s", line)
			}
		}
	}
	t.Logf("tenant demotions: %v (cgi.tenant_cpu_demote %q)", p.metric("massvhost_cgi_tenant_demotions_total"), *isolationDemote)
	for _, script := range sortedKeys(abuseResults) {
		res := abuseResults[script]
		t.Logf("%s under abuse: %d runs, %s", script, len(res), statusCounts(res))
	}
	if rs, rc := median(judgedStatic), median(judgedCGI); rs > maxP99Ratio || rc > maxP99Ratio {
		t.Errorf("tenant B's p99 grew beyond %dx its baseline under abuse, cgroups %v (median ratios: static %.2f, CGI %.2f)",
			maxP99Ratio, cgroupsOn, rs, rc)
	}
	if peakA > 64+8 { // RLIMIT_NPROC plus the launchers not yet switched to A
		t.Errorf("tenant A reached %d processes, above RLIMIT_NPROC", peakA)
	}
	for _, r := range abuseResults["diskfill.cgi"] {
		if i := strings.Index(r, "size="); i >= 0 {
			if sz, err := strconv.Atoi(strings.Fields(r[i+5:])[0]); err == nil && sz > fileSizeLimit {
				t.Errorf("disk filler wrote %d bytes, above RLIMIT_FSIZE %d", sz, fileSizeLimit)
			}
		}
	}
	for _, r := range abuseResults["memhog.cgi"] {
		if strings.HasPrefix(r, "200 held ") {
			var mib int
			fmt.Sscanf(r, "200 held %d MiB", &mib)
			if mib<<20 > 512<<20 {
				t.Errorf("memory hog held %d MiB, above RLIMIT_AS", mib)
			}
		}
	}

	// Nothing of A survives its requests.
	if !eventually(15*time.Second, func() bool { return len(uidProcs(uidA)) == 0 }) {
		t.Errorf("tenant A still has processes after the abuse: %v", uidProcs(uidA))
	}
	// The server can still spawn, for both tenants.
	for _, host := range []string{"b.test", "a.test"} {
		if code, body := get(c, "http://"+host+"/cgi-bin/hello.cgi"); code != http.StatusOK {
			t.Errorf("%s hello.cgi after the abuse: %d %s", host, code, body)
		}
	}
	if !p.alive() {
		t.Fatal("server died")
	}
}

// TestCPUHogDemoted: with cgi.tenant_cpu_demote set, a tenant whose
// scripts keep two CPUs' worth of spinning is demoted to idle CPU priority
// (logged with its name, counted in /metrics), and a tenant serving light
// requests meanwhile is not.
func TestCPUHogDemoted(t *testing.T) {
	requireRoot(t)
	w := abuseWorld(t)
	p := start(t, w.config(settings{"cgi": {"tenant_cpu_demote": "0.25", "tenant_cpu_demote_for": "1s", "timeout": "20s"}}))
	eventually(5*time.Second, func() bool { return strings.Contains(p.Output(), "per-tenant cgroups") })
	if !strings.Contains(p.Output(), "per-tenant cgroups on") {
		t.Skip("per-tenant cgroups are off on this machine: nothing to demote with")
	}
	if out := p.Output(); strings.Contains(out, "CPU hogs are not demoted") {
		t.Skipf("demotion unavailable here: %s", out[strings.Index(out, "CPU hogs are not demoted"):][:120])
	}
	c := httpClient(p.HTTPAddr, 30*time.Second)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if code, body := get(c, "http://a.test/cgi-bin/spin.cgi?4"); code != http.StatusOK {
				t.Errorf("spin.cgi: %d %s", code, body)
			}
		})
	}
	for range 20 {
		if code, body := get(c, "http://b.test/cgi-bin/hello.cgi"); code != http.StatusOK {
			t.Errorf("b.test hello.cgi: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	var demoted []string
	for line := range strings.SplitSeq(p.Output(), "\n") {
		if strings.Contains(line, "demoted to idle CPU priority") {
			demoted = append(demoted, line)
			t.Logf("server: %s", line)
		}
	}
	if len(demoted) == 0 || !strings.Contains(demoted[0], "tenant=a.test") {
		t.Errorf("the spinning tenant was not demoted first (%d demotions logged)", len(demoted))
	}
	for _, line := range demoted {
		if strings.Contains(line, "tenant=b.test") {
			t.Errorf("the light tenant was demoted: %s", line)
		}
	}
	if v := p.metric("massvhost_cgi_tenant_demotions_total"); v < 1 {
		t.Errorf("massvhost_cgi_tenant_demotions_total = %v, want >= 1", v)
	}
}

// TestTenantMemoryCap: with cgi.tenant_memory_max, memory hogs whose
// address-space limits each allow 448 MiB cannot hold more than the
// tenant's cap together: the kernel OOM-kills inside the tenant's cgroup
// (the hog's request ends 502), another tenant is served meanwhile, and
// the server lives on.
func TestTenantMemoryCap(t *testing.T) {
	requireRoot(t)
	w := abuseWorld(t)
	const limit = 192 << 20
	p := start(t, w.config(settings{"cgi": {
		"tenant_memory_max": strconv.Itoa(limit), "limits.address_space": strconv.Itoa(512 << 20), "timeout": "20s",
	}}))
	eventually(5*time.Second, func() bool { return strings.Contains(p.Output(), "per-tenant cgroups") })
	if !strings.Contains(p.Output(), "per-tenant cgroups on") {
		t.Skip("per-tenant cgroups are off on this machine")
	}
	if strings.Contains(p.Output(), "memory is not capped") {
		t.Skip("no memory controller for the tenant cgroups here")
	}
	c := httpClient(p.HTTPAddr, 30*time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var results []string
	for range 3 {
		wg.Go(func() {
			code, body := get(c, "http://a.test/cgi-bin/memhog.cgi")
			mu.Lock()
			results = append(results, fmt.Sprintf("%d %s", code, strings.TrimSpace(body)))
			mu.Unlock()
		})
	}
	if code, body := get(c, "http://b.test/cgi-bin/hello.cgi"); code != http.StatusOK {
		t.Errorf("b.test hello.cgi while a.test hogs memory: %d %s", code, body)
	}
	wg.Wait()
	t.Logf("three memory hogs under a %d MiB tenant cap: %q", limit>>20, results)
	killed := 0
	for _, r := range results {
		var mib int
		if _, err := fmt.Sscanf(r, "200 held %d MiB", &mib); err == nil && mib<<20 > limit {
			t.Errorf("a hog held %d MiB, above the tenant's %d MiB", mib, limit>>20)
		}
		if strings.HasPrefix(r, "502") {
			killed++
		}
	}
	if killed == 0 {
		t.Errorf("no hog was stopped by the tenant's cap: %q", results)
	}
	// The operator and the tenant are told why.
	// (Kills close together can be told as one: the count is at least 1.)
	if v := p.metric("massvhost_cgi_oom_kills_total"); v < 1 {
		t.Errorf("massvhost_cgi_oom_kills_total = %v after %d hogs killed at the cap", v, killed)
	}
	for line := range strings.SplitSeq(p.Output(), "\n") {
		if strings.Contains(line, "out of memory") {
			t.Logf("server: %s", line)
			break
		}
	}
	if !strings.Contains(p.Output(), "out of memory: the tenant's cgi.tenant_memory_max") {
		t.Error("the log does not say the script was killed at the tenant's memory cap")
	}
	if !p.alive() {
		t.Fatal("server died")
	}
}

// TestConnsPerIPCap is HTTP-05: one client IP cannot hold more than
// server.max_conns_per_ip connections; the rest are closed at accept,
// while another client IP is still served.
func TestConnsPerIPCap(t *testing.T) {
	w := newWorld(t)
	w.addTenant(t, "b.test", -1)
	const limit, extra = 8, 6
	p := start(t, w.config(settings{"server": {"max_conns_per_ip": strconv.Itoa(limit)}}))

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range limit + extra {
		c, err := net.DialTimeout("tcp", p.HTTPAddr, 5*time.Second)
		must(t, err)
		held = append(held, c)
	}
	served, refused := 0, 0
	for _, c := range held {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		if strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
			served++
		} else {
			refused++
		}
	}
	t.Logf("from 127.0.0.1: %d served, %d refused (cap %d)", served, refused, limit)
	if served != limit || refused != extra {
		t.Errorf("served %d and refused %d connections from one IP, want %d and %d", served, refused, limit, extra)
	}

	// Another loopback address is not affected by 127.0.0.1's use.
	other := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
	}}
	req, _ := http.NewRequest("GET", "http://"+p.HTTPAddr+"/", nil)
	req.Host = "b.test"
	resp, err := other.Do(req)
	if err != nil {
		t.Fatalf("client at 127.0.0.2 while 127.0.0.1 is at its cap: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("client at 127.0.0.2: %d", resp.StatusCode)
	}
	if v := p.metric("massvhost_connections_refused_total"); v < extra {
		t.Errorf("massvhost_connections_refused_total = %v, want >= %d", v, extra)
	}
}

// TestTenantCGICap is HTTP-05's per-tenant half: more simultaneous
// scripts than cgi.max_per_tenant get 503 with Retry-After at once, and
// another tenant's scripts still run.
func TestTenantCGICap(t *testing.T) {
	requireRoot(t)
	w := abuseWorld(t)
	const limit, total = 4, 20
	p := start(t, w.config(settings{"cgi": {"max_per_tenant": strconv.Itoa(limit), "timeout": "20s"}}))
	c := httpClient(p.HTTPAddr, 30*time.Second)

	// Fill A's slots with scripts that wait, then send the rest.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	retryAfter := 0
	for i := range total {
		wg.Go(func() {
			resp, err := c.Get("http://a.test/cgi-bin/sleep.cgi?3")
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			codes[resp.StatusCode]++
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
				retryAfter++
			}
		})
	}
	// While A is at its cap, B's scripts run.
	if !eventually(10*time.Second, func() bool { return p.metric("massvhost_cgi_running") >= limit }) {
		t.Errorf("A never reached %d running scripts", limit)
	}
	if code, body := get(c, "http://b.test/cgi-bin/hello.cgi"); code != http.StatusOK {
		t.Errorf("b.test hello.cgi while a.test is at its cap: %d %s", code, body)
	}
	wg.Wait()
	t.Logf("%d concurrent scripts of one tenant with max_per_tenant=%d: %v", total, limit, codes)
	if codes[http.StatusOK] > limit || codes[http.StatusOK] == 0 || codes[http.StatusServiceUnavailable] < total-2*limit {
		t.Errorf("status counts %v, want at most %d × 200 and the rest 503", codes, limit)
	}
	if retryAfter != codes[http.StatusServiceUnavailable] {
		t.Errorf("%d of %d 503 answers carry Retry-After", retryAfter, codes[http.StatusServiceUnavailable])
	}
}

// underAbuse runs tenant A's hostile scripts in a loop (three fork bombs,
// two memory hogs, two disk fillers at once), calls measure once the abuse
// is at full strength, stops the abuse and waits for A's processes to be
// gone. Script outcomes are appended to results; peak is the largest
// number of A's processes seen.
func underAbuse[T any, U any, V any](t *testing.T, p *proc, results map[string][]string, measure func() (T, U, V)) (T, U, V, int) {
	t.Helper()
	stop := make(chan struct{})
	var abusers sync.WaitGroup
	var mu sync.Mutex
	ac := httpClient(p.HTTPAddr, 30*time.Second)
	for script := range strings.SplitSeq(*isolationAbusers, ",") {
		if script == "idlespin" {
			// Not a tenant: a CPU spinner at SCHED_IDLE outside the
			// server, the least intrusive CPU use there is. What it costs
			// B is the floor no scheduling policy of the server can go
			// below on this machine.
			spinner := exec.Command("chrt", "--idle", "0", "sh", "-c", "while :; do :; done")
			if err := spinner.Start(); err != nil {
				t.Fatalf("idle spinner: %v", err)
			}
			abusers.Go(func() {
				<-stop
				spinner.Process.Kill()
				spinner.Wait()
			})
			continue
		}
		script += ".cgi"
		abusers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body := get(ac, "http://a.test/cgi-bin/"+script)
				mu.Lock()
				results[script] = append(results[script], fmt.Sprintf("%d %s", code, strings.TrimSpace(body)))
				mu.Unlock()
			}
		})
	}
	scripts := false
	for a := range strings.SplitSeq(*isolationAbusers, ",") {
		scripts = scripts || a != "idlespin"
	}
	if scripts && !eventually(10*time.Second, func() bool { return len(uidProcs(uidA)) >= 20 }) {
		t.Logf("tenant A has only %d processes after 10s of abuse", len(uidProcs(uidA)))
	}
	peak := 0
	sampleDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				peak = max(peak, len(uidProcs(uidA)))
			}
		}
	}()
	a, b, c := measure()
	close(stop)
	abusers.Wait()
	<-sampleDone
	if !eventually(15*time.Second, func() bool { return len(uidProcs(uidA)) == 0 }) {
		t.Errorf("tenant A still has processes after the abuse: %v", uidProcs(uidA))
	}
	return a, b, c, peak
}

// cpuBusy starts measuring, and the function it returns reports, how many
// CPUs were busy on the whole machine (from /proc/stat) and in this test
// process (the load client) since. B's baseline load is what a CPU-bound
// tenant can lose under contention: once A takes CPU, B cannot keep more
// than its share, so its latency grows by at least busy/share.
func cpuBusy() func() (machine, self float64) {
	stat := func() (busy, total int64) {
		b, _ := os.ReadFile("/proc/stat")
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseInt(f, 10, 64)
			if i < 8 { // user nice system idle iowait irq softirq steal
				total += v
				if i != 3 && i != 4 {
					busy += v
				}
			}
		}
		return busy, total
	}
	self := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b0, t0 := stat()
	s0, w0 := self(), time.Now()
	return func() (float64, float64) {
		b1, t1 := stat()
		if t1 == t0 {
			return 0, 0
		}
		cpus := float64(runtime.NumCPU())
		return cpus * float64(b1-b0) / float64(t1-t0), float64(self()-s0) / float64(time.Since(w0))
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// statusCounts summarises "<status> <body>" results by status, with the
// first body of each.
func statusCounts(results []string) string {
	counts, first := map[string]int{}, map[string]string{}
	for _, r := range results {
		code, body, _ := strings.Cut(r, " ")
		if counts[code]++; counts[code] == 1 {
			first[code] = body
		}
	}
	var parts []string
	for _, code := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s×%d (%.60q)", code, counts[code], first[code]))
	}
	return strings.Join(parts, " ")
}
