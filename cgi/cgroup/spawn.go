package cgroup

import (
	"fmt"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Spawn calls start, which must create the run's first process (and
// nothing else) on the calling thread, as os/exec's Cmd.Start does, so
// that the process is born in the tenant's cgroup.
//
// On cgroup v2 the caller passes [Slot.FD] to clone3 and Spawn only calls
// start. cgroup v1 has no CLONE_INTO_CGROUP, but there a child is born in
// the cgroups of the thread that forks it, and a thread can move alone:
// writing "0" to a v1 "tasks" file moves the calling thread. So Spawn runs
// start on a goroutine locked to its thread, moves that thread into the
// tenant's cgroups (all but the memory one: see [Slot.MemoryDir]), and
// moves it back to the server's own before the
// thread is given back to the Go runtime. A thread that cannot move back
// is not given back: it ends with its goroutine, so no server thread is
// left in a tenant's cgroup to be charged, frozen or swept.
//
// Being born there, rather than moved in by the launcher as before, means
// that pids.max is enforced at the fork (the pids controller does not
// refuse a process moved in) and that all of the launcher's CPU is the
// tenant's. Per spawn: a raw open, write and close of each of the
// tenant's "tasks" files, and a write to each of the server's, which the
// Manager keeps open; about 0.18 ms more per CGI request than the
// launcher's own join (BenchmarkSpawn, builds alternated). Holding the
// tenants' files open too made it level, but cost every tenant active in
// the last minute a descriptor per hierarchy; through os.File, as a first
// version did, it cost 0.3–0.4 ms.
//
// An error from joining the tenant's cgroups wraps the cause (ENOENT when
// the cgroup was removed behind the server's back).
func (s Slot) Spawn(start func() error) error {
	if s.FD >= 0 || s.m == nil || s.m.homeTasks == nil {
		return start()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := joinThread(s.Dirs, s.m.joins)
		if err == nil {
			err = start()
		}
		if moveThread(s.m.homeTasks, s.m.homes, s.m.joins) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// joinThread moves the calling thread into the v1 cgroups dirs[i] for i
// in joins, opening each "tasks" file for the write (holding them open
// would cost every recently active tenant a descriptor per hierarchy).
func joinThread(dirs []string, joins []int) error {
	for _, i := range joins {
		d := dirs[i]
		fd, err := unix.Open(d+"/tasks", unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			_, err = unix.Write(fd, zero)
			unix.Close(fd)
		}
		if err != nil {
			if err == unix.ENODEV {
				err = unix.ENOENT
			}
			return fmt.Errorf("cgroup: join %s: %w", d, err)
		}
	}
	return nil
}

// zero is what a "tasks" file is written: the calling thread.
var zero = []byte{'0'}

// moveThread moves the calling thread into the cgroups whose "tasks"
// files fds are open (v1; fds[k] is that of dirs[joins[k]]), all of them
// even after a failure, so that a thread sent home is home in every
// hierarchy it can be.
func moveThread(fds []int, dirs []string, joins []int) error {
	var first error
	for k, fd := range fds {
		if _, err := unix.Write(fd, zero); err != nil && first == nil {
			first = fmt.Errorf("cgroup: return to %s: %w", dirs[joins[k]], err)
		}
	}
	return first
}

// OOMKilled reports whether the kernel's OOM killer has killed a process
// in the tenant's cgroup (its memory cap reached) since the cgroup was
// created or since the last call that said so. It reads one file (v2
// memory.events, v1 memory.oom_control): call it only for a run whose
// process died of a SIGKILL the server did not send, to tell the tenant
// and the operator why.
func (s Slot) OOMKilled() bool {
	if s.m == nil || s.t == nil || s.m.memory < 0 || s.m.opts.MemoryMax <= 0 {
		return false
	}
	file := "memory.events"
	if s.m.layout.Version == V1 {
		file = "memory.oom_control"
	}
	n, err := readKeyed(filepath.Join(s.Dirs[s.m.memory], file), "oom_kill")
	if err != nil {
		return false
	}
	for {
		seen := s.t.oomKills.Load()
		if n <= seen {
			return false
		}
		if s.t.oomKills.CompareAndSwap(seen, n) {
			return true
		}
	}
}
