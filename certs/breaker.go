package certs

import (
	"sync"
	"time"
)

// Circuit breaker defaults, used when the corresponding RedisOptions field is
// zero.
const (
	DefaultBreakerThreshold   = 5
	DefaultBreakerCooldown    = time.Second
	DefaultBreakerMaxCooldown = 30 * time.Second
)

// breakerState is where a breaker is in its cycle.
type breakerState int

const (
	breakerClosed   breakerState = iota // calls go through
	breakerOpen                         // calls fail fast until openUntil
	breakerHalfOpen                     // one probe call is in flight
)

func (s breakerState) String() string {
	switch s {
	case breakerClosed:
		return "closed"
	case breakerOpen:
		return "open"
	default:
		return "half-open"
	}
}

// outcome classifies a finished call for the breaker.
type outcome int

const (
	// outcomeSuccess: the backend answered (a miss or bad data is an answer).
	outcomeSuccess outcome = iota
	// outcomeFailure: the backend could not be asked (timeout, refused…).
	outcomeFailure
	// outcomeIgnored: the caller gave up (context canceled); it says
	// nothing about the backend.
	outcomeIgnored
)

// breaker is a consecutive-failure circuit breaker. It exists because every
// handshake for an uncached name would otherwise wait out the full Redis
// timeout while Redis is down, and a thousand handshakes a second would each
// open a connection attempt (a thundering herd that also hits Redis the
// moment it returns). After threshold consecutive failures the breaker opens
// for a cool-down; calls then fail at once, without network I/O. When the
// cool-down ends one call is let through as a probe: success closes the
// breaker, failure reopens it with the cool-down doubled, up to maxCooldown.
//
// A breaker is safe for concurrent use. The zero value is not usable; use
// newBreaker.
type breaker struct {
	threshold   int
	cooldown    time.Duration // first cool-down after closing
	maxCooldown time.Duration
	now         func() time.Time // test seam

	mu        sync.Mutex
	state     breakerState
	failures  int           // consecutive failures while closed
	current   time.Duration // cool-down applied on the next open
	openUntil time.Time
}

func newBreaker(threshold int, cooldown, maxCooldown time.Duration) *breaker {
	if threshold <= 0 {
		threshold = DefaultBreakerThreshold
	}
	if cooldown <= 0 {
		cooldown = DefaultBreakerCooldown
	}
	if maxCooldown <= 0 {
		maxCooldown = DefaultBreakerMaxCooldown
	}
	maxCooldown = max(maxCooldown, cooldown)
	return &breaker{
		threshold:   threshold,
		cooldown:    cooldown,
		maxCooldown: maxCooldown,
		current:     cooldown,
		now:         time.Now,
	}
}

// allow reports whether a call may proceed. When it returns true the caller
// must report the call's outcome with done, exactly once.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerClosed:
		return true
	case breakerOpen:
		if b.now().Before(b.openUntil) {
			return false
		}
		b.state = breakerHalfOpen // this caller is the probe
		return true
	default: // a probe is already in flight
		return false
	}
}

// done records the outcome of a call that allow let through. It reports
// whether the breaker opened or closed because of it, and the new state.
func (b *breaker) done(o outcome) (changed bool, state breakerState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	before := b.state
	switch o {
	case outcomeSuccess:
		b.state = breakerClosed
		b.failures = 0
		b.current = b.cooldown
	case outcomeFailure:
		switch b.state {
		case breakerClosed:
			b.failures++
			if b.failures >= b.threshold {
				b.openLocked()
			}
		case breakerHalfOpen:
			b.openLocked()
		case breakerOpen:
			// A call that started before the breaker opened; the
			// breaker already accounts for the outage.
		}
	case outcomeIgnored:
		if b.state == breakerHalfOpen {
			// The probe told us nothing: let the next caller probe.
			b.state = breakerOpen
			b.openUntil = b.now()
		}
	}
	return b.settled(before), b.state
}

// settled reports whether the state moved between closed and open relative
// to before; the transient half-open state is not a change worth reporting.
// The caller holds b.mu.
func (b *breaker) settled(before breakerState) bool {
	wasOpen := before != breakerClosed
	isOpen := b.state != breakerClosed
	return wasOpen != isOpen
}

// openLocked opens the breaker for the current cool-down and doubles the
// next one. The caller holds b.mu.
func (b *breaker) openLocked() {
	b.state = breakerOpen
	b.failures = 0
	b.openUntil = b.now().Add(b.current)
	b.current = min(2*b.current, b.maxCooldown)
}

// snapshot returns the state for metrics and tests.
func (b *breaker) snapshot() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
