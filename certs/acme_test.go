package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"massvhost/test/acmetest"
	"massvhost/test/redistest"
)

// These tests run ACME against a real Pebble whose validation authority
// connects back to the fixture's own HTTP and TLS listeners (resolving
// every name to 127.0.0.1), and against a real redis-server.

const acmeKeyPrefix = "mv:"

// acmeFixture is a Pebble, the listeners it validates against, a store
// (Redis, or files plus a data directory), tenants and a clock.
type acmeFixture struct {
	pebble  *acmetest.Pebble
	redis   *redistest.Server // nil: local state, FileStore
	store   ACMEStore         // for inspection; nodes have their own clients
	dataDir string
	clock   *clock
	logs    *syncBuffer
	tlsAddr string

	tenantsMu sync.Mutex
	tenants   map[string]bool

	// httpNode answers http-01 on the validated port, tlsNode the TLS
	// port (tls-alpn-01 and ordinary handshakes).
	httpNode atomic.Pointer[ACME]
	tlsNode  atomic.Pointer[acmeNode]
	// onChallenge, if set, sees each http-01 request before it is answered.
	onChallenge atomic.Pointer[func(*http.Request)]
}

type acmeNode struct {
	acme *ACME
	mgr  *Manager
}

type acmeFixtureOptions struct {
	local  bool
	pebble acmetest.Options
}

func newACMEFixture(t testing.TB, o acmeFixtureOptions) *acmeFixture {
	t.Helper()
	f := &acmeFixture{clock: newClock(), logs: new(syncBuffer), tenants: make(map[string]bool)}
	// Pebble does not backdate: keep the clock past the NotBefore of what
	// it issues, so certificates are not reported as not yet valid.
	f.clock.Advance(time.Minute)
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(f.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(httpLn)
	t.Cleanup(func() { srv.Close() })

	tlsLn, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetConfigForClient: f.configForClient,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			n := f.tlsNode.Load()
			if n == nil {
				return nil, errors.New("no node yet")
			}
			return n.mgr.GetCertificate(hello)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.tlsAddr = tlsLn.Addr().String()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
			})
		}
	})
	t.Cleanup(func() {
		tlsLn.Close()
		wg.Wait()
	})

	o.pebble.HTTPPort = acmetest.Port(t, httpLn.Addr())
	o.pebble.TLSPort = acmetest.Port(t, tlsLn.Addr())
	f.pebble = acmetest.Start(t, o.pebble)
	// Registered after Start, so it runs before Pebble's directory goes.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", f.logs)
			t.Logf("pebble log tail:\n%s", f.pebble.LogTail())
		}
	})
	if o.local {
		f.store = FileStore{Dir: t.TempDir()}
		f.dataDir = t.TempDir()
	} else {
		f.redis = redistest.StartServer(t)
		f.store = f.newRedis(t)
	}
	return f
}

func (f *acmeFixture) newRedis(t testing.TB) *RedisStore {
	return newRedisStore(t, RedisOptions{Addrs: []string{f.redis.Addr}, KeyPrefix: acmeKeyPrefix})
}

func (f *acmeFixture) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if fn := f.onChallenge.Load(); fn != nil {
		(*fn)(r)
	}
	if a := f.httpNode.Load(); a != nil && a.HTTPChallenge(w, r) {
		return
	}
	http.NotFound(w, r)
}

func (f *acmeFixture) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if n := f.tlsNode.Load(); n != nil && IsTLSALPNHello(hello) {
		return n.acme.TLSALPNConfig(hello)
	}
	return nil, nil // the listener's config: GetCertificate
}

func (f *acmeFixture) addTenant(names ...string) {
	f.tenantsMu.Lock()
	defer f.tenantsMu.Unlock()
	for _, n := range names {
		f.tenants[n] = true
	}
}

func (f *acmeFixture) exists(_ context.Context, host string) bool {
	f.tenantsMu.Lock()
	defer f.tenantsMu.Unlock()
	return f.tenants[host]
}

func (f *acmeFixture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// options returns the ACMEOptions a node of this fixture uses.
func (f *acmeFixture) options(store ACMEStore, rs *RedisStore) ACMEOptions {
	return ACMEOptions{
		DirectoryURL:   f.pebble.DirectoryURL,
		Email:          "ops@example.test",
		AcceptTerms:    true,
		CARoots:        f.pebble.TLSRoots,
		Challenges:     []string{ChallengeHTTP01},
		Store:          store,
		Redis:          rs,
		DataDir:        f.dataDir,
		Policy:         ACMEPolicy{Exists: f.exists},
		HandshakeWait:  30 * time.Second,
		OrderTimeout:   40 * time.Second,
		DisableRenewal: true, // tests run passes with renewDue
		Logger:         f.logger(),
		now:            f.clock.Now,
	}
}

// node starts one massvhost node: an ACME and a Manager using it, with its
// own Redis connections and invalidation subscriber. The first node
// answers both listeners.
func (f *acmeFixture) node(t testing.TB, adjust ...func(*ACMEOptions)) *acmeNode {
	t.Helper()
	var rs *RedisStore
	store := f.store
	if f.redis != nil {
		rs = f.newRedis(t)
		store = rs
	}
	var mgrPtr atomic.Pointer[Manager]
	o := f.options(store, rs)
	if rs == nil {
		// With Redis the store's own invalidations must be enough.
		o.OnIssued = func(name string) {
			if m := mgrPtr.Load(); m != nil {
				m.Invalidate(name)
			}
		}
	}
	for _, fn := range adjust {
		fn(&o)
	}
	a, err := NewACME(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	m, err := NewManager(Options{
		Store:         store,
		Issuer:        a,
		HostPolicy:    a.HostPolicy(),
		IssueTimeout:  40 * time.Second,
		LookupTimeout: 5 * time.Second,
		Logger:        f.logger(),
		now:           f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	mgrPtr.Store(m)
	t.Cleanup(func() { m.Close() })
	if rs != nil {
		sub, err := NewSubscriber(rs, RouteInvalidations(m.Invalidate, nil), m.RevalidateAll)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Close() })
	}
	n := &acmeNode{acme: a, mgr: m}
	f.httpNode.CompareAndSwap(nil, a)
	f.tlsNode.CompareAndSwap(nil, n)
	return n
}

// handshake connects to the fixture's TLS listener with SNI name and
// verifies the certificate against Pebble's current root.
func (f *acmeFixture) handshake(t testing.TB, name string) (*x509.Certificate, error) {
	t.Helper()
	return handshake(f.tlsAddr, name, f.pebble.IssuerRoots(t))
}

// redisKeys returns the keys matching pattern (under the prefix).
func (f *acmeFixture) redisKeys(t *testing.T, pattern string) []string {
	t.Helper()
	out := f.redis.Do(t, "KEYS", acmeKeyPrefix+pattern)
	if out == "" {
		return nil
	}
	return strings.Fields(out)
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestACMEIssueOnFirstHandshake(t *testing.T) {
	for _, tc := range []struct {
		name      string
		local     bool
		challenge string
	}{
		{"redis/http-01", false, ChallengeHTTP01},
		{"redis/tls-alpn-01", false, ChallengeTLSALPN01},
		{"local/http-01", true, ChallengeHTTP01},
		{"local/tls-alpn-01", true, ChallengeTLSALPN01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newACMEFixture(t, acmeFixtureOptions{local: tc.local})
			const host = "shop.example.test"
			f.addTenant(host)
			n := f.node(t, func(o *ACMEOptions) { o.Challenges = []string{tc.challenge} })

			leaf, err := f.handshake(t, host)
			if err != nil {
				t.Fatalf("first handshake: %v", err)
			}
			if err := leaf.VerifyHostname(host); err != nil {
				t.Fatal(err)
			}
			st := n.acme.Stats()
			if st.Orders != 1 || st.Issued != 1 || st.Failed != 0 {
				t.Errorf("stats %+v, want one order, one issued", st)
			}
			// Stored for every node and for restarts.
			certPEM, _, err := f.store.Get(context.Background(), host)
			if err != nil {
				t.Fatalf("not stored: %v", err)
			}
			if stored := leafOf(t, certPEM); stored.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
				t.Errorf("stored serial %x, served %x", stored.SerialNumber, leaf.SerialNumber)
			}
			// The next handshake is a cache hit: no order.
			again, err := f.handshake(t, host)
			if err != nil || again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
				t.Fatalf("second handshake: %v, serial %x", err, again.SerialNumber)
			}
			if got := n.acme.Stats().Orders; got != 1 {
				t.Errorf("%d orders after a second handshake, want 1", got)
			}
			// Renewal is scheduled, challenge responses withdrawn, lock
			// released.
			due, err := n.acme.state.due(context.Background(), leaf.NotAfter, 10)
			if err != nil || len(due) != 1 || due[0].Name != host || due[0].Serial != serialOf(leaf) {
				t.Errorf("renewal schedule %+v (%v), want %s with serial %s", due, err, host, serialOf(leaf))
			}
			if f.redis != nil {
				for _, p := range []string{"acme:http:*", "acme:alpn:*", "acme:lock:*"} {
					if keys := f.redisKeys(t, p); len(keys) != 0 {
						t.Errorf("left behind: %v", keys)
					}
				}
			}
		})
	}
}

func TestACMEExternalAccountBinding(t *testing.T) {
	t.Parallel()
	const kid, hmac = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	f := newACMEFixture(t, acmeFixtureOptions{pebble: acmetest.Options{AlwaysValid: true, EAB: map[string]string{kid: hmac}}})
	f.addTenant("eab.example.test", "noeab.example.test")
	n := f.node(t, func(o *ACMEOptions) { o.EABKeyID, o.EABHMACKey = kid, hmac })
	if _, err := f.handshake(t, "eab.example.test"); err != nil {
		t.Fatalf("with EAB: %v", err)
	}
	if st := n.acme.Stats(); st.Issued != 1 {
		t.Errorf("stats %+v", st)
	}

	// A second cluster (its own Redis) without the binding is refused at
	// registration, and says so.
	g := newACMEFixture(t, acmeFixtureOptions{pebble: acmetest.Options{AlwaysValid: true, EAB: map[string]string{kid: hmac}}})
	g.addTenant("noeab.example.test")
	m := g.node(t)
	_, _, err := m.acme.Issue(context.Background(), "noeab.example.test")
	if reason, _, _ := classifyACME(err); err == nil || reason != reasonAccount {
		t.Fatalf("without EAB: %v (reason %q), want an account failure", err, reason)
	}
}

// TestACMEOneOrderAcrossNodes: two nodes share Redis; a burst of
// handshakes for one new name on both makes exactly one order, and both
// serve its certificate. The http-01 validation reaches node A only, so
// when B orders, A answers from the token B put in Redis.
func TestACMEOneOrderAcrossNodes(t *testing.T) {
	t.Parallel()
	f := newACMEFixture(t, acmeFixtureOptions{})
	const host = "burst.example.test"
	f.addTenant(host)
	a := f.node(t)
	b := f.node(t)
	addrB := serveTLS(t, b.mgr.GetCertificate)
	roots := f.pebble.IssuerRoots(t)

	const perNode = 10
	start := make(chan struct{})
	serials := make(chan string, 2*perNode)
	errs := make(chan error, 2*perNode)
	var wg sync.WaitGroup
	for _, addr := range []string{f.tlsAddr, addrB} {
		for range perNode {
			wg.Go(func() {
				<-start
				leaf, err := handshake(addr, host, roots)
				if err != nil {
					errs <- err
					return
				}
				serials <- serialOf(leaf)
			})
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	close(serials)
	for err := range errs {
		t.Errorf("handshake: %v", err)
	}
	seen := map[string]int{}
	for s := range serials {
		seen[s]++
	}
	if len(seen) != 1 {
		t.Errorf("served serials %v, want one certificate", seen)
	}
	sa, sb := a.acme.Stats(), b.acme.Stats()
	if sa.Orders+sb.Orders != 1 || sa.Issued+sb.Issued != 1 {
		t.Errorf("orders %d+%d, issued %d+%d: want exactly one order in the cluster", sa.Orders, sb.Orders, sa.Issued, sb.Issued)
	}
	if sa.FromStore+sb.FromStore == 0 {
		t.Errorf("the node that did not order did not take the certificate from the store: %+v %+v", sa, sb)
	}

	// B orders alone; the validation still reaches A only, which answers
	// from the response B put in Redis.
	const solo = "solo.example.test"
	f.addTenant(solo)
	if _, err := handshake(addrB, solo, roots); err != nil {
		t.Fatalf("order by the node the CA does not reach: %v", err)
	}
	if got := b.acme.Stats().Orders - sb.Orders; got != 1 {
		t.Errorf("B made %d orders for %s, want 1", got, solo)
	}
}

// TestACMECADownMidOrder stops Pebble while it validates the challenge:
// the order fails cleanly (error, lock released, response withdrawn,
// backoff shared), later handshakes fail fast without ordering, and once
// Pebble is back (having forgotten our account) and the backoff has
// passed, the name is issued.
func TestACMECADownMidOrder(t *testing.T) {
	t.Parallel()
	f := newACMEFixture(t, acmeFixtureOptions{})
	const host = "outage.example.test"
	f.addTenant(host)
	n := f.node(t)
	var once sync.Once
	stop := func(*http.Request) { once.Do(f.pebble.Stop) }
	f.onChallenge.Store(&stop)

	roots := f.pebble.IssuerRoots(t)
	if _, err := handshake(f.tlsAddr, host, roots); err == nil {
		t.Fatal("handshake succeeded with the CA stopped mid-order")
	}
	st := n.acme.Stats()
	if st.Orders != 1 || st.Failed != 1 || st.Issued != 0 {
		t.Errorf("stats %+v, want one failed order", st)
	}
	if keys := f.redisKeys(t, "acme:lock:*"); len(keys) != 0 {
		t.Errorf("lock left behind: %v", keys)
	}
	if keys := f.redisKeys(t, "acme:http:*"); len(keys) != 0 {
		t.Errorf("challenge response left behind: %v", keys)
	}
	b, ok, err := n.acme.state.backoff(context.Background(), host)
	if err != nil || !ok || b.reason != reasonCAUnavailable || b.attempts != 1 {
		t.Errorf("shared backoff %+v %v %v, want one ca_unavailable failure", b, ok, err)
	}

	// While backing off: the handshake fails at once, no new order (the
	// Manager's negative cache and the ACME backoff both hold it).
	f.onChallenge.Store(nil)
	if _, err := handshake(f.tlsAddr, host, roots); err == nil {
		t.Fatal("handshake succeeded while backing off")
	}
	if _, _, err := n.acme.Issue(context.Background(), host); !errors.Is(err, errBackingOff) {
		t.Errorf("Issue while backing off: %v, want errBackingOff", err)
	}
	if got := n.acme.Stats().Orders; got != 1 {
		t.Errorf("%d orders while backing off, want 1", got)
	}

	f.pebble.Restart(t)
	f.clock.Advance(DefaultACMERetryBackoff * 2)
	leaf, err := f.handshake(t, host)
	if err != nil {
		t.Fatalf("after the CA came back: %v", err)
	}
	if leaf.VerifyHostname(host) != nil {
		t.Fatal("wrong certificate")
	}
	if _, ok, _ := n.acme.state.backoff(context.Background(), host); ok {
		t.Error("backoff not cleared after success")
	}
	if !strings.Contains(f.logs.String(), "registering again") {
		t.Error("the restarted CA's loss of our account went unnoticed")
	}
}

// TestACMENodeRestart: a new node on the same Redis serves the stored
// certificate without ordering and orders new names with the same
// account.
func TestACMENodeRestart(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("local=%v", local), func(t *testing.T) {
			t.Parallel()
			f := newACMEFixture(t, acmeFixtureOptions{local: local, pebble: acmetest.Options{AlwaysValid: true}})
			f.addTenant("one.example.test", "two.example.test")
			first := f.node(t)
			leaf1, err := f.handshake(t, "one.example.test")
			if err != nil {
				t.Fatal(err)
			}
			kid := first.acme.client.Load().KID
			first.mgr.Close()
			first.acme.Close()

			second := f.node(t)
			f.tlsNode.Store(second)
			f.httpNode.Store(second.acme)
			again, err := f.handshake(t, "one.example.test")
			if err != nil || again.SerialNumber.Cmp(leaf1.SerialNumber) != 0 {
				t.Fatalf("restarted node: %v, serial %x, want the stored %x", err, again.SerialNumber, leaf1.SerialNumber)
			}
			if got := second.acme.Stats().Orders; got != 0 {
				t.Errorf("restarted node ordered %d times for a stored name", got)
			}
			if _, err := f.handshake(t, "two.example.test"); err != nil {
				t.Fatal(err)
			}
			if got := second.acme.client.Load().KID; got != kid {
				t.Errorf("restarted node uses account %q, want the stored %q", got, kid)
			}
		})
	}
}

// TestACMEHandshakeWait: the handshake that triggers an order gives up
// after HandshakeWait; the order completes in the background, stores the
// certificate and invalidates the Manager's negative entry, so that the
// next handshake is served.
func TestACMEHandshakeWait(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("local=%v", local), func(t *testing.T) {
			t.Parallel()
			f := newACMEFixture(t, acmeFixtureOptions{local: local})
			const host = "patience.example.test"
			f.addTenant(host)
			n := f.node(t, func(o *ACMEOptions) { o.HandshakeWait = time.Millisecond })
			if _, err := f.handshake(t, host); err == nil {
				t.Fatal("first handshake did not give up")
			}
			if st := n.acme.Stats(); st.InProgress != 1 {
				t.Errorf("stats %+v, want one in-progress give-up", st)
			}
			waitFor(t, "the background order to store its certificate", func() bool {
				_, _, err := f.store.Get(context.Background(), host)
				return err == nil
			})
			waitFor(t, "the stored certificate to be served", func() bool {
				_, err := f.handshake(t, host)
				return err == nil
			})
			if st := n.acme.Stats(); st.Orders != 1 || st.Issued != 1 {
				t.Errorf("stats %+v, want one order", st)
			}
		})
	}
}

// TestACMERandomNameFlood (THREATS TLS-07): a flood of handshakes for
// random names, among which a few tenants, makes exactly one order per
// tenant and none for the rest.
func TestACMERandomNameFlood(t *testing.T) {
	t.Parallel()
	f := newACMEFixture(t, acmeFixtureOptions{pebble: acmetest.Options{AlwaysValid: true}})
	tenants := []string{"t1.example.test", "t2.example.test", "t3.example.test"}
	f.addTenant(tenants...)
	n := f.node(t)
	roots := f.pebble.IssuerRoots(t)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range 300 {
		name := fmt.Sprintf("r%d-%x.example.test", i, i*7919)
		if i%100 == 0 {
			name = tenants[i/100]
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, _ = handshake(f.tlsAddr, name, roots)
		})
	}
	wg.Wait()
	for _, name := range tenants {
		if _, err := handshake(f.tlsAddr, name, roots); err != nil {
			t.Errorf("tenant %s not served after the flood: %v", name, err)
		}
	}
	if st := n.acme.Stats(); st.Orders != uint64(len(tenants)) {
		t.Errorf("%d orders for %d tenants among 300 names", st.Orders, len(tenants))
	}
}
