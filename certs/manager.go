package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"massvhost/vhost"
)

// Defaults for the zero fields of [Options]. Operator-facing configuration
// refers to these constants so that each default has one source of truth.
const (
	DefaultCacheSize     = 10000
	DefaultTTL           = time.Hour
	DefaultNegativeTTL   = 30 * time.Second
	DefaultNegativeSize  = 100000
	DefaultLookupTimeout = 2 * time.Second
	DefaultIssueTimeout  = 30 * time.Second
)

// Issuer mints a certificate for a name no store holds: the local CA, or an
// ACME client. Issue returns the PEM chain (leaf first) and the PEM key.
type Issuer interface {
	Issue(ctx context.Context, name string) (certPEM, keyPEM []byte, err error)
}

// HostPolicy decides whether an [Issuer] may mint a certificate for host: it
// returns nil to allow. Without a policy, every syntactically valid SNI name
// a client cares to send would cost a key generation and a stored
// certificate, and with ACME an order against the CA's rate limits (the
// reason Caddy's on-demand TLS requires an "ask" endpoint). A typical policy
// allows exactly the hosts vhost resolves to an existing tenant. An error
// wrapping [ErrUnavailable] means the policy could not decide and is not
// remembered; any other error is a refusal, remembered like a missing
// certificate.
type HostPolicy func(ctx context.Context, host string) error

// Options configure a [Manager]. Every zero field means its documented
// default; negative values are errors.
type Options struct {
	// Store holds the certificates. Required.
	Store Store
	// Issuer, if set, mints a certificate when Store has none for a host
	// HostPolicy allows. The minted pair is written back when Store is a
	// [Writer] (best effort: a failed write is logged).
	Issuer Issuer
	// HostPolicy gates Issuer. Required when Issuer is set.
	HostPolicy HostPolicy

	// CacheSize is the number of parsed certificates kept in memory (an LRU);
	// if zero, DefaultCacheSize. A wildcard certificate takes one entry for
	// itself and one per host it served.
	CacheSize int
	// TTL is how long a cached certificate is served before it is re-read
	// from the store; if zero, DefaultTTL. A certificate is also re-read
	// when it expires, since a renewal has likely been written by then. If
	// the re-read fails for any reason other than "not found", the cached
	// copy keeps being served (stale-if-error) and the re-read is retried
	// after NegativeTTL.
	TTL time.Duration
	// NegativeTTL is how long "no certificate" and "invalid certificate"
	// answers are remembered; if zero, DefaultNegativeTTL.
	NegativeTTL time.Duration
	// NegativeSize bounds the negative cache, so that floods of unknown
	// names cannot grow memory and cannot evict real certificates; if
	// zero, DefaultNegativeSize.
	NegativeSize int
	// LookupTimeout bounds one store call (and one HostPolicy call); if
	// zero, DefaultLookupTimeout.
	LookupTimeout time.Duration
	// IssueTimeout bounds one Issuer call; if zero, DefaultIssueTimeout.
	IssueTimeout time.Duration
	// NewNameRate limits store lookups per second for names with no cached
	// answer at all, to blunt random-SNI floods; if zero, unlimited.
	NewNameRate float64
	// NewNameBurst is the burst allowed above NewNameRate; if zero, twice
	// NewNameRate (at least 1).
	NewNameBurst int
	// NewNameRatePerIP limits, per client, the lookups NewNameRate counts,
	// so that one client flooding random names cannot spend the whole
	// budget and fail every other client's new names: a client over it is
	// refused the way NewNameRate refuses, before taking a global token.
	// The client is the IP address (IPv6: the /64) of the address ctx
	// carries ([WithClient]; GetCertificate sets it); lookups without one
	// are not limited per client. It applies only when NewNameRate is set;
	// if zero, there is no per-client limit.
	NewNameRatePerIP float64
	// NewNameBurstPerIP is the burst allowed above NewNameRatePerIP; if
	// zero, twice NewNameRatePerIP (at least 1).
	NewNameBurstPerIP int

	// Default is the host whose certificate answers clients that send no
	// SNI. If empty, such handshakes fail.
	Default string
	// Preload loads every certificate Store lists at NewManager and serves
	// from that map only, like a classic server that reads all its
	// certificates at start. The store is never consulted afterwards, the
	// Issuer is not used, and Invalidate and RevalidateAll have no effect:
	// changes need a new Manager. It exists as the baseline the lazy mode is
	// measured against. Store must be a [Lister].
	Preload bool

	// Logger receives load failures and issuance events; if nil,
	// slog.Default().
	Logger *slog.Logger

	// now is the clock; tests replace it.
	now func() time.Time
}

// ManagerStats are counters since NewManager and current cache sizes.
type ManagerStats struct {
	Hits         uint64 // lookups answered from memory by a fresh entry (or the preload map)
	StaleHits    uint64 // lookups answered by a stale entry: store failing, or a refresh in flight
	Misses       uint64 // lookups with no positive entry
	NegativeHits uint64 // misses answered by the negative cache
	InvalidNames uint64 // lookups refused because the SNI is not a valid host name
	Loads        uint64 // store loads (misses and refreshes) actually run
	NotFound     uint64 // loads that ended with no certificate
	Unavailable  uint64 // loads that failed because the store (or issuer, or policy) could not answer
	Invalid      uint64 // loads that found a pair failing validation
	Expired      uint64 // loaded certificates outside their validity period (served anyway)
	RateLimited  uint64 // new-name lookups refused by NewNameRate or NewNameRatePerIP
	// ClientRateLimited counts the RateLimited refusals due to
	// NewNameRatePerIP (one client over its share).
	ClientRateLimited uint64
	Issued            uint64 // certificates minted by the Issuer
	Evictions         uint64 // positive entries pushed out by CacheSize

	Entries         int // positive entries (or preloaded certificates)
	NegativeEntries int // negative entries, including expired ones not yet evicted
}

// counters are the atomic halves of ManagerStats.
type counters struct {
	hits, staleHits, misses, negativeHits, invalidNames atomic.Uint64
	loads, notFound, unavailable, invalid, expired      atomic.Uint64
	rateLimited, clientRateLimited, issued, evictions   atomic.Uint64
}

// Manager picks the certificate for a TLS handshake by SNI, loading it from
// a [Store] on first use and keeping the hot ones in a bounded LRU. See the
// package documentation for the lookup order. A Manager is safe for
// concurrent use. Returned certificates are shared and must not be modified.
type Manager struct {
	store         Store
	issuer        Issuer
	policy        HostPolicy
	ttl, negTTL   time.Duration
	lookupTimeout time.Duration
	issueTimeout  time.Duration
	defaultName   string
	log           *slog.Logger
	now           func() time.Time

	cache    *lru.Cache[string, *entry]   // positive entries, by host and by wildcard store name
	neg      *lru.Cache[string, negative] // negative entries, by host
	newNames newNameLimiter
	clients  *clientLimiter // nil: no per-client limit
	logs     *logLimiter
	group    singleflight.Group // one load per host in flight

	// preload is set by Options.Preload; preloaded is then the only source
	// of certificates and is read-only after NewManager.
	preload   bool
	preloaded map[string]*tls.Certificate

	// gen is bumped by RevalidateAll: entries of an older generation are
	// stale. epoch is bumped by Invalidate: a load that saw the epoch change
	// while it ran does not cache its result, which may predate the
	// invalidation.
	gen   atomic.Uint64
	epoch atomic.Uint64
	// commitMu orders cache writes by loads (read side, see commit) against
	// Invalidate and RevalidateAll (write side). It guards no I/O.
	commitMu sync.RWMutex

	// closing is canceled by Close to abandon loads in flight.
	closing context.Context
	stop    context.CancelFunc
	// loadsMu guards closed and the Add side of loads, so that Close's Wait
	// never races with a load starting.
	loadsMu sync.Mutex
	closed  bool
	loads   sync.WaitGroup

	stats counters
}

// entry is a positive cache entry. It is immutable except for refreshing:
// a state change replaces the entry.
type entry struct {
	cert      *tls.Certificate
	source    string    // store name that served it: the host or its "*.parent"
	refreshAt time.Time // re-read from the store at or after this time
	gen       uint64    // Manager.gen when loaded
	// stale marks a certificate kept after a failed re-read
	// (stale-if-error); it is served until refreshAt like a fresh one.
	stale bool

	// refreshing is set by the one lookup that re-reads a stale entry;
	// others serve the stale certificate meanwhile instead of waiting.
	refreshing atomic.Bool
}

// fresh reports whether e may be served without asking the store.
func (e *entry) fresh(now time.Time, gen uint64) bool {
	return e.gen == gen && now.Before(e.refreshAt)
}

// clone returns a copy of e that is due for refresh at refreshAt.
func (e *entry) clone(refreshAt time.Time, gen uint64, stale bool) *entry {
	return &entry{cert: e.cert, source: e.source, refreshAt: refreshAt, gen: gen, stale: stale}
}

// negative is a negative cache entry: the error to repeat until until.
type negative struct {
	until time.Time
	err   error
}

// NewManager returns a Manager configured by opts. It reports every invalid
// option at once. With opts.Preload it reads the whole store before
// returning.
func NewManager(opts Options) (*Manager, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("certs: "+format, args...)) }
	if opts.Store == nil {
		bad("Options.Store is nil")
	}
	if opts.Issuer != nil && opts.HostPolicy == nil {
		bad("Options.Issuer requires a HostPolicy, or any name a client sends would be issued a certificate")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"CacheSize", int64(opts.CacheSize)},
		{"TTL", int64(opts.TTL)},
		{"NegativeTTL", int64(opts.NegativeTTL)},
		{"NegativeSize", int64(opts.NegativeSize)},
		{"LookupTimeout", int64(opts.LookupTimeout)},
		{"IssueTimeout", int64(opts.IssueTimeout)},
		{"NewNameBurst", int64(opts.NewNameBurst)},
		{"NewNameBurstPerIP", int64(opts.NewNameBurstPerIP)},
	} {
		if f.v < 0 {
			bad("Options.%s must not be negative, got %d", f.name, f.v)
		}
	}
	if !(opts.NewNameRate >= 0) || math.IsInf(opts.NewNameRate, 1) {
		bad("Options.NewNameRate must be a finite number ≥ 0, got %v", opts.NewNameRate)
	}
	if !(opts.NewNameRatePerIP >= 0) || math.IsInf(opts.NewNameRatePerIP, 1) {
		bad("Options.NewNameRatePerIP must be a finite number ≥ 0, got %v", opts.NewNameRatePerIP)
	}
	var defaultName string
	if opts.Default != "" {
		n, err := vhost.Normalize(opts.Default)
		if err != nil {
			bad("Options.Default: %w", err)
		}
		defaultName = n
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	m := &Manager{
		store:         opts.Store,
		issuer:        opts.Issuer,
		policy:        opts.HostPolicy,
		ttl:           orDefault(opts.TTL, DefaultTTL),
		negTTL:        orDefault(opts.NegativeTTL, DefaultNegativeTTL),
		lookupTimeout: orDefault(opts.LookupTimeout, DefaultLookupTimeout),
		issueTimeout:  orDefault(opts.IssueTimeout, DefaultIssueTimeout),
		defaultName:   defaultName,
		log:           opts.Logger,
		now:           opts.now,
		logs:          newLogLimiter(),
		preload:       opts.Preload,
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	burst := opts.NewNameBurst
	if burst == 0 {
		burst = max(1, int(min(2*opts.NewNameRate, math.MaxInt32)))
	}
	m.newNames = newNewNameLimiter(opts.NewNameRate, burst)
	if opts.NewNameRate > 0 {
		burst := opts.NewNameBurstPerIP
		if burst == 0 {
			burst = max(1, int(min(2*opts.NewNameRatePerIP, math.MaxInt32)))
		}
		m.clients = newClientLimiter(opts.NewNameRatePerIP, burst)
	}
	var err error
	if m.cache, err = lru.New[string, *entry](orDefault(opts.CacheSize, DefaultCacheSize)); err != nil {
		return nil, fmt.Errorf("certs: cache: %w", err)
	}
	if m.neg, err = lru.New[string, negative](orDefault(opts.NegativeSize, DefaultNegativeSize)); err != nil {
		return nil, fmt.Errorf("certs: negative cache: %w", err)
	}
	m.closing, m.stop = context.WithCancel(context.Background())
	if m.preload {
		if err := m.preloadAll(); err != nil {
			m.stop()
			return nil, err
		}
	}
	return m, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// GetCertificate returns the certificate for hello's SNI; it has the
// signature of tls.Config.GetCertificate. It is [Manager.Lookup] on
// hello.Context() carrying the client's address ([WithClient]). Returning an error makes crypto/tls send an
// internal_error alert; a server that wants unrecognized_name for unknown
// names calls Lookup from GetConfigForClient instead.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if hello.Conn != nil {
		ctx = WithClient(ctx, hello.Conn.RemoteAddr())
	}
	return m.Lookup(ctx, hello.ServerName)
}

// Lookup returns the certificate to present for sni, a raw SNI value ("" if
// the client sent none, which means Options.Default). The name is
// normalized and validated before anything else, so a hostile SNI never
// reaches a store. The certificate comes from the cache, else from the store
// under the exact name, else under the wildcard parent ("*.b.c" for
// "a.b.c"), else from the Issuer if the HostPolicy allows. It always covers
// the name.
//
// The error wraps vhost.ErrInvalidName (bad SNI), [ErrNotFound] (no
// certificate, possibly remembered for NegativeTTL), [ErrInvalidCert] (the
// store's pair is unusable) or [ErrUnavailable] (store down or slow, the
// new-name rate limit or the client's share of it, or ctx done before the
// load finished). The client is the one ctx carries ([WithClient]). ctx bounds
// only this caller's wait: the load itself is shared with concurrent
// lookups of the same name and runs to its own deadline.
func (m *Manager) Lookup(ctx context.Context, sni string) (*tls.Certificate, error) {
	if sni == "" && m.defaultName != "" {
		sni = m.defaultName
	}
	name, err := vhost.Normalize(sni)
	if err == nil && strings.IndexByte(sni, ':') >= 0 {
		// Normalize accepts the Host header's "name:port"; an SNI
		// host_name never carries a port (RFC 6066 §3), so one that does
		// is malformed like any other invalid name (THREATS TLS-02).
		err = fmt.Errorf("%w: %q: a server name has no port", vhost.ErrInvalidName, sni)
	}
	if err != nil {
		m.stats.invalidNames.Add(1)
		return nil, fmt.Errorf("certs: lookup: %w", err)
	}
	if m.preload {
		return m.lookupPreloaded(name)
	}
	now := m.now()
	if e, ok := m.cache.Get(name); ok {
		if e.fresh(now, m.gen.Load()) {
			if e.stale {
				m.stats.staleHits.Add(1)
			} else {
				m.stats.hits.Add(1)
			}
			return e.cert, nil
		}
		if !e.refreshing.CompareAndSwap(false, true) {
			m.stats.staleHits.Add(1)
			return e.cert, nil
		}
		return m.await(ctx, name, e)
	}
	m.stats.misses.Add(1)
	if n, ok := m.neg.Get(name); ok && now.Before(n.until) {
		m.stats.negativeHits.Add(1)
		return nil, n.err
	}
	// A new name: charge the client first, so that a client over its share
	// does not spend the global budget (taken in load) for everyone.
	if !m.clients.allow(ctx, now) {
		m.stats.rateLimited.Add(1)
		m.stats.clientRateLimited.Add(1)
		return nil, fmt.Errorf("certs: lookup %q: %w: new-name rate limit of this client exceeded", name, ErrUnavailable)
	}
	return m.await(ctx, name, nil)
}

// Invalidate drops what the Manager remembers about name, a host or a
// wildcard store name "*.example.com", so that the next lookup reads the
// store; call it after the store changed (Redis invalidation messages do).
// For a wildcard it also drops the hosts that wildcard served and the
// negative entries of the hosts directly under it; that walks both caches,
// which is bounded by their sizes. Invalid names are ignored.
func (m *Manager) Invalidate(name string) {
	key, err := canonicalStoreName(name)
	if err != nil {
		return
	}
	wild := isWildcard(key)
	m.commitMu.Lock()
	defer m.commitMu.Unlock()
	m.epoch.Add(1)
	m.group.Forget(key)
	m.cache.Remove(key)
	m.neg.Remove(key)
	if !wild {
		return
	}
	for _, k := range m.neg.Keys() {
		if coveredBy(k, key) {
			m.neg.Remove(k)
		}
	}
	for _, k := range m.cache.Keys() {
		if e, ok := m.cache.Peek(k); ok && e.source == key {
			m.cache.Remove(k)
		}
	}
}

// coveredBy reports whether host is exactly one label under wildcard
// ("a.b.c" under "*.b.c"), the only names a wildcard certificate covers.
func coveredBy(host, wildcard string) bool {
	suffix := wildcard[1:] // ".b.c"
	label, ok := strings.CutSuffix(host, suffix)
	return ok && label != "" && !strings.Contains(label, ".")
}

// RevalidateAll marks every cached certificate stale, so that each is
// re-read from the store on its next lookup (stale-if-error still applies),
// and forgets every negative answer. Use it after invalidations may have
// been missed, such as a lost Redis subscription. It costs O(negative
// entries) once and nothing per positive entry.
func (m *Manager) RevalidateAll() {
	m.commitMu.Lock()
	defer m.commitMu.Unlock()
	m.gen.Add(1)
	m.epoch.Add(1)
	m.neg.Purge()
}

// Stats returns the counters and cache sizes.
func (m *Manager) Stats() ManagerStats {
	s := &m.stats
	st := ManagerStats{
		Hits:              s.hits.Load(),
		StaleHits:         s.staleHits.Load(),
		Misses:            s.misses.Load(),
		NegativeHits:      s.negativeHits.Load(),
		InvalidNames:      s.invalidNames.Load(),
		Loads:             s.loads.Load(),
		NotFound:          s.notFound.Load(),
		Unavailable:       s.unavailable.Load(),
		Invalid:           s.invalid.Load(),
		Expired:           s.expired.Load(),
		RateLimited:       s.rateLimited.Load(),
		ClientRateLimited: s.clientRateLimited.Load(),
		Issued:            s.issued.Load(),
		Evictions:         s.evictions.Load(),
		Entries:           m.cache.Len(),
		NegativeEntries:   m.neg.Len(),
	}
	if m.preload {
		st.Entries = len(m.preloaded)
	}
	return st
}

// Close abandons loads in flight, waits for them to return, and makes later
// loads fail with [ErrUnavailable]; certificates already cached are still
// served. After Close returns the Manager makes no more store or issuer
// calls, so the store may be closed. Close is idempotent and returns nil.
func (m *Manager) Close() error {
	m.loadsMu.Lock()
	m.closed = true
	m.loadsMu.Unlock()
	m.stop()
	m.loads.Wait()
	return nil
}

// beginLoad registers a load with Close. It reports false once the Manager
// is closed; otherwise the caller must call m.loads.Done.
func (m *Manager) beginLoad() bool {
	m.loadsMu.Lock()
	defer m.loadsMu.Unlock()
	if m.closed {
		return false
	}
	m.loads.Add(1)
	return true
}
