package certs

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/vhost"
)

func TestCheckPair(t *testing.T) {
	ca := certtest.NewCA(t)
	now := time.Now()
	good, goodKey := ca.Leaf(t, "a.test", "www.a.test")
	_, otherKey := ca.Leaf(t, "a.test")
	wild, wildKey := ca.Leaf(t, "*.w.test")
	expired, expiredKey := ca.LeafWith(t, certtest.LeafOptions{Names: []string{"a.test"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	future, futureKey := ca.LeafWith(t, certtest.LeafOptions{Names: []string{"a.test"}, NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)})
	weak, weakKey := ca.LeafWith(t, certtest.LeafOptions{Names: []string{"a.test"}, RSABits: 1024})

	for _, tc := range []struct {
		name     string
		host     string
		crt, key []byte
		force    bool
		wantErr  error // nil: success
	}{
		{"valid", "a.test", good, goodKey, false, nil},
		{"second SAN", "www.a.test", good, goodKey, false, nil},
		{"wildcard", "*.w.test", wild, wildKey, false, nil},
		{"host under a wildcard is not the wildcard name", "*.a.test", good, goodKey, false, ErrInvalidCert},
		{"mismatched key", "a.test", good, otherKey, false, ErrInvalidCert},
		{"other host", "b.test", good, goodKey, false, ErrInvalidCert},
		{"expired", "a.test", expired, expiredKey, false, ErrInvalidCert},
		{"expired forced", "a.test", expired, expiredKey, true, nil},
		{"not yet valid", "a.test", future, futureKey, false, ErrInvalidCert},
		{"not yet valid forced", "a.test", future, futureKey, true, nil},
		{"weak RSA even forced", "a.test", weak, weakKey, true, ErrInvalidCert},
		{"truncated PEM", "a.test", good[:len(good)/2], goodKey, false, ErrInvalidCert},
		{"DER instead of PEM", "a.test", derOf(t, good), goodKey, false, ErrInvalidCert},
		{"empty", "a.test", nil, nil, false, ErrInvalidCert},
		{"key as cert", "a.test", goodKey, goodKey, false, ErrInvalidCert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := CheckPair(tc.host, tc.crt, tc.key, now, tc.force)
			if tc.wantErr == nil {
				if err != nil || leaf == nil {
					t.Fatalf("CheckPair = %v, %v", leaf, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("CheckPair error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// derOf returns the first PEM block's bytes.
func derOf(t *testing.T, p []byte) []byte {
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}

func TestDescribe(t *testing.T) {
	ca := certtest.NewCA(t)
	crt, _ := ca.Leaf(t, "a.test", "b.test")
	leaf, err := x509.ParseCertificate(derOf(t, crt))
	if err != nil {
		t.Fatal(err)
	}
	d := Describe(leaf)
	sum := sha256.Sum256(leaf.Raw)
	if want := strings.ToUpper(fmt.Sprintf("%x", sum[:1])); !strings.HasPrefix(d.SHA256, want+":") || len(d.SHA256) != 32*3-1 {
		t.Errorf("SHA256 = %q", d.SHA256)
	}
	if !slices.Equal(d.DNSNames, []string{"a.test", "b.test"}) || d.Subject != "CN=a.test" || d.Issuer != "CN=certtest CA" {
		t.Errorf("Describe = %+v", d)
	}
	if !d.NotAfter.Equal(leaf.NotAfter) || d.Serial != leaf.SerialNumber.Text(16) {
		t.Errorf("dates/serial = %+v", d)
	}
}

func TestPutCheckedInspectListNames(t *testing.T) {
	ctx := context.Background()
	ca := certtest.NewCA(t)
	crt, key := ca.Leaf(t, "a.test")
	wcrt, wkey := ca.Leaf(t, "*.w.test")
	for _, st := range bothStores(t, "") {
		t.Run(st.name, func(t *testing.T) {
			name, leaf, err := PutChecked(ctx, st.store, "A.Test.", crt, key, time.Now(), false)
			if err != nil || name != "a.test" || leaf == nil {
				t.Fatalf("PutChecked = %q, %v", name, err)
			}
			if _, _, err := PutChecked(ctx, st.store, "*.W.test", wcrt, wkey, time.Now(), false); err != nil {
				t.Fatal(err)
			}
			if _, _, err := PutChecked(ctx, st.store, "b.test", crt, key, time.Now(), false); !errors.Is(err, ErrInvalidCert) {
				t.Errorf("PutChecked of a cert for another host: %v", err)
			}
			if _, _, err := PutChecked(ctx, st.store, "../b", crt, key, time.Now(), false); !errors.Is(err, vhost.ErrInvalidName) {
				t.Errorf("PutChecked of a bad name: %v", err)
			}

			got, err := Inspect(ctx, st.store, "A.TEST")
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != "a.test" || got.Layout != st.layout || got.Subject != "CN=a.test" {
				t.Errorf("Inspect = %+v", got)
			}
			if _, err := Inspect(ctx, st.store, "nope.test"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Inspect of a missing name: %v", err)
			}

			var names []string
			collect := func(n string) error { names = append(names, n); return nil }
			if err := ListNames(ctx, st.store, "", collect); err != nil {
				t.Fatal(err)
			}
			slices.Sort(names)
			if !slices.Equal(names, []string{"*.w.test", "a.test"}) {
				t.Errorf("ListNames = %v", names)
			}
			names = nil
			if err := ListNames(ctx, st.store, "a.*", collect); err != nil || !slices.Equal(names, []string{"a.test"}) {
				t.Errorf("ListNames a.* = %v, %v", names, err)
			}
			if err := ListNames(ctx, st.store, "[", collect); err == nil {
				t.Error("ListNames accepted a bad pattern")
			}
		})
	}
}

func TestExpiring(t *testing.T) {
	ctx := context.Background()
	ca := certtest.NewCA(t)
	now := time.Now()
	leaf := func(name string, notAfter time.Time) ([]byte, []byte) {
		return ca.LeafWith(t, certtest.LeafOptions{Names: []string{name}, NotBefore: now.Add(-90 * 24 * time.Hour), NotAfter: notAfter})
	}
	for _, st := range bothStores(t, "") {
		t.Run(st.name, func(t *testing.T) {
			for name, notAfter := range map[string]time.Time{
				"soon.test":    now.Add(5 * 24 * time.Hour),
				"expired.test": now.Add(-time.Hour),
				"later.test":   now.Add(60 * 24 * time.Hour),
			} {
				c, k := leaf(name, notAfter)
				if err := st.store.Put(ctx, name, c, k); err != nil {
					t.Fatal(err)
				}
			}
			c, _ := leaf("broken.test", now.Add(60*24*time.Hour))
			_, k := leaf("broken.test", now.Add(60*24*time.Hour))
			if err := st.store.Put(ctx, "broken.test", c, k); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			err := Expiring(ctx, st.store, 30*24*time.Hour, now, func(e Expiry) error {
				got[e.Name] = e.Err != nil
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{"soon.test": false, "expired.test": false, "broken.test": true}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Expiring = %v, want %v", got, want)
			}
		})
	}

	srv, down := startRedisStore(t, "")
	c, k := leaf("x.test", now.Add(time.Hour))
	if err := down.Put(ctx, "x.test", c, k); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := Expiring(ctx, down, time.Hour, now, func(Expiry) error { return nil }); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Expiring with Redis down: %v", err)
	}
}

// namedStore is a writable, listable store under test.
type namedStore struct {
	name  string
	store interface {
		Writer
		ListStore
	}
	layout Layout // what Inspect reports for it
}

// bothStores returns an empty FileStore and an empty RedisStore with prefix,
// for tests that must hold for every store.
func bothStores(t *testing.T, prefix string) []namedStore {
	t.Helper()
	_, rs := startRedisStore(t, prefix)
	return []namedStore{
		{"files", FileStore{Dir: t.TempDir()}, ""},
		{"redis", rs, LayoutHash},
	}
}
