package certs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// acmeState is what the nodes of a cluster share about ACME: the account
// key, challenge responses, issuance locks, failure backoffs and the
// renewal schedule. redisACMEState shares them through Redis;
// localACMEState keeps them in a directory and in memory for a single node.
// Errors wrap ErrNotFound or ErrUnavailable like a Store's.
type acmeState interface {
	// accountKey returns the PEM account key, first storing create's
	// output if there is none; every caller in the cluster gets the same
	// key.
	accountKey(ctx context.Context, create func() ([]byte, error)) ([]byte, error)

	putChallenge(ctx context.Context, key string, value []byte, ttl time.Duration) error
	getChallenge(ctx context.Context, key string) ([]byte, error)
	deleteChallenge(ctx context.Context, key string) error

	// tryLock takes name's issuance lock for lease under token; false if
	// another token holds it. extendLock renews the lease if token still
	// holds it (false otherwise); unlock releases it only if token holds it.
	tryLock(ctx context.Context, name, token string, lease time.Duration) (bool, error)
	extendLock(ctx context.Context, name, token string, lease time.Duration) (bool, error)
	unlock(ctx context.Context, name, token string) error
	lockHeld(ctx context.Context, name string) (bool, error)

	// setBackoff, backoff and clearBackoff share a name's failure backoff
	// with other nodes (local: nothing to share).
	setBackoff(ctx context.Context, name string, b acmeBackoff) error
	backoff(ctx context.Context, name string) (acmeBackoff, bool, error)
	clearBackoff(ctx context.Context, name string) error

	// schedule records that the certificate with serial for name is due
	// for renewal at at; due returns up to limit entries due at now, the
	// earliest first; unschedule forgets name if its entry still has
	// serial, so that it never drops an entry another node just wrote.
	schedule(ctx context.Context, name, serial string, at time.Time) error
	due(ctx context.Context, now time.Time, limit int) ([]acmeRenewal, error)
	unschedule(ctx context.Context, name, serial string) error
}

// acmeRenewal is one entry of the renewal schedule.
type acmeRenewal struct {
	Name   string    `json:"-"`
	Serial string    `json:"serial"`
	At     time.Time `json:"at"`
}

// Challenge keys, under the state's namespace.
func httpChallengeKey(token string) string { return "http:" + token }
func alpnChallengeKey(name string) string  { return "alpn:" + name }

// Redis keys under "<prefix>acme:". Host names and ACME tokens (base64url)
// contain no ':', so the namespaces cannot collide.
const (
	redisACMEPrefix  = "acme:"
	redisACMEAccount = "account"
	redisACMELock    = "lock:"
	redisACMEFail    = "fail:"
	// The renewal schedule: a sorted set of names scored by renewal time
	// (unix seconds) and a hash of name → serial of the certificate
	// scheduled. The hash tag puts both in one Cluster slot, so they can
	// change together.
	redisACMERenew   = "{renew}"
	redisACMESerials = "{renew}:serial"
)

// Compare-and-delete and compare-and-extend, so that a node whose lease
// expired never releases or extends the lock another node took since.
var (
	redisUnlockScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)
	redisExtendScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) end return 0`)
	// KEYS: schedule, serials; ARGV: name, serial.
	redisUnscheduleScript = redis.NewScript(`if redis.call("hget", KEYS[2], ARGV[1]) == ARGV[2] then redis.call("zrem", KEYS[1], ARGV[1]) return redis.call("hdel", KEYS[2], ARGV[1]) end return 0`)
)

type redisACMEState struct {
	client redis.UniversalClient
	prefix string // "<KeyPrefix>acme:"
}

func newRedisACMEState(rs *RedisStore) *redisACMEState {
	return &redisACMEState{client: rs.client, prefix: rs.prefix + redisACMEPrefix}
}

func (s *redisACMEState) accountKey(ctx context.Context, create func() ([]byte, error)) ([]byte, error) {
	key := s.prefix + redisACMEAccount
	v, err := s.client.Get(ctx, key).Bytes()
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, redis.Nil) {
		return nil, redisError("acme account", "", err)
	}
	fresh, err := create()
	if err != nil {
		return nil, err
	}
	// SET NX: when nodes race, one key wins and everyone reads it.
	if err := s.client.SetNX(ctx, key, fresh, 0).Err(); err != nil {
		return nil, redisError("acme account", "", err)
	}
	v, err = s.client.Get(ctx, key).Bytes()
	if err != nil {
		return nil, redisError("acme account", "", err)
	}
	return v, nil
}

func (s *redisACMEState) putChallenge(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.client.Set(ctx, s.prefix+key, value, ttl).Err(); err != nil {
		return redisError("acme challenge put", key, err)
	}
	return nil
}

func (s *redisACMEState) getChallenge(ctx context.Context, key string) ([]byte, error) {
	v, err := s.client.Get(ctx, s.prefix+key).Bytes()
	if err != nil {
		return nil, redisError("acme challenge get", key, err)
	}
	return v, nil
}

func (s *redisACMEState) deleteChallenge(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.prefix+key).Err(); err != nil {
		return redisError("acme challenge delete", key, err)
	}
	return nil
}

func (s *redisACMEState) tryLock(ctx context.Context, name, token string, lease time.Duration) (bool, error) {
	ok, err := s.client.SetNX(ctx, s.prefix+redisACMELock+name, token, lease).Result()
	if err != nil {
		return false, redisError("acme lock", name, err)
	}
	return ok, nil
}

func (s *redisACMEState) extendLock(ctx context.Context, name, token string, lease time.Duration) (bool, error) {
	n, err := redisExtendScript.Run(ctx, s.client, []string{s.prefix + redisACMELock + name}, token, lease.Milliseconds()).Int()
	if err != nil {
		return false, redisError("acme lock extend", name, err)
	}
	return n == 1, nil
}

func (s *redisACMEState) unlock(ctx context.Context, name, token string) error {
	if err := redisUnlockScript.Run(ctx, s.client, []string{s.prefix + redisACMELock + name}, token).Err(); err != nil {
		return redisError("acme unlock", name, err)
	}
	return nil
}

func (s *redisACMEState) lockHeld(ctx context.Context, name string) (bool, error) {
	n, err := s.client.Exists(ctx, s.prefix+redisACMELock+name).Result()
	if err != nil {
		return false, redisError("acme lock", name, err)
	}
	return n == 1, nil
}

// A backoff is stored as "<until, unix ns> <attempts> <reason>", expiring
// from Redis a little after until.
func (s *redisACMEState) setBackoff(ctx context.Context, name string, b acmeBackoff) error {
	v := fmt.Sprintf("%d %d %s", b.until.UnixNano(), b.attempts, b.reason)
	ttl := max(time.Until(b.until), 0) + time.Minute
	if err := s.client.Set(ctx, s.prefix+redisACMEFail+name, v, ttl).Err(); err != nil {
		return redisError("acme backoff", name, err)
	}
	return nil
}

func (s *redisACMEState) backoff(ctx context.Context, name string) (acmeBackoff, bool, error) {
	v, err := s.client.Get(ctx, s.prefix+redisACMEFail+name).Result()
	if errors.Is(err, redis.Nil) {
		return acmeBackoff{}, false, nil
	}
	if err != nil {
		return acmeBackoff{}, false, redisError("acme backoff", name, err)
	}
	parts := strings.SplitN(v, " ", 3)
	if len(parts) != 3 {
		return acmeBackoff{}, false, nil
	}
	ns, err1 := strconv.ParseInt(parts[0], 10, 64)
	n, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return acmeBackoff{}, false, nil
	}
	return acmeBackoff{until: time.Unix(0, ns), attempts: n, reason: parts[2]}, true, nil
}

func (s *redisACMEState) clearBackoff(ctx context.Context, name string) error {
	if err := s.client.Del(ctx, s.prefix+redisACMEFail+name).Err(); err != nil {
		return redisError("acme backoff", name, err)
	}
	return nil
}

func (s *redisACMEState) schedule(ctx context.Context, name, serial string, at time.Time) error {
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.prefix+redisACMESerials, name, serial)
		p.ZAdd(ctx, s.prefix+redisACMERenew, redis.Z{Score: float64(at.Unix()), Member: name})
		return nil
	})
	if err != nil {
		return redisError("acme schedule", name, err)
	}
	return nil
}

func (s *redisACMEState) due(ctx context.Context, now time.Time, limit int) ([]acmeRenewal, error) {
	zs, err := s.client.ZRangeByScoreWithScores(ctx, s.prefix+redisACMERenew, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.Unix(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, redisError("acme schedule", "", err)
	}
	if len(zs) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(zs))
	for _, z := range zs {
		if n, ok := z.Member.(string); ok {
			names = append(names, n)
		}
	}
	serials, err := s.client.HMGet(ctx, s.prefix+redisACMESerials, names...).Result()
	if err != nil {
		return nil, redisError("acme schedule", "", err)
	}
	out := make([]acmeRenewal, 0, len(names))
	for i, z := range zs {
		serial, _ := serials[i].(string)
		out = append(out, acmeRenewal{Name: names[i], Serial: serial, At: time.Unix(int64(z.Score), 0)})
	}
	return out, nil
}

func (s *redisACMEState) unschedule(ctx context.Context, name, serial string) error {
	keys := []string{s.prefix + redisACMERenew, s.prefix + redisACMESerials}
	if err := redisUnscheduleScript.Run(ctx, s.client, keys, name, serial).Err(); err != nil {
		return redisError("acme schedule", name, err)
	}
	return nil
}

// Files of a localACMEState in DataDir/acme.
const (
	localACMEDir       = "acme"
	localACMEAccount   = "account.key"
	localACMESchedule  = "renewals.json"
	localChallengeMax  = 10000 // pending challenge responses kept at most
	localScheduleLimit = 1 << 20
)

// localACMEState serves a single node: the account key and the renewal
// schedule are files, challenges and locks live in memory.
type localACMEState struct {
	dir string

	mu         sync.Mutex
	challenges map[string]expiringValue
	locks      map[string]expiringValue
	renewals   map[string]acmeRenewal

	writeMu sync.Mutex // orders schedule file writes; never held with mu across I/O
}

type expiringValue struct {
	value []byte
	until time.Time
}

func newLocalACMEState(dataDir string) (*localACMEState, error) {
	dir := filepath.Join(dataDir, localACMEDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: acme: state directory: %w", err)
	}
	s := &localACMEState{
		dir:        dir,
		challenges: make(map[string]expiringValue),
		locks:      make(map[string]expiringValue),
		renewals:   make(map[string]acmeRenewal),
	}
	data, err := os.ReadFile(filepath.Join(dir, localACMESchedule))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("certs: acme: renewal schedule: %w", err)
	default:
		if err := json.Unmarshal(data, &s.renewals); err != nil {
			return nil, fmt.Errorf("certs: acme: renewal schedule %s: %w", filepath.Join(dir, localACMESchedule), err)
		}
		for name, r := range s.renewals {
			if checkStoreName(name) != nil {
				delete(s.renewals, name)
				continue
			}
			r.Name = name
			s.renewals[name] = r
		}
	}
	return s, nil
}

func (s *localACMEState) accountKey(_ context.Context, create func() ([]byte, error)) ([]byte, error) {
	// readOrCreate links the file into place only if absent, so processes
	// sharing DataDir agree on one key.
	key, err := readOrCreate(filepath.Join(s.dir, localACMEAccount), 0o600, create)
	if err != nil {
		return nil, fmt.Errorf("certs: acme: account key: %w: %w", ErrUnavailable, err)
	}
	return key, nil
}

func (s *localACMEState) putChallenge(_ context.Context, key string, value []byte, ttl time.Duration) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.challenges) >= localChallengeMax {
		for k, v := range s.challenges {
			if now.After(v.until) {
				delete(s.challenges, k)
			}
		}
		if len(s.challenges) >= localChallengeMax {
			return fmt.Errorf("certs: acme: %w: too many pending challenges", ErrUnavailable)
		}
	}
	s.challenges[key] = expiringValue{value: value, until: now.Add(ttl)}
	return nil
}

func (s *localACMEState) getChallenge(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.challenges[key]
	if !ok || time.Now().After(v.until) {
		return nil, fmt.Errorf("certs: acme: challenge %q: %w", key, ErrNotFound)
	}
	return v.value, nil
}

func (s *localACMEState) deleteChallenge(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.challenges, key)
	return nil
}

func (s *localACMEState) tryLock(_ context.Context, name, token string, lease time.Duration) (bool, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[name]; ok && now.Before(l.until) {
		return false, nil
	}
	s.locks[name] = expiringValue{value: []byte(token), until: now.Add(lease)}
	return true, nil
}

func (s *localACMEState) extendLock(_ context.Context, name, token string, lease time.Duration) (bool, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[name]
	if !ok || string(l.value) != token || now.After(l.until) {
		return false, nil
	}
	s.locks[name] = expiringValue{value: l.value, until: now.Add(lease)}
	return true, nil
}

func (s *localACMEState) unlock(_ context.Context, name, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[name]; ok && string(l.value) == token {
		delete(s.locks, name)
	}
	return nil
}

func (s *localACMEState) lockHeld(_ context.Context, name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[name]
	return ok && time.Now().Before(l.until), nil
}

// A single node's backoff lives in ACME's own map; nothing to share.
func (s *localACMEState) setBackoff(context.Context, string, acmeBackoff) error { return nil }
func (s *localACMEState) backoff(context.Context, string) (acmeBackoff, bool, error) {
	return acmeBackoff{}, false, nil
}
func (s *localACMEState) clearBackoff(context.Context, string) error { return nil }

func (s *localACMEState) schedule(_ context.Context, name, serial string, at time.Time) error {
	return s.updateSchedule(func(m map[string]acmeRenewal) error {
		if _, ok := m[name]; !ok && len(m) >= localScheduleLimit {
			return fmt.Errorf("certs: acme: renewal schedule full (%d names)", localScheduleLimit)
		}
		m[name] = acmeRenewal{Name: name, Serial: serial, At: at}
		return nil
	})
}

func (s *localACMEState) unschedule(_ context.Context, name, serial string) error {
	return s.updateSchedule(func(m map[string]acmeRenewal) error {
		if r, ok := m[name]; ok && r.Serial == serial {
			delete(m, name)
		}
		return nil
	})
}

func (s *localACMEState) due(_ context.Context, now time.Time, limit int) ([]acmeRenewal, error) {
	s.mu.Lock()
	var out []acmeRenewal
	for _, r := range s.renewals {
		if !r.At.After(now) {
			out = append(out, r)
		}
	}
	s.mu.Unlock()
	sortRenewals(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// updateSchedule applies fn to the schedule and writes the file: the
// snapshot is taken under mu, the write happens outside it, and writeMu
// keeps writes in the order of their snapshots.
func (s *localACMEState) updateSchedule(fn func(map[string]acmeRenewal) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if err := fn(s.renewals); err != nil {
		s.mu.Unlock()
		return err
	}
	data, err := json.Marshal(s.renewals)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("certs: acme: renewal schedule: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(s.dir, localACMESchedule), data, 0o600); err != nil {
		return fmt.Errorf("certs: acme: renewal schedule: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// writeFileAtomic replaces path with data through a temporary file and a
// rename, so a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-acme-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(perm)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return werr
	}
	return os.Rename(tmp, path)
}
