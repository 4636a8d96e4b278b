package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/vhost"
)

func TestStaleIfError(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	m := f.manager(t)
	ctx := context.Background()
	cached, err := m.Lookup(ctx, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	f.store.down.Store(true)

	t.Run("uncached name fails fast and is not remembered", func(t *testing.T) {
		for range 2 {
			if _, err := m.Lookup(ctx, "other.test"); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Lookup error = %v, want ErrUnavailable", err)
			}
		}
		if got := f.store.gets("other.test"); got != 2 {
			t.Errorf("store Get calls = %d, want 2 (unavailable is never negative-cached)", got)
		}
	})
	t.Run("expired entry is served while the store is down", func(t *testing.T) {
		f.clock.Advance(DefaultTTL + time.Second)
		for i := range 3 {
			got, err := m.Lookup(ctx, "a.test")
			if err != nil {
				t.Fatalf("lookup %d: %v", i, err)
			}
			if got != cached {
				t.Fatalf("lookup %d served a different certificate", i)
			}
		}
		if got := f.store.gets("a.test"); got != 2 {
			t.Errorf("store Get calls = %d, want 2 (one load, one failed refresh, then a pause)", got)
		}
		if m.Stats().StaleHits != 3 {
			t.Errorf("StaleHits = %d, want 3", m.Stats().StaleHits)
		}
	})
	t.Run("refresh retried after NegativeTTL and recovers", func(t *testing.T) {
		f.clock.Advance(DefaultNegativeTTL)
		if _, err := m.Lookup(ctx, "a.test"); err != nil {
			t.Fatal(err)
		}
		if got := f.store.gets("a.test"); got != 3 {
			t.Errorf("store Get calls = %d, want 3", got)
		}
		f.store.down.Store(false)
		f.write(t, "a.test", "a.test")
		f.clock.Advance(DefaultNegativeTTL)
		got, err := m.Lookup(ctx, "a.test")
		if err != nil {
			t.Fatal(err)
		}
		if got == cached {
			t.Error("store recovered but the stale certificate is still served")
		}
	})
	t.Run("deleted certificate is dropped, not served stale", func(t *testing.T) {
		if err := f.store.Delete(ctx, "a.test"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(DefaultTTL)
		if _, err := m.Lookup(ctx, "a.test"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup error = %v, want ErrNotFound", err)
		}
	})
}

func TestConcurrentLookupsShareOneLoad(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	m := f.manager(t)
	const n = 64
	start := make(chan struct{})
	var wg sync.WaitGroup
	certs := make([]*tls.Certificate, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			certs[i], errs[i] = m.Lookup(context.Background(), "a.test")
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("lookup %d: %v", i, errs[i])
		}
		if certs[i] != certs[0] {
			t.Fatalf("lookup %d got a different certificate value", i)
		}
	}
	if got := f.store.gets(""); got != 1 {
		t.Errorf("store Get calls = %d, want exactly 1", got)
	}
}

// blockingStore holds every Get until release is closed.
type blockingStore struct {
	*countingStore
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) Get(ctx context.Context, name string) ([]byte, []byte, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.countingStore.Get(ctx, name)
}

func TestLoadDetachedFromFirstCaller(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	bs := &blockingStore{countingStore: f.store, entered: make(chan struct{}, 1), release: make(chan struct{})}
	m := f.manager(t, func(o *Options) { o.Store = bs })

	first, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := m.Lookup(first, "a.test")
		firstErr <- err
	}()
	<-bs.entered // the shared load is in the store now
	second := make(chan error, 1)
	go func() {
		_, err := m.Lookup(context.Background(), "a.test")
		second <- err
	}()
	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("canceled caller got %v, want ErrUnavailable wrapping context.Canceled", err)
	}
	close(bs.release)
	if err := <-second; err != nil {
		t.Errorf("second caller failed with the first caller's cancellation: %v", err)
	}
	if got := f.store.gets(""); got != 1 {
		t.Errorf("store Get calls = %d, want 1", got)
	}
}

func TestOutOfValidityServedAndCounted(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	for _, tc := range []struct {
		host     string
		from, to time.Time
	}{
		{"expired.test", now.Add(-48 * time.Hour), now.Add(-24 * time.Hour)},
		{"future.test", now.Add(24 * time.Hour), now.Add(48 * time.Hour)},
	} {
		certPEM, keyPEM := f.ca.LeafWith(t, certtest.LeafOptions{Names: []string{tc.host}, NotBefore: tc.from, NotAfter: tc.to})
		certtest.WritePair(t, f.dir, tc.host, certPEM, keyPEM)
	}
	m := f.manager(t)
	for _, host := range []string{"expired.test", "future.test"} {
		if _, err := m.Lookup(context.Background(), host); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if got := m.Stats().Expired; got != 2 {
		t.Errorf("Stats().Expired = %d, want 2", got)
	}
	if n := strings.Count(f.logs.String(), "outside its validity period"); n != 2 {
		t.Errorf("%d validity warnings logged, want 2", n)
	}
	// Re-reading it at once does not repeat the warning.
	m.Invalidate("expired.test")
	if _, err := m.Lookup(context.Background(), "expired.test"); err != nil {
		t.Fatal(err)
	}
	if got := m.Stats().Expired; got != 3 {
		t.Errorf("Stats().Expired = %d, want 3", got)
	}
	if n := strings.Count(f.logs.String(), "outside its validity period"); n != 2 {
		t.Errorf("%d validity warnings logged after a re-read within a minute, want still 2", n)
	}
}

// countingIssuer decorates an Issuer and counts Issue calls.
type countingIssuer struct {
	Issuer
	calls atomic.Int64
}

func (c *countingIssuer) Issue(ctx context.Context, name string) ([]byte, []byte, error) {
	c.calls.Add(1)
	return c.Issuer.Issue(ctx, name)
}

func TestIssuer(t *testing.T) {
	f := newFixture(t)
	ca, err := OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	issuer := &countingIssuer{Issuer: ca}
	allowed := map[string]bool{"tenant.test": true}
	m := f.manager(t, func(o *Options) {
		o.Issuer = issuer
		o.HostPolicy = func(_ context.Context, host string) error {
			if !allowed[host] {
				return vhost.ErrNoSuchHost
			}
			return nil
		}
	})
	addr := serveTLS(t, m.GetCertificate)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())

	t.Run("allowed host gets a minted certificate", func(t *testing.T) {
		leaf, err := handshake(addr, "tenant.test", pool)
		if err != nil {
			t.Fatal(err)
		}
		if !containsFold(leaf.DNSNames, "tenant.test") {
			t.Errorf("SANs %v", leaf.DNSNames)
		}
		if _, _, err := f.store.FileStore.Get(context.Background(), "tenant.test"); err != nil {
			t.Errorf("minted pair not written back to the store: %v", err)
		}
		if _, err := handshake(addr, "tenant.test", pool); err != nil {
			t.Fatal(err)
		}
		if n := issuer.calls.Load(); n != 1 {
			t.Errorf("Issue calls = %d, want 1", n)
		}
	})
	t.Run("denied host is refused without issuing", func(t *testing.T) {
		before := issuer.calls.Load()
		_, err := m.Lookup(context.Background(), "stranger.test")
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, vhost.ErrNoSuchHost) {
			t.Fatalf("Lookup error = %v, want ErrNotFound wrapping the policy's reason", err)
		}
		if n := issuer.calls.Load() - before; n != 0 {
			t.Errorf("Issue calls = %d, want 0", n)
		}
	})
	if st := m.Stats(); st.Issued != 1 {
		t.Errorf("Stats().Issued = %d, want 1", st.Issued)
	}
}
