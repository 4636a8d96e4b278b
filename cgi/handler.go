package cgi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"massvhost/cgi/cgroup"
	"massvhost/vhost"
)

// Mode says how a request's URL path maps to a script.
type Mode int

const (
	// ScriptAlias: the path is "/cgi-bin/<script>[/path/info]" and the
	// script lives in site.CGIBin (Apache's ScriptAlias). Any regular file
	// there may be a script; no extension is needed.
	ScriptAlias Mode = iota
	// Docroot: the path names a file with one of Options.Extensions inside
	// site.DocRoot, possibly followed by path info (Apache's AddHandler
	// cgi-script). For a directory index the caller appends the index name
	// (e.g. "/dir/index.cgi") before calling ServeCGI.
	Docroot
)

// Handler runs CGI scripts for sites. It is safe for concurrent use; its
// Options cannot change after New (build a new Handler to reconfigure, and
// Close the old one once it is no longer routed to).
type Handler struct {
	opts         Options
	policy       policy
	caps         *caps
	cgroups      *cgroup.Manager // nil when scripts run without cgroups
	stderrBudget *lineBudget
	shutdown     chan struct{} // closed by Close

	// directExec makes start exec the script itself with SysProcAttr
	// credentials instead of the launcher, so without any rlimit. Only the
	// spawn benchmark sets it, to measure what the launcher costs.
	directExec bool

	spawned, timeouts, killed, rejectedCap, failedChecks, badResponses, stderrDropped, oomKills atomic.Uint64
	running                                                                                     atomic.Int64

	closeMu  sync.Mutex
	closed   bool           // guarded by closeMu
	inflight sync.WaitGroup // Add guarded by closeMu
}

// Stats are a Handler's counters since New.
type Stats struct {
	Spawned       uint64 // scripts started
	Running       int64  // scripts running now
	Timeouts      uint64 // runs killed by Options.Timeout
	Killed        uint64 // runs ended early: timeout, client gone, shutdown, output cap
	RejectedCap   uint64 // requests refused by a concurrency cap (503)
	FailedChecks  uint64 // requests refused by the suEXEC checks, nothing spawned (403)
	BadResponses  uint64 // runs answered 502: no, malformed or invalid headers, failed exec
	StderrDropped uint64 // stderr lines the default error log dropped (rate limit)
	Escaped       uint64 // processes killed in a tenant's cgroup after its scripts ended
	OOMKills      uint64 // runs whose script the kernel killed at its tenant's memory cap
	Demotions     uint64 // tenants demoted to idle CPU priority (cgroup.Options.DemoteAbove)
	Demoted       int64  // tenants demoted now
}

// New returns a Handler for opts, or an error naming every invalid option.
func New(opts Options) (*Handler, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(o.Launcher); err != nil {
		return nil, fmt.Errorf("cgi: Launcher: %w", err)
	}
	cg, err := openCgroups(o)
	if err != nil {
		return nil, err
	}
	return &Handler{
		opts:         o,
		cgroups:      cg,
		policy:       policy{privileged: os.Geteuid() == 0, minUID: o.MinUID, minGID: o.MinGID, anonymous: o.Anonymous},
		caps:         newCaps(o.MaxPerTenant, o.MaxTotal),
		stderrBudget: newLineBudget(stderrLinesPerSecond, stderrBurst),
		shutdown:     make(chan struct{}),
	}, nil
}

// IsScriptPath reports whether urlPath should be served by ServeCGI in
// Docroot mode: whether one of its segments ends in a configured extension
// (and is more than the extension). Later segments are path info.
func (h *Handler) IsScriptPath(urlPath string) bool {
	for seg := range strings.SplitSeq(urlPath, "/") {
		if h.hasExtension(seg) {
			return true
		}
	}
	return false
}

func (h *Handler) hasExtension(name string) bool {
	for _, ext := range h.opts.Extensions {
		if len(name) > len(ext) && strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	demotions, demoted := h.cgroups.Demotions()
	return Stats{
		Spawned:       h.spawned.Load(),
		Running:       h.running.Load(),
		Timeouts:      h.timeouts.Load(),
		Killed:        h.killed.Load(),
		RejectedCap:   h.rejectedCap.Load(),
		FailedChecks:  h.failedChecks.Load(),
		BadResponses:  h.badResponses.Load(),
		StderrDropped: h.stderrDropped.Load(),
		Escaped:       h.cgroups.Escapees(),
		OOMKills:      h.oomKills.Load(),
		Demotions:     demotions,
		Demoted:       demoted,
	}
}

// Close terminates every running script's process group (SIGTERM, then
// SIGKILL after KillGrace) and waits until their requests have returned.
// Later requests get 503. Close is idempotent and always returns nil.
func (h *Handler) Close() error {
	h.closeMu.Lock()
	if !h.closed {
		h.closed = true
		close(h.shutdown)
	}
	h.closeMu.Unlock()
	h.inflight.Wait()
	h.cgroups.Close()
	return nil
}

// enter registers a request unless the handler is closed.
func (h *Handler) enter() bool {
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	if h.closed {
		return false
	}
	h.inflight.Add(1)
	return true
}

// ServeCGI runs the script that r.URL.Path names for site and writes its
// response to w. The caller has resolved the site from the request's host;
// ServeCGI never looks at the host again, so a script's local redirect
// stays within site.
//
// Errors reach the client as a bare status: 400 malformed path, 404 no such
// script, 403 refused by a check (reason logged), 413 body too large, 503
// over a concurrency cap or unable to spawn (with Retry-After), 502 no or
// malformed headers or failed exec, 504 timeout before the headers, 500
// redirect loop. When the script fails after its headers were sent (timeout,
// output cap), ServeCGI panics with http.ErrAbortHandler so that net/http
// aborts the response instead of ending it as if complete; it does so only
// after the script's process group is gone and reaped.
func (h *Handler) ServeCGI(w http.ResponseWriter, r *http.Request, site vhost.Site, mode Mode) {
	if !h.enter() {
		h.answer(w, r, site, refuse(http.StatusServiceUnavailable, "shutting down", nil))
		return
	}
	defer h.inflight.Done()
	segs, prefix, rf := splitURLPath(r.URL.Path, mode)
	if rf != nil {
		h.answer(w, r, site, rf)
		return
	}
	base := site.CGIBin
	if mode == Docroot {
		base = site.DocRoot
	}
	s, rf := locate(base, segs, prefix)
	if rf == nil {
		defer s.close()
		if mode == Docroot && !h.hasExtension(s.name) {
			rf = refuse(http.StatusNotFound, "not a CGI extension", nil)
		} else {
			s.runAs, rf = h.policy.check(s, site)
		}
	}
	if rf != nil {
		if rf.status == http.StatusForbidden {
			h.failedChecks.Add(1)
		}
		h.answer(w, r, site, rf)
		return
	}
	b, rf := h.prepareBody(r)
	if rf != nil {
		h.answer(w, r, site, rf)
		return
	}
	defer b.close()
	tenant := site.Tenant
	if tenant == "" {
		tenant = site.Name
	}
	if !h.caps.tryAcquire(tenant) {
		h.rejectedCap.Add(1)
		h.answer(w, r, site, refuse(http.StatusServiceUnavailable, "concurrency cap", nil))
		return
	}
	if h.cgroups != nil {
		slot, err := h.cgroups.Enter(r.Context(), tenant)
		if err != nil {
			h.caps.release(tenant)
			h.answer(w, r, site, refuse(http.StatusInternalServerError, "cgroup", err))
			return
		}
		s.cgroup = &slot
	}
	out := h.run(w, r, site, s, b)
	if s.cgroupLost {
		h.cgroups.Lost(tenant)
	}
	if h.cgroups != nil {
		// After run: the script and its process group are killed and
		// reaped, so whatever the sweep finds escaped.
		h.cgroups.Leave(tenant)
	}
	h.caps.release(tenant)
	switch {
	case out.abort:
		panic(http.ErrAbortHandler)
	case out.redirect != nil:
		h.opts.LocalRedirect(w, out.redirect, site)
	}
}

// answer writes a refusal's status (and nothing of its reason) and logs it.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, site vhost.Site, rf *refusal) {
	level := slog.LevelInfo
	switch rf.status {
	case http.StatusNotFound:
		level = slog.LevelDebug
	case http.StatusForbidden, http.StatusServiceUnavailable, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusGatewayTimeout:
		level = slog.LevelWarn
	}
	h.log(r, site, level, "cgi refused", rf)
	if rf.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, http.StatusText(rf.status), rf.status)
}

func (h *Handler) log(r *http.Request, site vhost.Site, level slog.Level, msg string, rf *refusal, attrs ...slog.Attr) {
	ctx := r.Context()
	if !h.opts.Logger.Enabled(ctx, level) {
		return
	}
	attrs = append(attrs,
		slog.String("host", site.Name),
		slog.String("path", r.URL.Path),
		slog.String("remote", r.RemoteAddr),
	)
	if rf != nil {
		attrs = append(attrs, slog.Int("status", rf.status), slog.String("reason", rf.reason))
		if rf.err != nil {
			attrs = append(attrs, slog.String("err", rf.err.Error()))
		}
	}
	h.opts.Logger.LogAttrs(ctx, level, msg, attrs...)
}

// redirectDepthKey is the context key counting internal redirects.
type redirectDepthKey struct{}

func redirectDepth(ctx context.Context) int {
	d, _ := ctx.Value(redirectDepthKey{}).(int)
	return d
}
