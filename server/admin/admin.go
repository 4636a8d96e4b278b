// Package admin serves massvhost's operator endpoints on a listener of
// their own: Prometheus metrics (/metrics), liveness (/healthz), readiness
// (/readyz), an mod_status-style page (/server-status, with a plain-text
// ?auto form) and, when enabled, the Go runtime profiles (/debug/pprof/).
// It reads the running server's counters when it is asked and keeps
// nothing per tenant; it does not bind sockets or parse configuration (the
// command does).
//
// # Data flow
//
// Every scrape and page load calls [Options.Components] for the
// components of the configuration in use (they change on reload; the
// *server.Server does not), then reads their Stats snapshots: atomic loads,
// no locks on the request path. A sampler goroutine records a few totals
// every second, so the status page can show rates over the last seconds
// rather than averages since start.
//
// The admin endpoints have no authentication: keep the listener on
// loopback or a management network (the default is 127.0.0.1:9090).
package admin

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"massvhost/certs"
	"massvhost/cgi"
	"massvhost/server"
)

// Components are the parts of the running configuration the endpoints read.
// A reload replaces them together.
type Components struct {
	// Certs is the certificate manager. Required.
	Certs *certs.Manager
	// CGI is the CGI handler; nil when CGI is disabled.
	CGI *cgi.Handler
	// Redis is the Redis store; nil when the configuration uses none.
	Redis *certs.RedisStore
	// StoreKind names the certificate store ("files", "redis",
	// "redis+files") for display.
	StoreKind string
	// SitesRoot and CertsDir are checked for readability by /readyz;
	// CertsDir is "" when certificates are not read from files.
	SitesRoot, CertsDir string
	// Invalidations counts invalidation messages received from Redis.
	Invalidations uint64
	// ACME returns the ACME issuer's counters; nil when acme.enabled is
	// off.
	ACME func() certs.ACMEStats

	// ConfigSource is where the configuration was read from, ConfigLoaded
	// when.
	ConfigSource string
	ConfigLoaded time.Time
}

// Options configure an [Admin].
type Options struct {
	// Server is the running server. Required.
	Server *server.Server
	// Components returns the current configuration's components; it is
	// called on every request and must be cheap and safe for concurrent
	// use. Required.
	Components func() Components
	// Version is shown on the status page and exported as
	// massvhost_build_info.
	Version string
	// PingTimeout bounds the Redis ping of /readyz and the status page; if
	// zero, DefaultPingTimeout.
	PingTimeout time.Duration
	// Logger receives errors; if nil, slog.Default().
	Logger *slog.Logger
	// Pprof serves net/http/pprof under /debug/pprof/ (see
	// [Admin.SetPprof]); off by default, as the profiles expose the
	// process's internals and requests in flight.
	Pprof bool

	now func() time.Time // test seam
}

// DefaultPingTimeout bounds the store checks of one readiness request. A
// load balancer probing every few seconds must get an answer well within
// its own timeout even when Redis drops packets.
const DefaultPingTimeout = 500 * time.Millisecond

// Admin holds the metrics registry, the reload counters and the status
// page's samples. Create it with [New]; stop it with [Admin.Close]. Its
// methods are safe for concurrent use.
type Admin struct {
	opts     Options
	registry *prometheus.Registry
	started  time.Time

	storeLookups *prometheus.HistogramVec

	reloadMu       sync.Mutex // guards the three fields below
	reloads        uint64
	reloadFailures uint64
	lastReloadErr  string

	samples *sampler
	pprof   atomic.Bool // serve /debug/pprof/
}

// New returns an Admin for opts and starts its sampler.
func New(opts Options) (*Admin, error) {
	if opts.Server == nil || opts.Components == nil {
		return nil, errors.New("admin: Options.Server and Options.Components are required")
	}
	opts.PingTimeout = cmp.Or(opts.PingTimeout, DefaultPingTimeout)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	a := &Admin{
		opts:     opts,
		registry: prometheus.NewRegistry(),
		started:  opts.now(),
		storeLookups: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "massvhost_cert_store_lookup_seconds",
			Help: "Time of one certificate store lookup, by store and result (found, not_found, error).",
			// From a local file (tens of µs) to a Redis timeout (seconds).
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"store", "result"}),
	}
	a.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		a.storeLookups,
		&collector{a: a},
	)
	a.pprof.Store(opts.Pprof)
	a.samples = newSampler(a, opts.now)
	return a, nil
}

// Handler returns the admin endpoints: /metrics, /healthz, /readyz,
// /server-status, and /debug/pprof/ while profiling is enabled.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(a.opts.Logger.Handler(), slog.LevelWarn),
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", a.serveHealthz)
	mux.HandleFunc("GET /readyz", a.serveReadyz)
	mux.HandleFunc("GET /server-status", a.serveStatus)
	mux.Handle("/debug/pprof/", a.pprofHandler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/server-status", http.StatusFound)
	})
	return securityHeaders(mux)
}

// securityHeaders keeps the status page self-contained: no script, no
// external resource, no framing.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// ObserveStoreLookup records one certificate store lookup: store is
// "files" or "redis", err its outcome (wrapping certs.ErrNotFound for a
// miss).
func (a *Admin) ObserveStoreLookup(store string, d time.Duration, err error) {
	result := "found"
	switch {
	case err == nil:
	case errors.Is(err, certs.ErrNotFound):
		result = "not_found"
	default:
		result = "error"
	}
	a.storeLookups.WithLabelValues(store, result).Observe(d.Seconds())
}

// ReloadDone records the outcome of a configuration reload (SIGHUP): err
// nil for success.
func (a *Admin) ReloadDone(err error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if err != nil {
		a.reloadFailures++
		a.lastReloadErr = err.Error()
		return
	}
	a.reloads++
	a.lastReloadErr = ""
}

func (a *Admin) reloadStats() (ok, failed uint64, lastErr string) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	return a.reloads, a.reloadFailures, a.lastReloadErr
}

// Close stops the sampler.
func (a *Admin) Close() error {
	a.samples.close()
	return nil
}

// pingRedis asks Redis for a PONG within the ping timeout.
func (a *Admin) pingRedis(ctx context.Context, rs *certs.RedisStore) error {
	ctx, cancel := context.WithTimeout(ctx, a.opts.PingTimeout)
	defer cancel()
	return rs.Ping(ctx)
}
