package redisbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"massvhost/certs"
	"massvhost/test/certtest"
	"massvhost/test/redistest"
)

// benchManager returns a Manager over a RedisStore on a fresh redis-server
// holding a certificate for "warm.test". When the benchmark ends it reports
// the Redis commands and MULTI/EXEC round trips per operation.
func benchManager(b *testing.B, opts certs.Options) *certs.Manager {
	b.Helper()
	srv := redistest.StartServer(b)
	rs, err := certs.NewRedisStore(certs.RedisOptions{Addrs: []string{srv.Addr}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rs.Close() })
	crt, key := certtest.NewCA(b).Leaf(b, "warm.test")
	if err := rs.Put(context.Background(), "warm.test", crt, key); err != nil {
		b.Fatal(err)
	}
	opts.Store = rs
	opts.Logger = slog.New(slog.DiscardHandler)
	m, err := certs.NewManager(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	before := commandCalls(b, srv)
	b.Cleanup(func() {
		after := commandCalls(b, srv)
		cmds := 0
		for cmd, n := range after {
			if cmd != "info" {
				cmds += n - before[cmd]
			}
		}
		b.ReportMetric(float64(cmds)/float64(b.N), "redis-cmds/op")
		b.ReportMetric(float64(after["exec"]-before["exec"])/float64(b.N), "redis-reads/op")
	})
	return m
}

// BenchmarkManagerRedis measures Manager.Lookup over a real Redis: a cached
// name (warm), a stored name that is not cached (cold: one Redis round trip
// plus parsing the pair), a never-seen name (one round trip, remembered
// negatively), and a never-seen name beyond NewNameRate (refused without
// asking Redis).
func BenchmarkManagerRedis(b *testing.B) {
	ctx := context.Background()
	b.Run("warm", func(b *testing.B) {
		m := benchManager(b, certs.Options{})
		if _, err := m.Lookup(ctx, "warm.test"); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := m.Lookup(ctx, "warm.test"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		m := benchManager(b, certs.Options{})
		for b.Loop() {
			m.Invalidate("warm.test")
			if _, err := m.Lookup(ctx, "warm.test"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("never_seen", func(b *testing.B) {
		m := benchManager(b, certs.Options{})
		i := 0
		for b.Loop() {
			i++
			if _, err := m.Lookup(ctx, fmt.Sprintf("n%d.miss.test", i)); !errors.Is(err, certs.ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
	b.Run("never_seen_rate_limited", func(b *testing.B) {
		m := benchManager(b, certs.Options{NewNameRate: 1, NewNameBurst: 1})
		i := 0
		for b.Loop() {
			i++
			if _, err := m.Lookup(ctx, fmt.Sprintf("n%d.miss.test", i)); err == nil {
				b.Fatal("found a certificate for a never-seen name")
			}
		}
	})
}
