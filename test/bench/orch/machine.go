package main

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"massvhost/test/bench/internal/results"
)

// machineInfo records the machine and the versions of everything measured.
func machineInfo(o *orch) results.Machine {
	m := results.Machine{NProc: runtime.NumCPU(), Versions: map[string]string{}}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	if avail := procField("/proc/meminfo", "MemAvailable"); avail != "" {
		kb, _ := strconv.ParseInt(strings.Fields(avail)[0], 10, 64)
		o.plan.memBudgetKB = kb / 2
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	version := func(name string, argv ...string) {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err == nil {
			m.Versions[name] = firstLine(strings.TrimSpace(string(out)))
		}
	}
	version("go", "go", "version")
	version("nginx", "nginx", "-v")
	version("apache2", "apache2", "-v")
	version("redis", "redis-server", "--version")
	version("openssl", "openssl", "version")
	version("gcc", "gcc", "--version")
	if o.mvErr == nil {
		version("massvhost", o.bin.massvhost, "version")
	}
	if out, err := runChecked(o.ctx, 10*time.Second, o.repo, "git", "rev-parse", "--short", "HEAD"); err == nil {
		m.Commit = strings.TrimSpace(out)
		if st, err := runChecked(o.ctx, 10*time.Second, o.repo, "git", "status", "--porcelain", "--untracked-files=no"); err == nil && strings.TrimSpace(st) != "" {
			m.Commit += "+dirty"
		}
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }
