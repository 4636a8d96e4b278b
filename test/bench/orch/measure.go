package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"massvhost/test/bench/internal/loadgen"
	"massvhost/test/bench/internal/peerproc"
	"massvhost/test/bench/internal/peers"
)

func splitPort(addr string) (host, port string, err error) { return net.SplitHostPort(addr) }

// spec writes the configuration of peer for d.
func (o *orch) spec(peer string, d *dataset) (peers.Spec, error) {
	env := peers.Env{Work: filepath.Join(o.work, "run", peer), Addr: o.addr, Data: d.data, CPUs: o.serverCPUs}
	var s peers.Spec
	var err error
	switch peer {
	case peers.NginxPreload, peers.NginxLazy:
		s, err = peers.Nginx(env, peer == peers.NginxPreload)
	case peers.ApacheEvent, peers.ApachePrefork:
		s, err = peers.Apache(env, peer == peers.ApacheEvent)
	case peers.MassvhostLazy:
		s, err = peers.Massvhost(env, peers.MassvhostOptions{Bin: o.bin.massvhost})
	case peers.MassvhostLazyCold:
		s, err = peers.Massvhost(env, peers.MassvhostOptions{Bin: o.bin.massvhost, CacheSize: 1})
	case peers.MassvhostPreload:
		s, err = peers.Massvhost(env, peers.MassvhostOptions{Bin: o.bin.massvhost, Preload: true})
	case peers.MassvhostLazyRedis:
		addr, rerr := o.redisFor(d)
		if rerr != nil {
			return peers.Spec{}, fmt.Errorf("redis: %w", rerr)
		}
		s, err = peers.Massvhost(env, peers.MassvhostOptions{Bin: o.bin.massvhost, Redis: addr, RedisPrefix: redisPrefix})
	default:
		return peers.Spec{}, fmt.Errorf("unknown peer %q", peer)
	}
	if err == nil {
		o.res.Pinning.Peers[peer] = s.Pinning
	}
	return s, err
}

// launch starts peer on d and waits for its first HTTPS 200.
func (o *orch) launch(peer string, d *dataset, bound time.Duration) (*peerproc.Process, time.Duration, error) {
	spec, err := o.spec(peer, d)
	if err != nil {
		return nil, 0, err
	}
	if err := waitPortFree(o.ctx, o.addr, 30*time.Second); err != nil {
		return nil, 0, err
	}
	s, err := peerproc.Start(spec, filepath.Join(filepath.Dir(spec.Config), "server.log"))
	if err != nil {
		return nil, 0, err
	}
	ready, err := s.WaitReady(o.ctx, o.addr, d.data.Hosts[0], bound)
	if err != nil {
		s.Stop(30 * time.Second)
		return nil, 0, err
	}
	return s, ready, nil
}

// loadArgs is one load generator run.
type loadArgs struct {
	d       *dataset
	hosts   int // rotate over the first hosts of the list (0 = all)
	mode    string
	proto   string
	conc    int
	dur     time.Duration
	n       int
	perConn int
	path    string
}

// load runs the load generator as a separate process on the client CPUs.
func (o *orch) load(a loadArgs) (*loadgen.Result, error) {
	out, err := os.CreateTemp(filepath.Join(o.work, "run"), "load-*.json")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())
	argv := []string{o.bin.load, "-q", "-addr", o.addr, "-hosts", a.d.hosts, "-json", out.Name(),
		"-mode", a.mode, "-c", strconv.Itoa(max(a.conc, 1)), "-per-conn", strconv.Itoa(a.perConn)}
	if a.hosts > 0 {
		argv = append(argv, "-limit", strconv.Itoa(a.hosts))
	}
	if a.proto != "" {
		argv = append(argv, "-proto", a.proto)
	}
	if a.path != "" {
		argv = append(argv, "-path", a.path)
	}
	bound := 2 * time.Minute
	if a.dur > 0 {
		argv = append(argv, "-d", a.dur.String())
		bound = a.dur + time.Minute
	}
	if a.n > 0 {
		argv = append(argv, "-n", strconv.Itoa(a.n), "-max-d", "2m")
	}
	if o.clientCPUs != "" {
		argv = append([]string{"taskset", "-c", o.clientCPUs}, argv...)
	}
	ctx, cancel := context.WithTimeout(o.ctx, bound+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("load: %w: %s", err, firstLine(string(msg)))
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		return nil, err
	}
	var r loadgen.Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// measured runs the load generator while sampling the server tree's CPU
// time, and returns the result with the server's CPU use in cores.
func (o *orch) measured(s *peerproc.Process, a loadArgs) (*loadgen.Result, float64, error) {
	before := snapshot(s.Pid)
	t0 := time.Now()
	res, err := o.load(a)
	if err != nil {
		return nil, 0, err
	}
	after := snapshot(s.Pid)
	wall := time.Since(t0).Seconds()
	cpu := float64(after.UserMS+after.SysMS-before.UserMS-before.SysMS) / 1e3
	// The load generator's own start-up is inside wall; its run time is
	// the better denominator when known.
	if res.ElapsedS > 0 && res.ElapsedS < wall {
		wall = res.ElapsedS
	}
	return res, cpu / wall, nil
}
