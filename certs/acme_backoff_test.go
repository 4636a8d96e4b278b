package certs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

func TestClassifyACME(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "https://ca/x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	limited := &acme.Error{StatusCode: 429, ProblemType: "urn:ietf:params:acme:error:rateLimited", Header: http.Header{"Retry-After": {"3600"}}}
	for _, tc := range []struct {
		name        string
		err         error
		reason      string
		retryAfter  time.Duration
		wantBackoff bool
	}{
		{"CA unreachable", failure(reasonOrderFailed, fmt.Errorf("new order: %w", refused)), reasonCAUnavailable, 0, true},
		{"CA 503", failure(reasonOrderFailed, &acme.Error{StatusCode: 503}), reasonCAUnavailable, 0, true},
		{"CA rate limit", failure(reasonOrderFailed, limited), reasonCARateLimited, time.Hour, true},
		{"validation failed", &acme.AuthorizationError{Identifier: "a.test"}, reasonChallengeFailed, 0, true},
		{"order invalid", &acme.OrderError{Status: acme.StatusInvalid}, reasonOrderFailed, 0, true},
		{"CAA forbids", failure(reasonOrderFailed, &acme.Error{StatusCode: 403, ProblemType: "urn:ietf:params:acme:error:caa"}), reasonRejected, 0, true},
		{"account", failure(reasonAccount, &acme.Error{StatusCode: 400, ProblemType: "urn:ietf:params:acme:error:malformed"}), reasonAccount, 0, true},
		{"order timeout", failure(reasonOrderFailed, context.DeadlineExceeded), reasonCAUnavailable, 0, true},
		{"closed", failure(reasonOrderFailed, context.Canceled), reasonCanceled, 0, false},
		{"our rate", errRateLimited, reasonRateLimited, 0, false},
		{"redis down", failure(reasonState, ErrUnavailable), reasonState, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, ra, backoff := classifyACME(tc.err)
			if reason != tc.reason || ra != tc.retryAfter || backoff != tc.wantBackoff {
				t.Errorf("classifyACME = %q, %v, %v; want %q, %v, %v", reason, ra, backoff, tc.reason, tc.retryAfter, tc.wantBackoff)
			}
		})
	}
}

func TestACMEBackoffGrowth(t *testing.T) {
	a, _, clk := newOfflineACME(t, func(context.Context, string) bool { return true }, func(o *ACMEOptions) {
		o.RetryBackoff = time.Minute
		o.MaxRetryBackoff = 10 * time.Minute
	})
	now := clk.Now()
	var b acmeBackoff
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute} {
		b = a.nextBackoff(b, now, reasonChallengeFailed, 0)
		d := b.until.Sub(now)
		if b.attempts != i+1 || d < want || d > want+want/10 {
			t.Errorf("failure %d: backoff %v (attempts %d), want %v plus at most 10%%", i+1, d, b.attempts, want)
		}
	}
	// The CA's Retry-After wins when longer.
	b = a.nextBackoff(acmeBackoff{}, now, reasonCARateLimited, 3*time.Hour)
	if d := b.until.Sub(now); d < 3*time.Hour {
		t.Errorf("Retry-After 3h gave a backoff of %v", d)
	}
}

// TestACMEBackoffRefusesWithoutIO: a name in local backoff is refused by
// Issue before any state or CA access.
func TestACMEBackoffRefusesWithoutIO(t *testing.T) {
	a, _, clk := newOfflineACME(t, func(context.Context, string) bool { return true })
	a.fails.Add("failing.test", acmeBackoff{until: clk.Now().Add(time.Minute), attempts: 2, reason: reasonChallengeFailed})
	_, _, err := a.Issue(context.Background(), "failing.test")
	if !errors.Is(err, errBackingOff) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Issue = %v, want a backoff refusal wrapping ErrUnavailable", err)
	}
	if st := a.Stats(); st.BackedOff != 1 || st.Jobs != 0 {
		t.Errorf("stats %+v", st)
	}
	clk.Advance(2 * time.Minute)
	if _, ok := a.localBackoff("failing.test", clk.Now()); ok {
		t.Error("backoff still in force after it ended")
	}
	// Wildcards and non-canonical names are never ordered.
	for _, name := range []string{"*.wild.test", "UPPER.test", ""} {
		if _, _, err := a.Issue(context.Background(), name); err == nil {
			t.Errorf("Issue(%q) accepted", name)
		}
	}
}
