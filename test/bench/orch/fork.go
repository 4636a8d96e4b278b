package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/results"
)

// forkbenchC is the fork+exec baseline. It is C because Go's os/exec and
// syscall.ForkExec use clone(CLONE_VFORK|CLONE_VM), which shares the
// parent's address space and never copies page tables; the baseline must
// pay what a classic fork() pays.
//
//go:embed csrc/forkbench.c
var forkbenchC []byte

func (o *orch) buildForkbench() error {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return err
	}
	src := filepath.Join(o.work, "bin", "forkbench.c")
	if err := os.WriteFile(src, forkbenchC, 0o644); err != nil {
		return err
	}
	o.bin.forkbench = filepath.Join(o.work, "bin", "forkbench")
	_, err = runChecked(o.ctx, time.Minute, o.work, gcc, "-O2", "-o", o.bin.forkbench, src)
	if err != nil {
		o.bin.forkbench = ""
	}
	return err
}

// forkTable runs the baseline at the RSS of every process that forks CGI
// children in T3 (Apache's largest process, massvhost's only one) and at
// the fixed sizes of the published measurements.
func (o *orch) forkTable() {
	if o.bin.forkbench == "" {
		return
	}
	type size struct {
		mb    int
		label string
	}
	var sizes []size
	add := func(mb int, label string) {
		for _, s := range sizes {
			if abs(s.mb-mb) <= max(8, mb/20) { // within 5%: same point
				return
			}
		}
		sizes = append(sizes, size{mb, label})
	}
	add(0, "empty process")
	for _, p := range o.res.CGI {
		if p.Concurrency == o.plan.cgiConc[0] && !peers.IsMassvhost(p.Peer) {
			add(int(p.Server.MaxRSSKB/1024), fmt.Sprintf("%s, %d tenants", p.Peer, p.Tenants))
		}
	}
	for _, mb := range o.plan.forkSizesMB {
		add(mb, "published point")
	}
	slices.SortFunc(sizes, func(a, b size) int { return a.mb - b.mb })
	for _, s := range sizes {
		if !o.timeLeft(time.Minute) {
			o.skip("T3-fork", "forkbench", 0, "overall time bound of the run reached")
			return
		}
		argv := []string{o.bin.forkbench, strconv.Itoa(s.mb), strconv.Itoa(o.plan.forkN)}
		if o.serverCPUs != "" {
			argv = append([]string{"taskset", "-c", o.serverCPUs}, argv...)
		}
		out, err := runChecked(o.ctx, 5*time.Minute, o.work, argv...)
		if err != nil {
			o.skip("T3-fork", "forkbench", 0, "%d MB: %v", s.mb, err)
			continue
		}
		var fp results.ForkPoint
		if err := json.Unmarshal([]byte(out), &fp); err != nil {
			o.skip("T3-fork", "forkbench", 0, "%d MB: %v", s.mb, err)
			continue
		}
		fp.Label = s.label
		o.res.ForkBase = append(o.res.ForkBase, fp)
		o.logf("fork+exec from %5d MB: p50 %.3f ms  p99 %.3f ms  (fork alone %.3f ms)", fp.RSSMB, fp.P50MS, fp.P99MS, fp.ForkP50MS)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
