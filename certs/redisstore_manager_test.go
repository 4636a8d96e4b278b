package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/test/redistest"
)

// These tests run a Manager over a RedisStore and real TLS handshakes: the
// whole certificate path a node uses when certs.store is redis.

// commandCalls returns how often Redis ran cmd since the last CONFIG
// RESETSTAT, from INFO commandstats.
func commandCalls(t *testing.T, srv *redistest.Server, cmd string) int {
	t.Helper()
	info := srv.Do(t, "INFO", "commandstats")
	m := regexp.MustCompile(`cmdstat_` + cmd + `:calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func newRedisManager(t *testing.T, s Store, clk *clock) *Manager {
	t.Helper()
	m, err := NewManager(Options{
		Store:         s,
		TTL:           time.Hour,
		NegativeTTL:   time.Minute,
		LookupTimeout: 2 * time.Second,
		Logger:        slog.New(slog.DiscardHandler),
		now:           clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestManagerOverRedisSurvivesOutage(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	rs := newRedisStore(t, RedisOptions{Addrs: []string{srv.Addr}, BreakerThreshold: 2, BreakerCooldown: time.Second})
	clk := newClock()
	rs.breaker.now = clk.Now
	m := newRedisManager(t, rs, clk)
	invalidated := make(chan string, 100)
	onCert := func(name string) { m.Invalidate(name); invalidated <- name }
	sub, err := NewSubscriber(rs, RouteInvalidations(onCert, nil), m.RevalidateAll)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	waitSubscribers(t, rs, 1)
	addr := serveTLS(t, m.GetCertificate)

	ca := certtest.NewCA(t)
	aCrt, aKey := ca.Leaf(t, "a.test")
	bCrt, bKey := ca.Leaf(t, "b.test")
	wCrt, wKey := ca.Leaf(t, "*.w.test")
	for name, p := range map[string][2][]byte{"a.test": {aCrt, aKey}, "*.w.test": {wCrt, wKey}} {
		if err := rs.Put(ctx, name, p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	// Our own writes come back as invalidations; let them land before
	// caching, or they would evict what the outage test relies on.
	for range 2 {
		select {
		case <-invalidated:
		case <-time.After(waitTimeout):
			t.Fatal("own writes not echoed by the subscription")
		}
	}
	for _, name := range []string{"a.test", "x.w.test"} {
		leaf, err := handshake(addr, name, ca.Pool)
		if err != nil {
			t.Fatalf("handshake %s: %v", name, err)
		}
		if err := leaf.VerifyHostname(name); err != nil {
			t.Fatal(err)
		}
	}

	// Redis dies. Cached names keep handshaking, even past their TTL
	// (stale-if-error); a name never seen fails.
	srv.Kill()
	clk.Advance(2 * time.Hour)
	for range 3 {
		for _, name := range []string{"a.test", "x.w.test"} {
			if _, err := handshake(addr, name, ca.Pool); err != nil {
				t.Fatalf("cached %s with Redis down: %v", name, err)
			}
		}
	}
	if _, err := handshake(addr, "b.test", ca.Pool); err == nil {
		t.Fatal("uncached name handshook with Redis down")
	}
	if _, err := m.Lookup(ctx, "b.test"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Lookup of an uncached name with Redis down: %v, want ErrUnavailable", err)
	}
	if st := m.Stats(); st.StaleHits == 0 {
		t.Errorf("no stale hits recorded: %+v", st)
	}

	// Redis returns (empty: no persistence) and the certificates are
	// written again, as a deployment would restore them.
	srv.Restart(t)
	for name, p := range map[string][2][]byte{"a.test": {aCrt, aKey}, "b.test": {bCrt, bKey}} {
		if err := rs.Put(ctx, name, p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute) // past the breaker cool-down
	if _, err := handshake(addr, "b.test", ca.Pool); err != nil {
		t.Fatalf("b.test after Redis returned: %v", err)
	}

	// A write on another node reaches this one through the subscription:
	// the next handshake serves the new certificate, well before the TTL.
	a2Crt, a2Key := ca.Leaf(t, "a.test")
	writer := newRedisStore(t, RedisOptions{Addrs: []string{srv.Addr}})
	waitSubscribers(t, writer, 1)
	if err := writer.Put(ctx, "a.test", a2Crt, a2Key); err != nil {
		t.Fatal(err)
	}
	want := leafOf(t, a2Crt).SerialNumber
	deadline := time.Now().Add(waitTimeout)
	for {
		leaf, err := handshake(addr, "a.test", ca.Pool)
		if err == nil && leaf.SerialNumber.Cmp(want) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a.test still serves the old certificate after invalidation (%v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func leafOf(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(derOf(t, certPEM))
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// TestManagerOverRedisOneRoundTrip releases many handshakes for one cold name
// at once: Redis must see a single read.
func TestManagerOverRedisOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv, rs := startRedisStore(t, "")
	m := newRedisManager(t, rs, newClock())
	addr := serveTLS(t, m.GetCertificate)
	ca := certtest.NewCA(t)
	crt, key := ca.Leaf(t, "cold.test")
	if err := rs.Put(ctx, "cold.test", crt, key); err != nil {
		t.Fatal(err)
	}
	srv.Do(t, "CONFIG", "RESETSTAT")

	const n = 50
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			_, err := handshake(addr, "cold.test", ca.Pool)
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := commandCalls(t, srv, "hmget"); got != 1 {
		t.Errorf("%d concurrent cold handshakes caused %d HMGETs, want 1", n, got)
	}
	if got := commandCalls(t, srv, "exec"); got != 1 {
		t.Errorf("%d EXECs (round trips), want 1", got)
	}
}

// TestManagerOverRedisGarbage stores every kind of bad data: each bad name
// fails alone, is remembered negatively (no second Redis read), and good
// names keep working.
func TestManagerOverRedisGarbage(t *testing.T) {
	ctx := context.Background()
	srv, rs := startRedisStore(t, "")
	m := newRedisManager(t, rs, newClock())
	rc := rs.Client()
	ca := certtest.NewCA(t)
	good, goodKey := ca.Leaf(t, "good.test")
	_, otherKey := ca.Leaf(t, "mismatch.test")
	mCrt, _ := ca.Leaf(t, "mismatch.test")
	forB, forBKey := ca.Leaf(t, "b.test")
	huge := strings.Repeat("x", 10<<20)

	if err := rs.Put(ctx, "good.test", good, goodKey); err != nil {
		t.Fatal(err)
	}
	bad := map[string][2]any{
		"badpem.test":    {"-----BEGIN CERTIFICATE-----\ngarbage", "junk"},
		"mismatch.test":  {mCrt, otherKey},
		"otherhost.test": {forB, forBKey},
		"huge.test":      {huge, goodKey},
		"der.test":       {derOf(t, good), goodKey},
	}
	for name, v := range bad {
		if err := rc.HSet(ctx, "cert:"+name, "crt", v[0], "key", v[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.MSet(ctx, "hugelegacy.test.crt", huge, "hugelegacy.test.key", "k").Err(); err != nil {
		t.Fatal(err)
	}
	bad["hugelegacy.test"] = [2]any{}

	srv.Do(t, "CONFIG", "RESETSTAT")
	for name := range bad {
		if _, err := m.Lookup(ctx, name); !errors.Is(err, ErrInvalidCert) {
			t.Errorf("Lookup(%s) = %v, want ErrInvalidCert", name, err)
		}
		if _, err := m.Lookup(ctx, "good.test"); err != nil {
			t.Errorf("good.test after %s: %v", name, err)
		}
	}
	reads := commandCalls(t, srv, "hmget")
	for name := range bad {
		if _, err := m.Lookup(ctx, name); !errors.Is(err, ErrInvalidCert) {
			t.Errorf("second Lookup(%s) = %v", name, err)
		}
	}
	if again := commandCalls(t, srv, "hmget"); again != reads {
		t.Errorf("negative cache missed: %d Redis reads became %d", reads, again)
	}
	if st := m.Stats(); st.Invalid != uint64(len(bad)) {
		t.Errorf("Stats.Invalid = %d, want %d", st.Invalid, len(bad))
	}
}
