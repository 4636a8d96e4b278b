package certs

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// How often a node waiting for another node's order looks at the store:
// soon at first (a healthy order takes seconds), then less often.
const (
	lockPollMin = 100 * time.Millisecond
	lockPollMax = 2 * time.Second
)

var (
	// errLockFreed: the node that held the lock released it (or crashed
	// and its lease ran out) without storing a certificate.
	errLockFreed = errors.New("certs: acme: issuance lock released without a certificate")
	// errHeldElsewhere: a renewal found another node renewing the name.
	errHeldElsewhere = fmt.Errorf("%w: acme: another node is ordering this name", ErrUnavailable)
	// errLockLost: the lease ran out while the order ran (Redis
	// unreachable for a whole lease); another node may be ordering.
	errLockLost = errors.New("certs: acme: issuance lock lost")
)

// newLockToken returns a random token identifying one holder of a lock.
func newLockToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// keepLock extends the lock on name every third of the lease until the
// returned stop is called. If the lock is found taken by another token (our
// lease ran out), it cancels the order with errLockLost: another node may
// be ordering the same name, and one order per name matters more than
// this one. A Redis error is logged and retried at the next tick; the
// lease may well still be ours.
func (a *ACME) keepLock(ctx context.Context, cancel context.CancelCauseFunc, name, token string) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(a.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			ectx, c := context.WithTimeout(ctx, a.lease/3)
			ok, err := a.state.extendLock(ectx, name, token, a.lease)
			c()
			switch {
			case err != nil:
				a.log.Warn("certs: acme: could not extend issuance lock", "host", name, "err", err)
			case !ok:
				a.log.Warn("certs: acme: issuance lock lost; abandoning the order", "host", name)
				cancel(errLockLost)
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// release drops the lock on name if token still holds it. It runs on a
// fresh deadline: the order's context may be over.
func (a *ACME) release(ctx context.Context, name, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultLookupTimeout)
	defer cancel()
	if err := a.state.unlock(ctx, name, token); err != nil {
		a.log.Warn("certs: acme: could not release issuance lock; it expires with its lease", "host", name, "err", err)
	}
}

// awaitOther waits while another node holds the lock on name, until a
// certificate that satisfies want appears in the store. It returns
// errLockFreed when the lock goes away without one, so that the caller
// may take the lock itself, and a backoff error when the other node's
// order failed.
func (a *ACME) awaitOther(ctx context.Context, name string, want func(*x509.Certificate) bool, force bool) ([]byte, []byte, error) {
	a.stats.lockWaits.Add(1)
	delay := lockPollMin
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("certs: acme: waiting for another node's order of %q: %w", name, context.Cause(ctx))
		case <-t.C:
		}
		if c, k, ok := a.stored(ctx, name, want); ok {
			a.stats.fromStore.Add(1)
			return c, k, nil
		}
		if !force {
			if b, ok, err := a.state.backoff(ctx, name); err == nil && ok && a.now().Before(b.until) {
				a.fails.Add(name, b)
				return nil, nil, backingOffError(name, b)
			}
		}
		if held, err := a.state.lockHeld(ctx, name); err == nil && !held {
			return nil, nil, errLockFreed
		}
		delay = min(2*delay, lockPollMax)
		t.Reset(delay)
	}
}
