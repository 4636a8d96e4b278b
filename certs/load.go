package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"massvhost/vhost"
)

// errIssue marks an Issuer failure. It wraps ErrUnavailable (the failure is
// ours, not the client's) but is remembered in the negative cache, so that a
// failing CA is not asked again by every handshake.
var errIssue = fmt.Errorf("%w: issuance failed", ErrUnavailable)

// await runs or joins the load of name and waits for it or for ctx. stale is
// the cached entry being refreshed, or nil on a miss; it is served when the
// caller's ctx ends first.
func (m *Manager) await(ctx context.Context, name string, stale *entry) (*tls.Certificate, error) {
	if stale != nil {
		// Let a later lookup refresh again if this one gives up or its
		// result is not cached; a load in flight is joined, not repeated.
		defer stale.refreshing.Store(false)
	}
	ch := m.group.DoChan(name, func() (any, error) { return m.load(ctx, name, stale) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		e := r.Val.(*entry)
		if e == stale {
			m.stats.staleHits.Add(1)
		}
		return e.cert, nil
	case <-ctx.Done():
		if stale != nil {
			m.stats.staleHits.Add(1)
			return stale.cert, nil
		}
		return nil, fmt.Errorf("certs: lookup %q: %w: %w", name, ErrUnavailable, context.Cause(ctx))
	}
}

// load is the shared load of name, run once for all concurrent lookups. It
// runs on callerCtx without its cancellation: the first client to hang up
// must not fail everyone who joined. Each store call has its own deadline
// instead, and Close cancels the whole load.
func (m *Manager) load(callerCtx context.Context, name string, stale *entry) (*entry, error) {
	if !m.beginLoad() {
		if stale != nil {
			return stale, nil
		}
		return nil, fmt.Errorf("certs: lookup %q: %w: manager closed", name, ErrUnavailable)
	}
	defer m.loads.Done()
	ctx, cancel := context.WithCancel(context.WithoutCancel(callerCtx))
	defer cancel()
	defer context.AfterFunc(m.closing, cancel)()

	// A lookup that missed just before another load committed lands here
	// after that load finished; answer from the caches it filled.
	now := m.now()
	if cur, ok := m.cache.Peek(name); ok && cur != stale && cur.fresh(now, m.gen.Load()) {
		return cur, nil
	}
	if n, ok := m.neg.Peek(name); ok && stale == nil && now.Before(n.until) {
		return nil, n.err
	}
	if stale == nil && !m.newNames.allow(now) {
		m.stats.rateLimited.Add(1)
		return nil, fmt.Errorf("certs: lookup %q: %w: new-name rate limit exceeded", name, ErrUnavailable)
	}
	epoch, gen := m.epoch.Load(), m.gen.Load()
	m.stats.loads.Add(1)
	start := time.Now()
	e, err := m.fetch(ctx, name, gen, epoch)
	now = m.now()
	if err == nil {
		m.commit(epoch, func() {
			m.remember(name, e)
			m.neg.Remove(name)
		})
		return e, nil
	}
	m.count(err)
	m.logFailure(name, err, stale != nil, time.Since(start))
	if stale != nil && !errors.Is(err, ErrNotFound) {
		// Stale-if-error: keep serving what was valid, ask again later.
		m.commit(epoch, func() { m.remember(name, stale.clone(now.Add(m.negTTL), gen, true)) })
		return stale, nil
	}
	m.commit(epoch, func() {
		if stale != nil {
			m.cache.Remove(name) // deleted from the store
		}
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidCert) || errors.Is(err, errIssue) {
			m.neg.Add(name, negative{until: now.Add(m.negTTL), err: err})
		}
	})
	return nil, err
}

// commit runs fn, which writes a load's result to the caches, unless an
// invalidation happened since the load read epoch: the result may predate
// it. Invalidations wait for fn to finish, so none slips in between the
// check and the write.
func (m *Manager) commit(epoch uint64, fn func()) {
	m.commitMu.RLock()
	defer m.commitMu.RUnlock()
	if m.epoch.Load() == epoch {
		fn()
	}
}

// fetch finds a certificate for name: the exact store entry, else the
// wildcard parent (reusing a cached parsed copy), else the Issuer.
func (m *Manager) fetch(ctx context.Context, name string, gen, epoch uint64) (*entry, error) {
	e, err := m.fetchFrom(ctx, name, name, gen)
	if !errors.Is(err, ErrNotFound) {
		return e, err
	}
	if parent, ok := vhost.WildcardParent(name); ok {
		e, err = m.fetchParent(ctx, parent, name, gen, epoch)
		if !errors.Is(err, ErrNotFound) {
			return e, err
		}
	}
	if m.issuer == nil {
		return nil, fmt.Errorf("certs: no certificate for %q: %w", name, ErrNotFound)
	}
	return m.issue(ctx, name, gen)
}

// fetchParent finds the wildcard certificate parent for name. Both answers
// are cached under parent, so that a flood of random names under one domain
// costs one store read per name (the exact one), not two.
func (m *Manager) fetchParent(ctx context.Context, parent, name string, gen, epoch uint64) (*entry, error) {
	now := m.now()
	if pe, ok := m.cache.Peek(parent); ok && pe.fresh(now, gen) && pe.cert.Leaf.VerifyHostname(name) == nil {
		return pe.clone(pe.refreshAt, gen, pe.stale), nil
	}
	if n, ok := m.neg.Peek(parent); ok && now.Before(n.until) && errors.Is(n.err, ErrNotFound) {
		return nil, n.err
	}
	// The parent read is a second store read for the same new name: it
	// takes its own token, so that a flood of names under distinct parents
	// costs at most new_name_rate reads per second, not twice that.
	if !m.newNames.allow(now) {
		m.stats.rateLimited.Add(1)
		return nil, fmt.Errorf("certs: lookup %q: %w: new-name rate limit exceeded", parent, ErrUnavailable)
	}
	e, err := m.fetchFrom(ctx, parent, name, gen)
	if errors.Is(err, ErrNotFound) {
		m.commit(epoch, func() { m.neg.Add(parent, negative{until: m.now().Add(m.negTTL), err: err}) })
	}
	return e, err
}

// fetchFrom reads storeName from the store and validates the pair for host.
func (m *Manager) fetchFrom(ctx context.Context, storeName, host string, gen uint64) (*entry, error) {
	sctx, cancel := context.WithTimeout(ctx, m.lookupTimeout)
	certPEM, keyPEM, err := m.store.Get(sctx, storeName)
	cancel()
	if err != nil {
		return nil, classify(storeName, err)
	}
	return m.newEntry(host, storeName, certPEM, keyPEM, gen)
}

// classify makes sure a store error wraps one of the sentinels Lookup
// documents. An unclassified error is treated as unavailability: it is not
// remembered, and a cached certificate keeps being served.
func classify(name string, err error) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCert) {
		return err
	}
	return fmt.Errorf("certs: store %q: %w: %w", name, ErrUnavailable, err)
}

// issue asks the HostPolicy, then the Issuer, and writes the result back to
// the store if it is a Writer.
func (m *Manager) issue(ctx context.Context, name string, gen uint64) (*entry, error) {
	pctx, cancel := context.WithTimeout(ctx, m.lookupTimeout)
	err := m.policy(pctx, name)
	cancel()
	if errors.Is(err, ErrUnavailable) {
		return nil, fmt.Errorf("certs: host policy for %q: %w", name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("certs: no certificate for %q, issuance refused: %w: %w", name, ErrNotFound, err)
	}
	ictx, cancel := context.WithTimeout(ctx, m.issueTimeout)
	defer cancel()
	certPEM, keyPEM, err := m.issuer.Issue(ictx, name)
	if err != nil {
		return nil, fmt.Errorf("certs: issue %q: %w: %w", name, errIssue, err)
	}
	e, err := m.newEntry(name, name, certPEM, keyPEM, gen)
	if err != nil {
		return nil, err
	}
	m.stats.issued.Add(1)
	m.log.Info("certs: issued certificate", "host", name, "not_after", e.cert.Leaf.NotAfter)
	if w, ok := m.store.(Writer); ok {
		wctx, cancel := context.WithTimeout(ctx, m.lookupTimeout)
		defer cancel()
		if err := w.Put(wctx, name, certPEM, keyPEM); err != nil {
			m.log.Warn("certs: could not store issued certificate", "host", name, "err", err)
		}
	}
	return e, nil
}

// newEntry validates a pair read under source for host and wraps it in a
// cache entry. A certificate outside its validity period is served (a
// client may have a skewed clock, and failing the handshake is no better)
// but counted and logged.
func (m *Manager) newEntry(host, source string, certPEM, keyPEM []byte, gen uint64) (*entry, error) {
	cert, err := parsePair(host, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	now := m.now()
	refreshAt := now.Add(m.ttl)
	leaf := cert.Leaf
	switch {
	case now.After(leaf.NotAfter) || now.Before(leaf.NotBefore):
		m.stats.expired.Add(1)
		if m.logs.allow("validity\x00"+host, now) {
			m.log.Warn("certs: serving a certificate outside its validity period",
				"host", host, "store_name", source, "not_before", leaf.NotBefore, "not_after", leaf.NotAfter)
		}
	case leaf.NotAfter.Before(refreshAt):
		// Re-read at expiry: a renewal has probably been written by then.
		refreshAt = leaf.NotAfter
	}
	return &entry{cert: cert, source: source, refreshAt: refreshAt, gen: gen}, nil
}

// remember caches e under name and, for a wildcard certificate, under the
// wildcard store name, so that the next host under it skips the parse.
func (m *Manager) remember(name string, e *entry) {
	if m.cache.Add(name, e) {
		m.stats.evictions.Add(1)
	}
	if e.source != name {
		if m.cache.Add(e.source, e.clone(e.refreshAt, e.gen, e.stale)) {
			m.stats.evictions.Add(1)
		}
	}
}

func (m *Manager) count(err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		m.stats.notFound.Add(1)
	case errors.Is(err, ErrInvalidCert):
		m.stats.invalid.Add(1)
	default:
		m.stats.unavailable.Add(1)
	}
}

// logFailure logs a failed load, at most once per logEvery per host and
// kind. Absent certificates are routine and logged at debug level only.
func (m *Manager) logFailure(name string, err error, stale bool, elapsed time.Duration) {
	ctx := context.Background()
	if errors.Is(err, ErrNotFound) {
		if m.log.Enabled(ctx, slog.LevelDebug) {
			m.log.Debug("certs: no certificate", "host", name, "err", err)
		}
		return
	}
	if !m.logs.allow("load\x00"+name, m.now()) {
		return
	}
	if reason := invalidReason(err); reason != "" {
		m.log.Warn("certs: invalid certificate in store", "host", name, "reason", reason, "stale", stale, "err", err)
		return
	}
	m.log.Warn("certs: certificate load failed", "host", name, "stale", stale, "elapsed", elapsed, "err", err)
}
