package certs

import (
	"testing"
	"time"
)

func newTestBreaker(threshold int, cooldown, maxCooldown time.Duration) (*breaker, *clock) {
	b := newBreaker(threshold, cooldown, maxCooldown)
	clk := newClock()
	b.now = clk.Now
	return b, clk
}

// fail runs one allowed call that fails.
func fail(t *testing.T, b *breaker) {
	t.Helper()
	if !b.allow() {
		t.Fatal("call refused")
	}
	b.done(outcomeFailure)
}

func TestBreakerOpensAfterThreshold(t *testing.T) {
	b, _ := newTestBreaker(3, time.Second, 30*time.Second)
	fail(t, b)
	fail(t, b)
	// A success in between resets the count.
	if !b.allow() {
		t.Fatal("refused while closed")
	}
	b.done(outcomeSuccess)
	fail(t, b)
	fail(t, b)
	if b.snapshot() != breakerClosed {
		t.Fatal("opened before the threshold")
	}
	if !b.allow() {
		t.Fatal("refused while closed")
	}
	changed, state := b.done(outcomeFailure)
	if !changed || state != breakerOpen {
		t.Fatalf("third failure: changed %v state %v", changed, state)
	}
	for range 10 {
		if b.allow() {
			t.Fatal("open breaker let a call through")
		}
	}
}

func TestBreakerHalfOpenProbe(t *testing.T) {
	b, clk := newTestBreaker(1, time.Second, 4*time.Second)
	fail(t, b)
	clk.Advance(999 * time.Millisecond)
	if b.allow() {
		t.Fatal("probe before the cool-down ended")
	}
	clk.Advance(time.Millisecond)
	if !b.allow() {
		t.Fatal("no probe after the cool-down")
	}
	if b.allow() {
		t.Fatal("second concurrent probe allowed")
	}
	// The probe fails: the cool-down doubles (2s), then caps at 4s.
	b.done(outcomeFailure)
	for _, cooldown := range []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second} {
		clk.Advance(cooldown - time.Millisecond)
		if b.allow() {
			t.Fatalf("probe before the %v cool-down ended", cooldown)
		}
		clk.Advance(time.Millisecond)
		if !b.allow() {
			t.Fatalf("no probe after %v", cooldown)
		}
		b.done(outcomeFailure)
	}
	// A probe canceled by its caller says nothing: the next call probes.
	clk.Advance(4 * time.Second)
	if !b.allow() {
		t.Fatal("no probe")
	}
	b.done(outcomeIgnored)
	if !b.allow() {
		t.Fatal("no probe after an ignored one")
	}
	changed, state := b.done(outcomeSuccess)
	if !changed || state != breakerClosed {
		t.Fatalf("successful probe: changed %v state %v", changed, state)
	}
	// Closed again, with the cool-down back at its start.
	fail(t, b)
	clk.Advance(time.Second)
	if !b.allow() {
		t.Fatal("cool-down not reset after closing")
	}
}

func TestBreakerDefaults(t *testing.T) {
	b := newBreaker(0, 0, 0)
	if b.threshold != DefaultBreakerThreshold || b.cooldown != DefaultBreakerCooldown || b.maxCooldown != DefaultBreakerMaxCooldown {
		t.Errorf("defaults: %+v", b)
	}
	if b := newBreaker(1, time.Minute, time.Second); b.maxCooldown != time.Minute {
		t.Errorf("max cool-down below the first: %v", b.maxCooldown)
	}
	for s, want := range map[breakerState]string{breakerClosed: "closed", breakerOpen: "open", breakerHalfOpen: "half-open"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q", s, s.String())
		}
	}
}
