package certs

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"massvhost/test/certtest"
	"massvhost/test/redistest"
	"massvhost/vhost"
)

func init() {
	// go-redis logs every failed dial through its package logger; the
	// fault tests cause many on purpose.
	redis.SetLogger(quietRedisLogger{})
}

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}

// newRedisStore returns a store on addrs that is closed when the test ends.
func newRedisStore(tb testing.TB, opts RedisOptions) *RedisStore {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// The product defaults (500ms) are tight for a loaded CI machine
	// running -race; tests about timeouts set their own.
	opts.ReadTimeout = cmp.Or(opts.ReadTimeout, 10*time.Second)
	opts.WriteTimeout = cmp.Or(opts.WriteTimeout, 10*time.Second)
	s, err := NewRedisStore(opts)
	if err != nil {
		tb.Fatalf("NewRedisStore: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// startRedisStore starts a server and a store on it with prefix.
func startRedisStore(tb testing.TB, prefix string) (*redistest.Server, *RedisStore) {
	tb.Helper()
	srv := redistest.StartServer(tb)
	return srv, newRedisStore(tb, RedisOptions{Addrs: []string{srv.Addr}, KeyPrefix: prefix})
}

// countingHook counts commands go-redis sends, to prove that a code path
// makes no network call.
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func mustGet(t *testing.T, s *RedisStore, name string) ([]byte, []byte, Layout) {
	t.Helper()
	c, k, l, err := s.GetWithLayout(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return c, k, l
}

func TestRedisStoreReadsBothLayouts(t *testing.T) {
	ctx := context.Background()
	srv, s := startRedisStore(t, "mv:")
	ca := certtest.NewCA(t)
	hashCrt, hashKey := ca.Leaf(t, "hash.test")
	oldCrt, oldKey := ca.Leaf(t, "legacy.test")
	rc := s.Client()

	if err := s.Put(ctx, "hash.test", hashCrt, hashKey); err != nil {
		t.Fatal(err)
	}
	// The ngx_mruby layout, as existing deployments wrote it.
	if err := rc.MSet(ctx, "mv:legacy.test.crt", oldCrt, "mv:legacy.test.key", oldKey).Err(); err != nil {
		t.Fatal(err)
	}

	c, k, l := mustGet(t, s, "hash.test")
	if l != LayoutHash || !bytes.Equal(c, hashCrt) || !bytes.Equal(k, hashKey) {
		t.Errorf("hash.test: layout %q, pair equal %v/%v", l, bytes.Equal(c, hashCrt), bytes.Equal(k, hashKey))
	}
	c, k, l = mustGet(t, s, "legacy.test")
	if l != LayoutLegacy || !bytes.Equal(c, oldCrt) || !bytes.Equal(k, oldKey) {
		t.Errorf("legacy.test: layout %q, pair equal %v/%v", l, bytes.Equal(c, oldCrt), bytes.Equal(k, oldKey))
	}

	// A Put over a legacy pair wins: the hash is read first.
	if err := s.Put(ctx, "legacy.test", hashCrt, hashKey); err != nil {
		t.Fatal(err)
	}
	if c, _, l = mustGet(t, s, "legacy.test"); l != LayoutHash || !bytes.Equal(c, hashCrt) {
		t.Errorf("after Put: layout %q", l)
	}
	if got := srv.Do(t, "EXISTS", "mv:legacy.test.crt"); got != "1" {
		t.Errorf("Put removed the legacy key (EXISTS = %s); legacy readers still need it", got)
	}

	// The stored bytes are the hash fields crt and key.
	if got := srv.Do(t, "HGET", "mv:cert:hash.test", "crt"); got != string(hashCrt) {
		t.Errorf("HGET crt = %.40q", got)
	}

	// Delete removes both layouts.
	if err := s.Delete(ctx, "legacy.test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "legacy.test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if got := srv.Do(t, "EXISTS", "mv:legacy.test.crt"); got != "0" {
		t.Errorf("Delete left the legacy key")
	}
	if err := s.Delete(ctx, "legacy.test"); err != nil {
		t.Errorf("Delete of an absent name: %v", err)
	}
}

func TestRedisStoreMissesAndBadNames(t *testing.T) {
	_, s := startRedisStore(t, "")
	if _, _, err := s.Get(context.Background(), "nope.test"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Errorf("missing name: %v, want ErrNotFound", err)
	}

	// A store on a port nobody listens on: if a bad name reached the
	// network, the error would be ErrUnavailable.
	dead := newRedisStore(t, RedisOptions{Addrs: []string{closedAddr(t)}})
	hook := &countingHook{}
	dead.Client().AddHook(hook)
	for _, name := range []string{
		"../../etc/passwd", "a/b", "A.TEST", "a.test\x00.evil", "*", "a?test", "[a]",
		"*.test*", "a.test:443", "a.test.", "cert:x", "x.crt", "ä.test", "a_b.test", "",
		strings.Repeat("a", 64) + ".test", "*.*.a.test", "*", "a b.test", "a\r\nDEL x",
	} {
		if name == "x.crt" {
			continue // a valid host name; checked below
		}
		_, _, err := dead.Get(context.Background(), name)
		if !errors.Is(err, vhost.ErrInvalidName) || !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound and vhost.ErrInvalidName", name, err)
		}
		if err := dead.Put(context.Background(), name, []byte("c"), []byte("k")); !errors.Is(err, vhost.ErrInvalidName) {
			t.Errorf("Put(%q) = %v, want vhost.ErrInvalidName", name, err)
		}
		if err := dead.Delete(context.Background(), name); !errors.Is(err, vhost.ErrInvalidName) {
			t.Errorf("Delete(%q) = %v, want vhost.ErrInvalidName", name, err)
		}
	}
	if n := hook.n.Load(); n != 0 {
		t.Errorf("invalid names caused %d Redis commands", n)
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRedisStoreGarbage(t *testing.T) {
	ctx := context.Background()
	srv, s := startRedisStore(t, "")
	rc := s.Client()
	huge := strings.Repeat("A", 10<<20)
	ca := certtest.NewCA(t)
	crt, key := ca.Leaf(t, "ok.test")

	// sent is how many bytes Redis has written to its clients so far: a
	// refused value must be refused without being transferred (a field of
	// hundreds of MB would otherwise land in the server's memory first).
	sent := func() int64 {
		info, err := rc.Info(ctx, "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "total_net_output_bytes:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatal("no total_net_output_bytes in INFO stats")
		return 0
	}
	const slack = 64 << 10 // the replies around the value, and INFO itself
	for _, tc := range []struct {
		name    string
		prepare func(name string) error
		maxSent int64 // bytes Redis may send for the Get; 0: not checked
	}{
		// GETRANGE sends at most MaxPEMSize+1 bytes of each legacy key.
		{"huge-legacy.test", func(n string) error { return rc.MSet(ctx, n+".crt", huge, n+".key", "k").Err() }, MaxPEMSize + 1 + slack},
		{"huge-hash.test", func(n string) error { return rc.HSet(ctx, "cert:"+n, "crt", huge, "key", "k").Err() }, slack},
		{"half-hash.test", func(n string) error { return rc.HSet(ctx, "cert:"+n, "crt", crt).Err() }, 0},
		{"half-legacy.test", func(n string) error { return rc.Set(ctx, n+".key", key, 0).Err() }, 0},
		{"list-hash.test", func(n string) error { return rc.RPush(ctx, "cert:"+n, "x").Err() }, 0},
		{"list-legacy.test", func(n string) error { return rc.RPush(ctx, n+".crt", "x").Err() }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.prepare(tc.name); err != nil {
				t.Fatal(err)
			}
			before := sent()
			_, _, err := s.Get(ctx, tc.name)
			if !errors.Is(err, ErrInvalidCert) || errors.Is(err, ErrUnavailable) {
				t.Errorf("Get = %v, want ErrInvalidCert and not ErrUnavailable", err)
			}
			if n := sent() - before; tc.maxSent > 0 && n > tc.maxSent {
				t.Errorf("Redis sent %d bytes for the refused value, want at most %d", n, tc.maxSent)
			}
		})
	}
	if b := s.breaker.snapshot(); b != breakerClosed {
		t.Errorf("bad data moved the breaker to %v", b)
	}

	// Bad PEM is returned as stored: validating it is the Manager's job
	// (see TestManagerOverRedisGarbage).
	if err := rc.HSet(ctx, "cert:badpem.test", "crt", "-----BEGIN", "key", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if c, _, err := s.Get(ctx, "badpem.test"); err != nil || string(c) != "-----BEGIN" {
		t.Errorf("bad PEM: %q, %v", c, err)
	}
	// Put refuses what Get would refuse.
	if err := s.Put(ctx, "big.test", []byte(huge), key); err == nil {
		t.Error("Put of a 10 MB chain succeeded")
	}
	if got := srv.Do(t, "EXISTS", "cert:big.test"); got != "0" {
		t.Error("refused Put wrote a key")
	}
}

func TestRedisStoreUnavailableAndBreaker(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	s := newRedisStore(t, RedisOptions{Addrs: []string{srv.Addr}, BreakerThreshold: 3, BreakerCooldown: time.Second})
	clk := newClock()
	s.breaker.now = clk.Now
	hook := &countingHook{}
	s.Client().AddHook(hook)
	ca := certtest.NewCA(t)
	crt, key := ca.Leaf(t, "a.test")
	if err := s.Put(ctx, "a.test", crt, key); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	for i := range 3 {
		_, _, err := s.Get(ctx, "a.test")
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
			t.Fatalf("Get %d with Redis killed = %v, want ErrUnavailable", i, err)
		}
	}
	if st := s.breaker.snapshot(); st != breakerOpen {
		t.Fatalf("breaker %v after 3 failures, want open", st)
	}
	before := hook.n.Load()
	for range 100 {
		if _, _, err := s.Get(ctx, "a.test"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get with breaker open = %v", err)
		}
	}
	if n := hook.n.Load() - before; n != 0 {
		t.Fatalf("open breaker let %d commands through", n)
	}

	// Redis comes back (empty: no persistence). The breaker lets a probe
	// through only after its cool-down.
	srv.Restart(t)
	if _, _, err := s.Get(ctx, "a.test"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get before cool-down = %v, want fail-fast ErrUnavailable", err)
	}
	clk.Advance(time.Second)
	if _, _, err := s.Get(ctx, "a.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("probe after restart = %v, want ErrNotFound (data gone)", err)
	}
	if st := s.breaker.snapshot(); st != breakerClosed {
		t.Fatalf("breaker %v after a good probe", st)
	}
	if err := s.Put(ctx, "a.test", crt, key); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	if c, _, _ := mustGet(t, s, "a.test"); !bytes.Equal(c, crt) {
		t.Fatal("wrong pair after recovery")
	}
}

func TestRedisStoreStalledServerTimesOut(t *testing.T) {
	srv := redistest.StartServer(t)
	s := newRedisStore(t, RedisOptions{Addrs: []string{srv.Addr}, ReadTimeout: 100 * time.Millisecond})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Freeze(t)
	defer srv.Thaw(t)
	_, _, err := s.Get(context.Background(), "a.test")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get from a stalled Redis = %v, want ErrUnavailable", err)
	}
	// A caller deadline shorter than the read timeout is honored too.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := s.Get(ctx, "b.test"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get with expired ctx = %v, want ErrUnavailable", err)
	}
}

// TestRedisStoreAtomicRewrite rewrites one name with two different pairs
// while readers check every pair they get: the hash layout must never hand
// out one pair's certificate with the other's key.
func TestRedisStoreAtomicRewrite(t *testing.T) {
	ctx := context.Background()
	_, s := startRedisStore(t, "")
	ca := certtest.NewCA(t)
	var pairs [2][2][]byte
	for i := range pairs {
		pairs[i][0], pairs[i][1] = ca.Leaf(t, "swap.test")
	}
	if err := s.Put(ctx, "swap.test", pairs[0][0], pairs[0][1]); err != nil {
		t.Fatal(err)
	}
	const writes = 300
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var reads atomic.Int64
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, k, err := s.Get(ctx, "swap.test")
				if err == nil {
					_, err = tls.X509KeyPair(c, k)
				}
				if err != nil {
					errs <- err
					return
				}
				reads.Add(1)
			}
		})
	}
	for i := range writes {
		p := pairs[i%2]
		if err := s.Put(ctx, "swap.test", p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("reader saw a broken pair: %v", err)
	}
	t.Logf("%d reads during %d rewrites", reads.Load(), writes)
}

func TestRedisStoreList(t *testing.T) {
	ctx := context.Background()
	// A prefix with glob characters must match literally.
	_, s := startRedisStore(t, "t[1]*:")
	rc := s.Client()
	ca := certtest.NewCA(t)
	crt, key := ca.Leaf(t, "h1.test")
	for _, n := range []string{"h1.test", "both.test", "*.wild.test"} {
		if err := s.Put(ctx, n, crt, key); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range [][2]string{
		{"t[1]*:l1.test.crt", "c"}, {"t[1]*:l1.test.key", "k"},
		{"t[1]*:both.test.crt", "c"}, {"t[1]*:both.test.key", "k"},
		{"t[1]*:Upper.TEST.crt", "c"}, // not canonical: skipped
		{"t[1]*:site:alias.test", "h1.test"},
		{"t[1]*:cert:bad name", "x"},
		{"t1zz:other.test.crt", "c"}, // matched by the prefix if it were unescaped
		{"other.test.crt", "c"},
	} {
		if err := rc.Set(ctx, kv[0], kv[1], 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Enough keys that SCAN needs several batches.
	if _, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range 2500 {
			p.Set(ctx, fmt.Sprintf("t[1]*:bulk%04d.test.crt", i), "c", 0)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.List(ctx, func(n string) error { got = append(got, n); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"*.wild.test", "both.test", "h1.test", "l1.test"}
	for i := range 2500 {
		want = append(want, fmt.Sprintf("bulk%04d.test", i))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("List: got %d names, want %d; first got %v", len(got), len(want), got[:min(len(got), 6)])
	}

	stop := errors.New("stop")
	n := 0
	err := s.List(ctx, func(string) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("List with a failing fn: %v after %d calls", err, n)
	}
}

func TestNewRedisStoreOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts RedisOptions
	}{
		{"no addrs", RedisOptions{}},
		{"cluster and sentinel", RedisOptions{Addrs: []string{"a:1"}, Cluster: true, MasterName: "m"}},
		{"several addrs standalone", RedisOptions{Addrs: []string{"a:1", "b:1"}}},
		{"cluster db", RedisOptions{Addrs: []string{"a:1"}, Cluster: true, DB: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := NewRedisStore(tc.opts); err == nil {
				s.Close()
				t.Error("NewRedisStore accepted invalid options")
			}
		})
	}
}

func TestEscapeGlob(t *testing.T) {
	if got := escapeGlob(`a*b?c[d]e\f`); got != `a\*b\?c\[d\]e\\f` {
		t.Errorf("escapeGlob = %q", got)
	}
}

func BenchmarkRedisStoreGet(b *testing.B) {
	ctx := context.Background()
	_, s := startRedisStore(b, "")
	ca := certtest.NewCA(b)
	crt, key := ca.Leaf(b, "hit.test")
	if err := s.Put(ctx, "hit.test", crt, key); err != nil {
		b.Fatal(err)
	}
	b.Run("miss", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.Get(ctx, "miss.test"); !errors.Is(err, ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.Get(ctx, "hit.test"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("miss-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := s.Get(ctx, "miss.test"); !errors.Is(err, ErrNotFound) {
					b.Error(err)
					return
				}
			}
		})
	})
}
