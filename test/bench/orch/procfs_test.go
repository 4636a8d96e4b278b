package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	line := "4242 (nginx: worker (x)) S 4241 4241 4241 0 -1 4194560 500 0 0 0 37 12 5 3 20 0 1 0 1234 1000 200 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{comm: "nginx: worker (x)", ppid: 4241, pgrp: 4241, utime: 37, stime: 12, cutime: 5, cstime: 3}
	if st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	if _, err := parseStat([]byte("garbage")); err == nil {
		t.Fatal("accepted malformed stat")
	}
}

func TestParseRollup(t *testing.T) {
	in := "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:              12345 kB\nPss:               6789 kB\nPss_Anon:  1 kB\n"
	rss, pss, err := parseRollup(strings.NewReader(in))
	if err != nil || rss != 12345 || pss != 6789 {
		t.Fatalf("rss=%d pss=%d err=%v", rss, pss, err)
	}
}

func TestSnapshotSelf(t *testing.T) {
	tr := snapshot(os.Getpid())
	if len(tr.Procs) == 0 || tr.RSSKB <= 0 || tr.PSSKB <= 0 {
		t.Fatalf("empty snapshot of this process: %+v", tr)
	}
}
