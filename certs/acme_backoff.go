package certs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
)

// Failure reasons, logged as the "reason" attribute of failed orders.
const (
	reasonCAUnavailable   = "ca_unavailable"   // CA unreachable, 5xx, timeout
	reasonCARateLimited   = "ca_rate_limited"  // the CA's rate limit (429 rateLimited)
	reasonChallengeFailed = "challenge_failed" // the CA could not validate (DNS elsewhere, firewall)
	reasonOrderFailed     = "order_failed"     // the order went invalid, or the CA refused a request
	reasonRejected        = "rejected"         // the CA will not issue for this name (policy, CAA)
	reasonAccount         = "account"          // registration failed
	reasonBadCertificate  = "bad_certificate"  // the CA's certificate does not validate
	reasonState           = "state"            // the shared state (Redis) failed: lock, challenge response
	reasonCanceled        = "canceled"         // Close
	reasonRateLimited     = "rate_limited"     // our own order rate
)

// acmeFailure is an order failure with the step that failed.
type acmeFailure struct {
	reason string
	err    error
}

func (e *acmeFailure) Error() string { return e.err.Error() }
func (e *acmeFailure) Unwrap() error { return e.err }

func failure(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &acmeFailure{reason: reason, err: err}
}

// acmeBackoff is a name's failure backoff: no order before until.
type acmeBackoff struct {
	until    time.Time
	attempts int // consecutive failures
	reason   string
}

// errBackingOff refuses a name whose last order failed recently. It wraps
// ErrUnavailable: the failure is ours, not the client's.
var errBackingOff = fmt.Errorf("%w: acme: backing off after a failed order", ErrUnavailable)

func backingOffError(name string, b acmeBackoff) error {
	return fmt.Errorf("%w: %q until %s (%d failures, last: %s)", errBackingOff, name,
		b.until.UTC().Format(time.RFC3339), b.attempts, b.reason)
}

// classifyACME returns the reason for a failed order, how long the CA asked
// us to wait (0 if it did not say), and whether the name should back off.
// Transient failures of our own side (Redis, Close, our own rate) do not
// back off: the next handshake may simply succeed.
func classifyACME(err error) (reason string, retryAfter time.Duration, backoff bool) {
	if f, ok := errors.AsType[*acmeFailure](err); ok {
		reason = f.reason
	}
	switch {
	case errors.Is(err, context.Canceled):
		return reasonCanceled, 0, false
	case errors.Is(err, errRateLimited):
		return reasonRateLimited, 0, false
	case reason == reasonState:
		return reason, 0, false
	}
	if ae, ok := errors.AsType[*acme.Error](err); ok {
		if d, limited := acme.RateLimit(ae); limited {
			return reasonCARateLimited, d, true
		}
		switch {
		case ae.StatusCode >= 500:
			return reasonCAUnavailable, 0, true
		case strings.HasSuffix(ae.ProblemType, ":rejectedIdentifier"), strings.HasSuffix(ae.ProblemType, ":caa"):
			return reasonRejected, 0, true
		}
	}
	if _, ok := errors.AsType[*acme.AuthorizationError](err); ok {
		return reasonChallengeFailed, 0, true
	}
	if _, ok := errors.AsType[*acme.OrderError](err); ok {
		return reasonOrderFailed, 0, true
	}
	if _, ok := errors.AsType[net.Error](err); ok || errors.Is(err, context.DeadlineExceeded) {
		return reasonCAUnavailable, 0, true
	}
	if reason == "" {
		reason = reasonOrderFailed
	}
	return reason, 0, true
}

// nextBackoff returns the backoff after one more failure of a name whose
// previous backoff was prev (zero if none): RetryBackoff doubled per
// consecutive failure up to MaxRetryBackoff, at least what the CA asked
// for, plus up to 10% jitter so that names failing together do not retry
// together.
func (a *ACME) nextBackoff(prev acmeBackoff, now time.Time, reason string, retryAfter time.Duration) acmeBackoff {
	attempts := prev.attempts + 1
	d := a.backoffMin
	for i := 1; i < attempts && d < a.backoffMax; i++ {
		d *= 2
	}
	d = min(d, a.backoffMax)
	d = max(d, retryAfter)
	d += time.Duration(rand.Int64N(int64(d)/10 + 1))
	return acmeBackoff{until: now.Add(d), attempts: attempts, reason: reason}
}

// localBackoff reports the local backoff of name, if it is in force.
func (a *ACME) localBackoff(name string, now time.Time) (acmeBackoff, bool) {
	b, ok := a.fails.Peek(name)
	return b, ok && now.Before(b.until)
}

// recordFailure puts name in backoff after err, here and in the shared
// state, and returns the backoff (zero when err does not back off).
func (a *ACME) recordFailure(ctx context.Context, name string, err error) (acmeBackoff, string) {
	reason, retryAfter, backoff := classifyACME(err)
	if !backoff {
		return acmeBackoff{}, reason
	}
	prev, _ := a.fails.Peek(name)
	if shared, ok, serr := a.state.backoff(ctx, name); serr == nil && ok && shared.attempts > prev.attempts {
		prev = shared
	}
	b := a.nextBackoff(prev, a.now(), reason, retryAfter)
	a.fails.Add(name, b)
	if serr := a.state.setBackoff(ctx, name, b); serr != nil {
		a.log.Warn("certs: acme: could not share backoff", "host", name, "err", serr)
	}
	return b, reason
}

// clearFailures forgets name's backoff after a success.
func (a *ACME) clearFailures(ctx context.Context, name string) {
	if _, ok := a.fails.Peek(name); !ok {
		if _, shared, err := a.state.backoff(ctx, name); err != nil || !shared {
			return
		}
	}
	a.fails.Remove(name)
	if err := a.state.clearBackoff(ctx, name); err != nil {
		a.log.Warn("certs: acme: could not clear shared backoff", "host", name, "err", err)
	}
}

// acmeRetryBackoff bounds x/crypto/acme's own retries: a few quick ones for
// bad nonces and server errors, none for rate limits, which we want to see
// at once (to back the name off) rather than sleep through in an order.
func acmeRetryBackoff(n int, _ *http.Request, resp *http.Response) time.Duration {
	if n > 3 || resp == nil || resp.StatusCode == http.StatusTooManyRequests {
		return 0
	}
	return time.Duration(n)*200*time.Millisecond + time.Duration(rand.Int64N(int64(100*time.Millisecond)))
}
