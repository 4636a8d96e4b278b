package tenants

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"massvhost/test/bench/internal/loopback"
)

// LoadRedis copies the file store of the data set in dir into the Redis at
// addr in the legacy layout, <prefix><host>.crt and <prefix><host>.key, with
// pipelined SETs. addr must be a loopback address: benchmark traffic never
// leaves the machine.
func LoadRedis(ctx context.Context, dir, addr, prefix string) (int, error) {
	if err := loopback.Check(addr); err != nil {
		return 0, err
	}
	hosts, err := ReadHosts(HostsFile(dir))
	if err != nil {
		return 0, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	defer rdb.Close()
	const batch = 500
	n := 0
	for start := 0; start < len(hosts); start += batch {
		pipe := rdb.Pipeline()
		for _, h := range hosts[start:min(start+batch, len(hosts))] {
			for _, ext := range []string{".crt", ".key"} {
				b, err := os.ReadFile(filepath.Join(CertsDir(dir), h+ext))
				if err != nil {
					return n, err
				}
				pipe.Set(ctx, prefix+h+ext, b, 0)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return n, fmt.Errorf("tenants: redis %s: %w", addr, err)
		}
		n += min(batch, len(hosts)-start)
	}
	return n, nil
}
