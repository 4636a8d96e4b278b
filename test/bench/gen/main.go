// Command gen writes the benchmark data set: tenant directories, one
// certificate per tenant, a file store, a host list, and optionally the same
// certificates in Redis.
//
//	go run ./test/bench/gen -n 1000 -key ecdsa -out /tmp/bench/ecdsa-1000
//	go run ./test/bench/gen -n 1000 -out DIR -redis 127.0.0.1:6379 -prefix ssl:
//
// See package massvhost/test/bench/internal/tenants for the layout.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"massvhost/test/bench/internal/loopback"
	"massvhost/test/bench/internal/tenants"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		o      tenants.Options
		reuse  bool
		rAddr  string
		prefix string
	)
	flag.StringVar(&o.Dir, "out", "bench-data", "output directory (replaced)")
	flag.IntVar(&o.N, "n", 100, "number of tenants")
	flag.StringVar(&o.Key, "key", tenants.KeyECDSA, "leaf key type: rsa2048 or ecdsa")
	flag.IntVar(&o.SharedKeys, "shared-keys", 64, "distinct key pairs reused round-robin across certificates (0 = one per certificate)")
	flag.StringVar(&o.Domain, "domain", "bench.test", "parent domain of the tenant host names")
	defOwner := -1
	if os.Geteuid() == 0 {
		defOwner = 1000 // CGI runs as the tenant's owner, which must not be root
	}
	flag.IntVar(&o.Owner, "owner", defOwner, "uid owning the tenant trees (-1 = current user)")
	flag.IntVar(&o.Group, "group", defOwner, "gid owning the tenant trees (-1 = current group)")
	flag.IntVar(&o.Workers, "workers", 0, "parallel workers (0 = GOMAXPROCS)")
	flag.BoolVar(&reuse, "reuse", false, "keep an existing data set generated with the same options")
	flag.StringVar(&rAddr, "redis", "", "also load the certificates into this loopback Redis (host:port)")
	flag.StringVar(&prefix, "prefix", "", "Redis key prefix (keys are <prefix><host>.crt and <prefix><host>.key)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "gen: unexpected argument %q\n", flag.Arg(0))
		return 2
	}
	o.Log = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if rAddr != "" {
		if err := loopback.Check(rAddr); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			return 2
		}
	}
	if reuse && tenants.Reusable(o) {
		fmt.Printf("reusing data set in %s\n", o.Dir)
	} else if _, err := tenants.Generate(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		return 1
	}
	if rAddr != "" {
		n, err := tenants.LoadRedis(ctx, o.Dir, rAddr, prefix)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			return 1
		}
		fmt.Printf("loaded %d certificate pairs into redis %s (keys %s<host>.crt / .key)\n", n, rAddr, prefix)
	}
	fmt.Printf("host list: %s\n", tenants.HostsFile(o.Dir))
	return 0
}
