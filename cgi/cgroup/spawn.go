package cgroup

import (
	"fmt"
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
// tenant's cgroups, and moves it back to the server's own before the
// thread is given back to the Go runtime. A thread that cannot move back
// is not given back: it ends with its goroutine, so no server thread is
// left in a tenant's cgroup to be charged, frozen or swept.
//
// Being born there, rather than moved in by the launcher as before, means
// that pids.max is enforced at the fork (the pids controller does not
// refuse a process moved in) and that all of the launcher's CPU is the
// tenant's. It costs about the same per spawn (BenchmarkPlaceV1): six
// one-byte writes to "tasks" files the Manager keeps open. (Opening them
// per spawn, as a first version did, cost 0.3–0.4 ms per CGI request.)
//
// An error from joining the tenant's cgroups wraps the cause (ENOENT when
// the cgroup was removed behind the server's back).
func (s Slot) Spawn(start func() error) error {
	if s.FD >= 0 || s.tasks == nil {
		return start()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := moveThread(s.tasks, s.Dirs)
		if err == nil {
			err = start()
		}
		if moveThread(s.m.homeTasks, s.m.homes) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// zero is what a "tasks" file is written: the calling thread.
var zero = []byte{'0'}

// moveThread moves the calling thread into the cgroups whose "tasks"
// files fds are open (v1; dirs name them for errors), all of them even
// after a failure, so that a thread sent home is home in every hierarchy
// it can be. A cgroup removed since its file was opened answers ENODEV,
// reported as ENOENT like a missing directory.
func moveThread(fds []int, dirs []string) error {
	var first error
	for i, fd := range fds {
		if _, err := unix.Write(fd, zero); err != nil && first == nil {
			if err == unix.ENODEV {
				err = unix.ENOENT
			}
			first = fmt.Errorf("cgroup: join %s: %w", dirs[i], err)
		}
	}
	return first
}
