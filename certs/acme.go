package certs

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/crypto/acme"
	"golang.org/x/sync/singleflight"
)

// Defaults for the zero fields of [ACMEOptions] and [ACMEPolicy].
const (
	// DefaultACMEHandshakeWait is how long the handshake that triggered an
	// order waits for it. Browsers give up on a handshake after tens of
	// seconds; a CA answers in a few seconds when it is healthy.
	DefaultACMEHandshakeWait = 10 * time.Second
	// DefaultACMEOrderTimeout bounds one whole order: account, challenge,
	// validation, finalization, download and store write.
	DefaultACMEOrderTimeout = 2 * time.Minute
	// DefaultACMELockLease is the lifetime of the cluster-wide issuance
	// lock of a name. The holder extends it every third of the lease, so a
	// crashed node blocks the name for at most one lease.
	DefaultACMELockLease = 30 * time.Second
	// DefaultACMERetryBackoff is the pause after a name's first failed
	// order; each further failure doubles it up to DefaultACMEMaxRetryBackoff.
	// Let's Encrypt allows 5 failed validations per name per hour: 2, 4, 8,
	// 16 and 32 minutes stay under that.
	DefaultACMERetryBackoff    = 2 * time.Minute
	DefaultACMEMaxRetryBackoff = 4 * time.Hour
	// DefaultACMERenewInterval is how often the renewal schedule is read.
	DefaultACMERenewInterval = 10 * time.Minute
	// DefaultACMEAskTimeout bounds one call to the ask endpoint.
	DefaultACMEAskTimeout = 2 * time.Second
	// DefaultACMEMaxConcurrentOrders caps the orders one node runs (or
	// waits for) at once.
	DefaultACMEMaxConcurrentOrders = 20
	// Orders per hour and bursts, per node. Let's Encrypt allows 50
	// certificates per registered domain per week and 300 new orders per
	// account per 3 hours; these stay well below for a few nodes.
	DefaultACMEPerDomainRate  = 5
	DefaultACMEPerDomainBurst = 10
	DefaultACMEGlobalRate     = 60
	DefaultACMEGlobalBurst    = 30
)

// Challenge types [ACMEOptions].Challenges may list.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// acmeBackoffSize bounds the per-name failure memory, so a flood of failing
// names cannot grow it; an evicted name may be retried early.
const acmeBackoffSize = 10000

// ACMEStore is where [ACME] reads and writes the certificates it obtains:
// the same store the [Manager] reads (a [RedisStore], a [FileStore] or a
// [Tiered]).
type ACMEStore interface {
	Store
	Writer
}

// ACMEOptions configure [NewACME]. Every zero field means its documented
// default; negative durations and counts are errors.
type ACMEOptions struct {
	// DirectoryURL is the CA's ACME directory; if empty, Let's Encrypt
	// production (acme.LetsEncryptURL).
	DirectoryURL string
	// Email is the account contact ("" for none): the CA writes to it
	// about expiring certificates and incidents.
	Email string
	// AcceptTerms records that the operator agrees to the CA's terms of
	// service, which every account registration accepts. It must be true.
	AcceptTerms bool
	// EABKeyID and EABHMACKey bind the account to an existing account at
	// the CA (External Account Binding, required by some commercial CAs).
	// The key is base64url as CAs hand it out. Both or neither.
	EABKeyID, EABHMACKey string
	// Challenges lists the challenge types to use, in order of preference;
	// if empty, tls-alpn-01 then http-01. tls-alpn-01 needs the CA to reach
	// the HTTPS listener on port 443, http-01 the HTTP listener on port 80.
	Challenges []string

	// CARoots, if set, are the roots trusted for the CA's HTTPS endpoint
	// (a private CA, Pebble); nil means the system roots. Ignored when
	// HTTPClient is set.
	CARoots *x509.CertPool
	// HTTPClient talks to the CA; if nil, a client with a 30s timeout.
	HTTPClient *http.Client

	// Store receives every certificate obtained, so that every node serves
	// it and a restarted node keeps it. Required.
	Store ACMEStore
	// Redis, if set, holds what the nodes of a cluster share: the account
	// key, challenge responses, issuance locks, failure backoffs and the
	// renewal schedule, under "<KeyPrefix>acme:". Without it they are kept
	// in DataDir and in memory, which suits a single node only.
	Redis *RedisStore
	// DataDir holds the account key and renewal schedule (in DataDir/acme)
	// when Redis is nil. Required then.
	DataDir string

	// Policy decides which names may be ordered and how fast.
	Policy ACMEPolicy

	// HandshakeWait bounds how long Issue waits for an order; the order
	// goes on in the background and stores its result for the next
	// handshake. If zero, DefaultACMEHandshakeWait.
	HandshakeWait time.Duration
	// OrderTimeout bounds one order from start to stored certificate; if
	// zero, DefaultACMEOrderTimeout.
	OrderTimeout time.Duration
	// LockLease is the cluster-wide issuance lock lease; if zero,
	// DefaultACMELockLease.
	LockLease time.Duration
	// RetryBackoff and MaxRetryBackoff bound the exponential backoff of a
	// name after failed orders; if zero, DefaultACMERetryBackoff and
	// DefaultACMEMaxRetryBackoff.
	RetryBackoff, MaxRetryBackoff time.Duration
	// RenewInterval is how often the renewal schedule is read; if zero,
	// DefaultACMERenewInterval.
	RenewInterval time.Duration
	// DisableRenewal stops the background renewal loop (RenewNow still
	// works), for tools that issue once.
	DisableRenewal bool

	// OnIssued, if set, is called with each name after its new certificate
	// is stored, from the order's goroutine. Wire it to Manager.Invalidate
	// when the store publishes no invalidations (files only), so that a
	// name whose handshake gave up waiting is not held in the Manager's
	// negative cache. It may run before NewACME's caller has finished
	// wiring and must tolerate that.
	OnIssued func(name string)
	// Logger receives order, renewal and failure events; if nil,
	// slog.Default().
	Logger *slog.Logger

	// now is the clock for renewal and backoff decisions; tests replace it.
	now func() time.Time
}

// ACMEStats are counters since NewACME.
type ACMEStats struct {
	Orders        uint64 // new orders placed with the CA
	Issued        uint64 // certificates obtained and stored (first issuance and renewal)
	Renewed       uint64 // of Issued, renewals of a stored certificate
	Failed        uint64 // orders that failed, whatever the reason
	RenewFailed   uint64 // of Failed, renewals; the old certificate stays served
	CARateLimited uint64 // of Failed, refused by the CA's rate limits
	RateLimited   uint64 // orders refused by our own per-domain or global rate
	TooMany       uint64 // requests refused by MaxConcurrentOrders
	BackedOff     uint64 // requests refused while the name backs off after a failure
	InProgress    uint64 // Issue calls that gave up after HandshakeWait, the order still running
	LockWaits     uint64 // jobs that found another node ordering the name and waited
	FromStore     uint64 // jobs answered by a certificate another node had stored
	Jobs          int    // jobs in flight now
}

type acmeCounters struct {
	orders, issued, renewed, failed, renewFailed, caRateLimited atomic.Uint64
	rateLimited, tooMany, backedOff, inProgress, lockWaits      atomic.Uint64
	fromStore                                                   atomic.Uint64
}

// ACME obtains certificates from an ACME CA (RFC 8555; Let's Encrypt,
// ZeroSSL, a private CA) on demand: it is the [Issuer] a [Manager] calls
// when a handshake names a host that has no certificate, and it renews
// what it obtained.
//
// # Policy
//
// Anyone can send any SNI name, so nothing is ordered for a name unless
// [ACME.HostPolicy] allows it (the name is canonical, a tenant serves it,
// and the optional ask endpoint answers 200), and unless the per-domain and
// global order rates and MaxConcurrentOrders leave room (see [ACMEPolicy]).
// Otherwise a random-name flood would have the CA refuse the operator's
// account for a week, which is what its rate limits do.
//
// # One order per name in the cluster
//
// Nodes sharing Redis take a lock per name ("<prefix>acme:lock:<name>", a
// lease extended while the order runs, released by compare-and-delete)
// before ordering. A node that finds the lock taken waits for the holder's
// certificate to appear in the store instead of ordering again. Challenge
// responses live in Redis too, so whichever node the CA's validation
// reaches answers it. The handshake that triggered an order waits at most
// HandshakeWait and then fails; the order goes on in the background, the
// certificate is stored (which publishes an invalidation), and the next
// handshake gets it.
//
// # Failures
//
// A CA that is down or slow, an order or challenge that fails (the tenant's
// DNS points elsewhere), or the CA's rate limit: each is logged with its
// reason and puts the name in exponential backoff (RetryBackoff doubling to
// MaxRetryBackoff, or the CA's Retry-After if longer), recorded in Redis so
// that no node retries early. Handshakes for a backing-off name fail at
// once without contacting the CA; other names are unaffected, since every
// order runs on its own goroutine with its own deadline. A certificate that
// fails to renew stays in the store and keeps being served until it
// expires; renewal is retried in the background, never in a handshake.
//
// # Renewal
//
// Each obtained certificate is put on a renewal schedule at two thirds of
// its lifetime (minus a per-name jitter, so certificates issued together
// do not renew together). A background loop reads the due entries every
// RenewInterval and renews them under the same lock; a certificate the
// operator replaced (another serial) is dropped from the schedule.
//
// An ACME is safe for concurrent use. Close stops its goroutines.
type ACME struct {
	directory     string
	email         string
	eab           *acme.ExternalAccountBinding
	challenges    []string
	httpClient    *http.Client
	store         ACMEStore
	state         acmeState
	policy        *hostPolicy
	limits        *orderLimits
	maxJobs       int
	handshakeWait time.Duration
	orderTimeout  time.Duration
	lease         time.Duration
	backoffMin    time.Duration
	backoffMax    time.Duration
	renewInterval time.Duration
	onIssued      func(string)
	log           *slog.Logger
	logs          *logLimiter // for events attackers can repeat at will
	now           func() time.Time

	// client is the registered ACME client, nil until the first order
	// registers (or re-registers after the CA forgot the account).
	client  atomic.Pointer[acme.Client]
	account singleflight.Group

	// fails is the local half of the per-name backoff.
	fails *lru.Cache[string, acmeBackoff]

	mu     sync.Mutex
	jobs   map[string]*acmeJob // in flight, by name
	closed bool

	closing context.Context // canceled by Close
	stop    context.CancelFunc
	wg      sync.WaitGroup // jobs and the renewal loop

	stats acmeCounters
}

// Interface guard.
var _ Issuer = (*ACME)(nil)

// NewACME returns an ACME configured by opts, reporting every invalid
// option at once. It contacts neither the CA nor Redis: the account is
// registered by the first order. Unless DisableRenewal is set it starts the
// renewal loop; Close stops it.
func NewACME(opts ACMEOptions) (*ACME, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("certs: acme: "+format, args...)) }
	if opts.Store == nil {
		bad("ACMEOptions.Store is nil")
	}
	if !opts.AcceptTerms {
		bad("ACMEOptions.AcceptTerms must be true: every account registration accepts the CA's terms of service")
	}
	if opts.Redis == nil && opts.DataDir == "" {
		bad("ACMEOptions needs Redis or a DataDir to keep the account key")
	}
	var eab *acme.ExternalAccountBinding
	switch {
	case (opts.EABKeyID == "") != (opts.EABHMACKey == ""):
		bad("EABKeyID and EABHMACKey must be set together")
	case opts.EABKeyID != "":
		key, err := base64.RawURLEncoding.DecodeString(trimPadding(opts.EABHMACKey))
		if err != nil || len(key) == 0 {
			bad("EABHMACKey is not base64url: %v", err)
		}
		eab = &acme.ExternalAccountBinding{KID: opts.EABKeyID, Key: key}
	}
	challenges := opts.Challenges
	if len(challenges) == 0 {
		challenges = []string{ChallengeTLSALPN01, ChallengeHTTP01}
	}
	for _, c := range challenges {
		if c != ChallengeHTTP01 && c != ChallengeTLSALPN01 {
			bad("unsupported challenge type %q (want %s or %s)", c, ChallengeHTTP01, ChallengeTLSALPN01)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"HandshakeWait", opts.HandshakeWait},
		{"OrderTimeout", opts.OrderTimeout},
		{"LockLease", opts.LockLease},
		{"RetryBackoff", opts.RetryBackoff},
		{"MaxRetryBackoff", opts.MaxRetryBackoff},
		{"RenewInterval", opts.RenewInterval},
	} {
		if f.v < 0 {
			bad("ACMEOptions.%s must not be negative, got %v", f.name, f.v)
		}
	}
	policy, limits, maxJobs, perr := opts.Policy.build()
	if perr != nil {
		errs = append(errs, perr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	a := &ACME{
		directory:     cmp.Or(opts.DirectoryURL, acme.LetsEncryptURL),
		email:         opts.Email,
		eab:           eab,
		challenges:    slices.Compact(slices.Clone(challenges)),
		httpClient:    opts.HTTPClient,
		store:         opts.Store,
		policy:        policy,
		limits:        limits,
		maxJobs:       maxJobs,
		handshakeWait: cmp.Or(opts.HandshakeWait, DefaultACMEHandshakeWait),
		orderTimeout:  cmp.Or(opts.OrderTimeout, DefaultACMEOrderTimeout),
		lease:         cmp.Or(opts.LockLease, DefaultACMELockLease),
		backoffMin:    cmp.Or(opts.RetryBackoff, DefaultACMERetryBackoff),
		backoffMax:    cmp.Or(opts.MaxRetryBackoff, DefaultACMEMaxRetryBackoff),
		renewInterval: cmp.Or(opts.RenewInterval, DefaultACMERenewInterval),
		onIssued:      opts.OnIssued,
		log:           cmp.Or(opts.Logger, slog.Default()),
		logs:          newLogLimiter(),
		now:           opts.now,
		jobs:          make(map[string]*acmeJob),
	}
	a.backoffMax = max(a.backoffMax, a.backoffMin)
	if a.now == nil {
		a.now = time.Now
	}
	if a.httpClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if opts.CARoots != nil {
			t.TLSClientConfig = &tls.Config{RootCAs: opts.CARoots, MinVersion: tls.VersionTLS12}
		}
		a.httpClient = &http.Client{Transport: t, Timeout: 30 * time.Second}
	}
	if opts.Redis != nil {
		a.state = newRedisACMEState(opts.Redis)
	} else {
		st, err := newLocalACMEState(opts.DataDir)
		if err != nil {
			return nil, err
		}
		a.state = st
	}
	a.fails, _ = lru.New[string, acmeBackoff](acmeBackoffSize) // size is a positive constant
	a.closing, a.stop = context.WithCancel(context.Background())
	if !opts.DisableRenewal {
		a.wg.Add(1)
		go a.renewLoop()
	}
	return a, nil
}

// trimPadding drops the "=" padding some CAs leave on base64url keys.
func trimPadding(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}

// Close cancels the orders in flight (their names are retried later),
// stops the renewal loop and waits for every goroutine to end. Issue and
// RenewNow fail with [ErrUnavailable] afterwards. Close is idempotent and
// returns nil.
func (a *ACME) Close() error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.stop()
	a.wg.Wait()
	return nil
}

// Stats returns the counters.
func (a *ACME) Stats() ACMEStats {
	s := &a.stats
	a.mu.Lock()
	jobs := len(a.jobs)
	a.mu.Unlock()
	return ACMEStats{
		Orders:        s.orders.Load(),
		Issued:        s.issued.Load(),
		Renewed:       s.renewed.Load(),
		Failed:        s.failed.Load(),
		RenewFailed:   s.renewFailed.Load(),
		CARateLimited: s.caRateLimited.Load(),
		RateLimited:   s.rateLimited.Load(),
		TooMany:       s.tooMany.Load(),
		BackedOff:     s.backedOff.Load(),
		InProgress:    s.inProgress.Load(),
		LockWaits:     s.lockWaits.Load(),
		FromStore:     s.fromStore.Load(),
		Jobs:          jobs,
	}
}
