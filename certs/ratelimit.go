package certs

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// newNameLimiter bounds store lookups for names with no cache entry at all,
// positive or negative. A flood of random, syntactically valid SNI names
// (<random>.example) otherwise costs one store round trip each; beyond the
// limit such lookups fail fast with ErrUnavailable and are not remembered, so
// a real tenant caught in the flood succeeds on its next handshake. Refreshes
// of cached names are never limited.
type newNameLimiter struct {
	lim *rate.Limiter // nil: unlimited
}

func newNewNameLimiter(perSecond float64, burst int) newNameLimiter {
	if perSecond <= 0 {
		return newNameLimiter{}
	}
	return newNameLimiter{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// allow reports whether one more new-name lookup may go to the store at now.
func (l newNameLimiter) allow(now time.Time) bool {
	return l.lim == nil || l.lim.AllowN(now, 1)
}

// logLimiter lets one log line per key through per interval, so that a
// broken certificate requested by every handshake is reported, not repeated.
// It remembers a bounded number of keys; a key pushed out may log early.
type logLimiter struct {
	every time.Duration
	last  *lru.Cache[string, time.Time]
}

const (
	logEvery    = time.Minute
	logLimitLen = 4096
)

func newLogLimiter() *logLimiter {
	c, _ := lru.New[string, time.Time](logLimitLen) // size is a positive constant
	return &logLimiter{every: logEvery, last: c}
}

// allow reports whether a line for key may be logged at now, and if so
// records it. Two racing callers may both be allowed; that is harmless.
func (l *logLimiter) allow(key string, now time.Time) bool {
	if t, ok := l.last.Get(key); ok && now.Sub(t) < l.every {
		return false
	}
	l.last.Add(key, now)
	return true
}
