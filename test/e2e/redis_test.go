package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"massvhost/test/redistest"
)

// TestRedisLayouts checks that the binary serves certificates from both Redis
// layouts under a key prefix: the ngx_mruby strings <prefix><host>.crt/.key
// written by another tool, and the hash <prefix>cert:<host> that
// `massvhost certs put` writes; a hash wins over legacy keys for the same
// name, and keys without the prefix are not read.
func TestRedisLayouts(t *testing.T) {
	srv := redistest.StartServer(t)
	const prefix = "mv:"
	w := newWorld(t, []string{"legacy.test", "hash.test", "both.test", "x.wild.test", "unprefixed.test"})
	cfg := w.redisConfig(redisSetup{Addrs: []string{srv.Addr}, Prefix: prefix})
	cfgPath := writeConfig(t, cfg)

	setLegacy := func(key string, certPEM, keyPEM []byte) {
		srv.Do(t, "SET", key+".crt", string(certPEM))
		srv.Do(t, "SET", key+".key", string(keyPEM))
	}
	want := map[string]string{} // SNI → fingerprint
	legacyCrt, legacyKey := w.CA.Leaf(t, "legacy.test")
	setLegacy(prefix+"legacy.test", legacyCrt, legacyKey)
	want["legacy.test"] = pemFingerprint(t, legacyCrt)

	wildCrt, wildKey := w.CA.Leaf(t, "*.wild.test")
	setLegacy(prefix+"*.wild.test", wildCrt, wildKey)
	want["x.wild.test"] = pemFingerprint(t, wildCrt)

	hashCrt, hashKey := w.CA.Leaf(t, "hash.test")
	if r := putCLI(t, cfgPath, "hash.test", hashCrt, hashKey); r.Code != 0 {
		t.Fatalf("put hash.test: %s", r)
	}
	want["hash.test"] = pemFingerprint(t, hashCrt)

	oldCrt, oldKey := w.CA.Leaf(t, "both.test")
	setLegacy(prefix+"both.test", oldCrt, oldKey)
	newCrt, newKey := w.CA.Leaf(t, "both.test")
	if r := putCLI(t, cfgPath, "both.test", newCrt, newKey); r.Code != 0 {
		t.Fatalf("put both.test: %s", r)
	}
	want["both.test"] = pemFingerprint(t, newCrt)

	unCrt, unKey := w.CA.Leaf(t, "unprefixed.test")
	setLegacy("unprefixed.test", unCrt, unKey)

	// What `certs put` wrote: one hash, no legacy strings.
	if typ := srv.Do(t, "TYPE", prefix+"cert:hash.test"); typ != "hash" {
		t.Fatalf("certs put wrote %s at %scert:hash.test, want a hash", typ, prefix)
	}
	if got := srv.Do(t, "HGET", prefix+"cert:hash.test", "crt"); got != string(hashCrt) {
		t.Fatalf("hash field crt is not the certificate put")
	}
	if n := srv.Do(t, "EXISTS", prefix+"hash.test.crt", prefix+"hash.test.key"); n != "0" {
		t.Fatalf("certs put wrote legacy keys (%s of them)", n)
	}

	p := start(t, cfg)
	for sni, fp := range want {
		leaf, err := handshake(p.HTTPSAddr, sni, w.CA.Pool)
		if err != nil {
			t.Errorf("%s: handshake: %v", sni, err)
			continue
		}
		if got := fingerprint(leaf); got != fp {
			t.Errorf("%s: served %v (%s), want %s", sni, leaf.DNSNames, got, fp)
		}
	}
	if _, err := handshake(p.HTTPSAddr, "unprefixed.test", w.CA.Pool); err == nil {
		t.Errorf("unprefixed.test served from keys outside the prefix %q", prefix)
	}

	for name, layout := range map[string]string{"legacy.test": "legacy", "hash.test": "hash", "both.test": "hash", "*.wild.test": "legacy"} {
		out := cliOK(t, cfgPath, "certs", "get", name).Stdout
		if !regexp.MustCompile(`(?m)^layout:\s+` + layout + `$`).MatchString(out) {
			t.Errorf("certs get %s: want layout %s in\n%s", name, layout, out)
		}
	}
}

// TestRedisInvalidationAcrossNodes runs two servers on one Redis with
// certs.ttl and negative_ttl of 1h: after `certs put` and `certs rm` both
// must serve the change promptly, which only the published invalidation can
// explain.
func TestRedisInvalidationAcrossNodes(t *testing.T) {
	srv := redistest.StartServer(t)
	w := newWorld(t, []string{"a.test", "new.test"})
	cfg := w.redisConfig(redisSetup{Addrs: []string{srv.Addr}})
	cfgPath := writeConfig(t, cfg)

	v1Crt, v1Key := w.CA.Leaf(t, "a.test")
	if r := putCLI(t, cfgPath, "a.test", v1Crt, v1Key); r.Code != 0 {
		t.Fatalf("put: %s", r)
	}
	nodes := []*proc{start(t, cfg), start(t, cfg)}
	for i, n := range nodes {
		if last, ok := servesFingerprint(n.HTTPSAddr, "a.test", w.CA.Pool, pemFingerprint(t, v1Crt), 5*time.Second); !ok {
			t.Fatalf("node %d: a.test v1 not served: %s", i, last)
		}
		// Remembered as missing for negative_ttl (1h).
		if _, err := handshake(n.HTTPSAddr, "new.test", w.CA.Pool); err == nil {
			t.Fatalf("node %d: new.test served before it was stored", i)
		}
	}

	v2Crt, v2Key := w.CA.Leaf(t, "a.test")
	newCrt, newKey := w.CA.Leaf(t, "new.test")
	putAt := time.Now()
	if r := putCLI(t, cfgPath, "a.test", v2Crt, v2Key); r.Code != 0 {
		t.Fatalf("put v2: %s", r)
	}
	if r := putCLI(t, cfgPath, "new.test", newCrt, newKey); r.Code != 0 {
		t.Fatalf("put new.test: %s", r)
	}
	for i, n := range nodes {
		if last, ok := servesFingerprint(n.HTTPSAddr, "a.test", w.CA.Pool, pemFingerprint(t, v2Crt), 10*time.Second); !ok {
			t.Fatalf("node %d: still serving %s after certs put of a.test", i, last)
		}
		if last, ok := servesFingerprint(n.HTTPSAddr, "new.test", w.CA.Pool, pemFingerprint(t, newCrt), 10*time.Second); !ok {
			t.Fatalf("node %d: new.test not served after certs put (negative entry not invalidated): %s", i, last)
		}
	}
	t.Logf("both nodes served the new certificates %v after the first put", time.Since(putAt).Round(time.Millisecond))

	cliOK(t, cfgPath, "certs", "rm", "a.test")
	for i, n := range nodes {
		if !failsHandshake(n.HTTPSAddr, "a.test", w.CA.Pool, 10*time.Second) {
			t.Fatalf("node %d: a.test still served after certs rm", i)
		}
	}
}

// TestRedisOutage kills Redis under two servers, one on store redis and one
// on redis+files: cached names keep handshaking, an uncached name fails
// (bounded by the lookup timeout, not hanging) or falls back to files, and a
// Redis that comes back is used again without restarting massvhost. A frozen
// Redis (accepting connections, answering nothing) is bounded the same way.
func TestRedisOutage(t *testing.T) {
	srv := redistest.StartServer(t)
	tenants := []string{"cached.test", "uncached.test", "files.test", "files2.test", "new.test", "frozen.test"}
	w := newWorld(t, tenants, "files.test", "files2.test")
	redisOnly := w.redisConfig(redisSetup{Addrs: []string{srv.Addr}})
	withFiles := w.redisConfig(redisSetup{Addrs: []string{srv.Addr}, Store: "redis+files"})
	cfgPath := writeConfig(t, redisOnly)

	put := func(name string) string {
		t.Helper()
		crt, key := w.CA.Leaf(t, name)
		if r := putCLI(t, cfgPath, name, crt, key); r.Code != 0 {
			t.Fatalf("put %s: %s", name, r)
		}
		return pemFingerprint(t, crt)
	}
	cachedFP := put("cached.test")
	put("uncached.test")
	nodes := map[string]*proc{"redis": start(t, redisOnly), "redis+files": start(t, withFiles)}
	for kind, n := range nodes {
		if last, ok := servesFingerprint(n.HTTPSAddr, "cached.test", w.CA.Pool, cachedFP, 5*time.Second); !ok {
			t.Fatalf("%s: cached.test not served: %s", kind, last)
		}
	}

	// keepsServing runs a bounded loop of handshakes for the cached name on
	// every node; each one must succeed.
	keepsServing := func(phase string) {
		t.Helper()
		const rounds = 100
		for kind, n := range nodes {
			failed := 0
			var firstErr error
			for range rounds {
				leaf, err := handshake(n.HTTPSAddr, "cached.test", w.CA.Pool)
				if err == nil && fingerprint(leaf) != cachedFP {
					err = fmt.Errorf("wrong certificate %v", leaf.DNSNames)
				}
				if err != nil {
					failed++
					firstErr = err
				}
			}
			if failed > 0 {
				t.Errorf("%s, %s: %d of %d handshakes for the cached name failed: %v", phase, kind, failed, rounds, firstErr)
			}
		}
	}
	// failsBounded checks that a handshake for an uncached name fails, and
	// fails well before a client would give up.
	failsBounded := func(phase, kind, sni string) {
		t.Helper()
		begin := time.Now()
		_, err := handshake(nodes[kind].HTTPSAddr, sni, w.CA.Pool)
		elapsed := time.Since(begin)
		if err == nil {
			t.Errorf("%s, %s: %s served without Redis", phase, kind, sni)
			return
		}
		if elapsed > 5*time.Second {
			t.Errorf("%s, %s: %s failed only after %v (lookup_timeout is 1s)", phase, kind, sni, elapsed)
		}
		t.Logf("%s, %s: uncached %s failed after %v: %v", phase, kind, sni, elapsed.Round(time.Millisecond), err)
	}

	srv.Kill()
	keepsServing("redis killed")
	failsBounded("redis killed", "redis", "uncached.test")
	failsBounded("redis killed", "redis+files", "uncached.test")
	if leaf, err := handshake(nodes["redis+files"].HTTPSAddr, "files.test", w.CA.Pool); err != nil {
		t.Errorf("redis killed, redis+files: files.test not served from files: %v", err)
	} else if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "files.test" {
		t.Errorf("redis killed, redis+files: files.test served %v", leaf.DNSNames)
	}
	keepsServing("redis killed, after misses")

	// The restarted Redis is empty: store again what the nodes should
	// serve. The subscriber's reconnection makes every node re-read what
	// it caches, so cached.test must be there.
	srv.Restart(t)
	cachedFP = put("cached.test")
	newFP := put("new.test")
	for kind, n := range nodes {
		if last, ok := servesFingerprint(n.HTTPSAddr, "new.test", w.CA.Pool, newFP, 20*time.Second); !ok {
			t.Fatalf("redis restarted, %s: new.test not served: %s", kind, last)
		}
		if last, ok := servesFingerprint(n.HTTPSAddr, "cached.test", w.CA.Pool, cachedFP, 20*time.Second); !ok {
			t.Fatalf("redis restarted, %s: cached.test not served: %s", kind, last)
		}
	}
	keepsServing("redis restarted")

	// A frozen Redis accepts connections and answers nothing: only the
	// timeouts bound the lookup.
	put("frozen.test")
	srv.Freeze(t)
	defer srv.Thaw(t)
	keepsServing("redis frozen")
	failsBounded("redis frozen", "redis", "frozen.test")
	failsBounded("redis frozen", "redis+files", "frozen.test")
	// A lookup that spends the whole lookup timeout waiting for the frozen
	// Redis leaves none for the files; once the circuit breaker opens,
	// Redis is skipped at once and the files answer.
	fallbackFrom := time.Now()
	attempts := 0
	var lastErr error
	if !eventually(15*time.Second, func() bool {
		attempts++
		leaf, err := handshake(nodes["redis+files"].HTTPSAddr, "files2.test", w.CA.Pool)
		if err == nil && (len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "files2.test") {
			err = fmt.Errorf("served a certificate for %v", leaf.DNSNames)
		}
		lastErr = err
		return err == nil
	}) {
		t.Errorf("redis frozen, redis+files: files2.test never served from files: %v", lastErr)
	}
	t.Logf("redis frozen, redis+files: files2.test served from files after %d attempt(s), %v", attempts, time.Since(fallbackFrom).Round(time.Millisecond))
	keepsServing("redis frozen, after misses")
}

// TestRedisSiteAlias maps a customer's domain to an existing tenant with
// `massvhost sites alias`, with sites.cache_ttl at 1h so that only the
// published invalidation can make the change visible.
func TestRedisSiteAlias(t *testing.T) {
	srv := redistest.StartServer(t)
	w := newWorld(t, []string{"a.test"})
	cfg := w.redisConfig(redisSetup{Addrs: []string{srv.Addr}, Sites: "  cache_ttl: 1h\n"})
	cfgPath := writeConfig(t, cfg)
	p := start(t, cfg)
	get := func() (int, string) {
		return rawHTTP(t, p.HTTPAddr, "GET / HTTP/1.1\r\nHost: custom.example\r\nConnection: close\r\n\r\n")
	}
	if status, _ := get(); status != 404 {
		t.Fatalf("before alias: status %d, want 404", status)
	}
	cliOK(t, cfgPath, "sites", "alias", "Custom.Example.", "a.test")
	if !eventually(10*time.Second, func() bool { s, b := get(); return s == 200 && b == "tenant a.test\n" }) {
		s, b := get()
		t.Fatalf("after alias: %d %q, want a.test's index", s, b)
	}
	if out := cliOK(t, cfgPath, "sites", "ls").Stdout; out != "custom.example\ta.test\n" {
		t.Fatalf("sites ls: %q", out)
	}
	cliOK(t, cfgPath, "sites", "unalias", "custom.example")
	if !eventually(10*time.Second, func() bool { s, _ := get(); return s == 404 }) {
		s, b := get()
		t.Fatalf("after unalias: %d %q, want 404", s, b)
	}
	if out := cliOK(t, cfgPath, "sites", "ls").Stdout; out != "" {
		t.Fatalf("sites ls after unalias: %q", out)
	}
	for _, args := range [][]string{{"sites"}, {"sites", "alias", "only.example"}, {"sites", "frob"}} {
		if r := cli(t, cfgPath, args...); r.Code != 2 {
			t.Errorf("massvhost %s: %s, want exit 2", strings.Join(args, " "), r)
		}
	}
	if r := cli(t, cfgPath, "sites", "alias", "bad_name.example", "a.test"); r.Code != 1 || !strings.Contains(r.Stderr, "invalid") {
		t.Errorf("alias of an invalid host name: %s, want exit 1 naming the problem", r)
	}
}

// TestRedisGarbage stores broken data under some names: only those names
// fail the handshake, each failure is logged with its reason, the result is
// negative-cached (no Redis command on the next handshake), and other names
// keep working.
func TestRedisGarbage(t *testing.T) {
	srv := redistest.StartServer(t)
	garbage := map[string]string{ // name → expected logged reason
		"badpem.test":    "unusable certificate/key pair",
		"mismatch.test":  "unusable certificate/key pair",
		"other.test":     "certificate does not cover the name",
		"huge.test":      "exceeds",
		"hugehash.test":  "exceeds",
		"half.test":      "only one of the .crt and .key keys",
		"wrongtype.test": "wrong type",
	}
	tenants := []string{"good.test"}
	for name := range garbage {
		tenants = append(tenants, name)
	}
	w := newWorld(t, tenants)
	cfg := w.redisConfig(redisSetup{Addrs: []string{srv.Addr}})
	cfgPath := writeConfig(t, cfg)

	goodCrt, goodKey := w.CA.Leaf(t, "good.test")
	if r := putCLI(t, cfgPath, "good.test", goodCrt, goodKey); r.Code != 0 {
		t.Fatalf("put good.test: %s", r)
	}
	goodFP := pemFingerprint(t, goodCrt)
	aCrt, _ := w.CA.Leaf(t, "mismatch.test")
	_, bKey := w.CA.Leaf(t, "mismatch.test")
	otherCrt, otherKey := w.CA.Leaf(t, "someone-else.test")
	hugeCrt, hugeKey := w.CA.Leaf(t, "huge.test")
	tenMB := strings.Repeat("A", 10<<20)

	srv.Do(t, "SET", "badpem.test.crt", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
	srv.Do(t, "SET", "badpem.test.key", "garbage")
	srv.Do(t, "HSET", "cert:mismatch.test", "crt", string(aCrt), "key", string(bKey))
	srv.Do(t, "HSET", "cert:other.test", "crt", string(otherCrt), "key", string(otherKey))
	srv.Do(t, "SET", "huge.test.crt", string(hugeCrt)+tenMB)
	srv.Do(t, "SET", "huge.test.key", string(hugeKey))
	srv.Do(t, "HSET", "cert:hugehash.test", "crt", tenMB, "key", string(hugeKey))
	srv.Do(t, "SET", "half.test.crt", string(hugeCrt))
	srv.Do(t, "RPUSH", "cert:wrongtype.test", "crt")

	p := start(t, cfg)
	goodStill := func(after string) {
		t.Helper()
		leaf, err := handshake(p.HTTPSAddr, "good.test", w.CA.Pool)
		if err != nil || fingerprint(leaf) != goodFP {
			t.Fatalf("good.test after %s: %v", after, err)
		}
	}
	goodStill("start")
	for name := range garbage {
		if _, err := handshake(p.HTTPSAddr, name, w.CA.Pool); err == nil {
			t.Errorf("%s: handshake succeeded on garbage", name)
		}
		goodStill(name)
	}
	for name, reason := range garbage {
		line, ok := logLine(p, "invalid certificate in store", "host="+name+" ")
		if !ok {
			t.Errorf("%s: no 'invalid certificate in store' log line", name)
			continue
		}
		if !strings.Contains(line, reason) {
			t.Errorf("%s: logged %q, want the reason %q", name, line, reason)
		}
	}

	// Negative-cached: asking again costs Redis nothing.
	before := commandCalls(t, srv)
	for range 3 {
		for name := range garbage {
			if _, err := handshake(p.HTTPSAddr, name, w.CA.Pool); err == nil {
				t.Fatalf("%s: served on a repeat", name)
			}
		}
	}
	after := commandCalls(t, srv)
	for _, cmd := range []string{"eval", "hmget", "getrange", "exec"} {
		if after[cmd] != before[cmd] {
			t.Errorf("repeat handshakes for garbage names issued %d %s commands, want 0 (negative cache)", after[cmd]-before[cmd], cmd)
		}
	}
}

// TestRedisCluster serves certificates from a 3-master Redis Cluster, in both
// layouts and spread over every master, through two servers, and checks that
// `certs ls` walks every master and an invalidation reaches both servers.
func TestRedisCluster(t *testing.T) {
	cluster := redistest.StartClusterNodes(t, 3)
	names := []string{"c1.test", "c2.test", "c3.test", "c4.test", "c5.test", "c6.test", "legacy1.test", "legacy2.test"}
	w := newWorld(t, names)
	cfg := w.redisConfig(redisSetup{Addrs: cluster.Addrs(), Cluster: true})
	cfgPath := writeConfig(t, cfg)

	want := map[string]string{}
	for _, name := range names[:6] {
		crt, key := w.CA.Leaf(t, name)
		if r := putCLI(t, cfgPath, name, crt, key); r.Code != 0 {
			t.Fatalf("put %s: %s", name, r)
		}
		want[name] = pemFingerprint(t, crt)
	}
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range names[6:] {
		crt, key := w.CA.Leaf(t, name)
		must(t, rc.Set(ctx, name+".crt", crt, 0).Err())
		must(t, rc.Set(ctx, name+".key", key, 0).Err())
		want[name] = pemFingerprint(t, crt)
	}
	// The keys really are spread: every master holds some.
	for _, n := range cluster.Nodes {
		if size := n.Do(t, "DBSIZE"); size == "0" {
			t.Fatalf("master %s holds no key; the test would not cover cross-slot reads", n.Addr)
		}
	}

	nodes := []*proc{start(t, cfg), start(t, cfg)}
	for i, n := range nodes {
		for name, fp := range want {
			leaf, err := handshake(n.HTTPSAddr, name, w.CA.Pool)
			if err != nil {
				t.Fatalf("node %d, %s: %v", i, name, err)
			}
			if fingerprint(leaf) != fp {
				t.Fatalf("node %d, %s: wrong certificate", i, name)
			}
		}
	}

	ls := strings.Fields(cliOK(t, cfgPath, "certs", "ls").Stdout)
	slices.Sort(ls)
	if !slices.Equal(ls, slices.Sorted(slices.Values(names))) {
		t.Fatalf("certs ls on the cluster: %v, want %v", ls, names)
	}

	crt, key := w.CA.Leaf(t, "c1.test")
	if r := putCLI(t, cfgPath, "c1.test", crt, key); r.Code != 0 {
		t.Fatalf("put c1.test v2: %s", r)
	}
	for i, n := range nodes {
		if last, ok := servesFingerprint(n.HTTPSAddr, "c1.test", w.CA.Pool, pemFingerprint(t, crt), 10*time.Second); !ok {
			t.Fatalf("node %d: c1.test v2 not served: %s", i, last)
		}
	}
}
