package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"massvhost/vhost"
)

// preloadAll reads and parses every pair the store lists into m.preloaded.
// This is what a classic server does at start, and what massvhost avoids by
// default: at ~20k hosts it takes tens of seconds and gigabytes of RSS, and
// every fork() for a CGI child then copies page tables in proportion. Pairs
// that fail validation are logged and skipped; an unavailable store fails
// the whole preload.
func (m *Manager) preloadAll() error {
	lister, ok := m.store.(Lister)
	if !ok {
		return fmt.Errorf("certs: preload: %T does not implement Lister", m.store)
	}
	start := time.Now()
	ctx := m.closing
	certs := make(map[string]*tls.Certificate)
	skipped := 0
	err := lister.List(ctx, func(name string) error {
		gctx, cancel := context.WithTimeout(ctx, m.lookupTimeout)
		certPEM, keyPEM, err := m.store.Get(gctx, name)
		cancel()
		if err != nil {
			if err := classify(name, err); errors.Is(err, ErrUnavailable) {
				return err
			}
			skipped++
			m.log.Warn("certs: preload: skipping", "host", name, "err", err)
			return nil
		}
		cert, err := parsePair(name, certPEM, keyPEM)
		if err != nil {
			skipped++
			m.log.Warn("certs: preload: skipping", "host", name, "reason", invalidReason(err), "err", err)
			return nil
		}
		if now := m.now(); now.After(cert.Leaf.NotAfter) || now.Before(cert.Leaf.NotBefore) {
			m.stats.expired.Add(1)
			m.log.Warn("certs: preload: certificate outside its validity period",
				"host", name, "not_before", cert.Leaf.NotBefore, "not_after", cert.Leaf.NotAfter)
		}
		certs[name] = cert
		return nil
	})
	if err != nil {
		return fmt.Errorf("certs: preload: %w", err)
	}
	m.preloaded = certs
	m.log.Info("certs: preloaded certificates", "count", len(certs), "skipped", skipped, "elapsed", time.Since(start))
	return nil
}

// lookupPreloaded answers from the preload map: exact name, then wildcard
// parent. A wildcard entry was validated to carry that literal wildcard SAN,
// so it covers every host directly under it.
func (m *Manager) lookupPreloaded(name string) (*tls.Certificate, error) {
	if c, ok := m.preloaded[name]; ok {
		m.stats.hits.Add(1)
		return c, nil
	}
	if parent, ok := vhost.WildcardParent(name); ok {
		if c, ok := m.preloaded[parent]; ok {
			m.stats.hits.Add(1)
			return c, nil
		}
	}
	m.stats.misses.Add(1)
	return nil, fmt.Errorf("certs: no certificate for %q: %w", name, ErrNotFound)
}
