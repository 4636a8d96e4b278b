package cgi

import (
	"fmt"
	"os"

	"massvhost/cgi/cgroup"
)

// CgroupMode says whether scripts run in per-tenant cgroups; see
// [Options.Cgroups].
type CgroupMode int

const (
	// CgroupsAuto uses cgroups when the server runs as root and a cpu
	// controller is writable, and runs without them otherwise; the choice
	// is logged.
	CgroupsAuto CgroupMode = iota
	// CgroupsOn makes New fail when cgroups cannot be used.
	CgroupsOn
	// CgroupsOff never uses cgroups.
	CgroupsOff
)

// openCgroups sets up the per-tenant cgroups that o asks for, or returns
// nil when scripts run without them.
func openCgroups(o Options) (*cgroup.Manager, error) {
	if o.Cgroups == CgroupsOff {
		return nil, nil
	}
	if o.Cgroups == CgroupsAuto && os.Geteuid() != 0 {
		o.Logger.Info("cgi: per-tenant cgroups off: the server does not run as root")
		return nil, nil
	}
	processes := max(o.TenantProcesses, 0)
	co := cgroup.Options{Weight: o.CPUWeight, CPUMax: o.TenantCPUMax, Processes: processes, Logger: o.Logger,
		DemoteAbove: o.TenantCPUDemote, DemoteFor: o.TenantCPUDemoteFor, MemoryMax: o.TenantMemoryMax}
	var m *cgroup.Manager
	var err error
	if o.cgroupLayout != nil {
		m, err = cgroup.NewWithLayout(co, *o.cgroupLayout)
	} else {
		m, err = cgroup.New(co)
	}
	if err != nil {
		if o.Cgroups == CgroupsOn {
			return nil, fmt.Errorf("cgi: Cgroups: %w", err)
		}
		o.Logger.Warn("cgi: per-tenant cgroups off", "err", err)
		return nil, nil
	}
	o.Logger.Info("cgi: per-tenant cgroups on", "cgroups", m.String(), "cpu_weight", o.CPUWeight, "tenant_cpu_max", o.TenantCPUMax,
		"tenant_cpu_demote", o.TenantCPUDemote, "tenant_memory_max", o.TenantMemoryMax, "tenant_processes", processes)
	return m, nil
}
