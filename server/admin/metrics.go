package admin

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// collector turns the Stats snapshots of the server and the current
// components into const metrics at scrape time, so the request path never
// touches a Prometheus type.
type collector struct{ a *Admin }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("massvhost_"+name, help, labels, nil)
}

var (
	dBuildInfo = desc("build_info", "Always 1; the labels carry the version.", "version", "goversion")
	dUptime    = desc("uptime_seconds", "Seconds since the server started.")

	dRequests     = desc("http_requests_total", "Finished HTTP requests by protocol and status class.", "proto", "code")
	dInFlight     = desc("http_requests_in_flight", "Requests being handled now.")
	dPanics       = desc("http_panics_total", "Handler panics recovered (answered 500 or aborted).")
	dConnsRefused = desc("connections_refused_total", "Connections closed at accept because their client IP was at server.max_conns_per_ip.")
	dLogDropped   = desc("access_log_dropped_total", "Access log lines dropped because the writer fell behind.")
	dLogErrors    = desc("access_log_write_errors_total", "Failed writes to the access log.")
	dTenantLogErr = desc("tenant_access_log_errors_total", "Failed writes to per-tenant access logs.")

	dHellos        = desc("tls_client_hellos_total", "ClientHellos that reached certificate selection.")
	dHandshakes    = desc("tls_handshakes_total", "TLS handshakes that got past certificate selection and key exchange.")
	dTLSFailures   = desc("tls_handshake_failures_total", "ClientHellos whose certificate lookup failed, by reason.", "reason")
	dTLSErrors     = desc("tls_handshake_errors_total", "Failed TLS handshakes of any cause, as reported by net/http (includes the lookup failures, client aborts and timeouts).")
	dCacheHits     = desc("cert_cache_hits_total", "Certificate lookups answered from memory, by freshness.", "state")
	dCacheMisses   = desc("cert_cache_misses_total", "Certificate lookups with no cached certificate.")
	dNegHits       = desc("cert_cache_negative_hits_total", "Misses answered by the negative cache (name remembered as having no certificate).")
	dEvictions     = desc("cert_cache_evictions_total", "Cached certificates pushed out by certs.cache_size.")
	dEntries       = desc("cert_cache_entries", "Certificates in the cache.")
	dNegEntries    = desc("cert_cache_negative_entries", "Names in the negative cache.")
	dLoads         = desc("cert_loads_total", "Certificate store loads run (misses and refreshes), by result.", "result")
	dInvalidNames  = desc("cert_invalid_names_total", "Lookups refused because the SNI is not a valid host name.")
	dRateLimited   = desc("cert_rate_limited_total", "New-name lookups refused by certs.new_name_rate or certs.new_name_rate_per_ip.")
	dClientLimited = desc("cert_client_rate_limited_total", "New-name lookups refused by certs.new_name_rate_per_ip (one client IP over its share; also counted in cert_rate_limited_total).")
	dIssued        = desc("cert_issued_total", "Certificates minted by the issuer (local CA or ACME).")
	dExpired       = desc("cert_expired_loaded_total", "Loaded certificates outside their validity period.")
	dInvalidation  = desc("cert_invalidations_total", "Invalidation messages received from Redis.")

	dCGISpawned   = desc("cgi_spawned_total", "CGI scripts started.")
	dCGIRunning   = desc("cgi_running", "CGI scripts running now.")
	dCGIInFlight  = desc("cgi_requests_in_flight", "Requests inside the CGI runner (running or waiting for a slot).")
	dCGITimeouts  = desc("cgi_timeouts_total", "CGI runs killed by cgi.timeout.")
	dCGIKilled    = desc("cgi_killed_total", "CGI runs ended early: timeout, client gone, shutdown or output cap.")
	dCGIRejected  = desc("cgi_rejected_total", "CGI requests refused before spawning, by reason (cap: 503 from a concurrency cap; check: 403 from the suEXEC-style checks).", "reason")
	dCGIBad       = desc("cgi_bad_responses_total", "CGI runs answered 502: no, malformed or invalid headers, or a failed exec.")
	dCGIEscaped   = desc("cgi_escaped_killed_total", "Processes killed in a tenant's cgroup after all its scripts had ended (escaped with setsid or daemonized).")
	dCGIOOMKills  = desc("cgi_oom_kills_total", "CGI runs whose script the kernel killed at its tenant's memory cap (cgi.tenant_memory_max).")
	dCGIDemotions = desc("cgi_tenant_demotions_total", "Tenants demoted to idle CPU priority for keeping more than cgi.tenant_cpu_demote CPUs busy.")
	dCGIDemoted   = desc("cgi_tenants_demoted", "Tenants at idle CPU priority now.")
	dCGIStderr    = desc("cgi_stderr_dropped_total", "CGI stderr lines dropped by the error log's rate limit.")
	dCGIHeader    = desc("cgi_response_header_seconds", "Time from handing a request to the CGI runner to the script's response headers (spawn plus the script's start-up).")

	dACMEOrders    = desc("acme_orders_total", "Orders placed with the ACME CA.")
	dACMEIssued    = desc("acme_issued_total", "Certificates obtained from the ACME CA and stored, by kind (new, renewal).", "kind")
	dACMEFailed    = desc("acme_failed_total", "ACME orders that failed, by kind (new, renewal); after a failed renewal the stored certificate is still served.", "kind")
	dACMECALimited = desc("acme_ca_rate_limited_total", "ACME orders the CA refused for its rate limits (also counted in acme_failed_total).")
	dACMERefused   = desc("acme_refused_total", "Requests for a certificate refused before any order, by reason (rate_limit: acme.per_domain_rate or acme.global_rate; too_many: acme.max_concurrent_orders; backoff: the name failed recently).", "reason")
	dACMEWaited    = desc("acme_handshake_wait_expired_total", "Handshakes that gave up after acme.handshake_wait while their order went on in the background.")
	dACMELockWaits = desc("acme_lock_waits_total", "Orders skipped because another node held the name's lock; the certificate it stored was waited for.")
	dACMEFromStore = desc("acme_from_store_total", "Requests answered by a certificate another node had stored meanwhile.")
	dACMEJobs      = desc("acme_jobs", "ACME jobs (orders, waits for other nodes) in flight now.")

	dRedisPool    = desc("redis_pool_connections", "Redis pool connections by state.", "state")
	dRedisPoolOps = desc("redis_pool_events_total", "Redis pool events: hits (idle connection reused), misses (new connection), timeouts (waited too long for one), waits.", "event")
	dRedisBreaker = desc("redis_breaker_state", "1 for the current state of the Redis circuit breaker.", "state")

	dReloads = desc("config_reloads_total", "Configuration reloads (SIGHUP) by result.", "result")
	dLoaded  = desc("config_loaded_timestamp_seconds", "When the configuration in use was loaded (Unix time).")
)

var allDescs = []*prometheus.Desc{
	dBuildInfo, dUptime, dRequests, dInFlight, dPanics, dConnsRefused, dLogDropped, dLogErrors, dTenantLogErr,
	dHellos, dHandshakes, dTLSFailures, dTLSErrors, dCacheHits, dCacheMisses, dNegHits, dEvictions, dEntries,
	dNegEntries, dLoads, dInvalidNames, dRateLimited, dClientLimited, dIssued, dExpired, dInvalidation,
	dCGISpawned, dCGIRunning, dCGIInFlight, dCGITimeouts, dCGIKilled, dCGIRejected, dCGIBad, dCGIEscaped, dCGIOOMKills, dCGIDemotions, dCGIDemoted, dCGIStderr, dCGIHeader,
	dACMEOrders, dACMEIssued, dACMEFailed, dACMECALimited, dACMERefused, dACMEWaited, dACMELockWaits, dACMEFromStore, dACMEJobs,
	dRedisPool, dRedisPoolOps, dRedisBreaker, dReloads, dLoaded,
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	a := c.a
	gauge(dBuildInfo, 1, a.opts.Version, runtime.Version())

	st := a.opts.Server.Stats()
	gauge(dUptime, st.Uptime.Seconds())
	for _, r := range st.Requests {
		counter(dRequests, r.Count, r.Proto, r.Class)
	}
	gauge(dInFlight, float64(st.InFlight))
	counter(dPanics, st.Panics)
	counter(dConnsRefused, st.ConnsRefused)
	counter(dLogDropped, st.AccessLogDropped)
	counter(dLogErrors, st.AccessLogWriteErrors)
	counter(dTenantLogErr, st.TenantLogErrors)
	counter(dHellos, st.TLSHellos)
	counter(dHandshakes, st.TLSHandshakes)
	for reason, n := range st.TLSFailures {
		counter(dTLSFailures, n, reason)
	}
	counter(dTLSErrors, st.TLSErrors)
	gauge(dCGIInFlight, float64(st.CGIInFlight))
	h := st.CGIHeaderLatency
	ch <- prometheus.MustNewConstHistogram(dCGIHeader, h.Count, h.Sum, h.Buckets)

	comp := a.opts.Components()
	if comp.Certs != nil {
		ms := comp.Certs.Stats()
		counter(dCacheHits, ms.Hits, "fresh")
		counter(dCacheHits, ms.StaleHits, "stale")
		counter(dCacheMisses, ms.Misses)
		counter(dNegHits, ms.NegativeHits)
		counter(dEvictions, ms.Evictions)
		gauge(dEntries, float64(ms.Entries))
		gauge(dNegEntries, float64(ms.NegativeEntries))
		found := ms.Loads - min(ms.Loads, ms.NotFound+ms.Unavailable+ms.Invalid)
		counter(dLoads, found, "found")
		counter(dLoads, ms.NotFound, "not_found")
		counter(dLoads, ms.Unavailable, "unavailable")
		counter(dLoads, ms.Invalid, "invalid")
		counter(dInvalidNames, ms.InvalidNames)
		counter(dRateLimited, ms.RateLimited)
		counter(dClientLimited, ms.ClientRateLimited)
		counter(dIssued, ms.Issued)
		counter(dExpired, ms.Expired)
	}
	counter(dInvalidation, comp.Invalidations)
	if comp.ACME != nil {
		as := comp.ACME()
		counter(dACMEOrders, as.Orders)
		counter(dACMEIssued, as.Issued-min(as.Issued, as.Renewed), "new")
		counter(dACMEIssued, as.Renewed, "renewal")
		counter(dACMEFailed, as.Failed-min(as.Failed, as.RenewFailed), "new")
		counter(dACMEFailed, as.RenewFailed, "renewal")
		counter(dACMECALimited, as.CARateLimited)
		counter(dACMERefused, as.RateLimited, "rate_limit")
		counter(dACMERefused, as.TooMany, "too_many")
		counter(dACMERefused, as.BackedOff, "backoff")
		counter(dACMEWaited, as.InProgress)
		counter(dACMELockWaits, as.LockWaits)
		counter(dACMEFromStore, as.FromStore)
		gauge(dACMEJobs, float64(as.Jobs))
	}

	if comp.CGI != nil {
		cs := comp.CGI.Stats()
		counter(dCGISpawned, cs.Spawned)
		gauge(dCGIRunning, float64(cs.Running))
		counter(dCGITimeouts, cs.Timeouts)
		counter(dCGIKilled, cs.Killed)
		counter(dCGIEscaped, cs.Escaped)
		counter(dCGIOOMKills, cs.OOMKills)
		counter(dCGIDemotions, cs.Demotions)
		gauge(dCGIDemoted, float64(cs.Demoted))
		counter(dCGIRejected, cs.RejectedCap, "cap")
		counter(dCGIRejected, cs.FailedChecks, "check")
		counter(dCGIBad, cs.BadResponses)
		counter(dCGIStderr, cs.StderrDropped)
	}

	if comp.Redis != nil {
		ps := comp.Redis.Client().PoolStats()
		gauge(dRedisPool, float64(ps.TotalConns), "total")
		gauge(dRedisPool, float64(ps.IdleConns), "idle")
		counter(dRedisPoolOps, uint64(ps.Hits), "hit")
		counter(dRedisPoolOps, uint64(ps.Misses), "miss")
		counter(dRedisPoolOps, uint64(ps.Timeouts), "timeout")
		counter(dRedisPoolOps, uint64(ps.WaitCount), "wait")
		counter(dRedisPoolOps, uint64(ps.StaleConns), "stale")
		state := comp.Redis.BreakerState()
		for _, s := range []string{"closed", "open", "half-open"} {
			v := 0.0
			if s == state {
				v = 1
			}
			gauge(dRedisBreaker, v, s)
		}
	}

	ok, failed, _ := a.reloadStats()
	counter(dReloads, ok, "success")
	counter(dReloads, failed, "failure")
	if !comp.ConfigLoaded.IsZero() {
		gauge(dLoaded, float64(comp.ConfigLoaded.UnixNano())/1e9)
	}
}
