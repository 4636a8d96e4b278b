// Command profile measures where massvhost spends its CPU on the two loads
// of the benchmark targets that compare it with nginx and with the crypto
// ceiling: keep-alive HTTPS GETs of the 612-byte index.html, and full TLS
// handshakes on new connections (ECDSA P-256 leaves).
//
//	go run ./test/bench/profile                 # massvhost only, ~2 minutes
//	go run ./test/bench/profile -nginx          # also nginx's µs per request
//	go run ./test/bench/profile -access stdout  # with the access log on
//
// It generates a tenant set with the benchmark generator, starts massvhost
// as the orchestrator does for the static table (GOMAXPROCS=1, pinned to the
// last CPU with taskset, the load generator on the others, access log off)
// plus admin.pprof on a loopback admin listener, and for each load:
//
//   - runs the load generator -repeat times for -d and reports the server's
//     CPU time per request (user+sys of its process tree from /proc, so
//     kernel time in syscalls is counted) and its median;
//   - runs it once more while fetching /debug/pprof/profile?seconds=N and
//     allocs?seconds=N, and writes the profiles, a `go tool pprof -top`
//     listing and a breakdown by component (see classify.go).
//
// With -nginx the same loads are run against nginx (the orchestrator's
// nginx-preload configuration, one worker), for its CPU per request.
// Everything stays on loopback; every process started is stopped by PID.
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"massvhost/test/bench/internal/loadgen"
	"massvhost/test/bench/internal/peers"
	"massvhost/test/bench/internal/tenants"
)

// prof is one run of the command.
type prof struct {
	ctx        context.Context
	out        string // output directory
	bin        struct{ massvhost, load string }
	data       peers.Data
	hostsFile  string
	serverCPUs string // taskset list for the server, "" = no pinning
	clientCPUs string
	dur        time.Duration
	profDur    time.Duration
	repeat     int
	conc       int
	access     string
}

// workload is one of the two loads profiled.
type workload struct {
	name    string // file name stem: static, handshake
	title   string
	mode    string
	path    string
	hosts   int
	perConn int
	proto   string // loadgen.ProtoH1 or ProtoH2
	unit    string // what one "request" is in the per-request figures
}

func main() {
	os.Exit(run())
}

func run() int {
	p := &prof{}
	var n int
	var loads, bin string
	var withNginx bool
	flag.StringVar(&p.out, "out", filepath.Join(os.TempDir(), "massvhost-profile"), "output directory: data set, configs, profiles, summaries")
	flag.IntVar(&n, "n", 100, "tenants to generate (ECDSA leaves)")
	flag.DurationVar(&p.dur, "d", 8*time.Second, "duration of each measured run")
	flag.DurationVar(&p.profDur, "profile-d", 10*time.Second, "CPU profile length (below the admin listener's 30 s write timeout)")
	flag.IntVar(&p.repeat, "repeat", 3, "measured runs per load; the median is reported")
	flag.IntVar(&p.conc, "c", 8, "load generator connections")
	flag.StringVar(&loads, "loads", "static,handshake", "loads to run: static, static-h2, handshake")
	flag.StringVar(&p.access, "access", "off", "massvhost log.access (the benchmark runs with off)")
	flag.StringVar(&bin, "massvhost-bin", "", "use this massvhost binary instead of building ./cmd/massvhost")
	flag.BoolVar(&withNginx, "nginx", false, "also measure nginx (nginx-preload configuration) on the same loads")
	flag.Parse()
	if p.profDur >= 30*time.Second {
		fmt.Fprintln(os.Stderr, "profile: -profile-d must be below 30s (the admin listener's write timeout)")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p.ctx = ctx
	if err := p.prepare(n, bin); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return 1
	}
	all := map[string]workload{
		"static": {name: "static", title: "static keep-alive GET /index.html (612 bytes), h1", mode: loadgen.ModeKeepAlive,
			path: "/index.html", hosts: min(100, n), perConn: 0, proto: loadgen.ProtoH1, unit: "request"},
		"static-h2": {name: "static-h2", title: "static GET /index.html (612 bytes) over h2, one stream at a time per connection", mode: loadgen.ModeKeepAlive,
			path: "/index.html", hosts: min(100, n), perConn: 0, proto: loadgen.ProtoH2, unit: "request"},
		"handshake": {name: "handshake", title: "new connection + full TLS handshake (ECDSA P-256, X25519) + GET /", mode: loadgen.ModeNewConn,
			path: "/", hosts: n, proto: loadgen.ProtoH1, unit: "handshake"},
	}
	var ws []workload
	for _, l := range strings.Split(loads, ",") {
		w, ok := all[strings.TrimSpace(l)]
		if !ok {
			fmt.Fprintf(os.Stderr, "profile: unknown load %q (static, static-h2, handshake)\n", l)
			return 2
		}
		ws = append(ws, w)
	}
	var report strings.Builder
	fmt.Fprintf(&report, "# massvhost profile, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&report, "Command: `go run ./test/bench/profile %s`; server CPUs %q, client CPUs %q; %d tenants; load average at start %s.\n\n",
		strings.Join(os.Args[1:], " "), p.serverCPUs, p.clientCPUs, n, loadAvg())
	if err := p.massvhost(ws, &report); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return 1
	}
	if withNginx {
		if err := p.nginx(ws, &report); err != nil {
			fmt.Fprintln(os.Stderr, "profile: nginx:", err)
			return 1
		}
	}
	summary := filepath.Join(p.out, "summary.md")
	if err := os.WriteFile(summary, []byte(report.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return 1
	}
	fmt.Print(report.String())
	fmt.Printf("\nprofile: summary in %s\n", summary)
	return 0
}

// prepare builds the binaries, generates the data set and picks the CPUs.
func (p *prof) prepare(n int, bin string) error {
	if err := os.MkdirAll(filepath.Join(p.out, "bin"), 0o755); err != nil {
		return err
	}
	p.bin.massvhost = bin
	if bin == "" {
		p.bin.massvhost = filepath.Join(p.out, "bin", "massvhost")
		if err := goBuild(p.ctx, p.bin.massvhost, "./cmd/massvhost"); err != nil {
			return err
		}
	}
	p.bin.load = filepath.Join(p.out, "bin", "load")
	if err := goBuild(p.ctx, p.bin.load, "./test/bench/load"); err != nil {
		return err
	}
	owner := -1
	if os.Geteuid() == 0 {
		owner = 1000 // as the orchestrator: CGI must not run as root
	}
	dir := filepath.Join(p.out, "data", fmt.Sprintf("ecdsa-%d", n))
	opts := tenants.Options{Dir: dir, N: n, Key: tenants.KeyECDSA, SharedKeys: 64, Owner: owner, Group: owner, Log: os.Stdout}
	if !tenants.Reusable(opts) {
		if _, err := tenants.Generate(p.ctx, opts); err != nil {
			return err
		}
	}
	hosts, err := tenants.ReadHosts(tenants.HostsFile(dir))
	if err != nil {
		return err
	}
	p.hostsFile = tenants.HostsFile(dir)
	p.data = peers.Data{Sites: tenants.SitesDir(dir), Certs: tenants.CertsDir(dir), Hosts: hosts}
	// The orchestrator's pinning: the server on the last CPU, the load
	// generator on the others.
	if c := runtime.NumCPU(); c >= 2 {
		if _, err := exec.LookPath("taskset"); err == nil {
			p.serverCPUs = strconv.Itoa(c - 1)
			p.clientCPUs = "0"
			if c > 2 {
				p.clientCPUs = fmt.Sprintf("0-%d", c-2)
			}
		}
	}
	return nil
}

func goBuild(ctx context.Context, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
