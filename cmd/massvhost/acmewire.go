package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"massvhost/certs"
	"massvhost/conf"
	"massvhost/vhost"
)

// acmeSetup is what buildACME needs besides the configuration.
type acmeSetup struct {
	store    certs.Store
	redis    *certs.RedisStore // nil without Redis: state in data_dir/acme
	resolver *vhost.Resolver
	// manager, once set, is told about each new certificate, so that a name
	// whose handshake gave up waiting leaves the negative cache at once
	// (with Redis the store's invalidation does it too).
	manager *atomic.Pointer[certs.Manager]
	// oneShot disables the renewal loop, for `certs renew`.
	oneShot bool
	logger  *slog.Logger
}

// buildACME builds the ACME issuer the acme section describes.
func buildACME(cfg *conf.Config, s acmeSetup) (*certs.ACME, error) {
	a := cfg.ACME
	store, ok := s.store.(certs.ACMEStore)
	if !ok {
		return nil, fmt.Errorf("acme: certificate store %T cannot be written", s.store)
	}
	var roots *x509.CertPool
	if a.CARoots != "" {
		pem, err := os.ReadFile(a.CARoots)
		if err != nil {
			return nil, fmt.Errorf("acme.ca_roots: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme.ca_roots: no PEM certificate in %s", a.CARoots)
		}
	}
	opts := certs.ACMEOptions{
		DirectoryURL:    a.Directory,
		Email:           a.Email,
		AcceptTerms:     a.AcceptTerms,
		EABKeyID:        a.EABKID,
		EABHMACKey:      a.EABHMACKey,
		Challenges:      a.Challenges,
		CARoots:         roots,
		Store:           store,
		Redis:           s.redis,
		DataDir:         cfg.DataDir,
		HandshakeWait:   a.HandshakeWait,
		OrderTimeout:    a.OrderTimeout,
		LockLease:       a.LockLease,
		RetryBackoff:    a.RetryBackoff,
		MaxRetryBackoff: a.MaxRetryBackoff,
		RenewInterval:   a.RenewInterval,
		DisableRenewal:  s.oneShot,
		Logger:          s.logger,
		Policy: certs.ACMEPolicy{
			Exists:              s.resolver.Exists,
			AskURL:              a.Ask,
			AskTimeout:          a.AskTimeout,
			PerDomainRate:       a.PerDomainRate,
			PerDomainBurst:      a.PerDomainBurst,
			GlobalRate:          a.GlobalRate,
			GlobalBurst:         a.GlobalBurst,
			MaxConcurrentOrders: a.MaxConcurrentOrders,
		},
	}
	if mp := s.manager; mp != nil {
		opts.OnIssued = func(name string) {
			if m := mp.Load(); m != nil {
				m.Invalidate(name)
			}
		}
	}
	acme, err := certs.NewACME(opts)
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	return acme, nil
}

// acmeIssueTimeout is the Manager's bound on one Issue call: longer than
// the ACME handshake wait, so that the issuer's own wait decides.
func acmeIssueTimeout(cfg *conf.Config) time.Duration {
	return max(certs.DefaultIssueTimeout, cfg.ACME.HandshakeWait+time.Second)
}

// errACMEDisabled is returned by `certs renew` when acme.enabled is false.
var errACMEDisabled = errors.New("acme.enabled is false: certificates are not obtained from an ACME CA")

// runRenew is `massvhost certs renew NAME`: a new certificate from the ACME
// CA now, stored where the servers read it. The CA validates through the
// running servers' listeners, so they must be able to answer the
// challenge: that needs the Redis store, which shares challenge responses
// between processes (and publishes the new certificate to every node).
func runRenew(fs *pflag.FlagSet, configPath, name string, stdout io.Writer) error {
	cfg, err := conf.Load(conf.LoadOptions{Path: configPath, Flags: fs})
	if err != nil {
		return err
	}
	if !cfg.ACME.Enabled {
		return errACMEDisabled
	}
	if !cfg.Certs.UsesRedis() {
		return errors.New("certs renew needs certs.store redis or redis+files: without Redis the running server cannot answer the CA's challenge for another process (it renews by itself, see docs/ACME.md)")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, rs, err := buildStore(cfg, logger)
	if err != nil {
		return err
	}
	defer rs.Close()
	resolver, err := vhost.NewResolver(vhost.Options{
		Root:          cfg.Sites.Root,
		DocRoot:       cfg.Sites.DocRoot,
		CGIBin:        cfg.Sites.CGIBin,
		WWWAlias:      cfg.Sites.WWWAlias,
		Aliases:       certs.NewSiteAliases(rs),
		LookupTimeout: cfg.Certs.LookupTimeout,
		Logger:        logger,
	})
	if err != nil {
		return err
	}
	acme, err := buildACME(cfg, acmeSetup{store: store, redis: rs, resolver: resolver, oneShot: true, logger: logger})
	if err != nil {
		return err
	}
	defer acme.Close()
	ctx, cancel := adminContext()
	defer cancel()
	ctx, cancelOrder := context.WithTimeout(ctx, cfg.ACME.OrderTimeout)
	defer cancelOrder()
	leaf, err := acme.RenewNow(ctx, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "renewed %s serial %s (expires %s)\n", name, leaf.SerialNumber.Text(16), leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}
