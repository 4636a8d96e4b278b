package main

import (
	"slices"
	"time"

	"massvhost/test/bench/internal/loadgen"
	"massvhost/test/bench/internal/peerproc"
	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/results"
	"massvhost/test/bench/internal/tenants"
)

var tlsPeers = []string{peers.MassvhostLazy, peers.MassvhostLazyCold, peers.MassvhostPreload, peers.NginxPreload, peers.NginxLazy}

// staticPeers serve the static keep-alive comparison: one worker each.
var staticPeers = []string{peers.MassvhostLazy, peers.NginxPreload}

const staticPath = "/index.html"

// tlsTable measures T4 (handshakes/s and requests/s per host count, mode
// and key type) and the static keep-alive comparison, starting each peer
// once per key type with every host configured.
func (o *orch) tlsTable() {
	tenantsN := 0
	for _, h := range o.plan.tlsHosts {
		tenantsN = max(tenantsN, h)
	}
	staticKey := o.plan.tlsKeys[0]
	if slices.Contains(o.plan.tlsKeys, tenants.KeyECDSA) {
		staticKey = tenants.KeyECDSA
	}
	for _, key := range o.plan.tlsKeys {
		d, err := o.dataset(key, tenantsN)
		if err != nil {
			o.skip("T4", "*", tenantsN, "data set: %v", err)
			continue
		}
		for _, peer := range tlsPeers {
			if !o.wants(peer) {
				continue
			}
			if !o.timeLeft(3 * time.Minute) {
				o.skip("T4", peer, tenantsN, "overall time bound of the run reached")
				continue
			}
			o.tlsPoints(peer, d, key == staticKey && slices.Contains(staticPeers, peer))
		}
	}
}

func (o *orch) tlsPoints(peer string, d *dataset, static bool) {
	s, _, err := o.launch(peer, d, o.plan.startupBound)
	if err != nil {
		o.skip("T4", peer, d.n, "%v", err)
		return
	}
	defer s.Stop(60 * time.Second)
	for _, h := range o.plan.tlsHosts {
		if peer != peers.MassvhostLazyCold {
			// Every host once, so lazy caches hold the working set ("warm").
			o.load(loadArgs{d: d, hosts: h, mode: loadgen.ModeNewConn, conc: 4, n: h})
		}
		for _, mode := range o.plan.tlsModes {
			pt := o.tlsPoint("T4", peer, s, d, loadArgs{d: d, hosts: h, mode: mode, conc: o.plan.tlsConc, dur: o.plan.tlsDur, perConn: 100})
			if pt != nil {
				o.logf("T4 %-22s %-7s hosts=%-6d %-9s %8.1f handshakes/s %8.1f req/s  p99 %6.2f ms  server CPU %.2f  errors %d",
					peer, d.key, h, mode, pt.HPS, pt.RPS, pt.P99MS, pt.ServerCPU, pt.Errors)
			}
		}
	}
	if static {
		protos := []string{loadgen.ProtoH1}
		if o.plan.staticH2 {
			protos = append(protos, loadgen.ProtoH2)
		}
		for _, proto := range protos {
			pt := o.tlsPoint("static", peer, s, d, loadArgs{d: d, hosts: min(100, d.n), mode: loadgen.ModeKeepAlive, proto: proto,
				conc: o.plan.tlsConc, dur: o.plan.staticDur, perConn: 0, path: staticPath})
			if pt != nil {
				o.logf("static %-22s %s %8.1f req/s  p99 %6.2f ms  server CPU %.2f  errors %d", peer, proto, pt.RPS, pt.P99MS, pt.ServerCPU, pt.Errors)
			}
		}
	}
	tr := snapshot(s.Pid)
	for i := range o.res.TLS {
		if p := &o.res.TLS[i]; p.Peer == peer && p.Key == d.key && p.Server == nil {
			p.Server = &tr
		}
	}
}

func (o *orch) tlsPoint(table, peer string, s *peerproc.Process, d *dataset, a loadArgs) *results.TLSPoint {
	proto := a.proto
	if proto == "" {
		proto = loadgen.ProtoH1
	}
	path := a.path
	if path == "" {
		path = "/"
	}
	pt := results.TLSPoint{Table: table, Peer: peer, Key: d.key, Tenants: d.n, Hosts: a.hosts, Mode: a.mode, Proto: proto, Path: path}
	var cpu []float64
	for r := 0; r < o.plan.repeat; r++ {
		res, c, err := o.measured(s, a)
		if err != nil {
			o.skip(table, peer, d.n, "load: %v", err)
			return nil
		}
		pt.Runs = append(pt.Runs, res)
		cpu = append(cpu, c)
	}
	pt.ServerCPU = results.Median(cpu)
	pt.HPS = results.MedianOf(pt.Runs, func(r *loadgen.Result) float64 { return r.HPS })
	pt.RPS = results.MedianOf(pt.Runs, func(r *loadgen.Result) float64 { return r.RPS })
	pt.P50MS = results.MedianOf(pt.Runs, func(r *loadgen.Result) float64 { return r.Latency.P50 })
	pt.P99MS = results.MedianOf(pt.Runs, func(r *loadgen.Result) float64 { return r.Latency.P99 })
	for _, r := range pt.Runs {
		pt.Errors += r.Errors
	}
	o.res.TLS = append(o.res.TLS, pt)
	return &o.res.TLS[len(o.res.TLS)-1]
}
