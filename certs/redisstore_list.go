package certs

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// This file enumerates a RedisStore: SCAN over one node or every Cluster
// master, for "certs ls", preload, expiry reports and site alias listings.

// List calls fn for every name stored in either layout, using SCAN (never
// KEYS, which blocks Redis). Names come first from the hash layout, then from
// legacy pairs that have no hash, so each name is reported once, as long as
// nothing is written during the walk. Keys under the prefix that are not
// canonical names are skipped. In Cluster every master is scanned.
func (s *RedisStore) List(ctx context.Context, fn func(name string) error) error {
	hashes := escapeGlob(s.prefix+redisHashPrefix) + "*"
	err := s.scan(ctx, hashes, func(keys []string) error {
		return s.emit(keys, func(k string) string {
			return strings.TrimPrefix(k, s.prefix+redisHashPrefix)
		}, fn)
	})
	if err != nil {
		return err
	}
	legacy := escapeGlob(s.prefix) + "*" + redisLegacyCert
	return s.scan(ctx, legacy, func(keys []string) error {
		var names []string
		for _, k := range keys {
			rest := strings.TrimPrefix(k, s.prefix)
			if strings.HasPrefix(rest, redisHashPrefix) || strings.HasPrefix(rest, redisSitePrefix) {
				continue
			}
			names = append(names, strings.TrimSuffix(rest, redisLegacyCert))
		}
		names = dedupeCanonical(names)
		// Skip names that also have a hash: the first pass reported
		// them.
		for len(names) > 0 {
			chunk := names[:min(len(names), redisBatchExists)]
			names = names[len(chunk):]
			exists := make([]*redis.IntCmd, len(chunk))
			_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, n := range chunk {
					exists[i] = p.Exists(ctx, s.hashKey(n))
				}
				return nil
			})
			if err != nil {
				return redisError("list", "", err)
			}
			for i, n := range chunk {
				if exists[i].Val() == 0 {
					if err := fn(n); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// emit maps keys to names, drops non-canonical and duplicate ones (SCAN may
// return a key twice) and calls fn for each.
func (s *RedisStore) emit(keys []string, toName func(string) string, fn func(string) error) error {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = toName(k)
	}
	for _, n := range dedupeCanonical(names) {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

// dedupeCanonical returns the canonical names in names, each once, in order.
func dedupeCanonical(names []string) []string {
	seen := make(map[string]struct{}, len(names))
	out := names[:0]
	for _, n := range names {
		if _, dup := seen[n]; dup || checkStoreName(n) != nil {
			continue
		}
		seen[n] = struct{}{}
		out = append(out, n)
	}
	return out
}

// scan runs SCAN MATCH pattern over the whole keyspace (every master in
// Cluster, one after another) and hands each batch of keys to fn.
func (s *RedisStore) scan(ctx context.Context, pattern string, fn func(keys []string) error) error {
	scanOne := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, redisScanCount).Result()
			if err != nil {
				return redisError("scan", "", err)
			}
			if len(keys) > 0 {
				if err := fn(keys); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	cc, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return scanOne(ctx, s.client)
	}
	// ForEachMaster runs its callbacks concurrently; collect the masters
	// and scan them one by one so fn is never called concurrently.
	var (
		mastersMu sync.Mutex
		masters   []*redis.Client
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		mastersMu.Lock()
		masters = append(masters, c)
		mastersMu.Unlock()
		return nil
	})
	if err != nil {
		return redisError("scan", "", err)
	}
	for _, m := range masters {
		if err := scanOne(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// escapeGlob escapes the SCAN MATCH metacharacters in a literal (the
// operator's key prefix may contain them).
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
