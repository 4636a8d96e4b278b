package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/test/redistest"
)

// TestRedisStoreCluster runs the store against a local 3-master Redis
// Cluster: names spread over every slot range, the legacy pair's two keys
// live on different nodes, and SCAN must visit every master.
func TestRedisStoreCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starting a cluster takes a few seconds")
	}
	ctx := context.Background()
	addrs := redistest.StartCluster(t, 3)
	s := newRedisStore(t, RedisOptions{Addrs: addrs[:1], Cluster: true, KeyPrefix: "c:"})
	reader := newRedisStore(t, RedisOptions{Addrs: addrs, Cluster: true, KeyPrefix: "c:"})
	r := newRecorder()
	startSubscriber(t, reader, r)
	waitSubscribersCluster(t, reader, r)

	ca := certtest.NewCA(t)
	const n = 60
	var want []string
	pairs := map[string][2][]byte{}
	for i := range n {
		name := fmt.Sprintf("host%02d.test", i)
		c, k := ca.Leaf(t, name)
		pairs[name] = [2][]byte{c, k}
		want = append(want, name)
	}
	// Half through Put (hash layout), half as legacy keys, as an
	// ngx_mruby deployment would have written them.
	for i, name := range want {
		p := pairs[name]
		var err error
		if i%2 == 0 {
			err = s.Put(ctx, name, p[0], p[1])
		} else {
			err = s.Client().Set(ctx, "c:"+name+".crt", p[0], 0).Err()
			if err == nil {
				err = s.Client().Set(ctx, "c:"+name+".key", p[1], 0).Err()
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for i, name := range want {
		c, k, l, err := reader.GetWithLayout(ctx, name)
		wantLayout := LayoutHash
		if i%2 == 1 {
			wantLayout = LayoutLegacy
		}
		if err != nil || l != wantLayout || !bytes.Equal(c, pairs[name][0]) || !bytes.Equal(k, pairs[name][1]) {
			t.Errorf("Get(%s) = layout %q, %v", name, l, err)
		}
	}
	if _, _, err := reader.Get(ctx, "missing.test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing name: %v", err)
	}

	var got []string
	if err := reader.List(ctx, func(name string) error { got = append(got, name); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("List returned %d names, want %d", len(got), len(want))
	}

	// Writes publish on the cluster bus to every node's subscribers. Each
	// PUBLISH may enter through a different node, and the bus does not keep
	// order across nodes, so wait for the first name rather than expect it
	// first.
	for r.next(t) != "host00.test" {
	}
	if err := s.Delete(ctx, "host01.test"); err != nil {
		t.Fatal(err)
	}
	for {
		if got := r.next(t); got == "host01.test" {
			break
		}
	}
	if _, _, err := reader.Get(ctx, "host01.test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Delete: %v", err)
	}

	// Batched reads and writes (import, expiry) cross slots.
	dir := t.TempDir()
	for _, name := range want[:10] {
		certtest.WritePair(t, dir, name, pairs[name][0], pairs[name][1])
	}
	rep, err := Import(ctx, s, dir, ImportOptions{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	// host01 was deleted and the legacy ones are byte-identical.
	if len(rep.Imported) != 1 || rep.Imported[0] != "host01.test" || len(rep.Unchanged) != 9 {
		t.Errorf("import into cluster: imported %v, unchanged %v", rep.Imported, rep.Unchanged)
	}

	a := NewSiteAliases(s)
	if err := a.SetAlias(ctx, "alias.example", "host02.test"); err != nil {
		t.Fatal(err)
	}
	if tenant, err := NewSiteAliases(reader).LookupAlias(ctx, "alias.example"); err != nil || tenant != "host02.test" {
		t.Errorf("LookupAlias = %q, %v", tenant, err)
	}
	aliases := 0
	if err := a.ListAliases(ctx, func(string, string) error { aliases++; return nil }); err != nil || aliases != 1 {
		t.Errorf("ListAliases: %d, %v", aliases, err)
	}
}

// waitSubscribersCluster waits until r's subscription somewhere in the
// cluster receives a probe (PUBSUB NUMSUB is per node, so it cannot tell).
func waitSubscribersCluster(t *testing.T, s *RedisStore, r *recorder) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		s.Client().Publish(context.Background(), s.channel(), "probe.invalid")
		select {
		case <-r.names:
			return
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("subscriber not ready")
		}
	}
}

// TestRedisStoreSentinel reaches the master through a Redis Sentinel, as a
// deployment with failover would.
func TestRedisStoreSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("starting a sentinel takes a few seconds")
	}
	ctx := context.Background()
	master := redistest.StartServer(t)
	sentinel := redistest.StartSentinel(t, master, "certs")
	s := newRedisStore(t, RedisOptions{Addrs: []string{sentinel.Addr}, MasterName: "certs", KeyPrefix: "s:"})
	r := newRecorder()
	startSubscriber(t, s, r)
	waitSubscribers(t, s, 1)

	ca := certtest.NewCA(t)
	crt, key := ca.Leaf(t, "a.test")
	if err := s.Put(ctx, "a.test", crt, key); err != nil {
		t.Fatal(err)
	}
	if got := master.Do(t, "EXISTS", "s:cert:a.test"); got != "1" {
		t.Fatal("Put did not reach the master")
	}
	if c, _, l := mustGet(t, s, "a.test"); l != LayoutHash || !bytes.Equal(c, crt) {
		t.Errorf("Get through sentinel: layout %q", l)
	}
	if got := r.next(t); got != "a.test" {
		t.Errorf("invalidation %q", got)
	}
}
