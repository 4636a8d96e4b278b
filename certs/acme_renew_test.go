package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"massvhost/test/acmetest"
	"massvhost/test/certtest"
)

// TestACMERenewal renews a short-lived certificate at two thirds of its
// life; then, with the CA down, a failing renewal keeps the old certificate
// served (handshakes never wait for the CA, certmagic#246) and is
// rescheduled after its backoff; RenewNow renews once the CA is back.
func TestACMERenewal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newACMEFixture(t, acmeFixtureOptions{pebble: acmetest.Options{Validity: time.Hour}})
	const host = "renew.example.test"
	f.addTenant(host)
	n := f.node(t)
	leaf1, err := f.handshake(t, host)
	if err != nil {
		t.Fatal(err)
	}
	if renewed, failed := n.acme.renewDue(ctx); renewed+failed != 0 {
		t.Fatalf("fresh certificate renewed: %d renewed, %d failed", renewed, failed)
	}

	f.clock.Advance(50 * time.Minute) // past 2/3 of an hour, whatever the jitter
	if renewed, failed := n.acme.renewDue(ctx); renewed != 1 || failed != 0 {
		t.Fatalf("renewal pass: %d renewed, %d failed, want 1 renewed", renewed, failed)
	}
	certPEM, _, err := f.store.Get(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	leaf2 := leafOf(t, certPEM)
	if leaf2.SerialNumber.Cmp(leaf1.SerialNumber) == 0 {
		t.Fatal("store still holds the old certificate")
	}
	waitFor(t, "the renewed certificate to be served", func() bool {
		l, err := f.handshake(t, host)
		return err == nil && l.SerialNumber.Cmp(leaf2.SerialNumber) == 0
	})
	if st := n.acme.Stats(); st.Renewed != 1 || st.Orders != 2 {
		t.Errorf("stats %+v, want 2 orders, 1 renewal", st)
	}

	// The CA goes away; the renewed certificate comes due in its turn.
	roots := f.pebble.IssuerRoots(t)
	f.pebble.Stop()
	f.clock.Advance(50 * time.Minute)
	if renewed, failed := n.acme.renewDue(ctx); renewed != 0 || failed != 1 {
		t.Fatalf("renewal pass with the CA down: %d renewed, %d failed, want 1 failed", renewed, failed)
	}
	if st := n.acme.Stats(); st.RenewFailed != 1 {
		t.Errorf("stats %+v, want RenewFailed 1", st)
	}
	if !strings.Contains(f.logs.String(), "renewal=true") {
		t.Error("failed renewal not logged as such")
	}
	certPEM, _, err = f.store.Get(ctx, host)
	if err != nil || leafOf(t, certPEM).SerialNumber.Cmp(leaf2.SerialNumber) != 0 {
		t.Fatalf("failed renewal changed the store: %v", err)
	}
	// A fresh node serves the stored certificate, expired or not by its
	// clock, without going near the CA.
	fresh := f.node(t)
	addr := serveTLS(t, fresh.mgr.GetCertificate)
	if l, err := handshake(addr, host, roots); err != nil || l.SerialNumber.Cmp(leaf2.SerialNumber) != 0 {
		t.Fatalf("fresh node after a failed renewal: %v", err)
	}
	if got := fresh.acme.Stats().Orders; got != 0 {
		t.Errorf("a handshake made %d orders; renewal belongs in the background", got)
	}
	// Rescheduled after the backoff, not returned by every pass.
	if due, _ := n.acme.state.due(ctx, f.clock.Now(), 10); len(due) != 0 {
		t.Errorf("still due during backoff: %+v", due)
	}
	if due, _ := n.acme.state.due(ctx, f.clock.Now().Add(DefaultACMERetryBackoff*2), 10); len(due) != 1 {
		t.Errorf("not rescheduled after the backoff: %+v", due)
	}

	// The operator renews by hand once the CA is back, backoff or not.
	f.pebble.Restart(t)
	leaf3, err := n.acme.RenewNow(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	if leaf3.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
		t.Fatal("RenewNow returned the old certificate")
	}
	if _, ok, _ := n.acme.state.backoff(ctx, host); ok {
		t.Error("backoff not cleared by RenewNow")
	}
}

// newOfflineACME returns an ACME whose CA is never contacted, over a
// FileStore and local state, with a manual clock.
func newOfflineACME(t *testing.T, exists func(context.Context, string) bool, adjust ...func(*ACMEOptions)) (*ACME, FileStore, *clock) {
	t.Helper()
	store := FileStore{Dir: t.TempDir()}
	clk := newClock()
	o := ACMEOptions{
		DirectoryURL:   "https://127.0.0.1:1/dir",
		AcceptTerms:    true,
		Store:          store,
		DataDir:        t.TempDir(),
		Policy:         ACMEPolicy{Exists: exists},
		DisableRenewal: true,
		Logger:         discardLogger(),
		now:            clk.Now,
	}
	for _, fn := range adjust {
		fn(&o)
	}
	a, err := NewACME(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, store, clk
}

// TestACMERenewalSchedule: entries whose certificate was deleted or
// replaced, or whose tenant is gone, leave the schedule without an order;
// an early entry is corrected.
func TestACMERenewalSchedule(t *testing.T) {
	ctx := context.Background()
	ca := certtest.NewCA(t)
	tenants := map[string]bool{"deleted.test": true, "replaced.test": true, "early.test": true}
	a, store, clk := newOfflineACME(t, func(_ context.Context, h string) bool { return tenants[h] })
	now := clk.Now()
	put := func(name string, notBefore, notAfter time.Time) *x509.Certificate {
		c, k := ca.LeafWith(t, certtest.LeafOptions{Names: []string{name}, NotBefore: notBefore, NotAfter: notAfter})
		if err := store.Put(ctx, name, c, k); err != nil {
			t.Fatal(err)
		}
		return leafOf(t, c)
	}
	dueLeaf := func(name string) *x509.Certificate { return put(name, now.Add(-80*time.Hour), now.Add(20*time.Hour)) }

	// deleted.test: scheduled, then removed from the store.
	a.state.schedule(ctx, "deleted.test", "1", now.Add(-time.Minute))
	// replaced.test: the store holds another certificate than scheduled.
	dueLeaf("replaced.test")
	a.state.schedule(ctx, "replaced.test", "not-that-one", now.Add(-time.Minute))
	// gone.test: ours and due, but no tenant any more.
	gone := dueLeaf("gone.test")
	a.state.schedule(ctx, "gone.test", serialOf(gone), now.Add(-time.Minute))
	// early.test: ours, scheduled too early; it is not due.
	early := put("early.test", now.Add(-time.Hour), now.Add(100*time.Hour))
	a.state.schedule(ctx, "early.test", serialOf(early), now.Add(-time.Minute))

	if renewed, failed := a.renewDue(ctx); renewed != 0 || failed != 0 {
		t.Errorf("%d renewed, %d failed; want neither", renewed, failed)
	}
	if got := a.Stats().Orders; got != 0 {
		t.Errorf("%d orders", got)
	}
	due, err := a.state.due(ctx, now.Add(1000*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Name != "early.test" || !due[0].At.Equal(renewAt("early.test", early)) {
		t.Errorf("schedule after the pass: %+v, want only early.test at its renewal time", due)
	}

	// The local schedule survives a restart.
	st, err := newLocalACMEState(filepath.Dir(a.state.(*localACMEState).dir))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := st.due(ctx, now.Add(1000*time.Hour), 10); len(again) != 1 || again[0].Name != "early.test" {
		t.Errorf("reloaded schedule %+v", again)
	}
}

func TestRenewAt(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	lo, hi := nb.Add(54*24*time.Hour), nb.Add(60*24*time.Hour) // 2/3 = day 60, jitter ≤ 6 days
	seen := map[time.Time]bool{}
	for _, name := range []string{"a.test", "b.test", "c.test", "d.test"} {
		at := renewAt(name, leaf)
		if at.Before(lo) || at.After(hi) {
			t.Errorf("%s renews at %v, want within [%v, %v]", name, at, lo, hi)
		}
		if !at.Equal(renewAt(name, leaf)) {
			t.Errorf("%s: jitter not stable", name)
		}
		seen[at] = true
	}
	if len(seen) < 2 {
		t.Error("no jitter between names")
	}
}

func TestRenewNowRefusals(t *testing.T) {
	a, _, _ := newOfflineACME(t, func(context.Context, string) bool { return false })
	ctx := context.Background()
	if _, err := a.RenewNow(ctx, "no-tenant.test"); !errors.Is(err, errNoTenant) {
		t.Errorf("no tenant: %v", err)
	}
	if _, err := a.RenewNow(ctx, "bad..name"); err == nil {
		t.Error("bad name accepted")
	}
	a.Close()
	if _, _, err := a.Issue(ctx, "x.test"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Issue after Close: %v", err)
	}
}
