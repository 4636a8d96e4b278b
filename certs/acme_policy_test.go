package certs

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"massvhost/test/acmetest"
	"massvhost/vhost"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// askServer is a loopback ask endpoint that allows the names in allow and
// records every domain it was asked about.
type askServer struct {
	*httptest.Server
	mu    sync.Mutex
	asked []string
}

func newAskServer(t *testing.T, handler func(w http.ResponseWriter, domain string)) *askServer {
	t.Helper()
	s := &askServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := r.URL.Query().Get("domain")
		s.mu.Lock()
		s.asked = append(s.asked, d)
		s.mu.Unlock()
		if r.URL.Query().Get("token") != "secret" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		handler(w, d)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *askServer) domains() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asked...)
}

func TestACMEHostPolicy(t *testing.T) {
	release := make(chan struct{})
	ask := newAskServer(t, func(w http.ResponseWriter, d string) {
		switch d {
		case "yes.test":
		case "redirect.test":
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
		case "slow.test":
			<-release
		default:
			w.WriteHeader(http.StatusForbidden)
		}
	})
	// After newAskServer: cleanups run last-in first-out, and the server
	// waits for the slow handler on Close.
	t.Cleanup(func() { close(release) })
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	tenants := map[string]bool{"yes.test": true, "no.test": true, "redirect.test": true, "slow.test": true}
	exists := func(_ context.Context, h string) bool { return tenants[h] }

	for _, tc := range []struct {
		name    string
		askURL  string
		host    string
		wantErr error // nil: allowed
	}{
		{"invalid name", "", "-bad-.test", vhost.ErrInvalidName},
		{"ip literal", "", "127.0.0.1", vhost.ErrInvalidName},
		{"no tenant", "", "stranger.test", errNoTenant},
		{"tenant, no ask", "", "no.test", nil},
		{"ask yes", ask.URL + "/ask?token=secret", "yes.test", nil},
		{"ask yes, raw form normalized", ask.URL + "/ask?token=secret", "YES.test.", nil},
		{"ask no", ask.URL + "/ask?token=secret", "no.test", errAskRefused},
		{"ask redirect is no", ask.URL + "/ask?token=secret", "redirect.test", errAskRefused},
		{"ask keeps its own query", ask.URL + "/ask", "yes.test", errAskRefused},
		{"ask not consulted without tenant", ask.URL + "/ask?token=secret", "stranger.test", errNoTenant},
		{"ask unreachable", dead.URL + "/ask", "yes.test", ErrUnavailable},
		{"ask too slow", ask.URL + "/ask?token=secret", "slow.test", ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, _, err := ACMEPolicy{Exists: exists, AskURL: tc.askURL, AskTimeout: 200 * time.Millisecond}.build()
			if err != nil {
				t.Fatal(err)
			}
			err = p.allow(context.Background(), tc.host)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("allow(%q) = %v, want %v", tc.host, err, tc.wantErr)
			}
			// Refusals must not look like outages to the Manager, which
			// remembers only the former.
			if tc.wantErr != nil && tc.wantErr != ErrUnavailable && errors.Is(err, ErrUnavailable) {
				t.Errorf("refusal %v wraps ErrUnavailable", err)
			}
		})
	}
	for _, d := range ask.domains() {
		if d == "stranger.test" {
			t.Error("ask endpoint consulted for a name with no tenant")
		}
	}
}

func TestACMEOrderLimits(t *testing.T) {
	_, l, _, err := ACMEPolicy{
		Exists:        func(context.Context, string) bool { return true },
		PerDomainRate: 1, PerDomainBurst: 2,
		GlobalRate: 3600, GlobalBurst: 3,
	}.build()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a.example.co.uk", true},
		{"b.example.co.uk", true},
		{"deep.c.example.co.uk", false}, // same registrable domain: burst of 2 used
		{"other.co.uk", true},
		{"x.third.test", false}, // global burst of 3 used; must not cost third.test
	} {
		err := l.reserve(tc.name, now)
		if (err == nil) != tc.ok {
			t.Errorf("reserve(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errRateLimited) {
			t.Errorf("reserve(%q) = %v, want errRateLimited", tc.name, err)
		}
	}
	// One second later the global rate (1/s) allows one more, and
	// third.test still has its whole burst.
	now = now.Add(time.Second)
	if err := l.reserve("x.third.test", now); err != nil {
		t.Errorf("after refill: %v", err)
	}
	if err := l.reserve("a.example.co.uk", now.Add(time.Second)); err == nil {
		t.Error("per-domain rate of 1/hour refilled within seconds")
	}
}

func TestNewACMEOptions(t *testing.T) {
	base := func() ACMEOptions {
		return ACMEOptions{
			AcceptTerms: true,
			Store:       FileStore{Dir: t.TempDir()},
			DataDir:     t.TempDir(),
			Policy:      ACMEPolicy{Exists: func(context.Context, string) bool { return true }},
		}
	}
	for _, tc := range []struct {
		name   string
		adjust func(*ACMEOptions)
		ok     bool
	}{
		{"defaults", func(*ACMEOptions) {}, true},
		{"no store", func(o *ACMEOptions) { o.Store = nil }, false},
		{"terms not accepted", func(o *ACMEOptions) { o.AcceptTerms = false }, false},
		{"nowhere for the account", func(o *ACMEOptions) { o.DataDir = "" }, false},
		{"no Exists", func(o *ACMEOptions) { o.Policy.Exists = nil }, false},
		{"EAB half", func(o *ACMEOptions) { o.EABKeyID = "kid" }, false},
		{"EAB bad key", func(o *ACMEOptions) { o.EABKeyID, o.EABHMACKey = "kid", "not base64!" }, false},
		{"EAB padded key", func(o *ACMEOptions) { o.EABKeyID, o.EABHMACKey = "kid", "c2VjcmV0a2V5MQ==" }, true},
		{"unknown challenge", func(o *ACMEOptions) { o.Challenges = []string{"dns-01"} }, false},
		{"negative wait", func(o *ACMEOptions) { o.HandshakeWait = -time.Second }, false},
		{"negative rate", func(o *ACMEOptions) { o.Policy.GlobalRate = -1 }, false},
		{"bad ask URL", func(o *ACMEOptions) { o.Policy.AskURL = "/relative" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.adjust(&o)
			a, err := NewACME(o)
			if (err == nil) != tc.ok {
				t.Fatalf("NewACME: %v, want ok=%v", err, tc.ok)
			}
			if a != nil {
				a.Close()
			}
		})
	}
}

// TestACMEMaxConcurrentOrders: beyond the cap, Issue fails at once; the
// handshake that started an order gives up after HandshakeWait while the
// order goes on; Close cancels it.
func TestACMEMaxConcurrentOrders(t *testing.T) {
	var hits atomic.Int64
	release := make(chan struct{})
	ca := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select { // a CA that never answers
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ca.Close()
	defer close(release)
	a, _, _ := newOfflineACME(t, func(context.Context, string) bool { return true }, func(o *ACMEOptions) {
		o.DirectoryURL = ca.URL
		o.HandshakeWait = 50 * time.Millisecond
		o.Policy.MaxConcurrentOrders = 1
	})
	ctx := context.Background()
	if _, _, err := a.Issue(ctx, "first.test"); !errors.Is(err, errInProgress) {
		t.Fatalf("first Issue: %v, want in progress", err)
	}
	if _, _, err := a.Issue(ctx, "second.test"); !errors.Is(err, errTooManyOrders) {
		t.Fatalf("second Issue: %v, want too many orders", err)
	}
	// The same name joins the order in flight instead.
	if _, _, err := a.Issue(ctx, "first.test"); !errors.Is(err, errInProgress) {
		t.Fatalf("joining Issue: %v, want in progress", err)
	}
	if st := a.Stats(); st.TooMany != 1 || st.InProgress != 2 || st.Jobs != 1 {
		t.Errorf("stats %+v", st)
	}
	a.Close() // cancels the stuck order and waits for it
	if st := a.Stats(); st.Jobs != 0 {
		t.Errorf("%d jobs after Close", st.Jobs)
	}
	if hits.Load() == 0 {
		t.Error("the CA was never asked")
	}
}

// TestACMEPolicyRefusesWithoutOrder: through the Manager and Pebble, names
// the policy refuses and names over the per-domain rate make no order.
func TestACMEPolicyRefusesWithoutOrder(t *testing.T) {
	t.Parallel()
	f := newACMEFixture(t, acmeFixtureOptions{pebble: acmetest.Options{AlwaysValid: true}})
	ask := newAskServer(t, func(w http.ResponseWriter, d string) {
		if d != "asked-yes.example.test" && d != "second.example.test" {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	f.addTenant("asked-no.example.test", "asked-yes.example.test", "second.example.test")
	n := f.node(t, func(o *ACMEOptions) {
		o.Policy.AskURL = ask.URL + "?token=secret"
		o.Policy.PerDomainBurst = 1
	})
	for _, name := range []string{"stranger.example.test", "asked-no.example.test"} {
		if _, err := f.handshake(t, name); err == nil {
			t.Errorf("%s: handshake succeeded", name)
		}
	}
	if st := n.acme.Stats(); st.Orders != 0 {
		t.Fatalf("refused names made %d orders", st.Orders)
	}
	if _, err := f.handshake(t, "asked-yes.example.test"); err != nil {
		t.Fatal(err)
	}
	// example.test's one order is used: the next name waits for the rate.
	if _, err := f.handshake(t, "second.example.test"); err == nil {
		t.Error("per-domain rate not applied")
	}
	if st := n.acme.Stats(); st.Orders != 1 || st.RateLimited != 1 || st.Failed != 0 {
		t.Errorf("stats %+v, want 1 order, 1 rate-limited, no failure", st)
	}
	if _, ok := n.acme.localBackoff("second.example.test", f.clock.Now()); ok {
		t.Error("our own rate limit put the name in failure backoff")
	}
}
