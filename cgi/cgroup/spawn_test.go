package cgroup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// BenchmarkPlaceV1 compares the two ways of putting a new process in a
// tenant's v1 cgroups, while other processes fork and exit without pause
// (as a fork bomb or a busy tenant does): "thread" forks from a thread
// that joined them (Slot.Spawn), "process" forks here and then moves the
// child with a write to cgroup.procs, which takes the kernel's threadgroup
// lock for writing and so waits for the forks in progress. Each op starts
// cat, places it, closes its input and reaps it.
//
//	go test -run '^$' -bench PlaceV1 -benchtime 2000x ./cgi/cgroup/
func BenchmarkPlaceV1(b *testing.B) {
	layout, err := detect()
	if err != nil || layout.Version != V1 {
		b.Skip("needs cgroup v1 (detected: ", layout.Version, err, ")")
	}
	m, err := NewWithLayout(Options{}, layout)
	if err != nil {
		b.Skip(err)
	}
	defer m.Close()
	slot, err := m.Enter(context.Background(), "bench.test")
	if err != nil {
		b.Fatal(err)
	}
	defer m.Leave("bench.test")

	for _, load := range []int{0, 2} {
		for _, how := range []string{"thread", "process"} {
			b.Run(how+"/forkers="+strconv.Itoa(load), func(b *testing.B) {
				stop := make(chan struct{})
				var wg sync.WaitGroup
				for range load {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
								exec.Command("/bin/true").Run()
							}
						}
					})
				}
				for b.Loop() {
					// cat lives until its stdin closes, after the placement.
					cmd := exec.Command("/bin/cat")
					in, err := cmd.StdinPipe()
					if err != nil {
						b.Fatal(err)
					}
					if how == "thread" {
						err = slot.Spawn(cmd.Start)
					} else if err = cmd.Start(); err == nil {
						for _, d := range slot.Dirs {
							if err == nil {
								err = writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid))
							}
						}
					}
					if err != nil {
						b.Fatal(err)
					}
					in.Close()
					cmd.Wait()
				}
				close(stop)
				wg.Wait()
			})
		}
	}
}

// TestSpawnThreadSkipsMemory: while start runs, the spawning thread is in
// the tenant's cgroups but for the v1 memory one (whose OOM killer would
// weigh the server's address space), which the run joins itself
// (Slot.MemoryDir, the launcher's -memcg).
func TestSpawnThreadSkipsMemory(t *testing.T) {
	eachLayout(t, Options{MemoryMax: 256 << 20}, func(t *testing.T, m *Manager) {
		slot, err := m.Enter(context.Background(), "mem.test")
		if err != nil {
			t.Fatal(err)
		}
		defer m.Leave("mem.test")
		if slot.MemoryDir() == "" {
			t.Skip("no v1 memory hierarchy: nothing for the thread to avoid")
		}
		var during string
		err = slot.Spawn(func() error {
			b, err := os.ReadFile("/proc/thread-self/cgroup")
			during = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// "ID:CONTROLLERS:PATH" lines: in the tenant's cgroup of a
		// hierarchy when its directory ends with PATH.
		in := map[string]bool{}
		for line := range strings.SplitSeq(strings.TrimSpace(during), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 || parts[2] == "/" {
				continue
			}
			for c := range strings.SplitSeq(parts[1], ",") {
				switch c {
				case "cpu":
					in[c] = strings.HasSuffix(slot.Dirs[0], parts[2])
				case "memory":
					in[c] = strings.HasSuffix(slot.MemoryDir(), parts[2])
				}
			}
		}
		if !in["cpu"] || in["memory"] {
			t.Errorf("spawning thread in the tenant's cpu cgroup: %v, memory cgroup: %v (want true, false):\n%s", in["cpu"], in["memory"], during)
		}
	})
}

// TestProcessLimitAtBirth: a tenant at its pids.max cannot start another
// run; the spawn fails with EAGAIN (the server answers 503). A process
// moved in after its birth would not be refused: the pids controller
// does not enforce the limit on migration. On v1 the spawning thread is
// one of the tenant's tasks while it forks, so with pids.max 4 three
// processes fit.
func TestProcessLimitAtBirth(t *testing.T) {
	eachLayout(t, Options{Processes: 4}, func(t *testing.T, m *Manager) {
		if m.pids < 0 {
			t.Skip("no pids controller on this hierarchy")
		}
		slot, err := m.Enter(context.Background(), "full.test")
		if err != nil {
			t.Fatal(err)
		}
		defer m.Leave("full.test")
		for range 3 {
			startCmdIn(t, slot, "sleep", "300")
		}
		cmd := exec.Command("sleep", "300")
		if slot.FD >= 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: slot.FD}
		}
		err = slot.Spawn(cmd.Start)
		if err == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if !errors.Is(err, syscall.EAGAIN) {
			t.Errorf("fourth process of a tenant with pids.max 4: %v, want EAGAIN", err)
		}
	})
}
