package tenants

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"

	"massvhost/test/redistest"
)

func TestLoadRedisLegacyLayout(t *testing.T) {
	addr := redistest.Start(t)
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := Generate(context.Background(), Options{Dir: dir, N: 600, Key: KeyECDSA, SharedKeys: 4, Owner: -1, Group: -1}); err != nil {
		t.Fatal(err)
	}
	n, err := LoadRedis(context.Background(), dir, addr, "ssl:")
	if err != nil || n != 600 {
		t.Fatalf("loaded %d, %v", n, err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for _, h := range []string{HostName(1, "bench.test"), HostName(600, "bench.test")} {
		for _, ext := range []string{".crt", ".key"} {
			got, err := rdb.Get(context.Background(), "ssl:"+h+ext).Bytes()
			if err != nil {
				t.Fatalf("%s%s: %v", h, ext, err)
			}
			want, _ := os.ReadFile(filepath.Join(CertsDir(dir), h+ext))
			if string(got) != string(want) {
				t.Errorf("%s%s differs from the file store", h, ext)
			}
		}
	}
	if size := rdb.DBSize(context.Background()).Val(); size != 1200 {
		t.Errorf("%d keys, want 1200", size)
	}
}

func TestLoadRedisRefusesRemote(t *testing.T) {
	if _, err := LoadRedis(context.Background(), t.TempDir(), "192.0.2.1:6379", ""); err == nil {
		t.Fatal("accepted a non-loopback Redis")
	}
}
