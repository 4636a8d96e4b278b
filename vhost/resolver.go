package vhost

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// Defaults for the zero fields of [Options].
const (
	DefaultCacheSize     = 10000
	DefaultCacheTTL      = 5 * time.Second
	DefaultLookupTimeout = 2 * time.Second
)

// AliasSource maps host names that have no directory of their own to the
// tenant that serves them (site aliases kept in Redis, for example). It is
// consulted only after the directory pattern and the www alias miss.
// LookupAlias returns the tenant's host name, or an error wrapping
// [ErrNoSuchHost] when host is no alias; any other error means the source
// could not be asked. host is canonical. Implementations are safe for
// concurrent use and honor ctx.
type AliasSource interface {
	LookupAlias(ctx context.Context, host string) (tenant string, err error)
}

// Options configure a [Resolver]. Every zero field means the documented
// default, except Root, which is required.
type Options struct {
	// Root is the sites root: every tenant directory lies below it. It must
	// name an existing directory; it is made absolute and cleaned.
	Root string
	// DocRoot and CGIBin locate a tenant's document root and CGI directory
	// below Root; if empty, DefaultDocRoot and DefaultCGIBin.
	DocRoot Pattern
	CGIBin  Pattern
	// WWWAlias serves www.X from X's directories when www.X has none.
	WWWAlias bool
	// Default is the host whose site answers hosts no tenant serves, IP
	// literals and requests without a host; if empty, those get an error.
	Default string
	// CacheSize bounds the cached resolutions, found and not found each;
	// if zero, DefaultCacheSize.
	CacheSize int
	// CacheTTL is how long a resolution, found or not, is trusted before the
	// filesystem is asked again; if zero, DefaultCacheTTL.
	CacheTTL time.Duration
	// Aliases, if set, is asked for hosts that match no directory.
	Aliases AliasSource
	// LookupTimeout bounds one Aliases lookup; if zero, DefaultLookupTimeout.
	LookupTimeout time.Duration
	// Logger receives warnings about unreadable tenant directories and bad
	// alias data; if nil, slog.Default().
	Logger *slog.Logger
}

// Resolver maps host names to tenant Sites. It is safe for concurrent use.
//
// A resolution is a few stat(2) calls and perhaps an alias lookup; it is
// cached for CacheTTL in a bounded LRU, so a new tenant directory is served,
// and a removed one stops being served, within CacheTTL without a reload.
// Names that resolve to nothing are cached in a second LRU of the same
// size, so a flood of random host names cannot evict the tenants in use.
// Concurrent misses for one name share one resolution.
type Resolver struct {
	root          string
	docRoot       Pattern
	cgiBin        Pattern
	tenantRoot    Pattern
	wwwAlias      bool
	defaultName   string
	ttl           time.Duration
	aliases       AliasSource
	lookupTimeout time.Duration
	log           *slog.Logger

	sites  *lru.Cache[string, siteEntry] // found tenants, by canonical name
	misses *lru.Cache[string, time.Time] // expiry of "no such tenant"
	flight singleflight.Group            // per-name resolution in progress
	gen    atomic.Uint64                 // bumped by Forget: older loads are not cached

	now func() time.Time // test seam
}

type siteEntry struct {
	site    Site
	expires time.Time
}

// NewResolver checks opts and returns a Resolver. It fails when Root is not
// a directory, a pattern is bad, Default is not a valid host name, or a size
// or duration is negative.
func NewResolver(opts Options) (*Resolver, error) {
	if opts.Root == "" {
		return nil, errors.New("vhost: sites root is required")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("vhost: sites root: %w", err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("vhost: sites root: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("vhost: sites root %s: not a directory", root)
	}
	r := &Resolver{
		root:          root,
		docRoot:       cmp.Or(opts.DocRoot, DefaultDocRoot),
		cgiBin:        cmp.Or(opts.CGIBin, DefaultCGIBin),
		wwwAlias:      opts.WWWAlias,
		ttl:           cmp.Or(opts.CacheTTL, DefaultCacheTTL),
		aliases:       opts.Aliases,
		lookupTimeout: cmp.Or(opts.LookupTimeout, DefaultLookupTimeout),
		log:           opts.Logger,
		now:           time.Now,
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if err := r.docRoot.check(); err != nil {
		return nil, fmt.Errorf("vhost: docroot: %w", err)
	}
	if err := r.cgiBin.check(); err != nil {
		return nil, fmt.Errorf("vhost: cgi-bin: %w", err)
	}
	r.tenantRoot = r.docRoot.tenantPrefix()
	if opts.Default != "" {
		if r.defaultName, err = Normalize(opts.Default); err != nil {
			return nil, fmt.Errorf("vhost: default site: %w", err)
		}
	}
	switch {
	case opts.CacheSize < 0:
		return nil, fmt.Errorf("vhost: cache size must not be negative, got %d", opts.CacheSize)
	case opts.CacheTTL < 0:
		return nil, fmt.Errorf("vhost: cache TTL must not be negative, got %v", opts.CacheTTL)
	case opts.LookupTimeout < 0:
		return nil, fmt.Errorf("vhost: lookup timeout must not be negative, got %v", opts.LookupTimeout)
	}
	size := cmp.Or(opts.CacheSize, DefaultCacheSize)
	if r.sites, err = lru.New[string, siteEntry](size); err != nil {
		return nil, fmt.Errorf("vhost: %w", err)
	}
	if r.misses, err = lru.New[string, time.Time](size); err != nil {
		return nil, fmt.Errorf("vhost: %w", err)
	}
	return r, nil
}

// Resolve returns the Site that serves host, a raw or canonical host name
// (SNI, Host header or :authority; a port and a trailing dot are fine).
//
// The order is: the host's own directory under the DocRoot pattern; for
// "www.X" with WWWAlias, X's directory; the AliasSource, whose target must
// itself have a directory; finally the Default site. Site.Name is the
// canonical host for the first three, and the default host for the last,
// so logs and the CGI environment name the site that answered.
//
// Errors: a malformed name wraps [ErrInvalidName] (IP literals and the empty
// host instead get the Default site when there is one, since they name no
// tenant); a name no tenant serves, with no Default, wraps [ErrNoSuchHost];
// anything else (an unreadable directory, an AliasSource failure, ctx done)
// is a server-side failure that is not cached.
func (r *Resolver) Resolve(ctx context.Context, host string) (Site, error) {
	name, err := Normalize(host)
	if err != nil {
		if r.defaultName != "" && namesNoTenant(err) {
			return r.resolveDefault(ctx)
		}
		return Site{}, err
	}
	site, err := r.tenant(ctx, name)
	switch {
	case err == nil:
		return site, nil
	case errors.Is(err, ErrNoSuchHost) && r.defaultName != "" && name != r.defaultName:
		return r.resolveDefault(ctx)
	case errors.Is(err, ErrNoSuchHost):
		return Site{}, fmt.Errorf("%w: %q", ErrNoSuchHost, name)
	default:
		return Site{}, err
	}
}

func (r *Resolver) resolveDefault(ctx context.Context) (Site, error) {
	site, err := r.tenant(ctx, r.defaultName)
	if err != nil {
		return Site{}, fmt.Errorf("vhost: default site %q: %w", r.defaultName, err)
	}
	return site, nil
}

// Exists reports whether a tenant serves host: by its own directory, the www
// alias or the AliasSource, never through the Default site. The certificate
// issuer asks it before minting, so a random name never gets a certificate.
// Exists reports false for malformed names and when the answer cannot be
// determined.
func (r *Resolver) Exists(ctx context.Context, host string) bool {
	name, err := Normalize(host)
	if err != nil {
		return false
	}
	_, err = r.tenant(ctx, name)
	return err == nil
}

// Forget drops the cached resolution of host, and of "www."+host, whose www
// alias depends on it, so the next Resolve asks the filesystem and the
// AliasSource again. A resolution in progress when Forget is called is
// returned to its waiters but not cached.
func (r *Resolver) Forget(host string) {
	name, err := Normalize(host)
	if err != nil {
		return
	}
	r.gen.Add(1)
	for _, n := range []string{name, "www." + name} {
		r.flight.Forget(n)
		r.sites.Remove(n)
		r.misses.Remove(n)
	}
}

// tenant resolves a canonical name without the Default fallback. It returns
// the bare ErrNoSuchHost sentinel when no tenant serves name, so that the
// cached-miss path does not allocate.
func (r *Resolver) tenant(ctx context.Context, name string) (Site, error) {
	if site, ok := r.cached(name); ok {
		return site, nil
	}
	if r.cachedMiss(name) {
		return Site{}, ErrNoSuchHost
	}
	// The shared resolution runs detached from this caller's cancellation,
	// so one client hanging up does not fail every request waiting on it;
	// LookupTimeout bounds it instead.
	detached := context.WithoutCancel(ctx)
	ch := r.flight.DoChan(name, func() (any, error) {
		// A resolution that finished between our cache check and DoChan
		// has already stored its answer; do not repeat its I/O.
		if site, ok := r.cached(name); ok {
			return site, nil
		}
		if r.cachedMiss(name) {
			return Site{}, ErrNoSuchHost
		}
		gen := r.gen.Load()
		site, err := r.load(detached, name)
		if r.gen.Load() == gen {
			expires := r.now().Add(r.ttl)
			switch {
			case err == nil:
				r.sites.Add(name, siteEntry{site: site, expires: expires})
			case errors.Is(err, ErrNoSuchHost):
				r.misses.Add(name, expires)
			}
		}
		return site, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Site{}, res.Err
		}
		return res.Val.(Site), nil
	case <-ctx.Done():
		return Site{}, fmt.Errorf("vhost: resolve %q: %w", name, context.Cause(ctx))
	}
}

func (r *Resolver) cached(name string) (Site, bool) {
	e, ok := r.sites.Get(name)
	if !ok || !r.now().Before(e.expires) {
		return Site{}, false
	}
	return e.site, true
}

func (r *Resolver) cachedMiss(name string) bool {
	expires, ok := r.misses.Get(name)
	return ok && r.now().Before(expires)
}

// load resolves name from the filesystem and the AliasSource. It returns
// ErrNoSuchHost itself (not wrapped) when no tenant serves name.
func (r *Resolver) load(ctx context.Context, name string) (Site, error) {
	if site, ok, err := r.dirSite(name, name); ok || err != nil {
		return site, err
	}
	if r.wwwAlias {
		if parent, ok := strings.CutPrefix(name, "www."); ok {
			if site, ok, err := r.dirSite(name, parent); ok || err != nil {
				return site, err
			}
		}
	}
	if r.aliases == nil {
		return Site{}, ErrNoSuchHost
	}
	ctx, cancel := context.WithTimeout(ctx, r.lookupTimeout)
	target, err := r.aliases.LookupAlias(ctx, name)
	cancel()
	switch {
	case errors.Is(err, ErrNoSuchHost):
		return Site{}, ErrNoSuchHost
	case err != nil:
		return Site{}, fmt.Errorf("vhost: alias lookup for %q: %w", name, err)
	}
	tenant, err := Normalize(target)
	if err != nil {
		r.log.Warn("vhost: alias target is not a valid host name", "host", name, "error", err)
		return Site{}, ErrNoSuchHost
	}
	site, ok, err := r.dirSite(name, tenant)
	if err == nil && !ok {
		r.log.Warn("vhost: alias target has no directory", "host", name, "tenant", tenant)
		err = ErrNoSuchHost
	}
	return site, err
}

// dirSite returns the Site for tenant's directories, with Name set to name,
// and reports whether tenant's document root is a directory. A tenant whose
// name cannot be expanded into a confined path is simply not found. Errors
// other than "does not exist" are returned, and not cached.
func (r *Resolver) dirSite(name, tenant string) (Site, bool, error) {
	docRel, err := r.docRoot.Expand(tenant)
	if err != nil {
		return Site{}, false, nil
	}
	docRoot := filepath.Join(r.root, filepath.FromSlash(docRel))
	if !r.within(docRoot) {
		return Site{}, false, fmt.Errorf("vhost: %q: %s escapes the sites root", tenant, docRoot)
	}
	fi, err := os.Stat(docRoot)
	switch {
	case err == nil && fi.IsDir():
	case err == nil, errors.Is(err, fs.ErrNotExist),
		errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ENAMETOOLONG):
		return Site{}, false, nil
	default:
		r.log.Warn("vhost: cannot stat tenant document root", "host", name, "tenant", tenant, "error", err)
		return Site{}, false, fmt.Errorf("vhost: stat document root of %q: %w", tenant, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Site{}, false, fmt.Errorf("vhost: %q: no owner for document root", tenant)
	}
	site := Site{
		Name:    name,
		Tenant:  tenant,
		DocRoot: docRoot,
		Owner:   st.Uid,
		Group:   st.Gid,
	}
	if site.Root, err = r.join(r.tenantRoot, tenant); err != nil {
		return Site{}, false, err
	}
	if site.CGIBin, err = r.join(r.cgiBin, tenant); err != nil {
		return Site{}, false, err
	}
	return site, true, nil
}

// join expands p for tenant and joins it to the sites root, asserting that
// the result lies strictly below the root.
func (r *Resolver) join(p Pattern, tenant string) (string, error) {
	rel, err := p.Expand(tenant)
	if err != nil {
		return "", fmt.Errorf("vhost: %q: %w", tenant, err)
	}
	abs := filepath.Join(r.root, filepath.FromSlash(rel))
	if !r.within(abs) {
		return "", fmt.Errorf("vhost: %q: %s escapes the sites root", tenant, abs)
	}
	return abs, nil
}

// within reports whether the clean absolute path p lies strictly below the
// sites root. Patterns cannot produce a path that does not; this is the
// assertion that backs that claim.
func (r *Resolver) within(p string) bool {
	if r.root == string(filepath.Separator) {
		return len(p) > 1 && p[0] == filepath.Separator
	}
	return len(p) > len(r.root) && p[len(r.root)] == filepath.Separator && p[:len(r.root)] == r.root
}
