package certs

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"massvhost/test/redistest"
)

// bothStates returns a Redis-backed and a local state, for tests that hold
// for either.
func bothStates(t *testing.T) map[string]acmeState {
	t.Helper()
	srv := redistest.StartServer(t)
	local, err := newLocalACMEState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rs := newRedisStore(t, RedisOptions{Addrs: []string{srv.Addr}, KeyPrefix: acmeKeyPrefix})
	return map[string]acmeState{"redis": newRedisACMEState(rs), "local": local}
}

func TestACMEStateLock(t *testing.T) {
	ctx := context.Background()
	for kind, s := range bothStates(t) {
		t.Run(kind, func(t *testing.T) {
			const name = "locked.test"
			step := func(what string, got, want bool, err error) {
				t.Helper()
				if err != nil || got != want {
					t.Fatalf("%s = %v, %v; want %v", what, got, err, want)
				}
			}
			ok, err := s.tryLock(ctx, name, "A", time.Minute)
			step("A takes the lock", ok, true, err)
			ok, err = s.tryLock(ctx, name, "B", time.Minute)
			step("B takes a held lock", ok, false, err)
			ok, err = s.extendLock(ctx, name, "B", time.Minute)
			step("B extends A's lock", ok, false, err)
			if err := s.unlock(ctx, name, "B"); err != nil {
				t.Fatal(err)
			}
			ok, err = s.lockHeld(ctx, name)
			step("held after B's unlock", ok, true, err)
			ok, err = s.extendLock(ctx, name, "A", time.Minute)
			step("A extends", ok, true, err)
			if err := s.unlock(ctx, name, "A"); err != nil {
				t.Fatal(err)
			}
			ok, err = s.lockHeld(ctx, name)
			step("held after A's unlock", ok, false, err)
			ok, err = s.tryLock(ctx, name, "B", time.Minute)
			step("B takes the free lock", ok, true, err)
		})
	}
}

func TestACMEStateChallengesAndAccount(t *testing.T) {
	ctx := context.Background()
	for kind, s := range bothStates(t) {
		t.Run(kind, func(t *testing.T) {
			key := httpChallengeKey("tok")
			if _, err := s.getChallenge(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("absent challenge: %v", err)
			}
			if err := s.putChallenge(ctx, key, []byte("tok.thumb"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if v, err := s.getChallenge(ctx, key); err != nil || string(v) != "tok.thumb" {
				t.Fatalf("challenge = %q, %v", v, err)
			}
			if err := s.deleteChallenge(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, err := s.getChallenge(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleted challenge: %v", err)
			}

			// Nodes creating the account at once agree on one key.
			var wg sync.WaitGroup
			keys := make([][]byte, 8)
			for i := range keys {
				wg.Go(func() {
					k, err := s.accountKey(ctx, newAccountKey)
					if err != nil {
						t.Error(err)
					}
					keys[i] = k
				})
			}
			wg.Wait()
			for _, k := range keys[1:] {
				if !bytes.Equal(k, keys[0]) {
					t.Fatal("concurrent account creation produced different keys")
				}
			}
			if _, err := parseECKey(keys[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestACMEStateSchedule(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	for kind, s := range bothStates(t) {
		t.Run(kind, func(t *testing.T) {
			for _, e := range []acmeRenewal{
				{Name: "late.test", Serial: "3", At: now.Add(time.Hour)},
				{Name: "b.test", Serial: "2", At: now.Add(-time.Minute)},
				{Name: "a.test", Serial: "1", At: now.Add(-time.Hour)},
			} {
				if err := s.schedule(ctx, e.Name, e.Serial, e.At); err != nil {
					t.Fatal(err)
				}
			}
			due, err := s.due(ctx, now, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(due) != 2 || due[0].Name != "a.test" || due[0].Serial != "1" || due[1].Name != "b.test" || !due[1].At.Equal(now.Add(-time.Minute)) {
				t.Fatalf("due = %+v, want a.test then b.test", due)
			}
			if due, _ := s.due(ctx, now, 1); len(due) != 1 || due[0].Name != "a.test" {
				t.Fatalf("limited due = %+v", due)
			}
			// Unschedule only drops the entry it read.
			if err := s.unschedule(ctx, "a.test", "old-serial"); err != nil {
				t.Fatal(err)
			}
			if err := s.unschedule(ctx, "b.test", "2"); err != nil {
				t.Fatal(err)
			}
			due, _ = s.due(ctx, now, 10)
			if len(due) != 1 || due[0].Name != "a.test" {
				t.Fatalf("after unschedule: %+v, want a.test kept", due)
			}
		})
	}
}

func TestACMEStateBackoff(t *testing.T) {
	ctx := context.Background()
	_, rs := startRedisStore(t, acmeKeyPrefix)
	s := newRedisACMEState(rs)
	if _, ok, err := s.backoff(ctx, "x.test"); ok || err != nil {
		t.Fatalf("absent backoff: %v %v", ok, err)
	}
	want := acmeBackoff{until: time.Unix(0, 1_800_000_000_123456789), attempts: 3, reason: reasonChallengeFailed}
	if err := s.setBackoff(ctx, "x.test", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.backoff(ctx, "x.test")
	if err != nil || !ok || !got.until.Equal(want.until) || got.attempts != 3 || got.reason != want.reason {
		t.Fatalf("backoff = %+v %v %v, want %+v", got, ok, err, want)
	}
	if err := s.clearBackoff(ctx, "x.test"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.backoff(ctx, "x.test"); ok {
		t.Fatal("backoff survived clear")
	}
}

// TestACMEKeepLockLost: when another node holds the lock (our lease ran
// out), the order is canceled with errLockLost.
func TestACMEKeepLockLost(t *testing.T) {
	srv, rs := startRedisStore(t, acmeKeyPrefix)
	a, _, _ := newOfflineACME(t, func(context.Context, string) bool { return true }, func(o *ACMEOptions) {
		o.Redis = rs
		o.LockLease = 300 * time.Millisecond
	})
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	if ok, err := a.state.tryLock(ctx, "l.test", "mine", a.lease); !ok || err != nil {
		t.Fatal(ok, err)
	}
	stop := a.keepLock(ctx, cancel, "l.test", "mine")
	defer stop()
	srv.Do(t, "SET", acmeKeyPrefix+"acme:lock:l.test", "theirs")
	select {
	case <-ctx.Done():
	case <-time.After(waitTimeout):
		t.Fatal("order not canceled after losing the lock")
	}
	if !errors.Is(context.Cause(ctx), errLockLost) {
		t.Fatalf("cause %v, want errLockLost", context.Cause(ctx))
	}
	if got := srv.Do(t, "GET", acmeKeyPrefix+"acme:lock:l.test"); got != "theirs" {
		t.Fatalf("their lock was touched: %q", got)
	}
}
