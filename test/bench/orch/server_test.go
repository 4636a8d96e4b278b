package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"massvhost/test/bench/internal/peerproc"
	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/results"
)

// TestStopEndsWholeGroup starts a shell that forks a grandchild ignoring
// SIGTERM, and checks stop leaves no member of the group behind.
func TestStopEndsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	spec := peers.Spec{Name: "sh", Stop: syscall.SIGTERM,
		Argv: []string{"sh", "-c", "trap '' TERM; sleep 300 & sleep 300 & wait"}}
	s, err := peerproc.Start(spec, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(groupMembers(s.Pid)) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(groupMembers(s.Pid)); n < 3 {
		t.Fatalf("group has %d members, want shell + 2 sleeps", n)
	}
	if len(descendants(s.Pid)) < 3 {
		t.Errorf("descendants %v, want the shell and its two children", descendants(s.Pid))
	}
	if err := s.Stop(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if left := groupMembers(s.Pid); len(left) != 0 {
		t.Fatalf("left running: %v", left)
	}
}

func TestWaitReady(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "https://")
	if err := peerproc.Probe(addr, "h1.bench.test", "/"); err != nil {
		t.Fatalf("probe of a serving server: %v", err)
	}
	if err := peerproc.Probe(addr, "h1.bench.test", "/missing"); err == nil {
		t.Fatal("probe accepted a 404")
	}

	// A process that never serves: waitReady gives up at the bound.
	s, err := peerproc.Start(peers.Spec{Name: "sleep", Stop: syscall.SIGTERM, Argv: []string{"sleep", "60"}}, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(time.Second)
	free, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitReady(context.Background(), free, "h1.bench.test", 300*time.Millisecond); !errors.Is(err, peerproc.ErrBound) {
		t.Fatalf("waitReady = %v, want peerproc.ErrBound", err)
	}

	// A process that exits: waitReady reports it with its output.
	s2, err := peerproc.Start(peers.Spec{Name: "false", Stop: syscall.SIGTERM, Argv: []string{"sh", "-c", "echo config broken; exit 1"}}, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop(time.Second)
	if _, err := s2.WaitReady(context.Background(), free, "h1.bench.test", time.Minute); err == nil || !strings.Contains(err.Error(), "config broken") {
		t.Fatalf("waitReady = %v, want the exit with the log tail", err)
	}
}

func TestPredictTooBig(t *testing.T) {
	o := &orch{plan: plan{startupBound: 100 * time.Second, memBudgetKB: 8 << 20}, res: &results.File{}}
	o.res.Startup = []results.StartupPoint{
		{Peer: "slow", Tenants: 10000, StartupMS: 20000, PSSKB: 100 << 10},
		{Peer: "fat", Tenants: 10000, StartupMS: 100, PSSKB: 2 << 20},
		{Peer: "lean", Tenants: 10000, StartupMS: 30, PSSKB: 20 << 10, RSSKB: 2 << 20}, // shared pages counted once
	}
	tests := []struct {
		peer string
		n    int
		skip bool
	}{
		{"slow", 20000, false}, // 40 s
		{"slow", 100000, true}, // 200 s > 100 s
		{"fat", 100000, true},  // 20 GB > 8 GB
		{"lean", 100000, false},
		{"unmeasured", 100000, false},
	}
	for _, tc := range tests {
		t.Run(tc.peer+"-"+strconv.Itoa(tc.n), func(t *testing.T) {
			if got := o.predictTooBig(tc.peer, tc.n); (got != "") != tc.skip {
				t.Errorf("predictTooBig = %q, want skip=%v", got, tc.skip)
			}
		})
	}
}

func TestForkbenchSource(t *testing.T) {
	if len(forkbenchC) == 0 {
		t.Fatal("forkbench.c not embedded")
	}
	o := &orch{ctx: context.Background(), work: t.TempDir()}
	os.MkdirAll(filepath.Join(o.work, "bin"), 0o755)
	if err := o.buildForkbench(); err != nil {
		t.Skipf("no C compiler: %v", err)
	}
	out, err := runChecked(context.Background(), time.Minute, o.work, o.bin.forkbench, "1", "5")
	if err != nil || !strings.Contains(out, `"n":5`) {
		t.Fatalf("forkbench: %v %s", err, out)
	}
}
