package certs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestPreload(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	f.write(t, "b.test", "b.test")
	f.write(t, "*.wild.test", "*.wild.test")
	f.write(t, "broken.test", "someone-else.test")
	m := f.manager(t, func(o *Options) { o.Preload = true })
	loaded := f.store.gets("")
	addr := serveTLS(t, m.GetCertificate)
	for _, sni := range []string{"a.test", "B.test", "x.wild.test"} {
		leaf, err := handshake(addr, sni, f.ca.Pool)
		if err != nil {
			t.Fatalf("%s: %v", sni, err)
		}
		if err := leaf.VerifyHostname(sni); err != nil {
			t.Error(err)
		}
	}
	for _, sni := range []string{"broken.test", "nope.test"} {
		if _, err := m.Lookup(context.Background(), sni); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", sni, err)
		}
	}
	if got := f.store.gets("") - loaded; got != 0 {
		t.Errorf("store Get calls after preload = %d, want 0", got)
	}
	if st := m.Stats(); st.Entries != 3 {
		t.Errorf("Stats().Entries = %d, want 3", st.Entries)
	}
	if !strings.Contains(f.logs.String(), "preloaded certificates") {
		t.Error("preload did not log its count")
	}
}

func TestPreloadNeedsLister(t *testing.T) {
	_, err := NewManager(Options{Store: Tiered{}, Preload: true, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		t.Fatal("preload over stores that cannot list succeeded")
	}
	_, err = NewManager(Options{Store: storeOnly{}, Preload: true})
	if err == nil || !strings.Contains(err.Error(), "does not implement Lister") {
		t.Fatalf("error = %v, want one naming the missing Lister", err)
	}
}

// storeOnly is a Store with no other capability.
type storeOnly struct{}

func (storeOnly) Get(context.Context, string) ([]byte, []byte, error) { return nil, nil, ErrNotFound }
