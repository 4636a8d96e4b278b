package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// eachLayout runs test on a Manager on this machine's detected cgroups
// and, when the machine has a cgroup2 hierarchy but the cpu controller is
// bound to v1 (a hybrid set-up, as on CI), again on the v2 interface of
// that hierarchy (without weights: see NewWithLayout), so that the v2
// paths (clone into the cgroup, cgroup.freeze) run here too. It skips
// when there are no cgroups this process may use.
func eachLayout(t *testing.T, opts Options, test func(t *testing.T, m *Manager)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: cgroup directories are owned by root")
	}
	detected, err := detect()
	if err != nil {
		t.Skipf("no writable cgroup cpu controller here: %v", err)
	}
	variants := []struct {
		name   string
		layout Layout
	}{{"detected", detected}}
	if unified, err := UnifiedLayout(); err == nil && detected.Version == V1 {
		variants = append(variants, struct {
			name   string
			layout Layout
		}{"v2-without-cpu", unified})
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			m, err := NewWithLayout(opts, v.layout)
			if errors.Is(err, ErrUnavailable) {
				t.Skipf("cgroups unusable here: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			test(t, m)
		})
	}
}

// startIn starts "sleep 300" in a session of its own (as a setsid
// escapee) in the slot's cgroup the way the server places a script
// (Slot.Spawn): born there, cloned into it on v2, forked from a thread
// that joined it on v1.
func startIn(t *testing.T, slot Slot) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	return startCmdIn(t, slot, "sleep", "300")
}

func startCmdIn(t *testing.T, slot Slot, name string, args ...string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if slot.FD >= 0 {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, slot.FD
	}
	if err := slot.Spawn(cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return cmd, done
}

func TestEnterCreatesTenantCgroup(t *testing.T) {
	eachLayout(t, Options{Weight: 50, Processes: 77}, func(t *testing.T, m *Manager) {
		slot, err := m.Enter(context.Background(), "a.test")
		if err != nil {
			t.Fatal(err)
		}
		defer m.Leave("a.test")
		dirs := slot.Dirs
		t.Logf("%s: %q, fd %d", m, dirs, slot.FD)
		if len(dirs) != len(m.parents) {
			t.Fatalf("dirs %q for parents %q", dirs, m.parents)
		}
		if (slot.FD >= 0) != (m.Version() == V2) {
			t.Errorf("fd %d on cgroup v%d: want one on v2 only", slot.FD, m.Version())
		}
		weightFile, want := "cpu.weight", "50"
		if m.Version() == V1 {
			weightFile, want = "cpu.shares", "512"
		}
		if m.cpu {
			if got := readTrim(t, filepath.Join(dirs[0], weightFile)); got != want {
				t.Errorf("%s = %s, want %s", weightFile, got, want)
			}
		}
		if m.pids >= 0 {
			if got := readTrim(t, filepath.Join(dirs[m.pids], "pids.max")); got != "77" {
				t.Errorf("pids.max = %s, want 77", got)
			}
		}
		again, err := m.Enter(context.Background(), "a.test")
		if err != nil || again.Dirs[0] != dirs[0] || again.FD != slot.FD {
			t.Fatalf("second Enter: %+v, %v", again, err)
		}
		m.Leave("a.test")
	})
}

// TestSpawnPlacesChildNotServer: a process started through Slot.Spawn is
// in the tenant's cgroup in every hierarchy from birth, and no thread of
// the server is left there (on v1 the spawning thread joins the tenant's
// cgroups and must come home).
func TestSpawnPlacesChildNotServer(t *testing.T) {
	eachLayout(t, Options{Weight: 100}, func(t *testing.T, m *Manager) {
		slot, err := m.Enter(context.Background(), "a.test")
		if err != nil {
			t.Fatal(err)
		}
		defer m.Leave("a.test")
		var cmds []*exec.Cmd
		for range 20 {
			cmd, _ := startCmdIn(t, slot, "sleep", "300")
			cmds = append(cmds, cmd)
		}
		for _, cmd := range cmds {
			for _, d := range slot.Dirs {
				if !inCgroup(t, cmd.Process.Pid, d) {
					t.Errorf("child %d is not in %s", cmd.Process.Pid, d)
				}
			}
		}
		for _, d := range slot.Dirs {
			if b, err := os.ReadFile(filepath.Join(d, "tasks")); err == nil {
				for tid := range strings.FieldsSeq(string(b)) {
					if _, err := os.Stat("/proc/self/task/" + tid); err == nil {
						t.Errorf("server thread %s left in %s", tid, d)
					}
				}
			}
		}
		for _, cmd := range cmds {
			cmd.Process.Kill()
		}
	})
}

// inCgroup reports whether /proc/PID/cgroup places pid in dir.
func inCgroup(t *testing.T, pid int, dir string) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		// "ID:CONTROLLERS:PATH"; dir ends with the path in its hierarchy.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[2] != "/" && strings.HasSuffix(dir, parts[2]) {
			return true
		}
	}
	return false
}

// TestCPUMax: a tenant capped at 0.2 CPUs gets about that much however
// much it spins; without the cap the same loop takes a whole CPU when one
// is free. Only an upper bound is asserted: a busy machine can lower the
// CPU the loop gets, never raise it above the cap.
func TestCPUMax(t *testing.T) {
	eachLayout(t, Options{CPUMax: 0.2}, func(t *testing.T, m *Manager) {
		if !m.cpu {
			t.Skip("no cpu controller in this hierarchy")
		}
		testCPUMax(t, m)
	})
}

func testCPUMax(t *testing.T, m *Manager) {
	slot, err := m.Enter(context.Background(), "spin.test")
	if err != nil {
		t.Fatal(err)
	}
	dirs := slot.Dirs
	defer m.Leave("spin.test")
	quota, period := "cpu.max", "20000 20000"
	if m.Version() == V1 {
		quota, period = "cpu.cfs_quota_us", "4000"
		if got := readTrim(t, filepath.Join(dirs[0], "cpu.cfs_period_us")); got != "20000" {
			t.Errorf("cpu.cfs_period_us = %s, want 20000", got)
		}
	} else {
		period = "4000 20000"
	}
	if got := readTrim(t, filepath.Join(dirs[0], quota)); got != period {
		t.Errorf("%s = %s, want %s", quota, got, period)
	}

	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := writeFile(filepath.Join(dirs[0], "cgroup.procs"), strconv.Itoa(cmd.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	before := cpuTicks(t, cmd.Process.Pid)
	time.Sleep(2 * time.Second)
	used := time.Duration(cpuTicks(t, cmd.Process.Pid)-before) * 10 * time.Millisecond // USER_HZ 100
	t.Logf("spinning for 2s under a 0.2 CPU cap used %v of CPU", used)
	if used > 700*time.Millisecond { // 0.4 s allowed, plus tick rounding and slack
		t.Errorf("capped loop used %v of CPU in 2s, want about 400ms", used)
	}
}

// cpuTicks is utime+stime of pid from /proc/PID/stat, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// A process left in the tenant's cgroup when its last run ends is killed;
// one that a new run of the tenant starts while the sweep runs is not.
func TestSweepKillsEscapeesOnly(t *testing.T) {
	eachLayout(t, Options{}, func(t *testing.T, m *Manager) {
		ctx := context.Background()
		for i := range 20 {
			slot, err := m.Enter(ctx, "a.test")
			if err != nil {
				t.Fatal(err)
			}
			_, escaped := startIn(t, slot)
			m.Leave("a.test") // starts the sweep
			// The next run enters at once; Enter waits for the sweep, so what
			// it starts afterwards is never swept.
			slot, err = m.Enter(ctx, "a.test")
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-escaped:
			case <-time.After(killBound):
				t.Fatalf("round %d: escapee alive after the sweep", i)
			}
			cmd, done := startIn(t, slot)
			select {
			case <-done:
				t.Fatalf("round %d: a new run's process was killed: %v", i, cmd.ProcessState)
			case <-time.After(20 * time.Millisecond):
			}
			m.Leave("a.test")
			select {
			case <-done:
			case <-time.After(killBound + time.Second):
				t.Fatalf("round %d: escapee alive after the last run ended", i)
			}
		}
		m.sweeps.Wait()
		if got := m.Escapees(); got < 40 {
			t.Errorf("Escapees() = %d, want at least 40", got)
		}
	})
}

// A process cloned into a tenant's cgroup after a sweep killed what was
// left there runs normally. (Writing cgroup.kill instead makes the kernel
// kill every later CLONE_INTO_CGROUP child at birth: see kill.)
func TestCloneIntoAfterSweep(t *testing.T) {
	eachLayout(t, Options{}, func(t *testing.T, m *Manager) {
		if m.Version() != V2 {
			t.Skip("cgroup v1: scripts are not cloned into their cgroup")
		}
		ctx := context.Background()
		slot, err := m.Enter(ctx, "a.test")
		if err != nil {
			t.Fatal(err)
		}
		_, escaped := startIn(t, slot)
		m.Leave("a.test")
		<-escaped
		m.sweeps.Wait()
		if m.Escapees() == 0 {
			t.Fatal("the sweep killed nothing")
		}
		for i := range 3 {
			slot, err = m.Enter(ctx, "a.test")
			if err != nil {
				t.Fatal(err)
			}
			cmd, done := startCmdIn(t, slot, "sh", "-c", "exit 7")
			<-done
			m.Leave("a.test")
			if code := cmd.ProcessState.ExitCode(); code != 7 {
				t.Fatalf("run %d after the sweep: %v, want exit status 7", i, cmd.ProcessState)
			}
		}
	})
}

func TestRemoveIdle(t *testing.T) {
	eachLayout(t, Options{}, func(t *testing.T, m *Manager) {
		slot, err := m.Enter(context.Background(), "idle.test")
		dirs := slot.Dirs
		if err != nil {
			t.Fatal(err)
		}
		m.Leave("idle.test")
		m.sweeps.Wait()
		m.removeIdle(time.Now().Add(-time.Hour)) // nothing idle for an hour
		if _, err := os.Stat(dirs[0]); err != nil {
			t.Fatalf("removed too early: %v", err)
		}
		m.removeIdle(time.Now().Add(time.Hour))
		for _, d := range dirs {
			if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s still there: %v", d, err)
			}
		}
		m.mu.Lock()
		n := len(m.tenants)
		m.mu.Unlock()
		if n != 0 {
			t.Errorf("%d tenants remembered after removal", n)
		}
		// A tenant comes back: its cgroup is created again.
		if slot, err = m.Enter(context.Background(), "idle.test"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(slot.Dirs[0]); err != nil {
			t.Fatal(err)
		}
		m.Leave("idle.test")
	})
}

func TestCloseRemovesEverything(t *testing.T) {
	eachLayout(t, Options{}, func(t *testing.T, m *Manager) {
		slot, err := m.Enter(context.Background(), "a.test")
		if err != nil {
			t.Fatal(err)
		}
		_, done := startIn(t, slot)
		m.Leave("a.test")
		m.Close()
		<-done
		for _, p := range m.parents {
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s still there after Close: %v", p, err)
			}
		}
		if _, err := m.Enter(context.Background(), "a.test"); err == nil {
			t.Error("Enter after Close succeeded")
		}
	})
}

func readTrim(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestReadPidsSkipsServer: a sweep never lists the server itself, even
// when one of its threads shows in a tenant's cgroup.procs.
func TestReadPidsSkipsServer(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cgroup.procs")
	if err := os.WriteFile(f, fmt.Appendf(nil, "12345\n%d\n777\n", os.Getpid()), 0o644); err != nil {
		t.Fatal(err)
	}
	pids, err := readPids(f)
	if err != nil || len(pids) != 2 || pids[0] != 12345 || pids[1] != 777 {
		t.Errorf("readPids = %v, %v; want [12345 777]", pids, err)
	}
}

// TestMemoryMax: a tenant's process that touches more than the tenant's
// memory cap is OOM-killed inside its cgroup; one that stays under runs
// to the end.
func TestMemoryMax(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
	eachLayout(t, Options{MemoryMax: 64 << 20}, func(t *testing.T, m *Manager) {
		if m.memory < 0 {
			t.Skip("no memory controller on this hierarchy")
		}
		slot, err := m.Enter(context.Background(), "fat.test")
		if err != nil {
			t.Fatal(err)
		}
		defer m.Leave("fat.test")
		dir := slot.Dirs[m.memory]
		limitFile := "memory.max"
		if m.Version() == V1 {
			limitFile = "memory.limit_in_bytes"
		}
		if got := readTrim(t, filepath.Join(dir, limitFile)); got != strconv.Itoa(64<<20) {
			t.Errorf("%s = %s, want %d", limitFile, got, 64<<20)
		}
		run := func(mib int) error {
			py := fmt.Sprintf("b = b'x' * (%d << 20); print(len(b))", mib)
			cmd := exec.Command("python3", "-c", py)
			if mem := slot.MemoryDir(); mem != "" {
				// v1: the run's first process joins the memory cgroup
				// itself, as the CGI launcher does (-memcg).
				cmd = exec.Command("sh", "-c", `echo 0 > "$1/cgroup.procs" && exec python3 -c "$2"`, "sh", mem, py)
			}
			if err := slot.Spawn(cmd.Start); err != nil {
				t.Fatal(err)
			}
			return cmd.Wait()
		}
		if err := run(16); err != nil {
			t.Errorf("16 MiB under a 64 MiB cap: %v", err)
		}
		if slot.OOMKilled() {
			t.Error("OOMKilled before any OOM kill")
		}
		err = run(256)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("256 MiB under a 64 MiB cap: %v, want killed by SIGKILL (the cgroup's OOM killer)", err)
		}
		if !slot.OOMKilled() {
			t.Error("OOMKilled = false after the cgroup's OOM kill")
		}
		if slot.OOMKilled() {
			t.Error("OOMKilled = true twice for one OOM kill")
		}
	})
}
