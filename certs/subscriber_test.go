package certs

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/test/redistest"
)

// waitTimeout bounds waits for asynchronous events in tests; it is a safety
// net against hangs, not an assertion about speed.
const waitTimeout = 30 * time.Second

// recorder collects a Subscriber's callbacks on channels.
type recorder struct {
	names      chan string
	reconnects chan struct{}
}

func newRecorder() *recorder {
	return &recorder{names: make(chan string, 100), reconnects: make(chan struct{}, 10)}
}

func (r *recorder) onName(n string) { r.names <- n }
func (r *recorder) onReconnect()    { r.reconnects <- struct{}{} }

func (r *recorder) next(t *testing.T) string {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case n := <-r.names:
			if n == "probe.invalid" { // readiness probes of cluster tests
				continue
			}
			return n
		case <-timeout:
			t.Fatal("no invalidation received")
			return ""
		}
	}
}

func (r *recorder) expectReconnect(t *testing.T) {
	t.Helper()
	select {
	case <-r.reconnects:
	case <-time.After(waitTimeout):
		t.Fatal("onReconnect was not called")
	}
}

func startSubscriber(t *testing.T, s *RedisStore, r *recorder) *Subscriber {
	t.Helper()
	sub, err := NewSubscriber(s, r.onName, r.onReconnect)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// waitSubscribers waits until n clients subscribe to s's channel.
func waitSubscribers(t *testing.T, s *RedisStore, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got, err := s.Client().PubSubNumSub(context.Background(), s.channel()).Result()
		if err == nil && got[s.channel()] == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers on %s, want %d (%v)", got[s.channel()], s.channel(), n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSubscriberFanOut(t *testing.T) {
	ctx := context.Background()
	srv, writer := startRedisStore(t, "p:")
	// Two nodes: each has its own store (client) on the same Redis.
	node1 := newRedisStore(t, RedisOptions{Addrs: []string{srv.Addr}, KeyPrefix: "p:"})
	node2 := newRedisStore(t, RedisOptions{Addrs: []string{srv.Addr}, KeyPrefix: "p:"})
	other := newRedisStore(t, RedisOptions{Addrs: []string{srv.Addr}, KeyPrefix: "q:"})
	r1, r2, rOther := newRecorder(), newRecorder(), newRecorder()
	startSubscriber(t, node1, r1)
	startSubscriber(t, node2, r2)
	startSubscriber(t, other, rOther)
	waitSubscribers(t, writer, 2)

	ca := certtest.NewCA(t)
	crt, key := ca.Leaf(t, "a.test")
	if err := writer.Put(ctx, "a.test", crt, key); err != nil {
		t.Fatal(err)
	}
	if err := writer.Delete(ctx, "b.test"); err != nil {
		t.Fatal(err)
	}
	if err := NewSiteAliases(writer).SetAlias(ctx, "Shop.Example.NET", "a.test"); err != nil {
		t.Fatal(err)
	}
	// Junk on the channel is dropped, not passed on.
	for _, junk := range []string{"../x", "A.TEST", "site:Bad Host", "*", ""} {
		writer.Client().Publish(ctx, writer.channel(), junk)
	}
	if err := writer.Put(ctx, "*.wild.test", crt, key); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*recorder{r1, r2} {
		for _, want := range []string{"a.test", "b.test", "site:shop.example.net", "*.wild.test"} {
			if got := r.next(t); got != want {
				t.Errorf("received %q, want %q", got, want)
			}
		}
	}
	select {
	case n := <-rOther.names:
		t.Errorf("a subscriber with another prefix received %q", n)
	default:
	}
	select {
	case <-r1.reconnects:
		t.Error("onReconnect called without a reconnect")
	default:
	}
}

func TestSubscriberReconnectsAfterRestart(t *testing.T) {
	ctx := context.Background()
	srv, s := startRedisStore(t, "")
	r := newRecorder()
	startSubscriber(t, s, r)
	waitSubscribers(t, s, 1)

	srv.Kill()
	srv.Restart(t)
	r.expectReconnect(t)
	waitSubscribers(t, s, 1)
	if err := s.Delete(ctx, "after.test"); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t); got != "after.test" {
		t.Errorf("after reconnect received %q", got)
	}
}

func TestSubscriberStartsWhileRedisDown(t *testing.T) {
	srv := redistest.StartServer(t)
	srv.Kill()
	s := newRedisStore(t, RedisOptions{Addrs: []string{srv.Addr}})
	r := newRecorder()
	startSubscriber(t, s, r)
	srv.Restart(t)
	// The node may have cached answers from other tiers meanwhile and
	// missed invalidations, so the first connection counts as a
	// reconnect.
	r.expectReconnect(t)
	waitSubscribers(t, s, 1)
	if err := s.Delete(context.Background(), "x.test"); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t); got != "x.test" {
		t.Errorf("received %q", got)
	}
}

func TestSubscriberCloseStopsCallbacks(t *testing.T) {
	_, s := startRedisStore(t, "")
	r := newRecorder()
	sub := startSubscriber(t, s, r)
	waitSubscribers(t, s, 1)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitSubscribers(t, s, 0)
}

func TestRouteInvalidations(t *testing.T) {
	var certs, sites []string
	route := RouteInvalidations(
		func(n string) { certs = append(certs, n) },
		func(h string) { sites = append(sites, h) },
	)
	for _, m := range []string{"a.test", "site:b.test", "*.c.test"} {
		route(m)
	}
	if len(certs) != 2 || certs[0] != "a.test" || certs[1] != "*.c.test" {
		t.Errorf("certs got %v", certs)
	}
	if len(sites) != 1 || sites[0] != "b.test" {
		t.Errorf("sites got %v", sites)
	}
	RouteInvalidations(nil, nil)("site:x.test") // nil routes drop
}

func TestNewSubscriberNeedsCallback(t *testing.T) {
	_, s := startRedisStore(t, "")
	if _, err := NewSubscriber(s, nil, nil); err == nil {
		t.Error("NewSubscriber accepted a nil onName")
	}
}

// TestSubscriberDetectsSilentConnection freezes Redis (no RST, no answer, as
// in a partition): the Subscriber must notice by ping, rebuild the
// subscription and, once Redis answers again, report the reconnect.
func TestSubscriberDetectsSilentConnection(t *testing.T) {
	srv := redistest.StartServer(t)
	logs := &logCapture{msgs: make(chan string, 100)}
	s := newRedisStore(t, RedisOptions{Addrs: []string{srv.Addr}, Logger: slog.New(logs)})
	r := newRecorder()
	sub, err := newSubscriber(s, r.onName, r.onReconnect, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	waitSubscribers(t, s, 1)

	srv.Freeze(t)
	logs.waitFor(t, "silent")
	srv.Thaw(t)
	r.expectReconnect(t)
}

// logCapture is a slog.Handler that forwards messages to a channel.
type logCapture struct{ msgs chan string }

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCapture) WithGroup(string) slog.Handler      { return h }

func (h *logCapture) waitFor(t *testing.T, substr string) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case m := <-h.msgs:
			if strings.Contains(m, substr) {
				return
			}
		case <-timeout:
			t.Fatalf("no log message containing %q", substr)
		}
	}
}
