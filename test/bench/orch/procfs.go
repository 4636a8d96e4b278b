package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"massvhost/test/bench/internal/results"
)

// clockTicks is USER_HZ, the unit of CPU times in /proc/PID/stat; Linux
// fixes it at 100 on every architecture the benchmarks run on.
const clockTicks = 100

// descendants returns pid and every process below it, parents first, from
// /proc/PID/task/*/children.
func descendants(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

type procStat struct {
	comm                         string
	ppid, pgrp                   int
	utime, stime, cutime, cstime int64 // clock ticks
}

// readStat parses /proc/PID/stat; comm may contain spaces and parentheses,
// so fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (procStat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("malformed stat %q", b)
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state); utime is field 14 → f[11].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("short stat %q", b)
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
	return procStat{comm: string(b[open+1 : end]), ppid: int(n(1)), pgrp: int(n(2)),
		utime: n(11), stime: n(12), cutime: n(13), cstime: n(14)}, nil
}

// readRollup returns Rss and Pss in kB from /proc/PID/smaps_rollup.
func readRollup(pid int) (rss, pss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return parseRollup(f)
}

func parseRollup(f interface{ Read([]byte) (int, error) }) (rss, pss int64, err error) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		}
	}
	return rss, pss, sc.Err()
}

// snapshot measures the process tree rooted at pid: memory of every process
// and the CPU the tree has used, including children already reaped.
func snapshot(pid int) results.Tree {
	var t results.Tree
	for _, p := range descendants(pid) {
		st, err := readStat(p)
		if err != nil {
			continue // exited meanwhile
		}
		rss, pss, _ := readRollup(p)
		pr := results.Proc{PID: p, Name: st.comm, RSSKB: rss, PSSKB: pss,
			UserMS: (st.utime + st.cutime) * 1000 / clockTicks, SysMS: (st.stime + st.cstime) * 1000 / clockTicks}
		t.Procs = append(t.Procs, pr)
		t.RSSKB += rss
		t.PSSKB += pss
		t.MaxRSSKB = max(t.MaxRSSKB, rss)
		t.UserMS += pr.UserMS
		t.SysMS += pr.SysMS
	}
	return t
}

// groupMembers lists the live processes whose process group is pgid.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.pgrp == pgid {
			out = append(out, pid)
		}
	}
	return out
}
