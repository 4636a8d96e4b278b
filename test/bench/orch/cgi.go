package main

import (
	"slices"
	"time"

	"massvhost/test/bench/internal/loadgen"
	"massvhost/test/bench/internal/peerproc"
	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/results"
)

// cgiPath is the tenant script every CGI point requests.
const cgiPath = "/cgi-bin/hello.cgi"

var cgiPeers = []string{peers.MassvhostLazy, peers.MassvhostPreload, peers.ApacheEvent, peers.ApachePrefork}

// cgiTable measures T3: CGI latency over keep-alive connections at each
// concurrency, with the server holding each tenant count.
func (o *orch) cgiTable() {
	stopped := map[string]bool{}
	for _, n := range o.plan.cgiTenants {
		d, err := o.dataset(startupKey, n)
		if err != nil {
			o.skip("T3", "*", n, "data set: %v", err)
			continue
		}
		for _, peer := range cgiPeers {
			if !o.wants(peer) || stopped[peer] {
				continue
			}
			if !o.timeLeft(2 * time.Minute) {
				o.skip("T3", peer, n, "overall time bound of the run reached")
				continue
			}
			if reason := o.predictTooBig(peer, n); reason != "" {
				o.skip("T3", peer, n, "%s", reason)
				stopped[peer] = true
				continue
			}
			o.cgiPoints(peer, d)
		}
	}
}

func (o *orch) cgiPoints(peer string, d *dataset) {
	s, _, err := o.launch(peer, d, o.plan.startupBound)
	if err != nil {
		o.skip("T3", peer, d.n, "%v", err)
		return
	}
	defer s.Stop(60 * time.Second)
	if err := peerproc.Probe(o.addr, d.data.Hosts[0], cgiPath); err != nil {
		o.skip("T3", peer, d.n, "CGI request failed: %v", err)
		return
	}
	hosts := min(o.plan.cgiHosts, d.n)
	// Warm-up: spare children, page cache, first-use costs.
	o.load(loadArgs{d: d, hosts: hosts, mode: loadgen.ModeKeepAlive, conc: slices.Max(o.plan.cgiConc), dur: time.Second, perConn: 100, path: cgiPath})
	tree := snapshot(s.Pid)
	for _, c := range o.plan.cgiConc {
		pt := results.CGIPoint{Peer: peer, Tenants: d.n, Concurrency: c, Server: tree}
		var cpu []float64
		for r := 0; r < o.plan.repeat; r++ {
			res, u, err := o.measured(s, loadArgs{d: d, hosts: hosts, mode: loadgen.ModeKeepAlive, conc: c, dur: o.plan.cgiDur, perConn: 100, path: cgiPath})
			if err != nil {
				o.skip("T3", peer, d.n, "load: %v", err)
				break
			}
			pt.Runs = append(pt.Runs, res)
			cpu = append(cpu, u)
		}
		pt.ServerCPU = results.Median(cpu)
		if len(pt.Runs) == 0 {
			continue
		}
		pt.P50MS = results.MedianOf(pt.Runs, func(r *loadgen.Result) float64 { return r.Latency.P50 })
		pt.P99MS = results.MedianOf(pt.Runs, func(r *loadgen.Result) float64 { return r.Latency.P99 })
		pt.RPS = results.MedianOf(pt.Runs, func(r *loadgen.Result) float64 { return r.RPS })
		for _, r := range pt.Runs {
			pt.Errors += r.Errors
		}
		o.logf("T3 %-22s n=%-6d c=%-2d rss %7.1f MB  p50 %7.2f ms  p99 %7.2f ms  %7.1f req/s  errors %d",
			peer, d.n, c, float64(tree.MaxRSSKB)/1024, pt.P50MS, pt.P99MS, pt.RPS, pt.Errors)
		o.res.CGI = append(o.res.CGI, pt)
	}
}
