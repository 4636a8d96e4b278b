package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"massvhost/test/bench/internal/loadgen"
	"massvhost/test/bench/internal/peerproc"
	"massvhost/test/bench/internal/peers"
)

// cpuTicks is the user+sys CPU time, in clock ticks (USER_HZ = 100), of pid
// and every process below it, reaped children included.
func cpuTicks(pid int) int64 {
	var total int64
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// Fields after the last ')' (comm may contain anything): state is
		// f[0], utime f[11], stime f[12], cutime f[13], cstime f[14].
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		for _, i := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			total += v
		}
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, t := range tasks {
			c, _ := os.ReadFile(t)
			for _, s := range strings.Fields(string(c)) {
				if n, err := strconv.Atoi(s); err == nil {
					queue = append(queue, n)
				}
			}
		}
	}
	return total
}

// measurement is one load generator run against a server.
type measurement struct {
	OK, Errors uint64
	RPS        float64
	ServerCPU  float64 // cores: CPU seconds per wall second
	USPerReq   float64 // server CPU µs per completed request
}

// loadArgs returns the load generator's command line for w, run for d.
func (p *prof) loadArgs(addr string, w workload, d time.Duration, jsonOut string) []string {
	argv := []string{p.bin.load, "-q", "-addr", addr, "-hosts", p.hostsFile, "-limit", strconv.Itoa(w.hosts),
		"-mode", w.mode, "-proto", w.proto, "-c", strconv.Itoa(p.conc), "-per-conn", strconv.Itoa(w.perConn), "-path", w.path,
		"-d", d.String(), "-json", jsonOut}
	if p.clientCPUs != "" {
		argv = append([]string{"taskset", "-c", p.clientCPUs}, argv...)
	}
	return argv
}

// measure runs the load generator for d while reading the server tree's
// CPU time, as the orchestrator does.
func (p *prof) measure(pid int, addr string, w workload, d time.Duration, during func()) (measurement, error) {
	out := filepath.Join(p.out, "load.json")
	argv := p.loadArgs(addr, w, d, out)
	ctx, cancel := context.WithTimeout(p.ctx, d+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	before := cpuTicks(pid)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return measurement{}, err
	}
	if during != nil {
		during()
	}
	if err := cmd.Wait(); err != nil {
		return measurement{}, fmt.Errorf("load: %w", err)
	}
	cpu := float64(cpuTicks(pid)-before) / 100
	wall := time.Since(t0).Seconds()
	b, err := os.ReadFile(out)
	if err != nil {
		return measurement{}, err
	}
	var r loadgen.Result
	if err := json.Unmarshal(b, &r); err != nil {
		return measurement{}, err
	}
	if r.ElapsedS > 0 && r.ElapsedS < wall {
		wall = r.ElapsedS
	}
	m := measurement{OK: r.OK, Errors: r.Errors, RPS: r.RPS, ServerCPU: cpu / wall}
	if r.OK > 0 {
		m.USPerReq = cpu * 1e6 / float64(r.OK)
	}
	return m, nil
}

// series runs w repeat times and returns the runs and the median run (by
// µs per request).
func (p *prof) series(pid int, addr string, w workload) ([]measurement, measurement, error) {
	var runs []measurement
	for range p.repeat {
		m, err := p.measure(pid, addr, w, p.dur, nil)
		if err != nil {
			return nil, measurement{}, err
		}
		runs = append(runs, m)
	}
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b measurement) int { return cmpFloat(a.USPerReq, b.USPerReq) })
	return runs, sorted[len(sorted)/2], nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// warm serves every host once over new connections, so lazy caches hold
// the working set (the orchestrator's "warm").
func (p *prof) warm(addr string, w workload) error {
	out := filepath.Join(p.out, "load.json")
	argv := []string{p.bin.load, "-q", "-addr", addr, "-hosts", p.hostsFile, "-limit", strconv.Itoa(w.hosts),
		"-mode", loadgen.ModeNewConn, "-c", "4", "-n", strconv.Itoa(w.hosts), "-max-d", "2m", "-json", out}
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("warm-up: %w: %s", err, b)
	}
	return nil
}

// fetch saves an admin URL to file.
func fetch(ctx context.Context, url, file string, bound time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// freePort returns a loopback address whose port the kernel just handed
// out and released.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// massvhost profiles massvhost on every load and appends the results to
// report.
func (p *prof) massvhost(ws []workload, report *strings.Builder) error {
	addr, err := freePort()
	if err != nil {
		return err
	}
	adminAddr, err := freePort()
	if err != nil {
		return err
	}
	env := peers.Env{Work: filepath.Join(p.out, "run", "massvhost"), Addr: addr, Data: p.data, CPUs: p.serverCPUs}
	spec, err := peers.Massvhost(env, peers.MassvhostOptions{Bin: p.bin.massvhost, AdminAddr: adminAddr, Pprof: true, AccessLog: p.access})
	if err != nil {
		return err
	}
	s, err := p.startPeer(spec, env)
	if err != nil {
		return err
	}
	defer s.Stop(10 * time.Second)
	pid := s.Pid
	for _, w := range ws {
		if err := p.warm(addr, w); err != nil {
			return err
		}
		runs, med, err := p.series(pid, addr, w)
		if err != nil {
			return err
		}
		fmt.Fprintf(report, "## massvhost: %s\n\n", w.title)
		writeRuns(report, w, runs, med)
		// The profiled run: the profile starts a second into the load and
		// ends a second before it.
		cpuFile := filepath.Join(p.out, w.name+".cpu.pb.gz")
		allocFile := filepath.Join(p.out, w.name+".allocs.pb.gz")
		base := "http://" + adminAddr + "/debug/pprof/"
		secs := strconv.Itoa(int(p.profDur.Seconds()))
		var cpuErr, allocErr error
		pm, err := p.measure(pid, addr, w, p.profDur+2*time.Second, func() {
			time.Sleep(time.Second)
			allocDone := make(chan struct{})
			go func() {
				allocErr = fetch(p.ctx, base+"allocs?seconds="+secs, allocFile, p.profDur+30*time.Second)
				close(allocDone)
			}()
			cpuErr = fetch(p.ctx, base+"profile?seconds="+secs, cpuFile, p.profDur+30*time.Second)
			<-allocDone
		})
		if err != nil {
			return err
		}
		if err := errors.Join(cpuErr, allocErr); err != nil {
			return err
		}
		fmt.Fprintf(report, "Profiled run (%s profile): %.0f req/s, server CPU %.2f, %.1f µs per %s.\n\n",
			p.profDur, pm.RPS, pm.ServerCPU, pm.USPerReq, w.unit)
		if err := p.summarize(w, cpuFile, allocFile, pm, report); err != nil {
			return err
		}
	}
	return nil
}

// nginx measures nginx (preload configuration, one worker) on every load.
func (p *prof) nginx(ws []workload, report *strings.Builder) error {
	addr, err := freePort()
	if err != nil {
		return err
	}
	env := peers.Env{Work: filepath.Join(p.out, "run", "nginx"), Addr: addr, Data: p.data, CPUs: p.serverCPUs}
	spec, err := peers.Nginx(env, true)
	if err != nil {
		return err
	}
	s, err := p.startPeer(spec, env)
	if err != nil {
		return err
	}
	defer s.Stop(10 * time.Second)
	for _, w := range ws {
		if err := p.warm(addr, w); err != nil {
			return err
		}
		runs, med, err := p.series(s.Pid, addr, w)
		if err != nil {
			return err
		}
		fmt.Fprintf(report, "## nginx (preload, 1 worker): %s\n\n", w.title)
		writeRuns(report, w, runs, med)
	}
	return nil
}

func writeRuns(b *strings.Builder, w workload, runs []measurement, med measurement) {
	fmt.Fprintf(b, "| run | req/s | server CPU | µs server CPU per %s | errors |\n|---|---:|---:|---:|---:|\n", w.unit)
	for i, m := range runs {
		fmt.Fprintf(b, "| %d | %.0f | %.2f | %.1f | %d |\n", i+1, m.RPS, m.ServerCPU, m.USPerReq, m.Errors)
	}
	fmt.Fprintf(b, "| **median** | %.0f | %.2f | **%.1f** | |\n\n", med.RPS, med.ServerCPU, med.USPerReq)
}

// startPeer starts spec with its log in env.Work and waits until it
// answers on env.Addr for the first host. The caller stops it.
func (p *prof) startPeer(spec peers.Spec, env peers.Env) (*peerproc.Process, error) {
	s, err := peerproc.Start(spec, filepath.Join(env.Work, "server.log"))
	if err != nil {
		return nil, err
	}
	if _, err := s.WaitReady(p.ctx, env.Addr, p.data.Hosts[0], time.Minute); err != nil {
		s.Stop(10 * time.Second)
		return nil, err
	}
	return s, nil
}
