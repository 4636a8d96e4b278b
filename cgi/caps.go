package cgi

import "sync"

// caps counts running scripts per tenant and in total. Acquisition never
// waits: a request over either cap is refused at once (503 + Retry-After),
// because a queue of CGI requests is memory an attacker can fill and time
// the client spends waiting for nothing.
type caps struct {
	maxPerTenant, maxTotal int

	mu      sync.Mutex
	total   int            // guarded by mu
	running map[string]int // guarded by mu; tenants with none running are absent
}

func newCaps(perTenant, total int) *caps {
	return &caps{maxPerTenant: perTenant, maxTotal: total, running: make(map[string]int)}
}

// tryAcquire reports whether tenant may start one more script, and counts it
// if so. Each successful call is paired with one release.
func (c *caps) tryAcquire(tenant string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= c.maxTotal || c.running[tenant] >= c.maxPerTenant {
		return false
	}
	c.total++
	c.running[tenant]++
	return true
}

func (c *caps) release(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.running[tenant]--; c.running[tenant] <= 0 {
		delete(c.running, tenant)
	}
}
