package certs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"massvhost/vhost"
)

// SiteAliases keeps site aliases in Redis: the string <prefix>site:<host>
// holds the canonical name of the tenant that serves host (a customer's own
// domain pointed at an existing tenant), so many nodes learn a new site
// without touching any file. It implements vhost.AliasSource, which the
// resolver consults only after the directory pattern misses. Writes publish
// "site:<host>" on the store's invalidation channel; route it to the
// resolver's Forget with [RouteInvalidations].
//
// Lookups share the store's circuit breaker: when Redis is down, a request
// for an unknown host fails fast instead of waiting for a timeout.
//
// A SiteAliases is safe for concurrent use.
type SiteAliases struct {
	store *RedisStore
}

// Interface guard.
var _ vhost.AliasSource = (*SiteAliases)(nil)

// NewSiteAliases returns the alias table of store's Redis and key prefix.
func NewSiteAliases(store *RedisStore) *SiteAliases {
	return &SiteAliases{store: store}
}

func (a *SiteAliases) key(host string) string {
	return a.store.prefix + redisSitePrefix + host
}

// canonicalHost normalizes a host given by an operator or a request.
func canonicalHost(what, host string) (string, error) {
	h, err := vhost.Normalize(host)
	if err != nil {
		return "", fmt.Errorf("certs: site alias %s: %w", what, err)
	}
	return h, nil
}

// LookupAlias returns the tenant host serves, or an error wrapping
// vhost.ErrNoSuchHost when host is no alias, or one wrapping ErrUnavailable
// when Redis cannot be asked. host is normalized first; an invalid host
// wraps vhost.ErrInvalidName and costs no Redis command. A stored tenant that
// is not a canonical host name is reported as an error, never returned.
func (a *SiteAliases) LookupAlias(ctx context.Context, host string) (string, error) {
	h, err := canonicalHost("host", host)
	if err != nil {
		return "", err
	}
	if !a.store.breaker.allow() {
		return "", fmt.Errorf("certs: site alias %q: circuit breaker open: %w", h, ErrUnavailable)
	}
	tenant, err := a.store.client.Get(ctx, a.key(h)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		err = redisError("site alias lookup", h, err)
	}
	a.store.record(err)
	switch {
	case errors.Is(err, redis.Nil):
		return "", fmt.Errorf("certs: site alias %q: %w", h, vhost.ErrNoSuchHost)
	case err != nil:
		return "", err
	}
	t, err := vhost.Normalize(tenant)
	if err != nil || t != tenant {
		return "", fmt.Errorf("certs: site alias %q: stored tenant %.64q is not a canonical host name", h, tenant)
	}
	return t, nil
}

// SetAlias makes host an alias of tenant and publishes the change. Both
// names are normalized; an alias of itself is refused.
func (a *SiteAliases) SetAlias(ctx context.Context, host, tenant string) error {
	h, err := canonicalHost("host", host)
	if err != nil {
		return err
	}
	t, err := canonicalHost("tenant", tenant)
	if err != nil {
		return err
	}
	if h == t {
		return fmt.Errorf("certs: site alias %q: a host cannot be an alias of itself", h)
	}
	if err := a.store.client.Set(ctx, a.key(h), t, 0).Err(); err != nil {
		return redisError("site alias set", h, err)
	}
	return a.store.publish(ctx, SiteInvalidationPrefix+h)
}

// RemoveAlias deletes the alias for host, if any, and publishes the change.
func (a *SiteAliases) RemoveAlias(ctx context.Context, host string) error {
	h, err := canonicalHost("host", host)
	if err != nil {
		return err
	}
	if err := a.store.client.Del(ctx, a.key(h)).Err(); err != nil {
		return redisError("site alias remove", h, err)
	}
	return a.store.publish(ctx, SiteInvalidationPrefix+h)
}

// ListAliases calls fn for every alias, using SCAN; a host may be reported
// twice if the keyspace changes during the walk. Keys whose host or tenant
// is not canonical are skipped. An error from fn stops the walk and is
// returned.
func (a *SiteAliases) ListAliases(ctx context.Context, fn func(host, tenant string) error) error {
	prefix := a.store.prefix + redisSitePrefix
	return a.store.scan(ctx, escapeGlob(prefix)+"*", func(keys []string) error {
		hosts := make([]string, 0, len(keys))
		for _, k := range keys {
			h := strings.TrimPrefix(k, prefix)
			if c, err := vhost.Normalize(h); err == nil && c == h {
				hosts = append(hosts, h)
			}
		}
		// MGET would fail across Cluster slots; a pipeline of GETs
		// works everywhere in one round trip per node.
		cmds := make([]*redis.StringCmd, len(hosts))
		_, err := a.store.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, h := range hosts {
				cmds[i] = p.Get(ctx, a.key(h))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) && !isWrongType(err) {
			return redisError("site alias list", "", err)
		}
		for i, h := range hosts {
			t, err := cmds[i].Result()
			if err != nil {
				continue // deleted since SCAN saw it, or not a string
			}
			if c, err := vhost.Normalize(t); err != nil || c != t {
				continue
			}
			if err := fn(h, t); err != nil {
				return err
			}
		}
		return nil
	})
}
