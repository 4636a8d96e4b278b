package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"massvhost/cgi"
	"massvhost/conf"
	"massvhost/server"
)

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

	load := func() (*conf.Config, error) {
		return conf.Load(conf.LoadOptions{Path: *configPath, Flags: fs})
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	logger, closeLogs, err := openLogs(cfg, stderr)
	if err != nil {
		return err
	}
	defer closeLogs()
	slog.SetDefault(logger)

	access, err := accessWriter(cfg)
	if err != nil {
		return err
	}
	if access != nil {
		defer access.Close()
	}
	var accessW io.Writer
	if access != nil {
		accessW = access
	}

	st, err := buildStack(cfg, logger, accessW)
	if err != nil {
		return err
	}
	srv, err := server.New(st.serverOptions)
	if err != nil {
		st.Close()
		return err
	}
	st.attach(srv)
	if err := srv.Start(); err != nil {
		st.Close()
		return err
	}
	httpAddr, httpsAddr := srv.Addrs()
	logger.Info("massvhost serving", "http", addrString(httpAddr), "https", addrString(httpsAddr),
		"config", cfg.Source(), "sites", cfg.Sites.Root, "store", cfg.Certs.Store, "version", versionString())
	// A machine-readable line for tests and scripts that start the server on
	// port 0 and need the bound addresses.
	fmt.Fprintf(stdout, "massvhost: listening http=%s https=%s\n", addrString(httpAddr), addrString(httpsAddr))

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			st = reload(srv, st, cfg, load, logger, accessW, &cfg)
			continue
		}
		logger.Info("shutting down", "signal", sig.String(), "timeout", cfg.Server.ShutdownTimeout)
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		// A second SIGTERM/SIGINT forces the exit without waiting.
		go func() {
			for s := range sigs {
				if s != syscall.SIGHUP {
					logger.Warn("second signal: forcing shutdown", "signal", s.String())
					cancel()
				}
			}
		}()
		err := srv.Shutdown(ctx)
		cancel()
		st.Close()
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("shutdown: %w", err)
		}
		logger.Info("stopped")
		return nil
	}
	return nil
}

// reload builds a complete new stack from the re-read configuration and
// swaps it in; on any error the running stack keeps serving and the error is
// logged. It returns the stack now in use.
func reload(srv *server.Server, cur *stack, cfg *conf.Config, load func() (*conf.Config, error), logger *slog.Logger, access io.Writer, cfgOut **conf.Config) *stack {
	start := time.Now()
	next, err := load()
	if err != nil {
		logger.Error("reload failed: keeping the running configuration", "err", err)
		return cur
	}
	if msg := restartOnly(cfg, next); msg != "" {
		logger.Error("reload failed: keeping the running configuration", "err", msg)
		return cur
	}
	st, err := buildStack(next, logger, access)
	if err != nil {
		logger.Error("reload failed: keeping the running configuration", "err", err)
		return cur
	}
	st.attach(srv)
	if err := srv.Swap(st.serverOptions); errors.Is(err, server.ErrRestartRequired) {
		// Everything else was applied; those settings wait for a restart.
		logger.Warn("configuration reloaded in part", "err", err)
	} else if err != nil {
		st.Close()
		logger.Error("reload failed: keeping the running configuration", "err", err)
		return cur
	}
	cur.Close()
	*cfgOut = next
	logger.Info("configuration reloaded", "config", next.Source(), "elapsed", time.Since(start))
	return st
}

// restartOnly names settings a reload cannot change, or returns "".
func restartOnly(old, next *conf.Config) string {
	switch {
	case old.Listen != next.Listen:
		return "listen.* changed: restart required"
	case old.Log != next.Log:
		return "log.* changed: restart required"
	}
	return ""
}

func addrString(a interface{ String() string }) string {
	if a == nil {
		return ""
	}
	return a.String()
}
