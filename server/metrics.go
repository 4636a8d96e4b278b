package server

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"massvhost/certs"
	"massvhost/vhost"
)

// The request path only increments atomic counters in fixed arrays; the
// exporter (package server/admin) reads them with [Server.Stats] when it is
// scraped. Nothing here has a per-tenant dimension except the bounded
// top-K in toptenants.go, so the number of series cannot grow with the
// number of tenants.

// Protocols counted in [Stats.Requests].
var protoNames = [...]string{"HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "other"}

// Status classes counted in [Stats.Requests].
var classNames = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Reasons a TLS handshake failed at certificate selection, the label
// values of [Stats.TLSFailures].
const (
	// TLSNoSNI: the client sent no server name and there is no default
	// certificate.
	TLSNoSNI = "no_sni"
	// TLSUnknownName: no certificate for the name (not in the store, or
	// remembered as missing).
	TLSUnknownName = "unknown_name"
	// TLSInvalidName: the SNI is not a valid host name.
	TLSInvalidName = "invalid_name"
	// TLSStoreUnavailable: the store could not be asked (Redis down,
	// timeout, circuit breaker open) and nothing was cached.
	TLSStoreUnavailable = "store_unavailable"
	// TLSBadCertificate: the store holds an unusable pair for the name
	// (key mismatch, wrong names, oversized), or another lookup error.
	TLSBadCertificate = "bad_certificate"
)

var tlsReasons = [...]string{TLSNoSNI, TLSUnknownName, TLSInvalidName, TLSStoreUnavailable, TLSBadCertificate}

// cgiHeaderBuckets are the upper bounds, in seconds, of the histogram of
// the time from handing a request to the CGI runner to the script's
// response headers.
var cgiHeaderBuckets = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// metrics are the Server's counters.
type metrics struct {
	requests  [len(protoNames)][len(classNames)]atomic.Uint64
	inFlight  atomic.Int64
	hellos    atomic.Uint64
	handshake atomic.Uint64
	tlsErrors atomic.Uint64
	tlsFail   [len(tlsReasons)]atomic.Uint64
	cgiHeader histogram
}

// countRequest records a finished request.
func (m *metrics) countRequest(r *http.Request, status int) {
	p := len(protoNames) - 1
	switch {
	case r.ProtoMajor == 2:
		p = 2
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		p = 1
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		p = 0
	}
	c := min(max(status/100, 1), 5) - 1
	m.requests[p][c].Add(1)
}

// countHello records the outcome of a ClientHello's certificate lookup.
func (m *metrics) countHello(sni string, err error) {
	m.hellos.Add(1)
	if err == nil {
		return
	}
	var r int
	switch {
	case errors.Is(err, certs.ErrUnavailable):
		r = 3
	case sni == "":
		r = 0
	case errors.Is(err, certs.ErrInvalidCert):
		r = 4
	case errors.Is(err, vhost.ErrInvalidName):
		r = 2
	case errors.Is(err, certs.ErrNotFound):
		r = 1
	default:
		r = 4
	}
	m.tlsFail[r].Add(1)
}

// histogram is a fixed-bucket latency histogram updated with atomics.
type histogram struct {
	counts [len(cgiHeaderBuckets) + 1]atomic.Uint64 // last: above every bound
	sumNS  atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(cgiHeaderBuckets) && sec > cgiHeaderBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNS.Add(int64(d))
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{Buckets: make(map[float64]uint64, len(cgiHeaderBuckets))}
	var cum uint64
	for i, ub := range cgiHeaderBuckets {
		cum += h.counts[i].Load()
		s.Buckets[ub] = cum
	}
	s.Count = cum + h.counts[len(cgiHeaderBuckets)].Load()
	s.Sum = time.Duration(h.sumNS.Load()).Seconds()
	return s
}

// Histogram is a snapshot of a latency histogram in the form Prometheus
// const histograms take: Buckets maps each upper bound (seconds) to the
// cumulative count of observations at or below it.
type Histogram struct {
	Count   uint64
	Sum     float64 // seconds
	Buckets map[float64]uint64
}

// RequestCount is the number of finished requests of one protocol and
// status class.
type RequestCount struct {
	Proto string // "HTTP/1.0", "HTTP/1.1", "HTTP/2.0" or "other"
	Class string // "1xx" … "5xx"
	Count uint64
}

// Stats are counters since New (gauges where noted). They are read with
// atomic loads, so a snapshot is cheap but not one instant.
type Stats struct {
	Uptime               time.Duration
	AccessLogDropped     uint64 // lines dropped because the writer fell behind
	AccessLogWriteErrors uint64 // failed writes to the access log
	TenantLogErrors      uint64 // failed writes to per-tenant access logs
	ConnsRefused         uint64 // connections closed at accept by MaxConnsPerIP
	Panics               uint64 // handler panics recovered

	Requests []RequestCount // every protocol × class, zeros included
	InFlight int64          // gauge: requests being handled

	// TLSHellos counts ClientHellos that reached certificate selection;
	// TLSHandshakes, handshakes that got past it with a certificate and
	// reached the end of the key exchange; TLSFailures, the ClientHellos
	// whose lookup failed, by reason (the TLS* constants); TLSErrors, every
	// failed handshake as reported by net/http, whatever the cause (lookup
	// failures, client aborts, protocol mismatches, timeouts).
	TLSHellos     uint64
	TLSHandshakes uint64
	TLSFailures   map[string]uint64
	TLSErrors     uint64

	// CGIInFlight is a gauge of requests inside the CGI runner (running or
	// waiting for a slot); CGIHeaderLatency is the time from dispatch to
	// the script's response headers: spawn plus the script's own start-up.
	CGIInFlight      int64
	CGIHeaderLatency Histogram
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	m := &s.metrics
	st := Stats{
		Uptime:               time.Since(s.startedAt),
		AccessLogDropped:     s.access.dropped.Load(),
		AccessLogWriteErrors: s.access.writeErrors.Load(),
		TenantLogErrors:      s.access.tenantErrors.Load(),
		ConnsRefused:         s.connsRefused.Load(),
		Panics:               s.panics.Load(),
		InFlight:             m.inFlight.Load(),
		TLSHellos:            m.hellos.Load(),
		TLSHandshakes:        m.handshake.Load(),
		TLSErrors:            m.tlsErrors.Load(),
		TLSFailures:          make(map[string]uint64, len(tlsReasons)),
		CGIInFlight:          s.cgiTenants.total(),
		CGIHeaderLatency:     m.cgiHeader.snapshot(),
	}
	for p, name := range protoNames {
		for c, class := range classNames {
			st.Requests = append(st.Requests, RequestCount{Proto: name, Class: class, Count: m.requests[p][c].Load()})
		}
	}
	for i, r := range tlsReasons {
		st.TLSFailures[r] = m.tlsFail[i].Load()
	}
	return st
}

// tenantGauge counts requests in progress per tenant. Entries are removed
// when they drop to zero, so its size is bounded by the concurrency it
// measures (CGI requests, capped by the runner's own limits).
type tenantGauge struct {
	mu sync.Mutex
	n  map[string]int64
	t  int64
}

func (g *tenantGauge) add(tenant string, d int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == nil {
		g.n = make(map[string]int64)
	}
	g.t += d
	if v := g.n[tenant] + d; v > 0 {
		g.n[tenant] = v
	} else {
		delete(g.n, tenant)
	}
}

func (g *tenantGauge) total() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.t
}

// top returns up to k tenants with the most requests in progress.
func (g *tenantGauge) top(k int) []TenantCount {
	g.mu.Lock()
	out := make([]TenantCount, 0, len(g.n))
	for t, v := range g.n {
		out = append(out, TenantCount{Tenant: t, Count: uint64(v)})
	}
	g.mu.Unlock()
	return topK(out, k)
}
