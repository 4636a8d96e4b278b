package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/results"
)

func sampleResults() *results.File {
	f := &results.File{Schema: results.Schema, Command: "test/bench/run", Mode: "full",
		Machine: results.Machine{NProc: 2, MemTotal: "24683656 kB", Versions: map[string]string{"nginx": "nginx/1.22.1"}}}
	for _, n := range []int{100, 100000} {
		f.Startup = append(f.Startup,
			results.StartupPoint{Peer: peers.MassvhostLazy, Tenants: n, StartupMS: 20, HotRSSKB: 30 << 10, HotPSSKB: 28 << 10, HotHosts: 100},
			results.StartupPoint{Peer: peers.MassvhostPreload, Tenants: n, StartupMS: float64(n) / 10, HotRSSKB: float64(n) * 10, HotHosts: 100})
	}
	f.Startup = append(f.Startup, results.StartupPoint{Peer: peers.NginxPreload, Tenants: 20000, StartupMS: 16800})
	for _, n := range []int{100, 1000} {
		f.CGI = append(f.CGI,
			results.CGIPoint{Peer: peers.MassvhostLazy, Tenants: n, Concurrency: 1, P50MS: 2, RPS: 400},
			results.CGIPoint{Peer: peers.MassvhostLazy, Tenants: n, Concurrency: 16, P50MS: 20, RPS: 800},
			results.CGIPoint{Peer: peers.ApacheEvent, Tenants: n, Concurrency: 16, P50MS: 40, RPS: 500, Server: results.Tree{MaxRSSKB: 50 << 10}})
	}
	f.ForkBase = []results.ForkPoint{{RSSMB: 0, P50MS: 0.7}, {RSSMB: 256, P50MS: 10}}
	for _, p := range []struct {
		peer string
		hps  float64
		cpu  float64
	}{{peers.MassvhostLazy, 990, 1}, {peers.MassvhostPreload, 1000, 1}, {peers.NginxPreload, 900, 0.5}, {peers.NginxLazy, 300, 1}} {
		f.TLS = append(f.TLS, results.TLSPoint{Table: "T4", Peer: p.peer, Key: "ecdsa", Hosts: 10, Mode: "newconn", Proto: "h1", HPS: p.hps, RPS: p.hps, ServerCPU: p.cpu})
	}
	f.Ceiling = &results.Ceiling{ECDSAHPS: 1100, RSAHPS: 800}
	return f
}

func TestRenderTablesAndTargets(t *testing.T) {
	md, plots := render(sampleResults(), "docs/bench/results.json", "bench")
	for _, want := range []string{
		"Reproduce: `test/bench/run`",
		"| 100,000 | massvhost-preload | 10,000 | 500×", // start-up ratio to lazy
		"| 100,000 | 20.00 | 10,000 | 500× |",           // lazy vs preload table
		"| lazy at 100,000 ≥ 100× faster than nginx preload at 20,000 | 840× | met |",
		"massvhost CGI req/s ≥ 1.2× Apache event+mod_cgid at 1,000 tenants | 1.60× | met",
		"ecdsa: massvhost lazy (warm) ≥ 0.98× preload handshakes/s at every host count | worst 0.990× (at 10 hosts) | met",
		"ecdsa: massvhost lazy ≥ 3× nginx lazy handshakes/s | worst 3.30× (at 10 hosts) | met",
		// nginx ran at half a core: per CPU-second it did 1,800/s, so lazy's
		// 990 is 0.55×, a miss hidden by the raw 1.10×.
		"ecdsa: massvhost lazy vs nginx preload handshakes/s ≥ 1.0× | worst 0.55× (at 10 hosts) | **missed** (0.55×)",
		"| 10 | newconn | nginx-preload | 900 | 900 | — | — | 0.50 ⚑ | 1,800 | 1.00× / 1.00× | — | 0 |",
		"| 10 | newconn | massvhost-lazy | 990 | 990 | — | — | 1.00 | 990 | 1.10× / 0.55× | 0.99× / 0.99× | 0 |",
		"| 256 |  | 10.00 | — | — | — | 14.3× |",
		"memory | 23.5 GiB",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
	for name, svg := range plots {
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s is not well-formed XML: %v", name, err)
			}
		}
		if !strings.Contains(svg, "<polyline") {
			t.Errorf("%s has no line", name)
		}
	}
}

func TestRenderEmpty(t *testing.T) {
	md, plots := render(&results.File{Schema: results.Schema}, "r.json", "bench")
	if !strings.Contains(md, "not measured") {
		t.Error("empty results do not say targets were not measured")
	}
	if !strings.Contains(plots["startup.svg"], "no data measured") {
		t.Error("empty chart lacks its note")
	}
}
