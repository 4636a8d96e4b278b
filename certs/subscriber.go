package certs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"massvhost/vhost"
)

// Subscriber timing. A silent subscription is pinged after
// subscriberPingInterval; when the pong does not come within another
// interval the connection is presumed dead (a partition drops packets
// without resetting the connection) and the subscription is rebuilt.
const (
	subscriberPingInterval = 5 * time.Second
	subscriberMinBackoff   = 50 * time.Millisecond
	subscriberMaxBackoff   = 2 * time.Second
)

// SiteInvalidationPrefix starts invalidation messages about site aliases
// ("site:shop.example.net"); every other message is a certificate name.
// Certificate names never contain ':', so the two cannot be confused.
const SiteInvalidationPrefix = "site:"

// Subscriber listens on a RedisStore's invalidation channel
// (<prefix>invalidate), to which every [RedisStore.Put], [RedisStore.Delete]
// and [SiteAliases] write publishes the changed name, so that every node
// drops its cached copy at once instead of serving the old one until its TTL.
//
// Pub/sub delivery is at most once: messages published while a node is
// disconnected are lost. So whenever the subscription is re-established
// after a loss (Redis restarted, a network error, a silent partition detected
// by ping), the Subscriber calls onReconnect, whose job is to distrust
// everything cached (Manager.RevalidateAll). It does the same on the first
// connection when Redis was unreachable at NewSubscriber.
//
// A Subscriber runs one goroutine; Close stops it and waits for it.
type Subscriber struct {
	store       *RedisStore
	onName      func(string)
	onReconnect func()
	log         *slog.Logger
	interval    time.Duration // ping after this much silence; a test seam

	psMu   sync.Mutex
	ps     *redis.PubSub
	closed bool

	stop chan struct{} // closed by Close
	done chan struct{} // closed when the goroutine returns
}

// NewSubscriber subscribes to store's invalidation channel and calls onName
// with each published name that is a canonical certificate store name or
// [SiteInvalidationPrefix] and a canonical host (anything else on the channel
// is logged and dropped), and onReconnect as described at [Subscriber].
// Callbacks run on the Subscriber's goroutine, one at a time, and must not
// block; onReconnect may be nil. Redis need not be reachable: the Subscriber
// keeps trying to connect.
func NewSubscriber(store *RedisStore, onName func(name string), onReconnect func()) (*Subscriber, error) {
	return newSubscriber(store, onName, onReconnect, subscriberPingInterval)
}

func newSubscriber(store *RedisStore, onName func(name string), onReconnect func(), interval time.Duration) (*Subscriber, error) {
	if store == nil || onName == nil {
		return nil, errors.New("certs: NewSubscriber needs a store and an onName callback")
	}
	if onReconnect == nil {
		onReconnect = func() {}
	}
	s := &Subscriber{
		store:       store,
		onName:      onName,
		onReconnect: onReconnect,
		log:         store.log,
		interval:    interval,
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	missed := s.subscribe() != nil
	go s.run(missed)
	return s, nil
}

// subscribe replaces the current PubSub with a new subscription. An error
// means the first connection attempt failed; go-redis keeps the channel and
// connects on the next receive.
func (s *Subscriber) subscribe() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.interval)
	defer cancel()
	ps := s.store.client.Subscribe(ctx)
	err := ps.Subscribe(ctx, s.store.channel())

	s.psMu.Lock()
	old := s.ps
	if s.closed {
		old = ps // Close ran meanwhile: do not keep the new one.
	} else {
		s.ps = ps
	}
	s.psMu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return err
}

func (s *Subscriber) current() *redis.PubSub {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	return s.ps
}

// run receives until Close. confirmed tracks whether a subscribe
// confirmation has been seen: every later confirmation is a resubscription
// after a lost connection.
func (s *Subscriber) run(missed bool) {
	defer close(s.done)
	ctx := context.Background()
	confirmed := false
	pinged := false
	backoff := subscriberMinBackoff
	for {
		msg, err := s.current().ReceiveTimeout(ctx, s.interval)
		if s.isClosed() {
			return
		}
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout() && !pinged:
				pinged = true
				// A failed write makes go-redis reconnect; a
				// silent peer is caught by the next timeout.
				_ = s.current().Ping(ctx)
				continue
			case errors.As(err, &ne) && ne.Timeout():
				s.log.Warn("certs: redis invalidation subscription silent; reconnecting", "store", "redis")
				pinged = false
				missed = true
				if s.subscribe() == nil {
					continue
				}
			default:
				if confirmed {
					s.log.Warn("certs: redis invalidation subscription lost", "store", "redis", "error", err)
				}
			}
			select {
			case <-time.After(backoff):
			case <-s.stop:
				return
			}
			backoff = min(2*backoff, subscriberMaxBackoff)
			continue
		}
		pinged = false
		backoff = subscriberMinBackoff
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if confirmed || missed {
				s.log.Info("certs: redis invalidation subscription re-established; revalidating cached entries", "store", "redis")
				s.onReconnect()
			}
			confirmed, missed = true, false
		case *redis.Message:
			if err := checkInvalidation(m.Payload); err != nil {
				s.log.Warn("certs: ignoring invalidation message", "store", "redis", "error", err)
				continue
			}
			s.onName(m.Payload)
		}
	}
}

func (s *Subscriber) isClosed() bool {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	return s.closed
}

// Close unsubscribes and waits for the goroutine to end. Callbacks are not
// called after Close returns.
func (s *Subscriber) Close() error {
	s.psMu.Lock()
	if s.closed {
		s.psMu.Unlock()
		return nil
	}
	s.closed = true
	ps := s.ps
	s.psMu.Unlock()
	close(s.stop)
	err := ps.Close()
	<-s.done
	return err
}

// checkInvalidation reports an error unless payload is a canonical store
// name or a site invalidation for a canonical host.
func checkInvalidation(payload string) error {
	if host, ok := strings.CutPrefix(payload, SiteInvalidationPrefix); ok {
		canon, err := vhost.Normalize(host)
		if err != nil {
			return err
		}
		if canon != host {
			return fmt.Errorf("%w: site %q is not in canonical form", vhost.ErrInvalidName, host)
		}
		return nil
	}
	return checkStoreName(payload)
}

// RouteInvalidations returns an onName callback for [NewSubscriber] that
// sends site invalidations ("site:<host>") to sites, with the prefix
// removed, and certificate names to certs (Manager.Invalidate). A nil
// function drops its kind.
func RouteInvalidations(certs func(name string), sites func(host string)) func(string) {
	return func(msg string) {
		if host, ok := strings.CutPrefix(msg, SiteInvalidationPrefix); ok {
			if sites != nil {
				sites(host)
			}
			return
		}
		if certs != nil {
			certs(msg)
		}
	}
}
