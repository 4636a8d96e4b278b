package tenants

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
)

func TestGenerateLayout(t *testing.T) {
	for _, key := range []string{KeyECDSA, KeyRSA2048} {
		t.Run(key, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			pool := filepath.Join(t.TempDir(), "pool")
			o := Options{Dir: dir, N: 7, Key: key, SharedKeys: 3, Owner: -1, Group: -1, KeyPool: pool}
			m, err := Generate(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if m.N != 7 || m.SharedKeys != 3 {
				t.Fatalf("manifest %+v", m)
			}
			hosts, err := ReadHosts(HostsFile(dir))
			if err != nil || len(hosts) != 7 || hosts[0] != "h000001.bench.test" {
				t.Fatalf("hosts %v, %v", hosts, err)
			}
			for _, h := range hosts {
				pair, err := tls.LoadX509KeyPair(filepath.Join(CertsDir(dir), h+".crt"), filepath.Join(CertsDir(dir), h+".key"))
				if err != nil {
					t.Fatalf("%s: %v", h, err)
				}
				if len(pair.Certificate) != 2 {
					t.Errorf("%s: chain of %d certificates, want leaf + CA", h, len(pair.Certificate))
				}
				if err := pair.Leaf.VerifyHostname(h); err != nil {
					t.Errorf("%s: %v", h, err)
				}
				idx, err := os.ReadFile(filepath.Join(SitesDir(dir), h, "htdocs", "index.html"))
				if err != nil || len(idx) != IndexSize {
					t.Errorf("%s: index.html %d bytes, %v", h, len(idx), err)
				}
				fi, err := os.Stat(filepath.Join(SitesDir(dir), h, "cgi-bin", "hello.cgi"))
				if err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("%s: hello.cgi %v, %v", h, fi.Mode(), err)
				}
			}
			// Round-robin sharing: host 1 and host 4 use the same key.
			a, _ := os.ReadFile(filepath.Join(CertsDir(dir), hosts[0]+".key"))
			b, _ := os.ReadFile(filepath.Join(CertsDir(dir), hosts[3]+".key"))
			c, _ := os.ReadFile(filepath.Join(CertsDir(dir), hosts[1]+".key"))
			if string(a) != string(b) || string(a) == string(c) {
				t.Error("keys not shared round-robin over 3 pairs")
			}
			if !Reusable(o) {
				t.Error("a fresh data set is not reusable with the same options")
			}
			o2 := o
			o2.N = 8
			if Reusable(o2) {
				t.Error("data set reusable for a different tenant count")
			}
			// A second data set reuses the pool's keys.
			o3 := o
			o3.Dir = filepath.Join(t.TempDir(), "data2")
			if _, err := Generate(context.Background(), o3); err != nil {
				t.Fatal(err)
			}
			a2, _ := os.ReadFile(filepath.Join(CertsDir(o3.Dir), hosts[0]+".key"))
			if string(a2) != string(a) {
				t.Error("second data set did not reuse the key pool")
			}
		})
	}
}

func TestIndexHTMLSize(t *testing.T) {
	if n := len(IndexHTML()); n != IndexSize {
		t.Fatalf("index.html is %d bytes, want %d", n, IndexSize)
	}
}

func TestOptionsRejected(t *testing.T) {
	for name, o := range map[string]Options{
		"zero tenants":    {N: 0, Key: KeyECDSA},
		"bad key":         {N: 1, Key: "dsa"},
		"negative shared": {N: 1, Key: KeyECDSA, SharedKeys: -1},
	} {
		if _, err := Generate(context.Background(), Options{Dir: t.TempDir(), N: o.N, Key: o.Key, SharedKeys: o.SharedKeys}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
