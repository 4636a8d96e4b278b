package certs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/time/rate"

	"massvhost/vhost"
)

// ACMEPolicy decides which names [ACME] may order certificates for, and how
// fast. The checks run cheapest first: the name must be canonical, Exists
// must report a tenant, and the ask endpoint (if any) must answer 200; only
// then are the rates consulted, at the moment an order would be placed, so
// that refused names, names another node is ordering and names already in
// the store never use up the budget.
//
// Rates are per node: a cluster of N nodes orders up to N times as fast.
// Divide the CA's limits by the node count when setting them.
type ACMEPolicy struct {
	// Exists reports whether a tenant serves host (vhost.Resolver.Exists,
	// which includes Redis site aliases). Required: without it any name a
	// client sends would be ordered.
	Exists func(ctx context.Context, host string) bool
	// AskURL, if set, is asked before each order, like Caddy's on-demand
	// "ask": a GET of AskURL with the query parameter domain=NAME added
	// must answer 200, and any other status refuses the name. Redirects are
	// not followed. A transport error or timeout means the policy could not
	// decide (the handshake fails, nothing is remembered).
	AskURL string
	// AskTimeout bounds one ask request; if zero, DefaultACMEAskTimeout.
	AskTimeout time.Duration
	// AskClient makes the ask requests; if nil, a plain client.
	AskClient *http.Client

	// PerDomainRate is orders per hour for one registrable domain (the
	// public-suffix eTLD+1: a.example.co.uk and b.example.co.uk share
	// example.co.uk), and PerDomainBurst the orders allowed at once; if
	// zero, DefaultACMEPerDomainRate and DefaultACMEPerDomainBurst.
	PerDomainRate  float64
	PerDomainBurst int
	// GlobalRate and GlobalBurst are the same for all names together; if
	// zero, DefaultACMEGlobalRate and DefaultACMEGlobalBurst.
	GlobalRate  float64
	GlobalBurst int
	// MaxConcurrentOrders caps the names this node orders or waits for at
	// once; beyond it, requests fail at once. If zero,
	// DefaultACMEMaxConcurrentOrders.
	MaxConcurrentOrders int
}

// Policy refusals. They are not ErrUnavailable: the Manager remembers them
// in its negative cache.
var (
	errNoTenant   = errors.New("certs: acme: no tenant serves this name")
	errAskRefused = errors.New("certs: acme: the ask endpoint refused this name")
)

// errRateLimited is our own order rate; the name is retried at the next
// handshake after the Manager's negative TTL.
var errRateLimited = fmt.Errorf("%w: acme order rate limit reached", ErrUnavailable)

// rateDomainsSize bounds the per-domain limiters kept. Only names that
// passed Exists reach them, so this is about the tenants' domains, not
// attackers'; an evicted domain starts again with a full burst.
const rateDomainsSize = 100000

// hostPolicy is the built form of the name checks of an ACMEPolicy.
type hostPolicy struct {
	exists     func(context.Context, string) bool
	ask        *url.URL
	askTimeout time.Duration
	askClient  *http.Client
}

// build validates p and returns its parts.
func (p ACMEPolicy) build() (*hostPolicy, *orderLimits, int, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("certs: acme: policy: "+format, args...))
	}
	if p.Exists == nil {
		bad("ACMEPolicy.Exists is nil, so any name a client sends would be ordered")
	}
	hp := &hostPolicy{exists: p.Exists, askTimeout: cmp.Or(p.AskTimeout, DefaultACMEAskTimeout), askClient: p.AskClient}
	if p.AskURL != "" {
		u, err := url.Parse(p.AskURL)
		switch {
		case err != nil:
			bad("AskURL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			bad("AskURL %q must be an absolute http or https URL", p.AskURL)
		default:
			hp.ask = u
		}
	}
	if hp.askClient == nil {
		hp.askClient = &http.Client{}
	}
	// Never follow redirects: a 3xx is not a yes.
	c := *hp.askClient
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hp.askClient = &c

	for _, f := range []struct {
		name string
		v    float64
	}{
		{"AskTimeout", float64(p.AskTimeout)},
		{"PerDomainRate", p.PerDomainRate},
		{"PerDomainBurst", float64(p.PerDomainBurst)},
		{"GlobalRate", p.GlobalRate},
		{"GlobalBurst", float64(p.GlobalBurst)},
		{"MaxConcurrentOrders", float64(p.MaxConcurrentOrders)},
	} {
		if !(f.v >= 0) || math.IsInf(f.v, 1) {
			bad("%s must be a finite number ≥ 0, got %v", f.name, f.v)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, 0, err
	}
	perHour := func(v float64, def float64) rate.Limit { return rate.Limit(cmp.Or(v, def) / 3600) }
	domains, _ := lru.New[string, *rate.Limiter](rateDomainsSize) // size is a positive constant
	limits := &orderLimits{
		perDomain:      perHour(p.PerDomainRate, DefaultACMEPerDomainRate),
		perDomainBurst: cmp.Or(p.PerDomainBurst, DefaultACMEPerDomainBurst),
		global:         rate.NewLimiter(perHour(p.GlobalRate, DefaultACMEGlobalRate), cmp.Or(p.GlobalBurst, DefaultACMEGlobalBurst)),
		domains:        domains,
	}
	return hp, limits, cmp.Or(p.MaxConcurrentOrders, DefaultACMEMaxConcurrentOrders), nil
}

// HostPolicy returns the [HostPolicy] for a [Manager] whose Issuer is a:
// the name must be canonical, a tenant must serve it, and the ask endpoint
// (if configured) must agree. Refusals are plain errors, which the Manager
// remembers; an ask endpoint that cannot be reached gives an error wrapping
// [ErrUnavailable]. The rates are applied later, by Issue.
func (a *ACME) HostPolicy() HostPolicy { return a.policy.allow }

// allow implements the HostPolicy.
func (p *hostPolicy) allow(ctx context.Context, host string) error {
	name, err := vhost.Normalize(host)
	if err != nil {
		return fmt.Errorf("certs: acme: %w", err)
	}
	if !p.exists(ctx, name) {
		return fmt.Errorf("%w: %q", errNoTenant, name)
	}
	if p.ask == nil {
		return nil
	}
	return p.askFor(ctx, name)
}

// askFor asks the ask endpoint about name.
func (p *hostPolicy) askFor(ctx context.Context, name string) error {
	u := *p.ask
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, p.askTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("certs: acme: ask %q: %w", name, err)
	}
	resp, err := p.askClient.Do(req)
	if err != nil {
		return fmt.Errorf("certs: acme: ask %q: %w: %w", name, ErrUnavailable, err)
	}
	// Drain a little so the connection can be reused; the body means
	// nothing.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %q (status %d)", errAskRefused, name, resp.StatusCode)
	}
	return nil
}

// orderLimits are the order rates of an ACMEPolicy.
type orderLimits struct {
	perDomain      rate.Limit
	perDomainBurst int
	global         *rate.Limiter
	domains        *lru.Cache[string, *rate.Limiter]
}

// registrableDomain returns the eTLD+1 of name ("example.co.uk" for
// "a.b.example.co.uk"), or name itself when it has none (a public suffix,
// a single label).
func registrableDomain(name string) string {
	d, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return name
	}
	return d
}

// reserve takes one order from the budget of name's registrable domain and
// from the global one, or neither: a name refused by the global rate does
// not use up its domain's.
func (l *orderLimits) reserve(name string, now time.Time) error {
	domain := registrableDomain(name)
	dl, ok := l.domains.Get(domain)
	if !ok {
		dl = rate.NewLimiter(l.perDomain, l.perDomainBurst)
		if prev, found, _ := l.domains.PeekOrAdd(domain, dl); found {
			dl = prev
		}
	}
	d := dl.ReserveN(now, 1)
	if !d.OK() || d.DelayFrom(now) > 0 {
		d.CancelAt(now)
		return fmt.Errorf("%w: domain %s", errRateLimited, domain)
	}
	g := l.global.ReserveN(now, 1)
	if !g.OK() || g.DelayFrom(now) > 0 {
		g.CancelAt(now)
		d.CancelAt(now)
		return fmt.Errorf("%w: all domains", errRateLimited)
	}
	return nil
}
