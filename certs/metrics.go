package certs

// BreakerState reports the state of the store's circuit breaker: "closed"
// (calls go to Redis), "open" (Redis was failing; lookups fail fast until
// the cool-down ends) or "half-open" (one probe call is in flight). For
// metrics and status pages.
func (s *RedisStore) BreakerState() string {
	return s.breaker.snapshot().String()
}
