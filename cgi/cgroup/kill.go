package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// killBound bounds one sweep of a tenant's cgroup. A sweep that has not
// emptied the cgroup by then gives up (logged); the next sweep tries
// again, and the cgroup is not removed while populated.
const killBound = 2 * time.Second

// kill kills every process in t's cgroup and waits until the cgroup is
// empty, at most killBound. It returns how many processes it found. The
// caller holds t's busy state, so no run is placed in the cgroup meanwhile.
//
// The processes are frozen first when a freezer is available (a process
// that forks between the read of cgroup.procs and the kill would otherwise
// get away, and a frozen process cannot exit, so its pid cannot be reused
// before the kill reaches it), killed by pid, and thawed so that they die;
// this is repeated until the cgroup is empty. On v2 the freezer is
// cgroup.freeze; on v1 the freezer hierarchy, when mounted.
//
// cgroup v2's cgroup.kill (Linux 5.14) would do it in one write, but it
// is not used: on Linux 6.18 a process cloned with CLONE_INTO_CGROUP into
// a cgroup whose cgroup.kill has ever been written is killed at birth
// (SIGKILL before its first instruction; a sibling cgroup is unaffected),
// and every run on v2 is cloned into its tenant's cgroup ([Slot]).
// TestCloneIntoAfterSweep runs a script after a sweep to catch it.
func (m *Manager) kill(t *tenant) (int, error) {
	procs := filepath.Join(t.dirs[0], "cgroup.procs")
	pids, err := readPids(procs)
	if err != nil || len(pids) == 0 {
		return 0, err
	}
	found := len(pids)
	deadline := time.Now().Add(killBound)
	freeze, thaw := m.freezeFuncs(t)
	for {
		frozen := freeze()
		pids, err = readPids(procs)
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
		if frozen {
			thaw()
		}
		found = max(found, len(pids))
		switch {
		case err != nil || len(pids) == 0:
			return found, err
		case time.Now().After(deadline):
			return found, errors.New("cgroup: processes left after " + killBound.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// freezeFuncs returns functions that freeze and thaw t's cgroup, or that
// do nothing when there is no freezer. freeze reports whether it asked for
// the freeze; it waits a little for the state to settle.
func (m *Manager) freezeFuncs(t *tenant) (freeze func() bool, thaw func()) {
	var control, state, frozen, thawed, done string
	switch {
	case m.layout.Version == V2:
		control, state = filepath.Join(t.dirs[0], "cgroup.freeze"), filepath.Join(t.dirs[0], "cgroup.events")
		frozen, thawed, done = "1", "0", "frozen 1"
	case m.freezer >= 0:
		control = filepath.Join(t.dirs[m.freezer], "freezer.state")
		state, frozen, thawed, done = control, "FROZEN", "THAWED", "FROZEN"
	default:
		return func() bool { return false }, func() {}
	}
	freeze = func() bool {
		if writeFile(control, frozen) != nil {
			return false
		}
		for range 50 {
			if b, err := os.ReadFile(state); err != nil || strings.Contains(string(b), done) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		return true // even a partial freeze is thawed
	}
	return freeze, func() { writeFile(control, thawed) }
}

// readPids reads a cgroup.procs file. A cgroup that no longer exists is
// empty.
func readPids(name string) ([]int, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		// The server itself is never swept: on v1 a spawning thread of
		// its own makes its pid show in a tenant's cgroup.procs while the
		// thread is there (Slot.Spawn; runs are counted then, so no sweep
		// runs, but a thread that failed to move home ends only later).
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
