package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"massvhost/test/bench/internal/peerproc"
	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/results"
	"massvhost/test/bench/internal/tenants"
)

// sharedKeys is how many key pairs the data sets reuse round-robin.
const sharedKeys = 64

// dataset is one generated tenant set.
type dataset struct {
	key   string
	n     int
	dir   string
	hosts string // host list file
	data  peers.Data
}

// dataset returns the data set of n tenants with key type key, generating it
// under <work>/data unless an identical one is already there.
func (o *orch) dataset(key string, n int) (*dataset, error) {
	id := fmt.Sprintf("%s-%d", key, n)
	if d, ok := o.dataSets[id]; ok {
		return d, nil
	}
	dir := filepath.Join(o.work, "data", id)
	owner := -1
	if os.Geteuid() == 0 {
		owner = 1000 // CGI must not run as root; massvhost refuses uid < cgi.min_uid
	}
	opts := tenants.Options{Dir: dir, N: n, Key: key, SharedKeys: sharedKeys, Owner: owner, Group: owner, Log: os.Stdout,
		KeyPool: filepath.Join(o.work, "data", "keypool")}
	ds := results.DataSet{Key: key, N: n, SharedKeys: min(sharedKeys, n), Dir: dir}
	if tenants.Reusable(opts) {
		o.logf("reusing data set %s", dir)
	} else {
		m, err := tenants.Generate(o.ctx, opts)
		if err != nil {
			return nil, err
		}
		ds.GenS = m.ElapsedS
	}
	o.res.Data = append(o.res.Data, ds)
	o.note("leaf certificates share %d key pairs round-robin (generating 100,000 RSA keys would dominate the run); every server still reads and parses one certificate and one key file per host", sharedKeys)
	hosts, err := tenants.ReadHosts(tenants.HostsFile(dir))
	if err != nil {
		return nil, err
	}
	d := &dataset{key: key, n: n, dir: dir, hosts: tenants.HostsFile(dir),
		data: peers.Data{Sites: tenants.SitesDir(dir), Certs: tenants.CertsDir(dir), Hosts: hosts}}
	o.dataSets[id] = d
	return d, nil
}

// redisServer is a private redis-server on a loopback port, no persistence.
type redisServer struct {
	srv    *peerproc.Process
	addr   string
	loaded string // data set currently loaded
}

const redisPrefix = "bench:"

// redisFor starts the Redis server on first use and loads d into it
// (replacing what it held) in the legacy key layout.
func (o *orch) redisFor(d *dataset) (string, error) {
	if o.redis == nil {
		addr, err := freePort()
		if err != nil {
			return "", err
		}
		_, port, _ := splitPort(addr)
		work := filepath.Join(o.work, "run", "redis")
		os.MkdirAll(work, 0o755)
		spec := peers.Spec{Name: "redis", Stop: 15, Argv: []string{"redis-server", "--bind", "127.0.0.1", "--port", port,
			"--save", "", "--appendonly", "no", "--dir", work, "--protected-mode", "yes", "--daemonize", "no"}}
		s, err := peerproc.Start(spec, filepath.Join(work, "redis.log"))
		if err != nil {
			return "", err
		}
		o.redis = &redisServer{srv: s, addr: addr}
		if err := o.redis.ping(o.ctx); err != nil {
			o.redis.stop()
			o.redis = nil
			return "", err
		}
	}
	id := fmt.Sprintf("%s-%d", d.key, d.n)
	if o.redis.loaded != id {
		rdb := redis.NewClient(&redis.Options{Addr: o.redis.addr})
		err := rdb.FlushAll(o.ctx).Err()
		rdb.Close()
		if err != nil {
			return "", err
		}
		t0 := time.Now()
		n, err := tenants.LoadRedis(o.ctx, d.dir, o.redis.addr, redisPrefix)
		if err != nil {
			return "", err
		}
		o.redis.loaded = id
		o.logf("loaded %d certificate pairs into redis in %.1fs", n, time.Since(t0).Seconds())
	}
	return o.redis.addr, nil
}

func (r *redisServer) ping(ctx context.Context) error {
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	for i := 0; i < 100; i++ {
		if rdb.Ping(ctx).Err() == nil {
			return nil
		}
		if r.srv.Exited() {
			return fmt.Errorf("redis-server exited: %s", r.srv.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s not answering", r.addr)
}

func (r *redisServer) stop() { r.srv.Stop(10 * time.Second) }
