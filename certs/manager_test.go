package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/vhost"
)

// countingStore decorates a real FileStore and counts Get calls per name.
// When down is set, Get fails with ErrUnavailable without reading, the way
// an unreachable Redis would.
type countingStore struct {
	FileStore
	down  atomic.Bool
	mu    sync.Mutex
	calls map[string]int
}

func newCountingStore(dir string) *countingStore {
	return &countingStore{FileStore: FileStore{Dir: dir}, calls: make(map[string]int)}
}

func (s *countingStore) Get(ctx context.Context, name string) ([]byte, []byte, error) {
	s.mu.Lock()
	s.calls[name]++
	s.mu.Unlock()
	if s.down.Load() {
		return nil, nil, fmt.Errorf("counting store %q: %w: store is down", name, ErrUnavailable)
	}
	return s.FileStore.Get(ctx, name)
}

// gets returns the number of Get calls for name, or for all names if name
// is "".
func (s *countingStore) gets(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "" {
		return s.calls[name]
	}
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// clock is a manual clock for the Manager's now seam.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is a certificate directory, a counting store over it, a clock and
// a CA.
type fixture struct {
	dir   string
	store *countingStore
	clock *clock
	ca    *certtest.CA
	logs  *syncBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	return &fixture{dir: dir, store: newCountingStore(dir), clock: newClock(), ca: certtest.NewCA(t), logs: new(syncBuffer)}
}

// write stores a fresh leaf for names under storeName.
func (f *fixture) write(t *testing.T, storeName string, names ...string) {
	t.Helper()
	certPEM, keyPEM := f.ca.Leaf(t, names...)
	certtest.WritePair(t, f.dir, storeName, certPEM, keyPEM)
}

// manager returns a Manager over the fixture's store and clock; opts may
// adjust the options first.
func (f *fixture) manager(t *testing.T, opts ...func(*Options)) *Manager {
	t.Helper()
	o := Options{
		Store:  f.store,
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		now:    f.clock.Now,
	}
	for _, fn := range opts {
		fn(&o)
	}
	m, err := NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// serveTLS runs a TLS listener on 127.0.0.1:0 whose certificates come from
// getCert, completes one handshake per connection, and returns its address.
func serveTLS(t *testing.T, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: getCert})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// handshake connects to addr with SNI sni, verifying the chain against
// roots and the name against sni, and returns the server's leaf.
func handshake(addr, sni string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &tls.Dialer{Config: &tls.Config{ServerName: sni, RootCAs: roots}}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

func TestGetCertificateHandshake(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	f.write(t, "b.test", "b.test", "www.b.test")
	f.write(t, "*.wild.test", "*.wild.test")
	f.write(t, "x.wild.test", "x.wild.test")
	m := f.manager(t, func(o *Options) { o.Default = "a.test" })
	addr := serveTLS(t, m.GetCertificate)

	for _, tc := range []struct {
		name, sni string
		wantSAN   string // a DNS SAN the served leaf must hold
		wantGets  int    // store calls for this handshake
	}{
		{"exact", "a.test", "a.test", 1},
		{"exact cached", "a.test", "a.test", 0},
		{"exact, certificate with several names", "b.test", "b.test", 1},
		{"uppercase SNI", "A.TEST", "a.test", 0},
		{"wildcard", "y.wild.test", "*.wild.test", 2},
		{"wildcard sibling reuses parsed parent", "z.wild.test", "*.wild.test", 1},
		{"exact beats wildcard", "x.wild.test", "x.wild.test", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.store.gets("")
			leaf, err := handshake(addr, tc.sni, f.ca.Pool)
			if err != nil {
				t.Fatalf("handshake %q: %v", tc.sni, err)
			}
			if err := leaf.VerifyHostname(tc.sni); err != nil {
				t.Errorf("served leaf does not cover %q: %v", tc.sni, err)
			}
			if !containsFold(leaf.DNSNames, tc.wantSAN) {
				t.Errorf("served leaf SANs %v, want one of them %q", leaf.DNSNames, tc.wantSAN)
			}
			if got := f.store.gets("") - before; got != tc.wantGets {
				t.Errorf("store Get calls = %d, want %d", got, tc.wantGets)
			}
		})
	}

	t.Run("no SNI gets Default", func(t *testing.T) {
		cert, err := m.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.Leaf.VerifyHostname("a.test"); err != nil {
			t.Error(err)
		}
	})
	t.Run("unknown name fails the handshake", func(t *testing.T) {
		if _, err := handshake(addr, "nope.test", f.ca.Pool); err == nil {
			t.Fatal("handshake succeeded")
		}
		_, err := m.Lookup(context.Background(), "nope.test")
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup error = %v, want ErrNotFound", err)
		}
	})
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func TestLookupInvalidSNI(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	m := f.manager(t)
	addr := serveTLS(t, m.GetCertificate)
	for _, sni := range []string{
		"", "../../etc/passwd", "a/b", "a/b:c", "a.test\x00.evil", "*", "*.a.test", "a?test", "[a]",
		strings.Repeat("a", 64) + ".test", strings.Repeat("a.", 130) + "test",
		"xn--zz.test", "ä.test", "a_b.test", "a..test", "-a.test", "1.2.3.4", "[::1]", "a.test:abc",
		"a.test\\..", "%2e%2e", "a test", "a.test\r\nx",
	} {
		t.Run(fmt.Sprintf("%q", sni), func(t *testing.T) {
			_, err := m.Lookup(context.Background(), sni)
			if !errors.Is(err, vhost.ErrInvalidName) {
				t.Errorf("Lookup error = %v, want vhost.ErrInvalidName", err)
			}
			if _, err := handshake(addr, sni, f.ca.Pool); err == nil {
				t.Error("handshake succeeded")
			}
		})
	}
	if n := f.store.gets(""); n != 0 {
		t.Errorf("store Get calls = %d for invalid names, want 0: %v", n, f.store.calls)
	}
	if m.Stats().InvalidNames == 0 {
		t.Error("Stats().InvalidNames = 0")
	}
}

func TestNegativeCache(t *testing.T) {
	f := newFixture(t)
	m := f.manager(t)
	ctx := context.Background()
	lookup := func(wantGets int) {
		t.Helper()
		before := f.store.gets("nope.test")
		if _, err := m.Lookup(ctx, "nope.test"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup error = %v, want ErrNotFound", err)
		}
		if got := f.store.gets("nope.test") - before; got != wantGets {
			t.Fatalf("store Get calls = %d, want %d", got, wantGets)
		}
	}
	lookup(1)
	lookup(0)
	f.clock.Advance(DefaultNegativeTTL - time.Second)
	lookup(0)
	f.clock.Advance(2 * time.Second)
	lookup(1)
	lookup(0)

	// A certificate written meanwhile is found once the entry is invalidated.
	f.write(t, "nope.test", "nope.test")
	m.Invalidate("NOPE.test")
	if _, err := m.Lookup(ctx, "nope.test"); err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	if st.NegativeHits != 3 || st.NotFound != 2 {
		t.Errorf("NegativeHits=%d NotFound=%d, want 3 and 2", st.NegativeHits, st.NotFound)
	}
}

func TestNegativeWildcardParent(t *testing.T) {
	f := newFixture(t)
	m := f.manager(t)
	ctx := context.Background()
	for i, want := range []int{2, 1, 1} {
		before := f.store.gets("")
		if _, err := m.Lookup(ctx, fmt.Sprintf("r%d.tenant.test", i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup error = %v, want ErrNotFound", err)
		}
		if got := f.store.gets("") - before; got != want {
			t.Errorf("random name %d: store Get calls = %d, want %d", i, got, want)
		}
	}
	f.write(t, "*.tenant.test", "*.tenant.test")
	m.Invalidate("*.tenant.test")
	if _, err := m.Lookup(ctx, "r9.tenant.test"); err != nil {
		t.Errorf("wildcard written and invalidated is not found: %v", err)
	}
}

func TestTTLReload(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	m := f.manager(t)
	addr := serveTLS(t, m.GetCertificate)
	serial := func() string {
		t.Helper()
		leaf, err := handshake(addr, "a.test", f.ca.Pool)
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.String()
	}
	first := serial()
	f.write(t, "a.test", "a.test") // replaced behind the Manager's back
	if got := serial(); got != first {
		t.Fatal("replaced file served before the TTL ran out")
	}
	f.clock.Advance(DefaultTTL)
	second := serial()
	if second == first {
		t.Fatal("replaced file not picked up after the TTL")
	}
	if got := f.store.gets("a.test"); got != 2 {
		t.Errorf("store Get calls = %d, want 2", got)
	}
	m.RevalidateAll()
	f.write(t, "a.test", "a.test")
	if serial() == second {
		t.Error("RevalidateAll did not make the next lookup re-read the store")
	}
}

func TestInvalidateWildcard(t *testing.T) {
	f := newFixture(t)
	f.write(t, "*.wild.test", "*.wild.test")
	m := f.manager(t)
	ctx := context.Background()
	first, err := m.Lookup(ctx, "a.wild.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(ctx, "a.other.test"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	f.write(t, "*.wild.test", "*.wild.test")
	m.Invalidate("*.WILD.test")
	second, err := m.Lookup(ctx, "a.wild.test")
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Error("host served by the wildcard kept its cached certificate")
	}
	// Negative entries directly under the wildcard are dropped, others kept.
	before := f.store.gets("")
	f.write(t, "*.other.test", "*.other.test")
	m.Invalidate("*.other.test")
	if _, err := m.Lookup(ctx, "a.other.test"); err != nil {
		t.Errorf("negative entry under the invalidated wildcard survived: %v", err)
	}
	if got := f.store.gets("") - before; got != 2 {
		t.Errorf("store Get calls = %d, want 2 (exact, then wildcard)", got)
	}
}

func TestNewManagerOptions(t *testing.T) {
	store := FileStore{Dir: t.TempDir()}
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no store", Options{}, "Store is nil"},
		{"issuer without policy", Options{Store: store, Issuer: &LocalCA{}}, "requires a HostPolicy"},
		{"negative size", Options{Store: store, CacheSize: -1}, "CacheSize must not be negative"},
		{"negative ttl", Options{Store: store, NegativeTTL: -time.Second}, "NegativeTTL"},
		{"bad default", Options{Store: store, Default: "../x"}, "Default"},
		{"NaN rate", Options{Store: store, NewNameRate: nan()}, "NewNameRate"},
		{"zero value defaults", Options{Store: store}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewManager(tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.ttl != DefaultTTL || m.negTTL != DefaultNegativeTTL || m.lookupTimeout != DefaultLookupTimeout {
					t.Errorf("defaults not applied: ttl=%v negTTL=%v lookupTimeout=%v", m.ttl, m.negTTL, m.lookupTimeout)
				}
				m.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

func TestClose(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	f.write(t, "b.test", "b.test")
	m := f.manager(t)
	ctx := context.Background()
	if _, err := m.Lookup(ctx, "a.test"); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if _, err := m.Lookup(ctx, "a.test"); err != nil {
		t.Errorf("cached certificate not served after Close: %v", err)
	}
	if _, err := m.Lookup(ctx, "b.test"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("load after Close: %v, want ErrUnavailable", err)
	}
	if got := f.store.gets("b.test"); got != 0 {
		t.Errorf("store called %d times after Close", got)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestHitDoesNotAllocate(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	m := f.manager(t, func(o *Options) { o.now = nil })
	ctx := context.Background()
	if _, err := m.Lookup(ctx, "a.test"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { m.Lookup(ctx, "a.test") }); n != 0 {
		t.Errorf("cache hit allocates %v times", n)
	}
}

// benchManager returns a Manager over a file store holding a.test and
// *.wild.test, with logging off.
func benchManager(b *testing.B, opts Options) *Manager {
	b.Helper()
	dir := b.TempDir()
	ca := certtest.NewCA(b)
	for _, names := range [][]string{{"a.test"}, {"*.wild.test"}} {
		certPEM, keyPEM := ca.Leaf(b, names...)
		certtest.WritePair(b, dir, names[0], certPEM, keyPEM)
	}
	opts.Store = FileStore{Dir: dir}
	opts.Logger = slog.New(slog.DiscardHandler)
	m, err := NewManager(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

func BenchmarkGetCertificate(b *testing.B) {
	b.Run("hit", func(b *testing.B) {
		m := benchManager(b, Options{})
		hello := &tls.ClientHelloInfo{ServerName: "a.test"}
		for b.Loop() {
			if _, err := m.GetCertificate(hello); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("miss_file", func(b *testing.B) {
		m := benchManager(b, Options{})
		hello := &tls.ClientHelloInfo{ServerName: "a.test"}
		for b.Loop() {
			m.Invalidate("a.test")
			if _, err := m.GetCertificate(hello); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wildcard", func(b *testing.B) {
		// Each iteration names a new host under the wildcard: one failed
		// exact read, then the parsed wildcard is shared.
		m := benchManager(b, Options{})
		var i int
		for b.Loop() {
			i++
			hello := &tls.ClientHelloInfo{ServerName: fmt.Sprintf("h%d.wild.test", i)}
			if _, err := m.GetCertificate(hello); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("preload_hit", func(b *testing.B) {
		m := benchManager(b, Options{Preload: true})
		hello := &tls.ClientHelloInfo{ServerName: "a.test"}
		for b.Loop() {
			if _, err := m.GetCertificate(hello); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel_hit", func(b *testing.B) {
		m := benchManager(b, Options{})
		if _, err := m.Lookup(context.Background(), "a.test"); err != nil {
			b.Fatal(err)
		}
		b.RunParallel(func(pb *testing.PB) {
			hello := &tls.ClientHelloInfo{ServerName: "a.test"}
			for pb.Next() {
				if _, err := m.GetCertificate(hello); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
