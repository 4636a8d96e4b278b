package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

var (
	// errInProgress: Issue stopped waiting after HandshakeWait; the order
	// goes on and stores its certificate for the next handshake.
	errInProgress    = fmt.Errorf("%w: acme: issuance in progress", ErrUnavailable)
	errTooManyOrders = fmt.Errorf("%w: acme: too many orders in progress", ErrUnavailable)
	errClosed        = fmt.Errorf("%w: acme: closed", ErrUnavailable)
)

// jobKind says what a job is for, which decides the certificate that
// satisfies it and whether it waits for other nodes and honors backoff.
type jobKind int

const (
	jobIssue jobKind = iota // a handshake found no certificate
	jobRenew                // the renewal loop found one due
	jobForce                // RenewNow: the operator asked
)

type jobMode struct {
	kind      jobKind
	oldSerial string // the serial being replaced (renewals), "" if none
}

// acmeJob is one name's obtain, shared by every caller that asks while it
// runs. Its fields are written before done is closed.
type acmeJob struct {
	done            chan struct{}
	certPEM, keyPEM []byte
	leaf            *x509.Certificate
	err             error
}

// Issue implements [Issuer]: it obtains a certificate for name, a
// canonical host (never a wildcard: HTTP-01 and TLS-ALPN-01 cannot
// validate one). It does not apply the HostPolicy (the Manager does,
// before calling it) but does apply the order rates and
// MaxConcurrentOrders. Concurrent calls for one name share one order, and
// so do nodes sharing Redis (see [ACME]).
//
// Issue waits for the order at most HandshakeWait (and no longer than ctx
// allows); the order itself continues in the background up to
// OrderTimeout and stores its result. Apart from a name that cannot be
// ordered (not canonical, a wildcard), every error wraps [ErrUnavailable]:
// "issuance in progress" after the wait, a name backing off after a failed
// order, the rates or concurrency cap reached, or the order's own failure.
func (a *ACME) Issue(ctx context.Context, name string) (certPEM, keyPEM []byte, err error) {
	if err := checkStoreName(name); err != nil || isWildcard(name) {
		return nil, nil, fmt.Errorf("certs: acme: cannot order %q: %w", name, cmpErr(err, ErrNotFound))
	}
	j, err := a.start(name, jobMode{kind: jobIssue})
	if err != nil {
		return nil, nil, err
	}
	t := time.NewTimer(a.handshakeWait)
	defer t.Stop()
	select {
	case <-j.done:
		if j.err != nil {
			return nil, nil, unavailable(j.err)
		}
		return j.certPEM, j.keyPEM, nil
	case <-t.C:
		a.stats.inProgress.Add(1)
		return nil, nil, fmt.Errorf("certs: acme %q: %w", name, errInProgress)
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("certs: acme %q: %w: %w", name, ErrUnavailable, context.Cause(ctx))
	}
}

// unavailable makes err wrap ErrUnavailable: whatever went wrong with an
// order, it is not the client's fault.
func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// cmpErr returns err, or def if err is nil.
func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// start joins the job in flight for name or starts one. It refuses, with
// no I/O, names in local backoff (except forced renewals) and jobs beyond
// MaxConcurrentOrders.
func (a *ACME) start(name string, mode jobMode) (*acmeJob, error) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	if j, ok := a.jobs[name]; ok {
		return j, nil
	}
	if mode.kind != jobForce {
		if b, ok := a.localBackoff(name, now); ok {
			a.stats.backedOff.Add(1)
			return nil, backingOffError(name, b)
		}
	}
	if len(a.jobs) >= a.maxJobs {
		a.stats.tooMany.Add(1)
		return nil, fmt.Errorf("%w (%d)", errTooManyOrders, a.maxJobs)
	}
	j := &acmeJob{done: make(chan struct{})}
	a.jobs[name] = j
	a.wg.Add(1)
	go a.run(name, j, mode)
	return j, nil
}

// run is a job's goroutine. It runs detached from whoever asked, bounded by
// OrderTimeout and canceled by Close, so that a handshake giving up does not
// waste an order half done.
func (a *ACME) run(name string, j *acmeJob, mode jobMode) {
	defer a.wg.Done()
	ctx, cancel := context.WithTimeout(a.closing, a.orderTimeout)
	defer cancel()
	start := time.Now()
	certPEM, keyPEM, leaf, err := a.obtain(ctx, name, mode)
	if err != nil {
		a.failed(ctx, name, mode, err, time.Since(start))
	}
	a.mu.Lock()
	delete(a.jobs, name)
	a.mu.Unlock()
	j.certPEM, j.keyPEM, j.leaf, j.err = certPEM, keyPEM, leaf, err
	close(j.done)
}

// wantFor returns the test a stored certificate must pass to satisfy a job
// of mode: fresh enough not to need renewal, or for a forced renewal,
// another certificate than the one being replaced.
func (a *ACME) wantFor(name string, mode jobMode) func(*x509.Certificate) bool {
	if mode.kind == jobForce {
		return func(leaf *x509.Certificate) bool {
			return serialOf(leaf) != mode.oldSerial && a.now().Before(leaf.NotAfter)
		}
	}
	return func(leaf *x509.Certificate) bool { return !a.due(name, leaf, a.now()) }
}

// obtain gets a certificate for name: from the store if another node just
// put one there, by waiting for the node holding the name's lock, or by
// taking the lock and ordering.
func (a *ACME) obtain(ctx context.Context, name string, mode jobMode) ([]byte, []byte, *x509.Certificate, error) {
	want := a.wantFor(name, mode)
	for {
		if mode.kind != jobForce {
			if b, ok, err := a.state.backoff(ctx, name); err == nil && ok && a.now().Before(b.until) {
				a.fails.Add(name, b)
				a.stats.backedOff.Add(1)
				return nil, nil, nil, backingOffError(name, b)
			}
		}
		token := newLockToken()
		got, err := a.state.tryLock(ctx, name, token, a.lease)
		if err != nil {
			return nil, nil, nil, failure(reasonState, fmt.Errorf("certs: acme: issuance lock for %q: %w", name, err))
		}
		if got {
			return a.holding(ctx, name, token, mode, want)
		}
		if mode.kind == jobRenew {
			return nil, nil, nil, errHeldElsewhere
		}
		certPEM, keyPEM, err := a.awaitOther(ctx, name, want, mode.kind == jobForce)
		if errors.Is(err, errLockFreed) {
			continue
		}
		if err != nil {
			return nil, nil, nil, err
		}
		leaf, err := leafOfPEM(name, certPEM, keyPEM)
		return certPEM, keyPEM, leaf, err
	}
}

// holding runs with name's lock held: it keeps the lease alive, looks in
// the store once more (the previous holder may have finished just before),
// takes an order from the rate budget, orders and stores the result.
func (a *ACME) holding(ctx context.Context, name, token string, mode jobMode, want func(*x509.Certificate) bool) ([]byte, []byte, *x509.Certificate, error) {
	octx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := a.keepLock(octx, cancel, name, token)
	defer func() {
		stop()
		a.release(ctx, name, token)
	}()
	if certPEM, keyPEM, ok := a.stored(octx, name, want); ok {
		a.stats.fromStore.Add(1)
		leaf, err := leafOfPEM(name, certPEM, keyPEM)
		return certPEM, keyPEM, leaf, err
	}
	if err := a.limits.reserve(name, a.now()); err != nil {
		a.stats.rateLimited.Add(1)
		return nil, nil, nil, err
	}
	start := time.Now()
	certPEM, keyPEM, leaf, err := a.order(octx, name)
	if err != nil {
		if errors.Is(context.Cause(octx), errLockLost) {
			err = fmt.Errorf("%w: %w", errLockLost, err)
		}
		return nil, nil, nil, err
	}
	a.stats.issued.Add(1)
	if mode.kind != jobIssue {
		a.stats.renewed.Add(1)
	}
	a.log.Info("certs: acme: certificate obtained", "host", name, "renewal", mode.kind != jobIssue,
		"not_after", leaf.NotAfter, "elapsed", time.Since(start))
	a.save(ctx, name, certPEM, keyPEM, leaf)
	return certPEM, keyPEM, leaf, nil
}

// stored returns the pair the store holds for name if it is valid and
// satisfies want.
func (a *ACME) stored(ctx context.Context, name string, want func(*x509.Certificate) bool) ([]byte, []byte, bool) {
	sctx, cancel := context.WithTimeout(ctx, DefaultLookupTimeout)
	certPEM, keyPEM, err := a.store.Get(sctx, name)
	cancel()
	if err != nil {
		return nil, nil, false
	}
	leaf, err := leafOfPEM(name, certPEM, keyPEM)
	if err != nil || !want(leaf) {
		return nil, nil, false
	}
	return certPEM, keyPEM, true
}

// leafOfPEM validates a pair for name and returns its leaf.
func leafOfPEM(name string, certPEM, keyPEM []byte) (*x509.Certificate, error) {
	cert, err := parsePair(name, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return cert.Leaf, nil
}

// serialOf identifies a certificate in the renewal schedule.
func serialOf(leaf *x509.Certificate) string { return leaf.SerialNumber.Text(16) }

// save writes a new certificate to the store (which, for Redis, tells every
// node), schedules its renewal and forgets the name's failures. A failed
// write is logged, not returned: this node's Manager serves the
// certificate it is handed and tries its own write.
func (a *ACME) save(ctx context.Context, name string, certPEM, keyPEM []byte, leaf *x509.Certificate) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultLookupTimeout)
	defer cancel()
	if err := a.store.Put(ctx, name, certPEM, keyPEM); err != nil {
		a.log.Error("certs: acme: could not store the new certificate", "host", name, "err", err)
	}
	if err := a.state.schedule(ctx, name, serialOf(leaf), renewAt(name, leaf)); err != nil {
		a.log.Error("certs: acme: could not schedule renewal", "host", name, "err", err)
	}
	a.clearFailures(ctx, name)
	if a.onIssued != nil {
		a.onIssued(name)
	}
}

// failed logs and counts a failed job and backs the name off.
func (a *ACME) failed(ctx context.Context, name string, mode jobMode, err error, elapsed time.Duration) {
	if errors.Is(err, errBackingOff) || errors.Is(err, errHeldElsewhere) {
		return // not a new failure: someone else's, already counted
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultLookupTimeout)
	defer cancel()
	b, reason := a.recordFailure(ctx, name, err)
	if reason == reasonRateLimited {
		a.log.Info("certs: acme: order deferred by the order rate limit", "host", name)
		return
	}
	a.stats.failed.Add(1)
	if reason == reasonCARateLimited {
		a.stats.caRateLimited.Add(1)
	}
	attrs := []any{"host", name, "reason", reason, "elapsed", elapsed, "err", err}
	if mode.kind != jobIssue {
		a.stats.renewFailed.Add(1)
		attrs = append(attrs, "renewal", true)
		if mode.oldSerial != "" && !b.until.IsZero() {
			// Retry when the backoff ends; until then the scan skips
			// it instead of returning it first every time.
			if serr := a.state.schedule(ctx, name, mode.oldSerial, b.until); serr != nil {
				a.log.Warn("certs: acme: could not reschedule renewal", "host", name, "err", serr)
			}
		}
	}
	if !b.until.IsZero() {
		attrs = append(attrs, "failures", b.attempts, "retry_at", b.until)
	}
	a.log.Warn("certs: acme: order failed", attrs...)
}
