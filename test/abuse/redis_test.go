package abuse

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"massvhost/certs"
	"massvhost/test/redistest"
)

// Redis fault tests (TLS-06, FLT-04). Timeouts are small so that each
// fault lasts a few seconds; lookupTimeout bounds how long a handshake for
// a new name may wait on Redis.
const (
	lookupTimeout = 500 * time.Millisecond
	// newNameBound is the most a request for an uncached name may take
	// while Redis is failing: the lookup timeout plus a generous margin for
	// the handshake, the request and a loaded machine. Above it, the
	// handshake is hanging on Redis instead of failing.
	newNameBound = lookupTimeout + 2500*time.Millisecond
)

// redisWorld is a set of tenants whose certificates live in a real Redis.
type redisWorld struct {
	*world
	redis *redistest.Server
	names []string // every tenant, in creation order

	mu   sync.Mutex
	next int // names[next:] have never been requested
}

func newRedisWorld(t *testing.T, n int) *redisWorld {
	t.Helper()
	rw := &redisWorld{world: newWorld(t), redis: redistest.StartServer(t)}
	for i := range n {
		host := fmt.Sprintf("r%03d.test", i)
		rw.addTenant(t, host, -1)
		rw.names = append(rw.names, host)
	}
	rw.seed(t)
	return rw
}

// seed writes every tenant's certificate to Redis (after a restart, which
// loses the data, too).
func (rw *redisWorld) seed(t *testing.T) {
	t.Helper()
	st, err := certs.NewRedisStore(certs.RedisOptions{Addrs: []string{rw.redis.Addr}})
	must(t, err)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, host := range rw.names {
		certPEM, keyPEM := rw.CA.Leaf(t, host)
		must(t, st.Put(ctx, host, certPEM, keyPEM))
	}
}

// fresh returns a name that has never been requested.
func (rw *redisWorld) fresh(t *testing.T) string {
	t.Helper()
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.next >= len(rw.names) {
		t.Fatal("out of fresh names")
	}
	rw.next++
	return rw.names[rw.next-1]
}

func (rw *redisWorld) config() string {
	return rw.world.config(settings{
		"certs": {
			"store": "redis", "ttl": "1h", "negative_ttl": "1s",
			"lookup_timeout": lookupTimeout.String(), "new_name_rate": "0",
		},
		"redis": {
			"addrs":        fmt.Sprintf("[%q]", rw.redis.Addr),
			"dial_timeout": "200ms", "read_timeout": "200ms", "write_timeout": "200ms",
		},
	})
}

// fetch makes one HTTPS request to host over a new connection (full
// handshake, no resumption) and reports success and duration.
func (rw *redisWorld) fetch(p *proc, host string) (bool, time.Duration, string) {
	c := tlsClient(p.HTTPSAddr, host, rw.CA.Pool, false, true, 20*time.Second)
	start := time.Now()
	code, body := get(c, "https://"+host+"/")
	return code == http.StatusOK, time.Since(start), fmt.Sprintf("%d %.100s", code, body)
}

// TestRedisFaults is TLS-06 under load: while Redis is paused, frozen
// (a partition that drops packets), gone (connection refused), slow,
// flapping or restarted, names already cached keep being served on every
// request; a name seen for the first time fails within the lookup timeout
// instead of hanging; the server recovers by itself when Redis does; and
// its goroutine count does not grow.
func TestRedisFaults(t *testing.T) {
	rw := newRedisWorld(t, 150)
	p := start(t, rw.config())
	cached := []string{rw.fresh(t), rw.fresh(t), rw.fresh(t), rw.fresh(t)}
	for _, host := range cached {
		if ok, _, res := rw.fetch(p, host); !ok {
			t.Fatalf("warming %s: %s", host, res)
		}
	}
	baseG := p.metric("go_goroutines")
	base := p.stats()

	// cycle runs fault/heal pairs until stop is closed, then heals.
	cycle := func(faultFor, healFor time.Duration, fault, heal func()) func() {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				fault()
				select {
				case <-stop:
					heal()
					return
				case <-time.After(faultFor):
				}
				heal()
				select {
				case <-stop:
					return
				case <-time.After(healFor):
				}
			}
		}()
		return func() { close(stop); <-done }
	}
	r := rw.redis
	for _, tc := range []struct {
		name string
		// inject starts the fault and returns the function that ends it.
		inject func() (heal func())
	}{
		{"paused (CLIENT PAUSE)", func() func() {
			r.Pause(t, 4*time.Second)
			until := time.Now().Add(4 * time.Second)
			return func() { time.Sleep(time.Until(until)) }
		}},
		{"partitioned (SIGSTOP, packets unanswered)", func() func() {
			r.Freeze(t)
			return func() { r.Thaw(t) }
		}},
		{"down (killed, connection refused)", func() func() {
			r.Do(t, "SAVE") // a restart then keeps the data, as a persistent Redis does
			r.Kill()
			return func() { r.Restart(t) }
		}},
		{"slow (2 s per reply)", func() func() {
			return cycle(2*time.Second, 20*time.Millisecond, func() { r.Freeze(t) }, func() { r.Thaw(t) })
		}},
		{"flapping (500 ms up, 500 ms down)", func() func() {
			return cycle(500*time.Millisecond, 500*time.Millisecond, func() { r.Freeze(t) }, func() { r.Thaw(t) })
		}},
		{"restarted", func() func() {
			r.Do(t, "SAVE")
			r.Restart(t)
			return func() {}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heal := tc.inject()
			faultStart := time.Now()
			var okCached, failCached atomic.Int64
			var firstFail atomic.Value
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if ok, _, res := rw.fetch(p, cached[i]); ok {
							okCached.Add(1)
						} else {
							failCached.Add(1)
							firstFail.CompareAndSwap(nil, cached[i]+": "+res)
						}
					}
				})
			}
			// New names while the fault lasts: each must end, one way or
			// the other, within newNameBound.
			var newOK, newFail int
			var slowest time.Duration
			peakG := baseG
			for time.Since(faultStart) < 3*time.Second {
				host := rw.fresh(t)
				ok, d, res := rw.fetch(p, host)
				slowest = max(slowest, d)
				if ok {
					newOK++
				} else {
					newFail++
				}
				if d > newNameBound {
					t.Errorf("new name %s took %v (%s): a handshake waited on Redis beyond the lookup timeout", host, d, res)
				}
				peakG = max(peakG, p.metric("go_goroutines"))
				time.Sleep(250 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			heal()
			t.Logf("cached names: %d ok, %d failed; new names: %d ok, %d failed, slowest %v; goroutines peak %.0f (base %.0f)",
				okCached.Load(), failCached.Load(), newOK, newFail, slowest.Round(time.Millisecond), peakG, baseG)
			if failCached.Load() > 0 {
				t.Errorf("%d requests for cached names failed while Redis was failing; first: %v", failCached.Load(), firstFail.Load())
			}
			if okCached.Load() == 0 {
				t.Error("no request for a cached name completed")
			}
			// Recovery: a name never seen before is served again.
			// Failures for lack of Redis are not remembered, so one name
			// is retried.
			start, host := time.Now(), rw.fresh(t)
			var last string
			if !eventually(40*time.Second, func() bool {
				ok, _, res := rw.fetch(p, host)
				last = res
				time.Sleep(200 * time.Millisecond)
				return ok
			}) {
				t.Fatalf("no recovery 40s after Redis came back: %s", last)
			}
			t.Logf("new names served again %v after healing", time.Since(start).Round(time.Millisecond))
		})
	}

	var g float64
	if !eventually(20*time.Second, func() bool { g = p.metric("go_goroutines"); return g <= baseG+20 }) {
		t.Errorf("goroutines grew from %.0f to %.0f across the Redis faults", baseG, g)
	}
	after := p.stats()
	t.Logf("after all faults: goroutines %.0f (base %.0f), threads %d (base %d), RSS %d MiB (base %d MiB)",
		g, baseG, after.Threads, base.Threads, after.RSS>>20, base.RSS>>20)
	if !p.alive() {
		t.Fatal("server died")
	}
}
