package admin

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Parse(statusHTML))

// topN is how many tenants the status page lists in each top table.
const topN = 10

// maxRefresh caps ?refresh=N (seconds).
const maxRefresh = 3600

// statusData is what the status page and its ?auto form show.
type statusData struct {
	Version   string
	GoVersion string
	Now       string
	Uptime    string
	UptimeSec int64
	Refresh   int

	ConfigSource    string
	ConfigLoaded    string
	Reloads         uint64
	ReloadFailures  uint64
	LastReloadError string

	Ready readiness

	Requests      uint64
	ReqRate       float64 // per second over the last rateWindow
	ReqAvg        float64 // per second since start
	InFlight      int64
	ByClass       []kv
	Hellos        uint64
	HandshakeRate float64
	HelloRate     float64
	Failures      []failureRow
	TLSErrors     uint64
	RateWindow    string

	CertEntries    int
	NegEntries     int
	CertHitRatio   string
	CertEvictions  uint64
	CertLoads      uint64
	Invalidations  uint64
	StoreKind      string
	Redis          *redisRow
	AccessDropped  uint64
	TenantLogError uint64

	CGIEnabled  bool
	CGIRunning  int64
	CGIInFlight int64
	CGISpawned  uint64
	CGITimeouts uint64
	CGIRejected uint64

	TopWindow   string
	TopRequests []topRow
	TopCGI      []topRow
}

type kv struct {
	Key   string
	Value uint64
}

type failureRow struct {
	Reason string
	Total  uint64
	Rate   float64
}

type redisRow struct {
	State      string // ok / degraded, from the readiness check
	Breaker    string
	Total      uint32
	Idle       uint32
	Timeouts   uint32
	PoolHits   uint32
	PoolMisses uint32
}

type topRow struct {
	Tenant string
	Count  uint64
	Rate   string
	Error  uint64
}

// gather builds the page's data. It runs the readiness checks (a Redis
// ping bounded by PingTimeout).
func (a *Admin) gather(r *http.Request) statusData {
	now := a.opts.now()
	st := a.opts.Server.Stats()
	comp := a.opts.Components()
	cur := sampleOf(now, st)
	base, haveBase := a.samples.base(cur)
	d := cur.at.Sub(base.at)

	ok, failed, lastErr := a.reloadStats()
	data := statusData{
		Version:         a.opts.Version,
		GoVersion:       runtime.Version(),
		Now:             now.Format(time.RFC3339),
		Uptime:          st.Uptime.Truncate(time.Second).String(),
		UptimeSec:       int64(st.Uptime.Seconds()),
		ConfigSource:    comp.ConfigSource,
		ConfigLoaded:    comp.ConfigLoaded.Format(time.RFC3339),
		Reloads:         ok,
		ReloadFailures:  failed,
		LastReloadError: lastErr,
		Ready:           a.ready(r.Context()),
		Requests:        cur.requests,
		ReqAvg:          rate(cur.requests, 0, st.Uptime),
		InFlight:        st.InFlight,
		Hellos:          cur.hellos,
		TLSErrors:       st.TLSErrors,
		RateWindow:      d.Truncate(time.Second).String(),
		Invalidations:   comp.Invalidations,
		StoreKind:       comp.StoreKind,
		AccessDropped:   st.AccessLogDropped,
		TenantLogError:  st.TenantLogErrors,
		CGIInFlight:     st.CGIInFlight,
	}
	if haveBase {
		data.ReqRate = rate(cur.requests, base.requests, d)
		data.HelloRate = rate(cur.hellos, base.hellos, d)
		data.HandshakeRate = rate(cur.handshakes, base.handshakes, d)
	}
	byClass := map[string]uint64{}
	for _, rc := range st.Requests {
		byClass[rc.Class] += rc.Count
	}
	for _, c := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
		data.ByClass = append(data.ByClass, kv{c, byClass[c]})
	}
	for _, reason := range slices.Sorted(mapsKeys(st.TLSFailures)) {
		row := failureRow{Reason: reason, Total: st.TLSFailures[reason]}
		if haveBase {
			row.Rate = rate(row.Total, base.failures[reason], d)
		}
		data.Failures = append(data.Failures, row)
	}
	if comp.Certs != nil {
		ms := comp.Certs.Stats()
		data.CertEntries, data.NegEntries = ms.Entries, ms.NegativeEntries
		data.CertEvictions, data.CertLoads = ms.Evictions, ms.Loads
		if total := ms.Hits + ms.StaleHits + ms.Misses; total > 0 {
			data.CertHitRatio = fmt.Sprintf("%.1f%%", 100*float64(ms.Hits+ms.StaleHits)/float64(total))
		} else {
			data.CertHitRatio = "n/a"
		}
	}
	if comp.Redis != nil {
		ps := comp.Redis.Client().PoolStats()
		row := &redisRow{State: stateOK, Breaker: comp.Redis.BreakerState(), Total: ps.TotalConns, Idle: ps.IdleConns,
			Timeouts: ps.Timeouts, PoolHits: ps.Hits, PoolMisses: ps.Misses}
		for _, c := range data.Ready.Checks {
			if c.Name == "redis" {
				row.State = c.State
			}
		}
		data.Redis = row
	}
	if comp.CGI != nil {
		cs := comp.CGI.Stats()
		data.CGIEnabled = true
		data.CGIRunning, data.CGISpawned, data.CGITimeouts = cs.Running, cs.Spawned, cs.Timeouts
		data.CGIRejected = cs.RejectedCap + cs.FailedChecks
	}
	top := a.opts.Server.TopTenants(topN)
	data.TopWindow = top.Window.Truncate(time.Second).String()
	for _, t := range top.ByRequests {
		data.TopRequests = append(data.TopRequests, topRow{Tenant: t.Tenant, Count: t.Count, Error: t.Error,
			Rate: strconv.FormatFloat(rate(t.Count, 0, top.Window), 'f', 2, 64)})
	}
	for _, t := range top.ByCGI {
		data.TopCGI = append(data.TopCGI, topRow{Tenant: t.Tenant, Count: t.Count})
	}
	return data
}

func mapsKeys(m map[string]uint64) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// serveStatus renders the page, or its plain-text form with ?auto.
// ?refresh=N (1..3600) makes the browser reload it every N seconds.
func (a *Admin) serveStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := a.gather(r)
	if q.Has("auto") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(autoText(data)))
		return
	}
	if n, err := strconv.Atoi(q.Get("refresh")); err == nil && n > 0 {
		data.Refresh = min(n, maxRefresh)
	}
	var b strings.Builder
	if err := statusTemplate.Execute(&b, data); err != nil {
		a.opts.Logger.Error("admin: rendering server-status", "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(b.String()))
}

// autoText is the ?auto form: one "Key: value" per line, with Apache
// mod_status's names where the meaning is the same ("Total Accesses",
// "Uptime", "ReqPerSec"), so existing scripts keep working.
func autoText(d statusData) string {
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%s: %v\n", k, v) }
	line("ServerVersion", "massvhost "+d.Version)
	line("Uptime", d.UptimeSec)
	line("Total Accesses", d.Requests)
	line("ReqPerSec", strconv.FormatFloat(d.ReqRate, 'f', 3, 64))
	line("ReqPerSecAvg", strconv.FormatFloat(d.ReqAvg, 'f', 3, 64))
	line("InFlight", d.InFlight)
	for _, c := range d.ByClass {
		line("Requests"+c.Key, c.Value)
	}
	line("TLSClientHellos", d.Hellos)
	line("TLSHandshakesPerSec", strconv.FormatFloat(d.HandshakeRate, 'f', 3, 64))
	for _, f := range d.Failures {
		line("TLSFailures_"+f.Reason, f.Total)
	}
	line("TLSErrors", d.TLSErrors)
	line("CertCacheEntries", d.CertEntries)
	line("CertNegativeEntries", d.NegEntries)
	line("CertCacheHitRatio", d.CertHitRatio)
	line("Store", d.StoreKind)
	if d.Redis != nil {
		line("Redis", d.Redis.State)
		line("RedisBreaker", d.Redis.Breaker)
	}
	line("CGIRunning", d.CGIRunning)
	line("CGIInFlight", d.CGIInFlight)
	line("AccessLogDropped", d.AccessDropped)
	line("Ready", d.Ready.State)
	line("ConfigSource", d.ConfigSource)
	line("ConfigLoaded", d.ConfigLoaded)
	line("ConfigReloads", d.Reloads)
	line("ConfigReloadFailures", d.ReloadFailures)
	for _, t := range d.TopRequests {
		line("TopTenant", t.Tenant+" "+strconv.FormatUint(t.Count, 10))
	}
	for _, t := range d.TopCGI {
		line("TopCGITenant", t.Tenant+" "+strconv.FormatUint(t.Count, 10))
	}
	return b.String()
}
