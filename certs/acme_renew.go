package certs

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"

	"massvhost/vhost"
)

// Renewal pacing.
const (
	// renewBatch is how many due entries one pass reads; the rest wait
	// for the next pass.
	renewBatch = 100
	// renewParallel is how many renewals one pass runs at once, so that a
	// large backlog (certificates issued together) drains at a pace the
	// CA tolerates.
	renewParallel = 4
	// renewFirstPass is the longest wait before the first pass after
	// NewACME.
	renewFirstPass = time.Minute
)

// renewAt is when a certificate for name is due for renewal: at two thirds
// of its lifetime, less up to a fifteenth of it chosen by hashing the name.
// The jitter is stable across passes and nodes, and spreads certificates
// that were issued together (a new cluster, a migration) so that they do
// not all renew in the same pass.
func renewAt(name string, leaf *x509.Certificate) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	h := fnv.New32a()
	h.Write([]byte(name))
	jitter := time.Duration(h.Sum32()%1000) * (life / 15) / 1000
	return leaf.NotBefore.Add(life/3*2 - jitter)
}

// due reports whether the certificate leaf for name needs renewing at now.
func (a *ACME) due(name string, leaf *x509.Certificate, now time.Time) bool {
	return !now.Before(renewAt(name, leaf))
}

func sortRenewals(rs []acmeRenewal) {
	slices.SortFunc(rs, func(x, y acmeRenewal) int {
		return cmp.Or(x.At.Compare(y.At), cmp.Compare(x.Name, y.Name))
	})
}

// jittered returns d ± 10%, so that nodes started together do not read the
// schedule together.
func jittered(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(rand.Int64N(int64(d)/5+1))
}

// renewLoop reads the schedule every RenewInterval until Close.
func (a *ACME) renewLoop() {
	defer a.wg.Done()
	t := time.NewTimer(jittered(min(a.renewInterval, renewFirstPass)))
	defer t.Stop()
	for {
		select {
		case <-a.closing.Done():
			return
		case <-t.C:
		}
		a.renewDue(a.closing)
		t.Reset(jittered(a.renewInterval))
	}
}

// renewDue runs one pass over the due entries of the schedule and returns
// how many certificates it renewed and how many renewals failed.
func (a *ACME) renewDue(ctx context.Context) (renewed, failed int) {
	sctx, cancel := context.WithTimeout(ctx, DefaultLookupTimeout)
	entries, err := a.state.due(sctx, a.now(), renewBatch)
	cancel()
	if err != nil {
		a.log.Warn("certs: acme: could not read the renewal schedule", "err", err)
		return 0, 0
	}
	sem := make(chan struct{}, renewParallel)
	results := make(chan error, len(entries))
	for _, r := range entries {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results <- ctx.Err()
			continue
		}
		go func() {
			defer func() { <-sem }()
			results <- a.renewOne(ctx, r)
		}()
	}
	for range entries {
		switch err := <-results; {
		case err == nil:
			renewed++
		case errors.Is(err, errNothingToRenew), errors.Is(err, errHeldElsewhere), errors.Is(err, errBackingOff):
			// Not this pass's business: another node renews, or the
			// name waits out a backoff.
		default:
			failed++
		}
	}
	return renewed, failed
}

// errNothingToRenew: a schedule entry turned out not to need an order.
var errNothingToRenew = errors.New("certs: acme: nothing to renew")

// renewOne renews the certificate of schedule entry r if it is still ours
// and still due. Entries whose certificate was deleted or replaced by
// someone else, or whose tenant is gone, leave the schedule.
func (a *ACME) renewOne(ctx context.Context, r acmeRenewal) error {
	name := r.Name
	drop := func(why string) error {
		a.log.Info("certs: acme: not renewing; dropped from the renewal schedule", "host", name, "why", why)
		uctx, cancel := context.WithTimeout(ctx, DefaultLookupTimeout)
		defer cancel()
		if err := a.state.unschedule(uctx, name, r.Serial); err != nil {
			a.log.Warn("certs: acme: could not update the renewal schedule", "host", name, "err", err)
		}
		return errNothingToRenew
	}
	gctx, cancel := context.WithTimeout(ctx, DefaultLookupTimeout)
	certPEM, keyPEM, err := a.store.Get(gctx, name)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		return drop("certificate deleted from the store")
	case err != nil:
		return err
	}
	leaf, err := leafOfPEM(name, certPEM, keyPEM)
	if err != nil {
		return drop("stored certificate is invalid: " + err.Error())
	}
	serial := serialOf(leaf)
	if serial != r.Serial {
		return drop("stored certificate was replaced")
	}
	if now := a.now(); !a.due(name, leaf, now) {
		// The entry is early (clock, jitter change): put it right.
		sctx, cancel := context.WithTimeout(ctx, DefaultLookupTimeout)
		defer cancel()
		_ = a.state.schedule(sctx, name, serial, renewAt(name, leaf))
		return errNothingToRenew
	}
	pctx, cancel := context.WithTimeout(ctx, DefaultLookupTimeout)
	exists := a.policy.exists(pctx, name)
	cancel()
	if !exists {
		return drop("no tenant serves the name any more")
	}
	j, err := a.start(name, jobMode{kind: jobRenew, oldSerial: serial})
	if err != nil {
		return err
	}
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RenewNow orders a new certificate for name now, whether or not the
// current one is due, and waits for it as long as ctx allows (the order's
// own deadline is OrderTimeout). It is `massvhost certs renew NAME`. It
// ignores and clears the name's failure backoff, since an operator asked,
// but a tenant must still serve the name. It returns the new leaf.
func (a *ACME) RenewNow(ctx context.Context, name string) (*x509.Certificate, error) {
	canon, err := vhost.Normalize(name)
	if err != nil {
		return nil, fmt.Errorf("certs: acme: renew: %w", err)
	}
	if !a.policy.exists(ctx, canon) {
		return nil, fmt.Errorf("%w: %q", errNoTenant, canon)
	}
	var old string
	gctx, cancel := context.WithTimeout(ctx, DefaultLookupTimeout)
	certPEM, keyPEM, err := a.store.Get(gctx, canon)
	cancel()
	switch {
	case err == nil:
		if leaf, err := leafOfPEM(canon, certPEM, keyPEM); err == nil {
			old = serialOf(leaf)
		}
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("certs: acme: renew %q: %w", canon, err)
	}
	a.clearFailures(ctx, canon)
	// A job already running for the name may end with the old
	// certificate (it only wanted a fresh one); then start ours.
	for range 2 {
		j, err := a.start(canon, jobMode{kind: jobForce, oldSerial: old})
		if err != nil {
			return nil, err
		}
		select {
		case <-j.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("certs: acme: renew %q: %w", canon, context.Cause(ctx))
		}
		if j.err != nil {
			return nil, j.err
		}
		if old == "" || serialOf(j.leaf) != old {
			return j.leaf, nil
		}
	}
	return nil, fmt.Errorf("certs: acme: renew %q: %w: an order in progress kept the current certificate; try again", canon, ErrUnavailable)
}
