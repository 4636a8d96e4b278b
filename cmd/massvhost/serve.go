package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"massvhost/certs"
	"massvhost/cgi"
	"massvhost/conf"
	"massvhost/server"
	"massvhost/server/admin"
)

// runner is a running `massvhost serve`: the server, the stack of the
// configuration in use, the log destinations and the admin endpoints. Only
// the signal loop changes it, except cur, which the admin endpoints read.
type runner struct {
	stdout, stderr io.Writer
	load           func() (*conf.Config, error)

	srv      *server.Server
	cur      atomic.Pointer[stack]
	logs     *logSet
	admin    *admin.Admin
	adminSrv *adminServer
	hooks    stackHooks

	invalidations atomic.Uint64
	// retireWG counts the stacks replaced by a reload that are waiting
	// for their last request (see retire); stopRetire cuts the wait short.
	retireWG   sync.WaitGroup
	stopRetire chan struct{}
}

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve [--config FILE] [flags]", stdout)
	configPath := fs.String("config", "", "configuration file (YAML); default: the embedded example configuration")
	conf.BindFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	// Children must see only fds 0-2: mark anything inherited close-on-exec
	// before the first script can be started.
	cgi.ScrubInheritedFDs()

	r := &runner{
		stdout: stdout,
		stderr: stderr,
		load: func() (*conf.Config, error) {
			return conf.Load(conf.LoadOptions{Path: *configPath, Flags: fs})
		},
		stopRetire: make(chan struct{}),
	}
	return r.run()
}

func (r *runner) run() error {
	// Signals are caught from the start: a SIGHUP sent as soon as the
	// listening line appears must reload, not kill the process (the
	// default action), and one sent earlier is handled once serving.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	cfg, err := r.load()
	if err != nil {
		return err
	}
	if r.logs, err = openLogSet(cfg, r.stderr, nil); err != nil {
		return err
	}
	defer func() { r.logs.closeUnshared(nil) }()
	logger := r.logs.logger
	slog.SetDefault(logger)

	// The admin endpoints exist once the server does, but the store
	// decorator and the invalidation counter are wired into the first
	// stack before that; they look the Admin up when they run.
	var adm atomic.Pointer[admin.Admin]
	r.hooks = stackHooks{
		wrapStore: func(s certs.Store) certs.Store {
			return instrumentStore(s, func(store string, d time.Duration, err error) {
				if a := adm.Load(); a != nil {
					a.ObserveStoreLookup(store, d, err)
				}
			})
		},
		onInvalidation: func() { r.invalidations.Add(1) },
	}
	st, err := buildStack(cfg, logger, r.logs.access, r.hooks)
	if err != nil {
		return err
	}
	r.completeOptions(st)
	if r.srv, err = server.New(st.serverOptions); err != nil {
		st.Close()
		return err
	}
	r.cur.Store(st)
	st.attach(r.srv)
	if r.admin, err = admin.New(admin.Options{
		Server:     r.srv,
		Components: r.components,
		Version:    versionString(),
		Logger:     logger,
		Pprof:      cfg.Admin.Pprof,
	}); err != nil {
		r.srv.Shutdown(context.Background())
		st.Close()
		return err
	}
	defer r.admin.Close()
	adm.Store(r.admin)
	r.adminSrv = newAdminServer(r.admin, logger)
	if err := r.adminSrv.listen(cfg.Admin.Listen); err != nil {
		r.srv.Shutdown(context.Background())
		st.Close()
		return err
	}
	if err := r.srv.Start(); err != nil {
		r.adminSrv.shutdown(context.Background())
		r.srv.Shutdown(context.Background())
		st.Close()
		return err
	}
	httpAddr, httpsAddr := r.srv.Addrs()
	logger.Info("massvhost serving", "http", addrString(httpAddr), "https", addrString(httpsAddr),
		"admin", r.adminSrv.boundAddr(), "config", cfg.Source(), "sites", cfg.Sites.Root,
		"store", cfg.Certs.Store, "version", versionString())
	r.printListening()
	for _, w := range hostWarnings("/proc/sys", os.Geteuid() == 0) {
		logger.Warn("host setting", "problem", w)
	}

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			r.reload()
		case syscall.SIGUSR1:
			if err := r.logs.reopen(); err != nil {
				r.logs.logger.Error("reopening logs failed: still writing to the old files", "err", err)
			} else {
				r.logs.logger.Info("logs reopened")
			}
		default:
			return r.shutdown(sig, sigs)
		}
	}
	return nil
}

// printListening writes the machine-readable line that tests and scripts
// starting the server on port 0 read the bound addresses from. It is
// printed again after a reload that moved a listener.
func (r *runner) printListening() {
	h, s := r.srv.Addrs()
	fmt.Fprintf(r.stdout, "massvhost: listening http=%s https=%s admin=%s\n", addrString(h), addrString(s), r.adminSrv.boundAddr())
}

// completeOptions sets the server options that come from the process
// rather than the stack: per-tenant access logs and the drain timeout.
func (r *runner) completeOptions(st *stack) {
	st.serverOptions.TenantAccessLog = r.logs.tenantWriter()
	st.serverOptions.ShutdownTimeout = st.cfg.Server.ShutdownTimeout
}

// components is the admin endpoints' view of the stack in use.
func (r *runner) components() admin.Components {
	st := r.cur.Load()
	c := admin.Components{
		Certs:         st.manager,
		CGI:           st.cgi,
		Redis:         st.redis,
		StoreKind:     st.cfg.Certs.Store,
		SitesRoot:     st.cfg.Sites.Root,
		Invalidations: r.invalidations.Load(),
		ConfigSource:  st.cfg.Source(),
		ConfigLoaded:  st.cfg.LoadedAt,
	}
	if st.cfg.Certs.UsesFiles() {
		c.CertsDir = st.cfg.Certs.Dir
	}
	if st.acme != nil {
		c.ACME = st.acme.Stats
	}
	return c
}

// reload builds a complete new stack (and log destinations) from the
// re-read configuration and swaps it in; on any error the running
// configuration keeps serving and the error is logged. Listeners whose
// address changed are rebound by the server, new address first. The
// replaced stack is closed once its last request has finished.
func (r *runner) reload() {
	start := time.Now()
	logger := r.logs.logger
	fail := func(err error) {
		logger.Error("reload failed: keeping the running configuration", "err", err)
		r.admin.ReloadDone(err)
	}
	next, err := r.load()
	if err != nil {
		fail(err)
		return
	}
	logs, err := openLogSet(next, r.stderr, r.logs)
	if err != nil {
		fail(err)
		return
	}
	st, err := buildStack(next, logs.logger, logs.access, r.hooks)
	if err != nil {
		logs.closeUnshared(r.logs)
		fail(err)
		return
	}
	st.attach(r.srv)
	prevLogs := r.logs
	r.logs = logs // completeOptions reads the new per-tenant writer
	r.completeOptions(st)
	httpBefore, httpsBefore := r.srv.Addrs()
	drained, err := r.srv.SwapRetired(st.serverOptions)
	if err != nil && !errors.Is(err, server.ErrRestartRequired) {
		r.logs = prevLogs
		st.Close()
		logs.closeUnshared(prevLogs)
		fail(err)
		return
	}
	if err != nil {
		logs.logger.Warn("configuration reloaded in part", "err", err)
	}
	old := r.cur.Swap(st)
	slog.SetDefault(logs.logger)
	adminBefore := r.adminSrv.boundAddr()
	if err := r.adminSrv.listen(next.Admin.Listen); err != nil {
		logs.logger.Error("admin listener kept on its old address", "err", err)
	}
	r.admin.SetPprof(next.Admin.Pprof)
	r.retire(old, prevLogs, drained, next.Server.ShutdownTimeout)
	r.admin.ReloadDone(nil)
	logs.logger.Info("configuration reloaded", "config", next.Source(), "elapsed", time.Since(start))
	httpAfter, httpsAfter := r.srv.Addrs()
	if addrString(httpBefore) != addrString(httpAfter) || addrString(httpsBefore) != addrString(httpsAfter) ||
		adminBefore != r.adminSrv.boundAddr() {
		r.printListening()
	}
}

// retire closes a replaced stack, and the log files only it used, once the
// requests that started under it are done (so a reload never kills a
// running CGI script), or after timeout at the latest.
func (r *runner) retire(old *stack, oldLogs *logSet, drained <-chan struct{}, timeout time.Duration) {
	newLogs := r.logs
	r.retireWG.Go(func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-drained:
		case <-t.C:
		case <-r.stopRetire:
		}
		old.Close()
		oldLogs.closeUnshared(newLogs)
	})
}

// shutdown drains the server within server.shutdown_timeout (a second
// SIGTERM or SIGINT cuts it short), then closes everything.
func (r *runner) shutdown(sig os.Signal, sigs <-chan os.Signal) error {
	cfg := r.cur.Load().cfg
	logger := r.logs.logger
	logger.Info("shutting down", "signal", sig.String(), "timeout", cfg.Server.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	go func() {
		for s := range sigs {
			switch s {
			case syscall.SIGTERM, syscall.SIGINT:
				logger.Warn("second signal: forcing shutdown", "signal", s.String())
				cancel()
			case syscall.SIGUSR1:
				r.logs.reopen()
			}
		}
	}()
	err := r.srv.Shutdown(ctx)
	close(r.stopRetire)
	r.retireWG.Wait()
	r.cur.Load().Close()
	// The admin listener goes last, so /readyz answers 503 and /metrics
	// keeps working while the server drains.
	adminCtx, adminCancel := context.WithTimeout(context.Background(), time.Second)
	r.adminSrv.shutdown(adminCtx)
	adminCancel()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

func addrString(a interface{ String() string }) string {
	if a == nil {
		return ""
	}
	return a.String()
}
