package peers

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// MassvhostOptions select a massvhost mode.
type MassvhostOptions struct {
	Bin         string // the built binary
	Preload     bool   // certs.preload: load every certificate at start
	Redis       string // loopback Redis address; "" = file store
	RedisPrefix string
	// CacheSize is certs.cache_size; 1 makes every handshake of a rotating
	// host list load its certificate from the store (the cold case).
	CacheSize int
	// AdminAddr is admin.listen ("" = no admin listener, as in the
	// side-by-side tables); Pprof is admin.pprof.
	AdminAddr string
	Pprof     bool
	// AccessLog is log.access ("" = off, as every peer runs).
	AccessLog string
}

// Massvhost writes a massvhost configuration (only keys massvhost accepts)
// and the command to serve it with GOMAXPROCS=1.
func Massvhost(e Env, o MassvhostOptions) (Spec, error) {
	if err := e.prepare(); err != nil {
		return Spec{}, err
	}
	name := MassvhostLazy
	switch {
	case o.Preload:
		name = MassvhostPreload
	case o.Redis != "":
		name = MassvhostLazyRedis
	case o.CacheSize == 1:
		name = MassvhostLazyCold
	}
	cache := o.CacheSize
	if cache <= 0 {
		cache = max(10000, len(e.Data.Hosts))
	}
	store := "files"
	if o.Redis != "" {
		store = "redis"
	}
	data := filepath.Join(e.Work, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return Spec{}, err
	}
	conf := filepath.Join(e.Work, "massvhost.yaml")
	err := writeFile(conf, func(w *bufio.Writer) {
		q := strconv.Quote
		fmt.Fprintf(w, "listen:\n  http: \"\"\n  https: %s\n", q(e.Addr))
		fmt.Fprintf(w, "data_dir: %s\n", q(data))
		fmt.Fprintf(w, "sites:\n  root: %s\n  cache_size: %d\n", q(e.Data.Sites), max(10000, len(e.Data.Hosts)))
		fmt.Fprintf(w, "server:\n  max_conns_per_ip: 0\n")
		fmt.Fprintf(w, "certs:\n  store: %s\n  dir: %s\n  cache_size: %d\n  new_name_rate: 0\n  preload: %t\n  local_ca: false\n",
			store, q(e.Data.Certs), cache, o.Preload)
		if o.Redis != "" {
			fmt.Fprintf(w, "redis:\n  addrs: [%s]\n  key_prefix: %s\n", q(o.Redis), q(o.RedisPrefix))
		}
		fmt.Fprintf(w, "cgi:\n  enabled: true\n")
		fmt.Fprintf(w, "log:\n  access: %s\n  level: warn\n", q(cmp.Or(o.AccessLog, "off")))
		fmt.Fprintf(w, "admin:\n  listen: %s\n  pprof: %t\n", q(o.AdminAddr), o.Pprof)
	})
	if err != nil {
		return Spec{}, err
	}
	return Spec{
		Name:    name,
		Argv:    e.argv(o.Bin, "serve", "--config", conf),
		Env:     []string{"GOMAXPROCS=1"},
		Check:   []string{o.Bin, "check", "--config", conf},
		Stop:    15,
		Pinning: "GOMAXPROCS=1",
		Config:  conf,
	}, nil
}
