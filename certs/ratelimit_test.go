package certs

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNewNameRateLimit(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	m := f.manager(t, func(o *Options) { o.NewNameRate = 1; o.NewNameBurst = 2 })
	ctx := context.Background()
	if _, err := m.Lookup(ctx, "a.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(ctx, "n1.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second new name: %v, want ErrNotFound", err)
	}
	_, err := m.Lookup(ctx, "n2.test")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("third new name: %v, want ErrUnavailable", err)
	}
	if got := f.store.gets("n2.test"); got != 0 {
		t.Errorf("rate-limited name reached the store %d times", got)
	}
	if _, err := m.Lookup(ctx, "a.test"); err != nil {
		t.Errorf("cached name refused under the rate limit: %v", err)
	}
	if _, err := m.Lookup(ctx, "n1.test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("negative-cached name: %v, want ErrNotFound from the cache", err)
	}
	f.clock.Advance(time.Second)
	if _, err := m.Lookup(ctx, "n2.test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after a second: %v, want ErrNotFound (rate-limit refusals are not remembered)", err)
	}
	if st := m.Stats(); st.RateLimited != 1 {
		t.Errorf("Stats().RateLimited = %d, want 1", st.RateLimited)
	}
}

// TestNewNameRateLimitCountsParentReads checks that the wildcard-parent read
// of a new name takes a token of its own: names under distinct parents must
// not cost twice the configured rate in store reads.
func TestNewNameRateLimitCountsParentReads(t *testing.T) {
	f := newFixture(t)
	m := f.manager(t, func(o *Options) { o.NewNameRate = 1; o.NewNameBurst = 2 })
	ctx := context.Background()
	if _, err := m.Lookup(ctx, "x.p1.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("first new name: %v, want ErrNotFound", err)
	}
	if got := f.store.gets("x.p1.test") + f.store.gets("*.p1.test"); got != 2 {
		t.Fatalf("first name: %d store reads, want 2 (exact and parent)", got)
	}
	if _, err := m.Lookup(ctx, "y.p2.test"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second new name: %v, want ErrUnavailable (burst of 2 tokens spent)", err)
	}
	if got := f.store.gets("y.p2.test") + f.store.gets("*.p2.test"); got != 0 {
		t.Errorf("rate-limited name reached the store %d times", got)
	}
}
