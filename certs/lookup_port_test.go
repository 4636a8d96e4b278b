package certs

import (
	"context"
	"errors"
	"testing"

	"massvhost/vhost"
)

// TestLookupSNIWithPort checks that a server name carrying a port, which
// vhost.Normalize accepts for Host headers, is refused as an SNI without a
// store lookup.
func TestLookupSNIWithPort(t *testing.T) {
	f := newFixture(t)
	f.write(t, "a.test", "a.test")
	m := f.manager(t)
	for _, sni := range []string{"a.test:443", "a.test:8443", "A.TEST.:443"} {
		if _, err := m.Lookup(context.Background(), sni); !errors.Is(err, vhost.ErrInvalidName) {
			t.Errorf("Lookup(%q) error = %v, want vhost.ErrInvalidName", sni, err)
		}
	}
	if n := f.store.gets(""); n != 0 {
		t.Errorf("store Get calls = %d, want 0", n)
	}
	if _, err := m.Lookup(context.Background(), "A.TEST."); err != nil {
		t.Errorf("Lookup(A.TEST.) = %v, want a.test's certificate", err)
	}
}
