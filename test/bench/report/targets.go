package main

import (
	"fmt"
	"slices"
	"strings"

	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/results"
)

// verdict is one target judged against the measurements.
type verdict struct {
	target string
	value  string
	status string // met, missed (by …), not measured
}

func judge(ok bool, miss string) string {
	if ok {
		return "met"
	}
	return "**missed** " + miss
}

func maxTenants(f *results.File, peer string) int {
	n := 0
	for _, p := range f.Startup {
		if p.Peer == peer {
			n = max(n, p.Tenants)
		}
	}
	return n
}

func minTenants(f *results.File, peer string) int {
	n := 0
	for _, p := range f.Startup {
		if p.Peer == peer && (n == 0 || p.Tenants < n) {
			n = p.Tenants
		}
	}
	return n
}

// targets lists every goal of the benchmark issues with the measured value.
func targets(b *strings.Builder, f *results.File) {
	var v []verdict
	add := func(target, value, status string) { v = append(v, verdict{target, value, status}) }
	none := "not measured"

	// Start-up.
	hi, lo := maxTenants(f, peers.MassvhostLazy), minTenants(f, peers.MassvhostLazy)
	if l := startupOf(f, peers.MassvhostLazy, hi); l != nil && hi > 0 {
		add(fmt.Sprintf("massvhost lazy start-up at %s tenants < 100 ms (foundation: < 200 ms)", num(float64(hi))),
			ms(l.StartupMS)+" ms", judge(l.StartupMS < 100, fmt.Sprintf("by %.1f×", l.StartupMS/100)))
		if s := startupOf(f, peers.MassvhostLazy, lo); s != nil && lo < hi {
			r := l.StartupMS / s.StartupMS
			add(fmt.Sprintf("lazy start-up at %s within 1.2× of %s tenants", num(float64(hi)), num(float64(lo))),
				fmt.Sprintf("%.2f×", r), judge(r <= 1.2, fmt.Sprintf("(%.2f×)", r)))
		}
		if np := startupOf(f, peers.NginxPreload, 20000); np != nil {
			r := np.StartupMS / l.StartupMS
			add(fmt.Sprintf("lazy at %s ≥ 100× faster than nginx preload at 20,000", num(float64(hi))),
				fmt.Sprintf("%.0f×", r), judge(r >= 100, fmt.Sprintf("(%.0f×)", r)))
		} else {
			add("lazy ≥ 100× faster than nginx preload at 20,000", "—", none)
		}
		if l.HotRSSKB > 0 {
			add(fmt.Sprintf("lazy RSS at %s tenants with %s hot < 64 MB", num(float64(hi)), num(float64(l.HotHosts))),
				mb(l.HotRSSKB)+" MB", judge(l.HotRSSKB < 64*1024, fmt.Sprintf("by %.1f×", l.HotRSSKB/(64*1024))))
			// The reference is the smallest tenant count that served as
			// many distinct hosts: the same hot set, fewer certificates.
			var ref *results.StartupPoint
			for i := range f.Startup {
				p := &f.Startup[i]
				if p.Peer == peers.MassvhostLazy && p.Tenants < hi && p.HotHosts == l.HotHosts && p.HotRSSKB > 0 && (ref == nil || p.Tenants < ref.Tenants) {
					ref = p
				}
			}
			goal := fmt.Sprintf("lazy RSS with %s hot hosts at %s tenants within 1.2× of the smallest set with the same hot hosts", num(float64(l.HotHosts)), num(float64(hi)))
			if ref != nil {
				r := l.HotRSSKB / ref.HotRSSKB
				add(goal+fmt.Sprintf(" (%s)", num(float64(ref.Tenants))), fmt.Sprintf("%.2f×", r), judge(r <= 1.2, fmt.Sprintf("(%.2f×)", r)))
			} else {
				add(goal, "—", none)
			}
		}
	} else {
		add("massvhost lazy start-up and RSS targets", "—", none)
	}

	// CGI.
	var mvCGI []results.CGIPoint
	for _, p := range f.CGI {
		if p.Peer == peers.MassvhostLazy && p.Concurrency == 1 {
			mvCGI = append(mvCGI, p)
		}
	}
	if len(mvCGI) >= 2 {
		slices.SortFunc(mvCGI, func(a, c results.CGIPoint) int { return a.Tenants - c.Tenants })
		first, last := mvCGI[0], mvCGI[len(mvCGI)-1]
		r := last.P50MS / first.P50MS
		add(fmt.Sprintf("massvhost CGI p50 at %s tenants within 1.1× of %s (the smallest set)", num(float64(last.Tenants)), num(float64(first.Tenants))),
			fmt.Sprintf("%.2f×", r), judge(r <= 1.1, fmt.Sprintf("(%.2f×)", r)))
	} else {
		add("massvhost CGI p50 flat across tenant counts", "—", none)
	}
	for _, c := range []struct {
		n    int
		goal float64
	}{{1000, 1.2}, {10000, 5}} {
		top := 0
		for _, p := range f.CGI {
			top = max(top, p.Concurrency)
		}
		m, a := cgiOf(f, peers.MassvhostLazy, c.n, top), cgiOf(f, peers.ApacheEvent, c.n, top)
		goal := fmt.Sprintf("massvhost CGI req/s ≥ %.1f× Apache event+mod_cgid at %s tenants", c.goal, num(float64(c.n)))
		if m == nil || a == nil {
			add(goal, "—", none)
			continue
		}
		r := m.RPS / a.RPS
		add(goal, fmt.Sprintf("%.2f×", r), judge(r >= c.goal, fmt.Sprintf("(%.2f×)", r)))
	}

	// Handshakes.
	for _, key := range []string{"ecdsa", "rsa2048"} {
		var worst float64
		var worstHosts int
		for _, p := range f.TLS {
			if p.Table != "T4" || p.Key != key || p.Mode != "newconn" || p.Peer != peers.MassvhostLazy {
				continue
			}
			if pre := tlsOf(f, "T4", peers.MassvhostPreload, key, p.Hosts, "newconn", p.Proto); pre != nil && pre.HPS > 0 {
				if r := perCPU(&p) / perCPU(pre); worst == 0 || r < worst {
					worst, worstHosts = r, p.Hosts
				}
			}
		}
		goal := fmt.Sprintf("%s: massvhost lazy (warm) ≥ 0.98× preload handshakes/s at every host count", key)
		if worst == 0 {
			add(goal, "—", none)
		} else {
			add(goal, fmt.Sprintf("worst %.3f× (at %s hosts)", worst, num(float64(worstHosts))), judge(worst >= 0.98, fmt.Sprintf("(%.3f×)", worst)))
		}
		lowest := func(peer string) (float64, float64, int) {
			var mine, ref float64
			var at int
			for _, p := range f.TLS {
				if p.Table != "T4" || p.Key != key || p.Mode != "newconn" || p.Peer != peers.MassvhostLazy {
					continue
				}
				if o := tlsOf(f, "T4", peer, key, p.Hosts, "newconn", p.Proto); o != nil && o.HPS > 0 {
					if mine == 0 || perCPU(&p)/perCPU(o) < mine/ref {
						mine, ref, at = perCPU(&p), perCPU(o), p.Hosts
					}
				}
			}
			return mine, ref, at
		}
		if m, n, at := lowest(peers.NginxLazy); n > 0 {
			r := m / n
			add(fmt.Sprintf("%s: massvhost lazy ≥ 3× nginx lazy handshakes/s", key), fmt.Sprintf("worst %.2f× (at %s hosts)", r, num(float64(at))), judge(r >= 3, fmt.Sprintf("(%.2f×)", r)))
		}
		if m, n, at := lowest(peers.NginxPreload); n > 0 {
			r := m / n
			goalTxt := fmt.Sprintf("%s: massvhost lazy vs nginx preload handshakes/s", key)
			status := "reported"
			if key == "ecdsa" {
				goalTxt += " ≥ 1.0×"
				status = judge(r >= 1, fmt.Sprintf("(%.2f×)", r))
			}
			add(goalTxt, fmt.Sprintf("worst %.2f× (at %s hosts)", r, num(float64(at))), status)
		}
	}
	if c := f.Ceiling; c != nil {
		for _, p := range f.TLS {
			if p.Table == "T4" && p.Mode == "newconn" && p.Peer == peers.MassvhostPreload && p.Hosts == smallestHosts(f) {
				ceil := c.ECDSAHPS
				if p.Key == "rsa2048" {
					ceil = c.RSAHPS
				}
				r := perCPU(&p) / ceil
				add(fmt.Sprintf("%s: massvhost handshakes per server CPU-second ≥ 0.8 of the crypto ceiling", p.Key),
					fmt.Sprintf("%.2f (%s of %s)", r, num(perCPU(&p)), num(ceil)), judge(r >= 0.8, fmt.Sprintf("(%.2f)", r)))
			}
		}
	}
	// Static.
	for _, p := range f.TLS {
		if p.Table == "static" && p.Peer == peers.MassvhostLazy {
			if ref := tlsOf(f, "static", peers.NginxPreload, p.Key, p.Hosts, p.Mode, p.Proto); ref != nil {
				r := perCPU(&p) / perCPU(ref)
				add(fmt.Sprintf("static keep-alive requests per server CPU-second (%s) massvhost/nginx ≥ 1.0×", p.Proto),
					fmt.Sprintf("%.2f× (raw %.2f×)", r, p.RPS/ref.RPS), judge(r >= 1, fmt.Sprintf("(%.2f×)", r)))
			}
		}
	}

	fmt.Fprintf(b, "### Targets\n\n")
	fmt.Fprintf(b, "The goals set for these benchmarks, judged against this run. Handshake comparisons use handshakes per server CPU-second (see T4), because on two cores the load generator can be the limit. The client shares the machine with the servers (pinned apart), and other work on the machine adds noise: a target missed by a few percent deserves a rerun before a conclusion.\n\n")
	fmt.Fprintf(b, "| target | measured | verdict |\n|---|---|---|\n")
	for _, x := range v {
		fmt.Fprintf(b, "| %s | %s | %s |\n", x.target, x.value, x.status)
	}
	fmt.Fprintf(b, "\n")
}

func smallestHosts(f *results.File) int {
	n := 0
	for _, p := range f.TLS {
		if p.Table == "T4" && (n == 0 || p.Hosts < n) {
			n = p.Hosts
		}
	}
	return n
}
