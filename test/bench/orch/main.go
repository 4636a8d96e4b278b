// Command orch runs the side-by-side benchmarks: it generates the tenant
// data sets, starts massvhost (lazy from files, lazy from Redis, preload),
// nginx (preload and $ssl_server_name lazy) and Apache (event+mod_cgid,
// prefork+mod_cgi) one after another on the same loopback port, drives them
// with the load generator, and writes medians and raw runs as JSON for
// test/bench/report.
//
//	go run ./test/bench/orch -quick            # under 5 minutes
//	go run ./test/bench/orch                   # full run, bounded (see plan.go)
//
// Servers run confined to one CPU (taskset, inherited by every child) and
// the load generator to the others. Every process started here is stopped
// by PID (its process group) before the next one starts and on interrupt.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/results"
	"massvhost/test/bench/internal/tenants"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ceiling" {
		os.Exit(ceilingMain(os.Args[2:]))
	}
	os.Exit(run())
}

type orch struct {
	ctx        context.Context
	plan       plan
	repo       string
	work       string
	out        string
	addr       string
	serverCPUs string
	clientCPUs string
	bin        struct{ load, massvhost, forkbench, self string }
	mvErr      error  // why massvhost cannot run, if it cannot
	mvBin      string // prebuilt massvhost binary, "" = build one
	only       map[string]bool
	redis      *redisServer
	res        *results.File
	deadline   time.Time
	dataSets   map[string]*dataset
}

func run() int {
	var (
		quick   bool
		work    string
		out     string
		only    string
		tables  string
		repeat  int
		command string
	)
	flag.BoolVar(&quick, "quick", false, "few points, one repeat, short runs (under 5 minutes)")
	flag.StringVar(&work, "work", filepath.Join(os.TempDir(), "massvhost-bench"), "scratch directory: data sets, configs, logs")
	flag.StringVar(&out, "out", "", "results file (default <work>/<mode>/results.json)")
	flag.StringVar(&only, "peers", "", "comma-separated peers to run (default all): "+strings.Join(peers.All, ","))
	flag.StringVar(&tables, "tables", "T2,T3,T4,static,ceiling", "tables to measure")
	flag.IntVar(&repeat, "repeat", 0, "runs per point (default 1 quick, 3 full)")
	flag.StringVar(&command, "command", "", "command line to record as the reproduction command")
	var mvBin string
	flag.StringVar(&mvBin, "massvhost-bin", "", "use this massvhost binary instead of building ./cmd/massvhost")
	var startupN, cgiN, tlsH intList
	var keyList string
	flag.Var(&startupN, "startup-tenants", "override T2 tenant counts (comma-separated)")
	flag.Var(&cgiN, "cgi-tenants", "override T3 tenant counts (comma-separated)")
	flag.Var(&tlsH, "tls-hosts", "override T4 host counts (comma-separated)")
	flag.StringVar(&keyList, "keys", "", "override T4 key types (rsa2048,ecdsa)")
	flag.Parse()

	p := fullPlan()
	if quick {
		p = quickPlan()
	}
	if repeat > 0 {
		p.repeat = repeat
	}
	if len(startupN) > 0 {
		p.startupTenants = startupN
	}
	if len(cgiN) > 0 {
		p.cgiTenants = cgiN
	}
	if len(tlsH) > 0 {
		p.tlsHosts = tlsH
	}
	if keyList != "" {
		p.tlsKeys = strings.Split(keyList, ",")
		for _, k := range p.tlsKeys {
			if k != tenants.KeyRSA2048 && k != tenants.KeyECDSA {
				fmt.Fprintf(os.Stderr, "orch: unknown key type %q\n", k)
				return 2
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	repo, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "orch:", err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		fmt.Fprintln(os.Stderr, "orch: run from the repository root")
		return 2
	}
	work, _ = filepath.Abs(work)
	if out == "" {
		out = filepath.Join(work, p.mode, "results.json")
	}
	if command == "" {
		command = strings.Join(os.Args, " ")
	}
	o := &orch{ctx: ctx, plan: p, repo: repo, work: work, out: out, dataSets: map[string]*dataset{},
		deadline: time.Now().Add(p.deadline), mvBin: mvBin}
	if only != "" {
		o.only = map[string]bool{}
		for _, n := range strings.Split(only, ",") {
			if !peers.Known(n) {
				fmt.Fprintf(os.Stderr, "orch: unknown peer %q\n", n)
				return 2
			}
			o.only[n] = true
		}
	}
	o.res = &results.File{Schema: results.Schema, Command: command, Mode: p.mode, Started: time.Now().UTC().Truncate(time.Second),
		Notes: []string{}, Skips: []results.Skip{}}
	defer o.shutdown()
	if err := o.setup(); err != nil {
		fmt.Fprintln(os.Stderr, "orch:", err)
		return 1
	}
	steps := []struct {
		name string
		fn   func()
	}{
		{"ceiling", o.ceiling},
		{"T2", o.startupTable},
		{"T3", o.cgiTable},
		{"T4", o.tlsTable},
	}
	want := strings.Split(tables, ",")
	for _, s := range steps {
		if !slices.Contains(want, s.name) && !(s.name == "T4" && slices.Contains(want, "static")) {
			continue
		}
		if o.ctx.Err() != nil {
			break
		}
		o.logf("=== %s", s.name)
		s.fn()
		o.save()
	}
	if slices.Contains(want, "T3") {
		o.forkTable()
	}
	if slices.Contains(want, "ceiling") && o.ctx.Err() == nil {
		o.logf("=== ceiling, again")
		o.ceiling()
		o.save()
	}
	o.res.Finished = time.Now().UTC().Truncate(time.Second)
	o.save()
	o.logf("results: %s (%s)", o.out, time.Since(o.res.Started).Round(time.Second))
	if o.ctx.Err() != nil {
		return 130
	}
	return 0
}

func (o *orch) logf(format string, a ...any) {
	fmt.Printf("%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func (o *orch) note(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	if !slices.Contains(o.res.Notes, s) {
		o.res.Notes = append(o.res.Notes, s)
	}
	o.logf("note: %s", s)
}

func (o *orch) skip(table, peer string, tenants int, format string, a ...any) {
	sk := results.Skip{Table: table, Peer: peer, Tenants: tenants, Reason: fmt.Sprintf(format, a...)}
	o.res.Skips = append(o.res.Skips, sk)
	o.logf("skip %s %s n=%d: %s", table, peer, tenants, sk.Reason)
}

func (o *orch) save() {
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err == nil {
		if err := results.Write(o.out, o.res); err != nil {
			o.logf("write results: %v", err)
		}
	}
}

// timeLeft reports whether the run's overall bound still allows a step of
// about d.
func (o *orch) timeLeft(d time.Duration) bool {
	return o.ctx.Err() == nil && time.Now().Add(d).Before(o.deadline)
}

func (o *orch) wants(peer string) bool {
	if o.only != nil && !o.only[peer] {
		return false
	}
	if peers.IsMassvhost(peer) && o.mvErr != nil {
		return false
	}
	return true
}

// setup builds the tools, picks the port and the CPU split, and records
// the machine.
func (o *orch) setup() error {
	for _, d := range []string{"bin", "data", "run"} {
		if err := os.MkdirAll(filepath.Join(o.work, d), 0o755); err != nil {
			return err
		}
	}
	// Unprivileged server workers traverse the work directory.
	for d := o.work; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, fi.Mode().Perm()|0o005)
		}
	}
	bin := filepath.Join(o.work, "bin")
	o.bin.load = filepath.Join(bin, "load")
	o.bin.massvhost = filepath.Join(bin, "massvhost")
	o.bin.self, _ = os.Executable()
	o.logf("building the load generator")
	if _, err := runChecked(o.ctx, 5*time.Minute, o.repo, "go", "build", "-o", o.bin.load, "./test/bench/load"); err != nil {
		return err
	}
	if o.mvBin != "" {
		abs, err := filepath.Abs(o.mvBin)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("massvhost binary: %w", err)
		}
		o.bin.massvhost = abs
		o.note("massvhost binary given on the command line (%s), not built from this tree", abs)
	} else {
		o.logf("building massvhost")
		if _, err := runChecked(o.ctx, 5*time.Minute, o.repo, "go", "build", "-o", o.bin.massvhost, "./cmd/massvhost"); err != nil {
			o.mvErr = err
			o.note("massvhost did not build, so no massvhost point was measured: %s", firstLine(err.Error()))
		}
		// The small CGI launcher beside the binary, as an installation has
		// it (massvhost picks it up automatically).
		launcher := filepath.Join(filepath.Dir(o.bin.massvhost), "massvhost-cgi-launch")
		if _, err := runChecked(o.ctx, 5*time.Minute, o.repo, "go", "build", "-o", launcher, "./cmd/massvhost-cgi-launch"); err != nil {
			o.note("massvhost-cgi-launch did not build; CGI goes through the massvhost binary itself: %s", firstLine(err.Error()))
		}
	}
	if err := o.buildForkbench(); err != nil {
		o.note("fork+exec baseline unavailable: %v", err)
	}
	addr, err := freePort()
	if err != nil {
		return err
	}
	o.addr = addr
	o.cpuSplit()
	o.res.Machine = machineInfo(o)
	o.res.Pinning.Peers = map[string]string{}
	o.logf("servers on %s, server CPUs %q, client CPUs %q", o.addr, o.serverCPUs, o.clientCPUs)
	return nil
}

// cpuSplit gives the servers the last CPU and the load generator the rest,
// so each server's figures are per core and the client does not steal its
// cycles.
func (o *orch) cpuSplit() {
	n := runtime.NumCPU()
	if _, err := exec.LookPath("taskset"); err != nil || n < 2 {
		o.note("servers and load generator share all %d CPU(s) (no taskset or a single CPU): figures include the client's cost", n)
		return
	}
	o.serverCPUs = strconv.Itoa(n - 1)
	if n == 2 {
		o.clientCPUs = "0"
	} else {
		o.clientCPUs = fmt.Sprintf("0-%d", n-2)
	}
	o.res.Pinning.ServerCPUs = o.serverCPUs
	o.res.Pinning.ClientCPUs = o.clientCPUs
}

func (o *orch) shutdown() {
	if o.redis != nil {
		o.redis.stop()
		o.redis = nil
	}
}

// intList is a flag of comma-separated positive integers.
type intList []int

func (l *intList) String() string {
	var s []string
	for _, v := range *l {
		s = append(s, strconv.Itoa(v))
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	*l = nil
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		*l = append(*l, n)
	}
	slices.Sort(*l)
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
