package main

import (
	"fmt"
	"slices"

	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/results"
)

func startupSeries(f *results.File, y func(results.StartupPoint) float64) []series {
	var out []series
	for _, peer := range peers.All {
		var pts [][2]float64
		for _, p := range f.Startup {
			if p.Peer == peer {
				pts = append(pts, [2]float64{float64(p.Tenants), y(p)})
			}
		}
		if len(pts) == 0 {
			continue
		}
		slices.SortFunc(pts, func(a, b [2]float64) int { return int(a[0] - b[0]) })
		out = append(out, series{name: peer, points: pts, dashed: !peers.IsMassvhost(peer), color: peerOrder(peer)})
	}
	return out
}

func startupChart(f *results.File) chart {
	return chart{title: "Start-up: exec to first HTTPS 200", xlabel: "tenants (certificates)", ylabel: "start-up (ms)", logX: true, logY: true,
		series: startupSeries(f, func(p results.StartupPoint) float64 { return p.StartupMS })}
}

func memoryChart(f *results.File) chart {
	return chart{title: "Memory after 1,000 hosts served (PSS, all processes)", xlabel: "tenants (certificates)", ylabel: "PSS (MB)", logX: true, logY: true,
		series: startupSeries(f, func(p results.StartupPoint) float64 {
			if p.HotPSSKB > 0 {
				return p.HotPSSKB / 1024
			}
			return p.PSSKB / 1024
		})}
}

// cgiChart plots CGI p50 latency at concurrency 1 against the RSS of the
// server's largest process, with the fork+exec baseline over the same axis.
func cgiChart(f *results.File) chart {
	c := chart{title: "CGI latency versus server RSS", xlabel: "RSS of the largest server process (MB)", ylabel: "p50 latency (ms)", logX: true, logY: true}
	minC := 0
	for _, p := range f.CGI {
		if minC == 0 || p.Concurrency < minC {
			minC = p.Concurrency
		}
	}
	for _, peer := range peers.All {
		var pts [][2]float64
		for _, p := range f.CGI {
			if p.Peer == peer && p.Concurrency == minC {
				pts = append(pts, [2]float64{float64(p.Server.MaxRSSKB) / 1024, p.P50MS})
			}
		}
		if len(pts) > 0 {
			slices.SortFunc(pts, func(a, b [2]float64) int { return int(a[0] - b[0]) })
			c.series = append(c.series, series{name: fmt.Sprintf("%s c=%d", peer, minC), points: pts, dashed: !peers.IsMassvhost(peer), color: peerOrder(peer)})
		}
	}
	var fb [][2]float64
	for _, p := range f.ForkBase {
		fb = append(fb, [2]float64{max(float64(p.RSSMB), 1), p.P50MS})
	}
	if len(fb) > 0 {
		slices.SortFunc(fb, func(a, b [2]float64) int { return int(a[0] - b[0]) })
		c.series = append(c.series, series{name: "fork+exec baseline", points: fb, dashed: true, color: len(peers.All)})
	}
	return c
}
