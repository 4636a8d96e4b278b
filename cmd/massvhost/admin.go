package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"massvhost/certs"
	"massvhost/conf"
	"massvhost/server"
	"massvhost/server/admin"
)

// stackHooks are the process-lifetime observers every stack reports to, so
// that counters survive reloads (a reload builds a new stack).
type stackHooks struct {
	// wrapStore decorates the certificate store given to the manager; nil
	// leaves it as is.
	wrapStore func(certs.Store) certs.Store
	// onInvalidation runs for each invalidation message from Redis; nil
	// for none.
	onInvalidation func()
}

// instrumentStore wraps each file and Redis store inside s (the tiers of a
// certs.Tiered one by one) so that every lookup is timed by store.
func instrumentStore(s certs.Store, observe func(store string, d time.Duration, err error)) certs.Store {
	switch v := s.(type) {
	case certs.Tiered:
		return certs.Tiered{Primary: instrumentStore(v.Primary, observe), Fallback: instrumentStore(v.Fallback, observe)}
	case certs.FileStore, *certs.FileStore:
		return timed(conf.StoreFiles, s, observe)
	case *certs.RedisStore:
		return timed(conf.StoreRedis, s, observe)
	case nil:
		return nil
	}
	return timed("other", s, observe)
}

// timed returns a decorator of s that times Get. It implements Writer and
// Lister exactly when s implements both (every store here does): the
// manager writes issued certificates through Writer and preload lists
// through Lister.
func timed(name string, s certs.Store, observe func(string, time.Duration, error)) certs.Store {
	ts := timedStore{name: name, inner: s, observe: observe}
	w, wok := s.(certs.Writer)
	l, lok := s.(certs.Lister)
	if wok && lok {
		return timedFullStore{timedStore: ts, w: w, l: l}
	}
	return ts
}

type timedStore struct {
	name    string
	inner   certs.Store
	observe func(string, time.Duration, error)
}

func (t timedStore) Get(ctx context.Context, name string) (certPEM, keyPEM []byte, err error) {
	start := time.Now()
	certPEM, keyPEM, err = t.inner.Get(ctx, name)
	t.observe(t.name, time.Since(start), err)
	return certPEM, keyPEM, err
}

type timedFullStore struct {
	timedStore
	w certs.Writer
	l certs.Lister
}

func (t timedFullStore) Put(ctx context.Context, name string, certPEM, keyPEM []byte) error {
	return t.w.Put(ctx, name, certPEM, keyPEM)
}

func (t timedFullStore) Delete(ctx context.Context, name string) error {
	return t.w.Delete(ctx, name)
}

func (t timedFullStore) List(ctx context.Context, fn func(name string) error) error {
	return t.l.List(ctx, fn)
}

// adminServer serves the admin endpoints on admin.listen. A reload that
// changes the address binds the new one before closing the old one; ""
// turns the listener off (the metrics keep counting).
type adminServer struct {
	handler http.Handler
	logger  *slog.Logger

	mu   sync.Mutex // guards the fields below
	addr string     // as configured
	ln   net.Listener
	srv  *http.Server
	wg   sync.WaitGroup
}

func newAdminServer(a *admin.Admin, logger *slog.Logger) *adminServer {
	return &adminServer{handler: a.Handler(), logger: logger}
}

// listen makes the admin listener serve on addr; unchanged addr is a no-op.
func (as *adminServer) listen(addr string) error {
	as.mu.Lock()
	defer as.mu.Unlock()
	if addr == as.addr && (addr == "" || as.ln != nil) {
		return nil
	}
	var ln net.Listener
	if addr != "" {
		var err error
		if ln, err = server.Listen(addr); err != nil {
			return fmt.Errorf("admin.listen %s: %w", addr, err)
		}
	}
	oldSrv := as.srv
	as.addr, as.ln, as.srv = addr, ln, nil
	if ln != nil {
		srv := &http.Server{
			Handler:           as.handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          slog.NewLogLogger(as.logger.Handler(), slog.LevelDebug),
		}
		as.srv = srv
		as.wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				as.logger.Error("admin listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		})
	}
	if oldSrv != nil {
		as.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := oldSrv.Shutdown(ctx); err != nil {
				oldSrv.Close()
			}
		})
	}
	return nil
}

// boundAddr is the listener's address ("" when off).
func (as *adminServer) boundAddr() string {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.ln == nil {
		return ""
	}
	return as.ln.Addr().String()
}

// shutdown stops the listener, waiting for requests until ctx is done.
func (as *adminServer) shutdown(ctx context.Context) {
	as.mu.Lock()
	srv := as.srv
	as.srv, as.ln = nil, nil
	as.mu.Unlock()
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}
	as.wg.Wait()
}
