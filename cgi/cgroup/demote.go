package cgroup

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Demotion of CPU hogs.
//
// Equal weights share contended CPU equally between tenants, which still
// lets one tenant with a runnable fork bomb take half of a two-core
// machine from a tenant whose short requests need the CPU now. So a
// tenant that keeps more than Options.DemoteAbove CPUs busy, averaged over
// DemoteWindow, is demoted: its cgroup's cpu.idle is set (Linux 5.15; on
// older kernels its weight drops to the minimum), so that its processes
// run only on CPU no one else wants and are preempted as soon as another
// tenant's process wakes up. It is still served; on an idle machine it
// still gets every free CPU. The demotion lasts DemoteFor, doubled for
// each demotion since the tenant's cgroup was created (up to 8 times), so
// a hog that resumes the moment it is restored spends ever less of its
// time at the normal priority; a tenant idle for the cgroup's
// IdleTimeout is forgotten, strikes and all. Only tenants with a script
// running (or demoted) are read, one file each per DemoteWindow, off the
// request path.

// DemoteWindow is how often the CPU use of active tenants is read, and the
// window Options.DemoteAbove is averaged over.
const DemoteWindow = time.Second

// DefaultDemoteFor is Options.DemoteFor when zero.
const DefaultDemoteFor = 10 * time.Second

// maxStrikeShift caps the doubling of DemoteFor at 8 times.
const maxStrikeShift = 3

// watchCPU samples the active tenants' CPU use every DemoteWindow and
// demotes and restores them, until Close.
func (m *Manager) watchCPU() {
	defer close(m.watched)
	if m.opts.DemoteAbove <= 0 {
		return // off, or impossible here (said by NewWithLayout)
	}
	tick := time.NewTicker(DemoteWindow)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-tick.C:
			m.checkCPU(now)
		}
	}
}

// cannotDemote says why demotion cannot work on m's hierarchies, or "".
func (m *Manager) cannotDemote() string {
	switch {
	case !m.cpu:
		return "the cpu controller is not enabled for the tenant cgroups"
	case m.layout.Version == V1 && m.acct < 0:
		return "no cgroup v1 cpuacct hierarchy to read a tenant's CPU time from"
	}
	return ""
}

// checkCPU looks at every tenant that has a script running or is demoted.
func (m *Manager) checkCPU(now time.Time) {
	type active struct {
		name string
		t    *tenant
	}
	var ts []active
	m.mu.Lock()
	for name, t := range m.tenants {
		if t.ready.Load() && (t.running > 0 || t.demoted.Load()) {
			ts = append(ts, active{name, t})
		}
	}
	m.mu.Unlock()
	for _, a := range ts {
		m.checkTenant(a.name, a.t, now)
	}
}

// checkTenant demotes t when it used more than DemoteAbove CPUs since its
// last sample, and restores it once its demotion is over. It holds t's
// setupMu, which orders it with the creation and removal of the cgroup:
// a cgroup that is not ready is left alone, and a new one starts
// undemoted (create).
func (m *Manager) checkTenant(name string, t *tenant, now time.Time) {
	t.setupMu.Lock()
	defer t.setupMu.Unlock()
	if !t.ready.Load() {
		return
	}
	used, err := m.cpuUsage(t)
	if err != nil {
		return // removed meanwhile, or no accounting: nothing to judge
	}
	prevUsed, prevAt := t.cpuUsed, t.cpuAt
	t.cpuUsed, t.cpuAt = used, now
	if prevAt.IsZero() || !now.After(prevAt) {
		return
	}
	cpus := float64(used-prevUsed) / float64(now.Sub(prevAt))
	switch {
	case t.demoted.Load():
		if now.Before(t.demotedUntil) {
			return
		}
		if err := m.setIdle(t, false); err != nil {
			m.opts.Logger.Warn("cgroup: restore a demoted tenant", "tenant", name, "err", err)
			return
		}
		t.demoted.Store(false)
		m.demotedNow.Add(-1)
		m.opts.Logger.Info("cgroup: tenant's CPU priority restored", "tenant", name)
	case cpus > m.opts.DemoteAbove:
		if err := m.setIdle(t, true); err != nil {
			m.opts.Logger.Warn("cgroup: demote a tenant", "tenant", name, "err", err)
			return
		}
		d := m.opts.DemoteFor << min(t.strikes, maxStrikeShift)
		t.strikes++
		t.demotedUntil = now.Add(d)
		t.demoted.Store(true)
		m.demotedNow.Add(1)
		m.demotions.Add(1)
		m.opts.Logger.Warn("cgroup: tenant demoted to idle CPU priority", "tenant", name,
			"cpus", strconv.FormatFloat(cpus, 'f', 2, 64), "above", m.opts.DemoteAbove, "for", d)
	}
}

// cpuUsage is the CPU time t's processes have used since its cgroup was
// created: usage_usec of cpu.stat on v2, cpuacct.usage (ns) on v1.
func (m *Manager) cpuUsage(t *tenant) (time.Duration, error) {
	if m.layout.Version == V2 {
		us, err := readKeyed(filepath.Join(t.dirs[0], "cpu.stat"), "usage_usec")
		return time.Duration(us) * time.Microsecond, err
	}
	b, err := os.ReadFile(filepath.Join(t.dirs[m.acct], "cpuacct.usage"))
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	return time.Duration(ns), err
}

// setIdle demotes t's cgroup to idle priority, or restores it.
func (m *Manager) setIdle(t *tenant, idle bool) error {
	dir := t.dirs[0]
	switch {
	case m.cpuIdle:
		v := "0"
		if idle {
			v = "1"
		}
		return writeFile(filepath.Join(dir, "cpu.idle"), v)
	case m.layout.Version == V2:
		w := m.opts.Weight
		if idle {
			w = 1
		}
		return writeFile(filepath.Join(dir, "cpu.weight"), strconv.Itoa(w))
	default:
		shares := m.shares()
		if idle {
			shares = 2
		}
		return writeFile(filepath.Join(dir, "cpu.shares"), strconv.Itoa(shares))
	}
}

// readKeyed reads the value of key from a cgroup file of "key value"
// lines (cpu.stat, memory.events, memory.oom_control).
func readKeyed(name, key string) (uint64, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("cgroup: no %s in %s", key, name)
}

// Demotions returns how many times a tenant has been demoted since New,
// and how many tenants are demoted now. A nil Manager demotes none.
func (m *Manager) Demotions() (total uint64, now int64) {
	if m == nil {
		return 0, 0
	}
	return m.demotions.Load(), m.demotedNow.Load()
}
