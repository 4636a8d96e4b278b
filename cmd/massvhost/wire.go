package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"

	"net/http"

	"massvhost/certs"
	"massvhost/cgi"
	"massvhost/cgi/cgroup"
	"massvhost/conf"
	"massvhost/server"
	"massvhost/vhost"
)

// stack is everything one configuration builds: the resolver, the
// certificate store and manager, the CGI handler and the server options
// that tie them together. A reload builds a new stack and swaps it in whole;
// the old one is closed once nothing uses it.
type stack struct {
	cfg      *conf.Config
	resolver *vhost.Resolver
	store    certs.Store
	redis    *certs.RedisStore // nil unless the store uses Redis
	manager  *certs.Manager
	acme     *certs.ACME // nil unless acme.enabled
	sub      *certs.Subscriber
	cgi      *cgi.Handler
	// srv is the server the stack serves in, set by attach; CGI internal
	// redirects are dispatched through it.
	srv atomic.Pointer[server.Server]

	serverOptions server.Options
	closers       []func() error
}

// buildStore opens the certificate store cfg names. The Redis store is
// returned separately because site aliases and invalidations use it.
func buildStore(cfg *conf.Config, logger *slog.Logger) (certs.Store, *certs.RedisStore, error) {
	var files certs.Store
	if cfg.Certs.UsesFiles() {
		files = certs.FileStore{Dir: cfg.Certs.Dir}
	}
	if !cfg.Certs.UsesRedis() {
		return files, nil, nil
	}
	var tlsConf *tls.Config
	if cfg.Redis.TLS {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	rs, err := certs.NewRedisStore(certs.RedisOptions{
		Addrs:        cfg.Redis.Addrs,
		MasterName:   cfg.Redis.MasterName,
		Cluster:      cfg.Redis.Cluster,
		Username:     cfg.Redis.Username,
		Password:     cfg.Redis.Password,
		DB:           cfg.Redis.DB,
		TLS:          tlsConf,
		KeyPrefix:    cfg.Redis.KeyPrefix,
		DialTimeout:  cfg.Redis.DialTimeout,
		ReadTimeout:  cfg.Redis.ReadTimeout,
		WriteTimeout: cfg.Redis.WriteTimeout,
		PoolSize:     cfg.Redis.PoolSize,
		Logger:       logger,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("redis store: %w", err)
	}
	if files != nil {
		return certs.Tiered{Primary: rs, Fallback: files}, rs, nil
	}
	return rs, rs, nil
}

// buildStack turns a validated configuration into running components. On
// error everything already opened is closed.
func buildStack(cfg *conf.Config, logger *slog.Logger, access io.Writer, hooks stackHooks) (st *stack, err error) {
	st = &stack{cfg: cfg}
	defer func() {
		if err != nil {
			st.Close()
			st = nil
		}
	}()
	st.store, st.redis, err = buildStore(cfg, logger)
	if err != nil {
		return nil, err
	}
	if st.redis != nil {
		st.closers = append(st.closers, st.redis.Close)
	}

	vopts := vhost.Options{
		Root:      cfg.Sites.Root,
		DocRoot:   cfg.Sites.DocRoot,
		CGIBin:    cfg.Sites.CGIBin,
		WWWAlias:  cfg.Sites.WWWAlias,
		Default:   cfg.Sites.Default,
		CacheSize: cfg.Sites.CacheSize,
		CacheTTL:  cfg.Sites.CacheTTL,
		Logger:    logger,
	}
	if st.redis != nil {
		vopts.Aliases = certs.NewSiteAliases(st.redis)
		vopts.LookupTimeout = cfg.Certs.LookupTimeout
	}
	st.resolver, err = vhost.NewResolver(vopts)
	if err != nil {
		return nil, err
	}

	managerStore := st.store
	if hooks.wrapStore != nil {
		managerStore = hooks.wrapStore(st.store)
	}
	mopts := certs.Options{
		Store:             managerStore,
		CacheSize:         cfg.Certs.CacheSize,
		TTL:               cfg.Certs.TTL,
		NegativeTTL:       cfg.Certs.NegativeTTL,
		NegativeSize:      cfg.Certs.NegativeCacheSize,
		LookupTimeout:     cfg.Certs.LookupTimeout,
		NewNameRate:       cfg.Certs.NewNameRate,
		NewNameBurst:      cfg.Certs.NewNameBurst,
		NewNameRatePerIP:  cfg.Certs.NewNameRatePerIP,
		NewNameBurstPerIP: cfg.Certs.NewNameBurstPerIP,
		Default:           cfg.Certs.Default,
		Preload:           cfg.Certs.Preload,
		Logger:            logger,
	}
	if cfg.Certs.LocalCA && !cfg.Certs.Preload {
		ca, err := certs.OpenLocalCA(filepath.Join(cfg.DataDir, "ca"))
		if err != nil {
			return nil, fmt.Errorf("local CA: %w", err)
		}
		mopts.Issuer = ca
		mopts.HostPolicy = tenantPolicy(st.resolver)
	}
	var managerRef atomic.Pointer[certs.Manager]
	if cfg.ACME.Enabled {
		st.acme, err = buildACME(cfg, acmeSetup{store: st.store, redis: st.redis, resolver: st.resolver, manager: &managerRef, logger: logger})
		if err != nil {
			return nil, err
		}
		if !cfg.Certs.Preload {
			mopts.Issuer = st.acme
			mopts.HostPolicy = st.acme.HostPolicy()
			mopts.IssueTimeout = acmeIssueTimeout(cfg)
		}
	}
	st.manager, err = certs.NewManager(mopts)
	if err != nil {
		if st.acme != nil {
			st.acme.Close()
		}
		return nil, err
	}
	managerRef.Store(st.manager)
	st.closers = append(st.closers, st.manager.Close)
	if st.acme != nil {
		// After the manager: it calls Issue until it is closed.
		st.closers = append(st.closers, st.acme.Close)
	}

	if st.redis != nil && !cfg.Certs.Preload {
		resolver, manager := st.resolver, st.manager
		route := certs.RouteInvalidations(manager.Invalidate, resolver.Forget)
		if count := hooks.onInvalidation; count != nil {
			next := route
			route = func(name string) { count(); next(name) }
		}
		st.sub, err = certs.NewSubscriber(st.redis, route, manager.RevalidateAll)
		if err != nil {
			return nil, err
		}
		// The subscriber goes first on close: it calls into the manager.
		st.closers = append([]func() error{st.sub.Close}, st.closers...)
	}

	if err := st.buildCGI(logger); err != nil {
		return nil, err
	}
	st.serverOptions, err = st.buildServerOptions(logger, access)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// tenantPolicy allows certificate issuance only for names whose tenant
// exists, so random SNI never mints a certificate.
func tenantPolicy(r *vhost.Resolver) certs.HostPolicy {
	return func(ctx context.Context, host string) error {
		if r.Exists(ctx, host) {
			return nil
		}
		return fmt.Errorf("%w: %s", vhost.ErrNoSuchHost, host)
	}
}

// Close releases everything the stack opened, in order.
func (st *stack) Close() {
	if st == nil {
		return
	}
	var errs []error
	for _, c := range st.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	st.closers = nil
	if err := errors.Join(errs...); err != nil {
		slog.Default().Warn("closing configuration", "err", err)
	}
}

// buildCGI creates the CGI handler when cgi.enabled is set. The launcher
// path and, when the server is root, the anonymous user are resolved here,
// at start and reload, never per request; the anonymous user is not looked
// up without root, where it would not be used.
func (st *stack) buildCGI(logger *slog.Logger) error {
	c := st.cfg.CGI
	if !c.Enabled {
		return nil
	}
	launcher, err := resolveLauncher(c.Launcher, logger)
	if err != nil {
		return err
	}
	anonymous, err := anonymousIdentity(c.AnonymousUser, uint32(c.MinUID), uint32(c.MinGID))
	if err != nil {
		return err
	}
	h, err := cgi.New(cgi.Options{
		Timeout:            c.Timeout,
		Extensions:         c.Extensions,
		MinUID:             uint32(c.MinUID),
		MinGID:             uint32(c.MinGID),
		Anonymous:          anonymous,
		Launcher:           launcher,
		MaxBodyBytes:       c.MaxBodyBytes,
		MaxOutputBytes:     c.MaxOutputBytes,
		MaxStderrBytes:     c.MaxStderrBytes,
		MaxPerTenant:       c.MaxPerTenant,
		MaxTotal:           c.MaxTotal,
		Path:               c.Path,
		PassEnv:            c.PassEnv,
		PassAuthorization:  c.PassAuthorization,
		Cgroups:            cgroupMode(c.Cgroups),
		CPUWeight:          c.CPUWeight,
		TenantCPUMax:       c.TenantCPUMax,
		TenantCPUDemote:    c.TenantCPUDemote,
		TenantMemoryMax:    c.TenantMemoryMax,
		TenantCPUDemoteFor: c.TenantCPUDemoteFor,
		TenantProcesses:    tenantProcesses(c.TenantProcesses),
		NoNewPrivs:         c.NoNewPrivs,
		KeepBoundingSet:    c.KeepBoundingSet,
		Limits: cgi.Limits{
			CPU:          c.Limits.CPU,
			AddressSpace: c.Limits.AddressSpace,
			Processes:    int64(c.Limits.Processes),
			OpenFiles:    int64(c.Limits.OpenFiles),
			FileSize:     c.Limits.FileSize,
		},
		Logger: logger,
		LocalRedirect: func(w http.ResponseWriter, r *http.Request, site vhost.Site) {
			if srv := st.srv.Load(); srv != nil {
				srv.ServeSite(w, r, site)
				return
			}
			http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		},
	})
	if errors.Is(err, cgroup.ErrUnavailable) {
		return fmt.Errorf("cgi.cgroups: on, but %w", err)
	}
	if err != nil {
		return fmt.Errorf("cgi: %w", err)
	}
	st.cgi = h
	st.closers = append(st.closers, h.Close)
	return nil
}

// cgroupMode maps cgi.cgroups (validated by conf) onto cgi.CgroupMode.
func cgroupMode(s string) cgi.CgroupMode {
	switch s {
	case "on":
		return cgi.CgroupsOn
	case "off":
		return cgi.CgroupsOff
	}
	return cgi.CgroupsAuto
}

// tenantProcesses maps cgi.tenant_processes, where 0 means no limit, onto
// cgi.Options.TenantProcesses, where a negative value does.
func tenantProcesses(n int) int64 {
	if n == 0 {
		return -1
	}
	return int64(n)
}

// cgiRunner adapts *cgi.Handler to the server's CGIRunner seam.
type cgiRunner struct{ h *cgi.Handler }

func (c cgiRunner) ServeCGI(w http.ResponseWriter, r *http.Request, site vhost.Site, mode server.CGIMode) {
	m := cgi.Docroot
	if mode == server.CGIScriptAlias {
		m = cgi.ScriptAlias
	}
	c.h.ServeCGI(w, r, site, m)
}

func (c cgiRunner) IsScriptPath(p string) bool { return c.h.IsScriptPath(p) }

// buildServerOptions maps the configuration onto server.Options.
func (st *stack) buildServerOptions(logger *slog.Logger, access io.Writer) (server.Options, error) {
	cfg := st.cfg
	o := server.Options{
		HTTPAddr:      cfg.Listen.HTTP,
		HTTPSAddr:     cfg.Listen.HTTPS,
		RedirectHTTPS: cfg.HTTP.RedirectHTTPS,
		Sites:         st.resolver,
		Certs:         st.manager,
		Index:         cfg.Sites.Index,
		Listing:       cfg.Sites.Listing,
		// Non-nil even when empty: "deny_names: []" denies nothing, while
		// a nil DenyNames would mean the package default.
		DenyNames:            append([]string{}, cfg.Sites.DenyNames...),
		ReadHeaderTimeout:    cfg.Server.ReadHeaderTimeout,
		ReadTimeout:          cfg.Server.ReadTimeout,
		WriteTimeout:         cfg.Server.WriteTimeout,
		IdleTimeout:          cfg.Server.IdleTimeout,
		MaxHeaderBytes:       int(cfg.Server.MaxHeaderBytes),
		MaxHeaderFields:      cfg.Server.MaxHeaderFields,
		MaxConnsPerIP:        cfg.Server.MaxConnsPerIP,
		MaxConcurrentStreams: cfg.Server.MaxConcurrentStreams,
		MaxRanges:            cfg.Server.MaxRanges,
		AccessLog:            access,
		AccessFormat:         cfg.Log.AccessFormat,
		Logger:               logger,
	}
	if st.cgi != nil {
		o.CGI = cgiRunner{st.cgi}
	}
	if st.acme != nil {
		o.ACMEHTTP = st.acme.HTTPChallenge
		o.ACMETLSALPN = st.acme.TLSALPNConfig
	}
	return o, nil
}

// attach records the server the stack serves in.
func (st *stack) attach(srv *server.Server) { st.srv.Store(srv) }
