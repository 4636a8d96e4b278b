package certs

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults for RedisOptions fields left zero. They keep a dead or stalled
// Redis far below the TLS handshake budget (THREATS TLS-06).
const (
	DefaultRedisDialTimeout  = time.Second
	DefaultRedisReadTimeout  = 500 * time.Millisecond
	DefaultRedisWriteTimeout = 500 * time.Millisecond
)

// Key layout under RedisOptions.KeyPrefix. Host names never contain ':',
// so these namespaces cannot collide with each other or with a host.
const (
	redisHashPrefix  = "cert:"      // <prefix>cert:<name> → hash{crt, key}
	redisSitePrefix  = "site:"      // <prefix>site:<host> → tenant
	redisChannel     = "invalidate" // <prefix>invalidate, pub/sub channel
	redisLegacyCert  = ".crt"       // <prefix><name>.crt (ngx_mruby layout)
	redisLegacyKey   = ".key"       // <prefix><name>.key
	redisHashCrt     = "crt"
	redisHashKey     = "key"
	redisScanCount   = 1000
	redisBatchExists = 500
)

// Layout names the Redis key layout a pair was read from.
type Layout string

const (
	// LayoutHash is the atomic layout every write uses: one hash
	// <prefix>cert:<name> with fields crt and key, written by one HSET, so a
	// reader sees the old pair or the new one and never a mix.
	LayoutHash Layout = "hash"
	// LayoutLegacy is the ngx_mruby layout: two strings <prefix><name>.crt
	// and <prefix><name>.key. It is read so existing data keeps working, and
	// never written.
	LayoutLegacy Layout = "legacy"
)

// RedisOptions configure a RedisStore. The zero value of every field means
// its documented default, except Addrs, which must name at least one server.
type RedisOptions struct {
	// Addrs are host:port addresses: the server (standalone), the seed
	// nodes (Cluster) or the sentinels (MasterName set).
	Addrs []string
	// MasterName selects Redis Sentinel: Addrs are sentinels that name
	// the current master of this name.
	MasterName string
	// Cluster selects Redis Cluster: Addrs are seed nodes.
	Cluster bool
	// Username and Password authenticate (ACL user, or "" for the
	// default user). With Sentinel they authenticate to the master.
	Username, Password string
	// DB is the database number (standalone and Sentinel only).
	DB int
	// TLS, if non-nil, encrypts connections to Redis with this config.
	TLS *tls.Config
	// KeyPrefix is prepended to every key and to the channel name, so
	// several deployments can share one Redis.
	KeyPrefix string
	// DialTimeout, ReadTimeout and WriteTimeout bound one connection
	// attempt and one socket read or write; if zero, 1s, 500ms and 500ms.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is connections per node; if zero, go-redis' default
	// (10 per CPU).
	PoolSize int
	// BreakerThreshold is how many consecutive unavailable errors open
	// the circuit breaker; if zero, DefaultBreakerThreshold.
	BreakerThreshold int
	// BreakerCooldown is the first open period, doubled after each failed
	// probe up to BreakerMaxCooldown; if zero, DefaultBreakerCooldown and
	// DefaultBreakerMaxCooldown.
	BreakerCooldown, BreakerMaxCooldown time.Duration
	// Logger receives subscription and breaker events; if nil,
	// slog.Default().
	Logger *slog.Logger
}

// RedisStore keeps certificates in Redis, shared by every node. It reads two
// layouts (see [LayoutHash] and [LayoutLegacy]) and writes only the hash
// layout; after each write it publishes the name on <prefix>invalidate so
// every node's [Subscriber] drops its cached copy.
//
// Get maps a missing pair to ErrNotFound, and timeouts, refused or broken
// connections, an exhausted pool, a loading or read-only server and other
// server-side refusals to ErrUnavailable. A value of the wrong Redis type, a
// pair with only one half, or a value over [MaxPEMSize] is an error wrapping
// ErrInvalidCert: the data is wrong, and the Manager caches that result
// negatively.
// A circuit breaker makes Get fail fast with ErrUnavailable while Redis is
// down.
//
// Names must be canonical (vhost.Normalize output, or "*." and such a name);
// anything else is rejected before a key is built, so an SNI value can never
// reach Redis as a glob, a separator or another namespace.
//
// A RedisStore is safe for concurrent use.
type RedisStore struct {
	client  redis.UniversalClient
	cluster bool
	prefix  string
	breaker *breaker
	log     *slog.Logger
}

// Interface guards.
var (
	_ Store  = (*RedisStore)(nil)
	_ Writer = (*RedisStore)(nil)
	_ Lister = (*RedisStore)(nil)
)

// NewRedisStore connects lazily: it validates opts and builds the client, but
// does not contact Redis (use Ping for that), so a node starts while Redis is
// down and serves what its other tiers have.
func NewRedisStore(opts RedisOptions) (*RedisStore, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("certs: redis: no addresses")
	}
	if opts.Cluster && opts.MasterName != "" {
		return nil, errors.New("certs: redis: cluster and master_name are exclusive")
	}
	if !opts.Cluster && opts.MasterName == "" && len(opts.Addrs) > 1 {
		return nil, fmt.Errorf("certs: redis: %d addresses need cluster or master_name", len(opts.Addrs))
	}
	if opts.Cluster && opts.DB != 0 {
		return nil, errors.New("certs: redis: Redis Cluster has only db 0")
	}
	u := &redis.UniversalOptions{
		Addrs:        opts.Addrs,
		MasterName:   opts.MasterName,
		Username:     opts.Username,
		Password:     opts.Password,
		DB:           opts.DB,
		TLSConfig:    opts.TLS,
		DialTimeout:  cmp.Or(opts.DialTimeout, DefaultRedisDialTimeout),
		ReadTimeout:  cmp.Or(opts.ReadTimeout, DefaultRedisReadTimeout),
		WriteTimeout: cmp.Or(opts.WriteTimeout, DefaultRedisWriteTimeout),
		PoolSize:     opts.PoolSize,
		// The caller's deadline (the Manager's lookup timeout) bounds
		// every command, not only the socket timeouts.
		ContextTimeoutEnabled: true,
		// One retry absorbs a pooled connection that died with a
		// restarted server; more would multiply the wait on a dead one.
		MaxRetries:    1,
		DialerRetries: 1,
		// No CLIENT SETINFO / MAINT_NOTIFICATIONS handshake commands:
		// older servers reject them and they add round trips per dial.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	var client redis.UniversalClient
	switch {
	case opts.MasterName != "":
		client = redis.NewFailoverClient(u.Failover())
	case opts.Cluster:
		client = redis.NewClusterClient(u.Cluster())
	default:
		client = redis.NewClient(u.Simple())
	}
	return &RedisStore{
		client:  client,
		cluster: opts.Cluster,
		prefix:  opts.KeyPrefix,
		breaker: newBreaker(opts.BreakerThreshold, opts.BreakerCooldown, opts.BreakerMaxCooldown),
		log:     cmp.Or(opts.Logger, slog.Default()),
	}, nil
}

// Client returns the underlying go-redis client, shared with the
// [Subscriber] and [SiteAliases]. Callers must not close it.
func (s *RedisStore) Client() redis.UniversalClient { return s.client }

// Close closes the connections. Subscribers and SiteAliases built on the
// store stop working.
func (s *RedisStore) Close() error { return s.client.Close() }

// Ping reports whether Redis answers, for health checks and `massvhost check`.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return redisError("ping", "", err)
	}
	return nil
}

func (s *RedisStore) hashKey(name string) string   { return s.prefix + redisHashPrefix + name }
func (s *RedisStore) legacyCrt(name string) string { return s.prefix + name + redisLegacyCert }
func (s *RedisStore) legacyKey(name string) string { return s.prefix + name + redisLegacyKey }
func (s *RedisStore) channel() string              { return s.prefix + redisChannel }

// Get returns the pair for name from the hash layout, or else from the
// legacy layout, in one round trip. See [RedisStore] for the errors.
func (s *RedisStore) Get(ctx context.Context, name string) (certPEM, keyPEM []byte, err error) {
	certPEM, keyPEM, _, err = s.GetWithLayout(ctx, name)
	return certPEM, keyPEM, err
}

// GetWithLayout is Get also reporting which layout answered ("certs get").
func (s *RedisStore) GetWithLayout(ctx context.Context, name string) (certPEM, keyPEM []byte, layout Layout, err error) {
	if err := checkStoreName(name); err != nil {
		return nil, nil, "", fmt.Errorf("certs: redis get: %w: %w", ErrNotFound, err)
	}
	if !s.breaker.allow() {
		return nil, nil, "", fmt.Errorf("certs: redis get %q: circuit breaker open: %w", name, ErrUnavailable)
	}
	certPEM, keyPEM, layout, err = s.fetch(ctx, name)
	s.record(err)
	return certPEM, keyPEM, layout, err
}

// record reports a call's outcome to the breaker and logs when it opens or
// closes.
func (s *RedisStore) record(err error) {
	changed, state := s.breaker.done(breakerOutcome(err))
	switch {
	case !changed:
	case state == breakerClosed:
		s.log.Info("certs: redis reachable again; circuit breaker closed", "store", "redis")
	default:
		s.log.Warn("certs: redis unavailable; circuit breaker open, lookups fail fast", "store", "redis", "error", err)
	}
}

// pairCmds are the replies of one name's reads inside a pipeline.
type pairCmds struct {
	hash     *redis.Cmd
	crt, key *redis.StringCmd
}

// hashGetScript reads the crt and key fields of a hash only when neither
// is longer than ARGV[1] bytes, and otherwise returns their two lengths
// (integers) instead. Store contents are untrusted: HMGET would transfer a
// field of any size (up to Redis's 512 MB) into the server's memory before
// the cap could be checked, and a check in a separate round trip would race
// with a writer. The script runs atomically, in the same round trip.
const hashGetScript = `local c = redis.call('HSTRLEN', KEYS[1], ARGV[2])
local k = redis.call('HSTRLEN', KEYS[1], ARGV[3])
local max = tonumber(ARGV[1])
if c > max or k > max then return {c, k} end
return redis.call('HMGET', KEYS[1], ARGV[2], ARGV[3])`

// queueGet queues the reads for name: the hash's fields through
// hashGetScript, and GETRANGE of each legacy string. GETRANGE returns at
// most MaxPEMSize+1 bytes, so an oversized legacy value is detected without
// transferring it either. EVAL rather than EVALSHA: a pipeline cannot fall
// back on NOSCRIPT by itself, Redis caches the compiled script by its
// digest, and EVALSHA measured no faster here (BenchmarkRedisStoreGet).
func (s *RedisStore) queueGet(ctx context.Context, p redis.Pipeliner, name string) pairCmds {
	return pairCmds{
		hash: p.Eval(ctx, hashGetScript, []string{s.hashKey(name)}, MaxPEMSize, redisHashCrt, redisHashKey),
		crt:  p.GetRange(ctx, s.legacyCrt(name), 0, MaxPEMSize),
		key:  p.GetRange(ctx, s.legacyKey(name), 0, MaxPEMSize),
	}
}

// fetch runs one pipeline for name. Outside Cluster it is a MULTI/EXEC, so
// the legacy pair, too, is read at one instant; in Cluster the three keys
// live in different slots and go-redis sends each to its node (the hash read
// stays atomic by itself).
func (s *RedisStore) fetch(ctx context.Context, name string) ([]byte, []byte, Layout, error) {
	var p redis.Pipeliner
	if s.cluster {
		p = s.client.Pipeline()
	} else {
		p = s.client.TxPipeline()
	}
	cmds := s.queueGet(ctx, p, name)
	_, err := p.Exec(ctx)
	if err != nil && !isWrongType(err) {
		return nil, nil, "", redisError("get", name, err)
	}
	return cmds.decode(name)
}

// decode turns the replies into a pair: the hash if it has fields, else the
// legacy strings.
func (c pairCmds) decode(name string) ([]byte, []byte, Layout, error) {
	if err := c.hash.Err(); err != nil {
		return nil, nil, "", replyError(name, err)
	}
	vals, _ := c.hash.Val().([]any)
	if len(vals) == 2 {
		crtLen, ok1 := vals[0].(int64)
		keyLen, ok2 := vals[1].(int64)
		if ok1 && ok2 {
			return nil, nil, LayoutHash, invalid(name, fmt.Sprintf("redis hash field of %d bytes exceeds %d (not read)", max(crtLen, keyLen), MaxPEMSize), nil)
		}
	}
	if len(vals) == 2 && (vals[0] != nil || vals[1] != nil) {
		crt, ok1 := vals[0].(string)
		key, ok2 := vals[1].(string)
		if !ok1 || !ok2 {
			return nil, nil, LayoutHash, invalid(name, "redis hash has only one of the crt and key fields", nil)
		}
		return checkPairSize(name, LayoutHash, crt, key)
	}
	for _, cmd := range []*redis.StringCmd{c.crt, c.key} {
		if err := cmd.Err(); err != nil {
			return nil, nil, "", replyError(name, err)
		}
	}
	crt, key := c.crt.Val(), c.key.Val()
	switch {
	case crt == "" && key == "":
		return nil, nil, "", fmt.Errorf("certs: redis get %q: %w", name, ErrNotFound)
	case crt == "" || key == "":
		return nil, nil, LayoutLegacy, invalid(name, "redis has only one of the .crt and .key keys", nil)
	}
	return checkPairSize(name, LayoutLegacy, crt, key)
}

// replyError classifies the error of one read: a key of our layout holding a
// value of another Redis type is bad data, anything else an outage.
func replyError(name string, err error) error {
	if isWrongType(err) {
		return invalid(name, "redis key holds a value of the wrong type", err)
	}
	return redisError("get", name, err)
}

func checkPairSize(name string, l Layout, crt, key string) ([]byte, []byte, Layout, error) {
	if len(crt) > MaxPEMSize || len(key) > MaxPEMSize {
		return nil, nil, l, invalid(name, fmt.Sprintf("redis %s value exceeds %d bytes", l, MaxPEMSize), nil)
	}
	return []byte(crt), []byte(key), l, nil
}

// Put stores the pair in the hash layout with one HSET, then publishes name
// on the invalidation channel. Legacy keys for name, if any, are left for
// readers that still use that layout; Get ignores them once the hash exists.
func (s *RedisStore) Put(ctx context.Context, name string, certPEM, keyPEM []byte) error {
	return s.PutBatch(ctx, []Pair{{Name: name, CertPEM: certPEM, KeyPEM: keyPEM}})
}

// Pair is one certificate chain and key to store under Name.
type Pair struct {
	Name            string
	CertPEM, KeyPEM []byte
}

// PutBatch stores many pairs with one pipeline of HSETs and then publishes
// every name with a second pipeline ("certs import"). Each pair is written
// atomically; the batch as a whole is not. The invalidations follow the
// writes so that no node re-reads the old pair after hearing of the new one.
func (s *RedisStore) PutBatch(ctx context.Context, pairs []Pair) error {
	for _, p := range pairs {
		if err := checkStoreName(p.Name); err != nil {
			return fmt.Errorf("certs: redis put: %w", err)
		}
		if len(p.CertPEM) == 0 || len(p.KeyPEM) == 0 {
			return fmt.Errorf("certs: redis put %q: empty certificate or key", p.Name)
		}
		if len(p.CertPEM) > MaxPEMSize || len(p.KeyPEM) > MaxPEMSize {
			return fmt.Errorf("certs: redis put %q: value over %d bytes", p.Name, MaxPEMSize)
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, pair := range pairs {
			p.HSet(ctx, s.hashKey(pair.Name), redisHashCrt, pair.CertPEM, redisHashKey, pair.KeyPEM)
		}
		return nil
	})
	if err != nil {
		return redisError("put", pairs[0].Name, err)
	}
	names := make([]string, len(pairs))
	for i, p := range pairs {
		names[i] = p.Name
	}
	return s.publish(ctx, names...)
}

// publish sends each name on the invalidation channel.
func (s *RedisStore) publish(ctx context.Context, names ...string) error {
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, n := range names {
			p.Publish(ctx, s.channel(), n)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("certs: redis: stored, but publishing the invalidation failed (other nodes see the change after their cache TTL): %w", redisError("publish", names[0], err))
	}
	return nil
}

// Delete removes name in both layouts and publishes the invalidation. It is
// not an error if name is absent.
func (s *RedisStore) Delete(ctx context.Context, name string) error {
	if err := checkStoreName(name); err != nil {
		return fmt.Errorf("certs: redis delete: %w", err)
	}
	// Separate DELs: in Cluster the three keys live in different slots.
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.hashKey(name))
		p.Del(ctx, s.legacyCrt(name))
		p.Del(ctx, s.legacyKey(name))
		return nil
	})
	if err != nil {
		return redisError("delete", name, err)
	}
	return s.publish(ctx, name)
}

// getResult is one name's outcome in getBatch.
type getResult struct {
	CertPEM, KeyPEM []byte
	Layout          Layout
	Err             error
}

// getBatch reads many names in one pipeline, for import and expiry reports.
// It bypasses the breaker: it serves the operator, not handshakes.
func (s *RedisStore) getBatch(ctx context.Context, names []string) ([]getResult, error) {
	out := make([]getResult, len(names))
	cmds := make([]pairCmds, len(names))
	p := s.client.Pipeline()
	queued := 0
	for i, n := range names {
		if err := checkStoreName(n); err != nil {
			out[i].Err = fmt.Errorf("certs: redis get: %w: %w", ErrNotFound, err)
			continue
		}
		cmds[i] = s.queueGet(ctx, p, n)
		queued++
	}
	if queued > 0 {
		if _, err := p.Exec(ctx); err != nil && !isWrongType(err) {
			return nil, redisError("get", names[0], err)
		}
	}
	for i, n := range names {
		if out[i].Err != nil {
			continue
		}
		out[i].CertPEM, out[i].KeyPEM, out[i].Layout, out[i].Err = cmds[i].decode(n)
	}
	return out, nil
}

// isWrongType reports whether err is a WRONGTYPE reply: a key of our layout
// holds a value of another type. That is bad data, not an outage.
func isWrongType(err error) bool {
	return redis.HasErrorPrefix(err, "WRONGTYPE")
}

// redisError translates a go-redis error at the package boundary: redis.Nil
// becomes ErrNotFound, WRONGTYPE stays a plain data error, and everything else
// (network, timeouts, pool, closed client, server refusals such as LOADING,
// READONLY, CLUSTERDOWN, NOAUTH) wraps ErrUnavailable.
func redisError(op, name string, err error) error {
	subject := "certs: redis " + op
	if name != "" {
		subject += fmt.Sprintf(" %q", name)
	}
	switch {
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("%s: %w", subject, ErrNotFound)
	case isWrongType(err):
		return fmt.Errorf("%s: %w", subject, err)
	default:
		return fmt.Errorf("%s: %w: %w", subject, ErrUnavailable, err)
	}
}

// breakerOutcome classifies a Get result for the circuit breaker: only an
// unavailable store counts as a failure, and a caller that canceled tells
// nothing about Redis.
func breakerOutcome(err error) outcome {
	switch {
	case err == nil || !errors.Is(err, ErrUnavailable):
		return outcomeSuccess
	case errors.Is(err, context.Canceled):
		return outcomeIgnored
	default:
		return outcomeFailure
	}
}
