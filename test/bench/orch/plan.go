package main

import (
	"time"

	"massvhost/test/bench/internal/loadgen"
	"massvhost/test/bench/internal/tenants"
)

// plan is what one mode measures. Every list is walked in order; every
// step is bounded in time.
type plan struct {
	mode   string
	repeat int // runs per point; medians are reported

	startupTenants []int         // T2
	startupBound   time.Duration // give up on one start after this
	slowRepeat     time.Duration // a start slower than this is not repeated
	hot            int           // distinct hosts served before the second RSS reading
	memBudgetKB    int64         // skip a peer whose extrapolated RSS exceeds this

	cgiTenants []int // T3
	cgiConc    []int
	cgiDur     time.Duration
	cgiHosts   int // hosts the CGI load rotates over

	tlsKeys   []string // T4
	tlsHosts  []int
	tlsModes  []string
	tlsDur    time.Duration
	tlsConc   int
	staticDur time.Duration
	staticH2  bool

	forkSizesMB []int // fixed baseline sizes besides the measured RSS of each peer
	forkN       int

	deadline time.Duration // the whole run
}

func quickPlan() plan {
	return plan{
		mode: "quick", repeat: 1,
		startupTenants: []int{100, 1000}, startupBound: 60 * time.Second, slowRepeat: 20 * time.Second, hot: 1000,
		cgiTenants: []int{100, 1000}, cgiConc: []int{1, 16}, cgiDur: 2 * time.Second, cgiHosts: 100,
		tlsKeys: []string{tenants.KeyECDSA}, tlsHosts: []int{10, 1000},
		tlsModes: []string{loadgen.ModeNewConn, loadgen.ModeKeepAlive}, tlsDur: 2 * time.Second, tlsConc: 8,
		staticDur:   2 * time.Second,
		forkSizesMB: []int{256}, forkN: 100,
		deadline: 8 * time.Minute,
	}
}

func fullPlan() plan {
	return plan{
		mode: "full", repeat: 3,
		startupTenants: []int{100, 1000, 10000, 20000, 100000}, startupBound: 150 * time.Second, slowRepeat: 60 * time.Second, hot: 1000,
		cgiTenants: []int{100, 1000, 10000, 50000}, cgiConc: []int{1, 16}, cgiDur: 8 * time.Second, cgiHosts: 100,
		tlsKeys: []string{tenants.KeyRSA2048, tenants.KeyECDSA}, tlsHosts: []int{10, 100, 1000, 10000},
		tlsModes: []string{loadgen.ModeNewConn, loadgen.ModeKeepAlive}, tlsDur: 6 * time.Second, tlsConc: 8,
		staticDur: 8 * time.Second, staticH2: true,
		forkSizesMB: []int{256, 611, 1600}, forkN: 300,
		deadline: 4 * time.Hour,
	}
}
