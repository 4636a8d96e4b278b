package certs

import (
	"context"
	"errors"
	"maps"
	"testing"

	"massvhost/vhost"
)

func TestSiteAliases(t *testing.T) {
	ctx := context.Background()
	srv, s := startRedisStore(t, "mv:")
	a := NewSiteAliases(s)

	if _, err := a.LookupAlias(ctx, "shop.example.net"); !errors.Is(err, vhost.ErrNoSuchHost) {
		t.Fatalf("unknown alias: %v, want vhost.ErrNoSuchHost", err)
	}
	if err := a.SetAlias(ctx, "Shop.Example.NET.", "Tenant.TEST"); err != nil {
		t.Fatal(err)
	}
	if got := srv.Do(t, "GET", "mv:site:shop.example.net"); got != "tenant.test" {
		t.Errorf("stored %q", got)
	}
	for _, host := range []string{"shop.example.net", "SHOP.example.net:443"} {
		if got, err := a.LookupAlias(ctx, host); err != nil || got != "tenant.test" {
			t.Errorf("LookupAlias(%q) = %q, %v", host, got, err)
		}
	}
	if err := a.SetAlias(ctx, "www.other.test", "tenant.test"); err != nil {
		t.Fatal(err)
	}
	// A stored tenant that is no canonical host is never returned.
	srv.Do(t, "SET", "mv:site:evil.test", "../../etc")
	if got, err := a.LookupAlias(ctx, "evil.test"); err == nil {
		t.Errorf("garbage tenant returned: %q", got)
	}

	got := map[string]string{}
	if err := a.ListAliases(ctx, func(h, tenant string) error { got[h] = tenant; return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"shop.example.net": "tenant.test", "www.other.test": "tenant.test"}
	if !maps.Equal(got, want) {
		t.Errorf("ListAliases = %v, want %v", got, want)
	}

	if err := a.RemoveAlias(ctx, "shop.example.net"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LookupAlias(ctx, "shop.example.net"); !errors.Is(err, vhost.ErrNoSuchHost) {
		t.Errorf("after RemoveAlias: %v", err)
	}

	for _, tc := range []struct{ host, tenant string }{
		{"../x", "tenant.test"}, {"a.test", "bad tenant"}, {"a.test", "a.test"}, {"", "t.test"}, {"*.a.test", "t.test"},
	} {
		if err := a.SetAlias(ctx, tc.host, tc.tenant); err == nil {
			t.Errorf("SetAlias(%q, %q) accepted", tc.host, tc.tenant)
		}
	}
	if _, err := a.LookupAlias(ctx, "a/b"); !errors.Is(err, vhost.ErrInvalidName) {
		t.Errorf("LookupAlias of an invalid host: %v", err)
	}

	srv.Kill()
	if _, err := a.LookupAlias(ctx, "tenant2.test"); !errors.Is(err, ErrUnavailable) || errors.Is(err, vhost.ErrNoSuchHost) {
		t.Errorf("LookupAlias with Redis down: %v, want ErrUnavailable", err)
	}
}
