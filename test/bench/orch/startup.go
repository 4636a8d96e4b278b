package main

import (
	"errors"
	"time"

	"massvhost/test/bench/internal/loadgen"
	"massvhost/test/bench/internal/peerproc"
	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/results"
	"massvhost/test/bench/internal/tenants"
)

// startupKey is the certificate type of the start-up and CGI tables: the
// published figures used RSA-2048.
const startupKey = tenants.KeyRSA2048

var startupPeers = []string{peers.MassvhostLazy, peers.MassvhostLazyRedis, peers.MassvhostPreload,
	peers.NginxPreload, peers.NginxLazy, peers.ApacheEvent, peers.ApachePrefork}

// startupTable measures T2: exec → first HTTPS 200, CPU and memory at that
// moment, and memory again after plan.hot distinct hosts were served.
func (o *orch) startupTable() {
	stopped := map[string]bool{}
	for _, n := range o.plan.startupTenants {
		if !o.timeLeft(time.Minute) {
			o.skip("T2", "*", n, "overall time bound of the run reached")
			continue
		}
		d, err := o.dataset(startupKey, n)
		if err != nil {
			o.skip("T2", "*", n, "data set: %v", err)
			continue
		}
		for _, peer := range startupPeers {
			if !o.wants(peer) || stopped[peer] {
				continue
			}
			if reason := o.predictTooBig(peer, n); reason != "" {
				o.skip("T2", peer, n, "%s", reason)
				stopped[peer] = true
				continue
			}
			pt := results.StartupPoint{Peer: peer, Key: startupKey, Tenants: n}
			for r := 0; r < o.plan.repeat; r++ {
				run, err := o.startupRun(peer, d)
				if err != nil {
					o.skip("T2", peer, n, "%v", err)
					if errors.Is(err, peerproc.ErrBound) {
						stopped[peer] = true // larger counts only take longer
					}
					break
				}
				pt.Runs = append(pt.Runs, run)
				o.logf("T2 %-22s n=%-6d start-up %8.1f ms  rss %7.1f MB  hot rss %7.1f MB", peer, n,
					run.StartupMS, float64(run.AtReady.RSSKB)/1024, float64(hotRSS(run))/1024)
				if time.Duration(run.StartupMS)*time.Millisecond > o.plan.slowRepeat && r+1 < o.plan.repeat {
					o.note("start-ups slower than %s were measured once, not %d times", o.plan.slowRepeat, o.plan.repeat)
					break
				}
			}
			if len(pt.Runs) > 0 {
				medianStartup(&pt)
				o.res.Startup = append(o.res.Startup, pt)
			}
		}
	}
}

func hotRSS(r results.StartupRun) int64 {
	if r.AfterHot == nil {
		return 0
	}
	return r.AfterHot.RSSKB
}

func (o *orch) startupRun(peer string, d *dataset) (results.StartupRun, error) {
	s, ready, err := o.launch(peer, d, o.plan.startupBound)
	if err != nil {
		return results.StartupRun{}, err
	}
	defer s.Stop(60 * time.Second)
	run := results.StartupRun{StartupMS: float64(ready) / 1e6, AtReady: snapshot(s.Pid)}
	hot := min(o.plan.hot, d.n)
	res, err := o.load(loadArgs{d: d, hosts: hot, mode: loadgen.ModeNewConn, conc: 2, n: max(hot, o.plan.hot)})
	if err == nil {
		tr := snapshot(s.Pid)
		run.HotHosts = hot
		run.AfterHot = &tr
		run.HotErrors = res.Errors
	} else {
		o.logf("hot-host load on %s failed: %v", peer, err)
	}
	return run, nil
}

func medianStartup(pt *results.StartupPoint) {
	r := pt.Runs
	m := func(f func(results.StartupRun) float64) float64 { return results.MedianOf(r, f) }
	pt.StartupMS = m(func(x results.StartupRun) float64 { return x.StartupMS })
	pt.UserMS = m(func(x results.StartupRun) float64 { return float64(x.AtReady.UserMS) })
	pt.SysMS = m(func(x results.StartupRun) float64 { return float64(x.AtReady.SysMS) })
	pt.RSSKB = m(func(x results.StartupRun) float64 { return float64(x.AtReady.RSSKB) })
	pt.PSSKB = m(func(x results.StartupRun) float64 { return float64(x.AtReady.PSSKB) })
	pt.MaxRSSKB = m(func(x results.StartupRun) float64 { return float64(x.AtReady.MaxRSSKB) })
	pt.Procs = len(r[0].AtReady.Procs)
	pt.HotHosts = r[0].HotHosts
	pt.HotRSSKB = m(func(x results.StartupRun) float64 { return float64(hotRSS(x)) })
	pt.HotPSSKB = m(func(x results.StartupRun) float64 {
		if x.AfterHot == nil {
			return 0
		}
		return float64(x.AfterHot.PSSKB)
	})
}

// predictTooBig extrapolates a peer's last measured start-up time and RSS
// linearly in the tenant count and returns why n should be skipped, or "".
func (o *orch) predictTooBig(peer string, n int) string {
	var last *results.StartupPoint
	for i := range o.res.Startup {
		p := &o.res.Startup[i]
		if p.Peer == peer && p.Tenants < n && (last == nil || p.Tenants > last.Tenants) {
			last = p
		}
	}
	if last == nil || last.Tenants == 0 {
		return ""
	}
	f := float64(n) / float64(last.Tenants)
	if t := time.Duration(last.StartupMS*f) * time.Millisecond; t > o.plan.startupBound {
		return "start-up extrapolated from " + itoa(last.Tenants) + " tenants: " + t.Round(time.Second).String() +
			" > bound " + o.plan.startupBound.String()
	}
	// PSS, not RSS: prefork children share their parent's pages.
	if kb := int64(last.PSSKB * f); o.plan.memBudgetKB > 0 && kb > o.plan.memBudgetKB {
		return "memory (PSS) extrapolated from " + itoa(last.Tenants) + " tenants: " + itoa(int(kb/1024)) + " MB > budget " +
			itoa(int(o.plan.memBudgetKB/1024)) + " MB"
	}
	return ""
}
