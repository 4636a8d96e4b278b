// Package cgroup gives each CGI tenant a cgroup of its own: CPU shared
// between tenants by weight rather than by process count, a process limit
// per tenant whatever the uid, and the kill of processes that escaped
// their request. It owns the detection of the server's cgroups, the
// directories it creates under them and their lifetime. It does not start
// processes; it says where a run goes ([Slot]). On cgroup v2 the server
// creates the run's first process inside the tenant's cgroup (clone3 with
// CLONE_INTO_CGROUP, through an open directory the Manager keeps); on v1,
// which has no such flag, from a server thread that joins the tenant's
// cgroups for the fork and then returns to the server's ([Slot.Spawn]).
// It knows nothing about HTTP or sites; a tenant is a name.
//
// # Data flow
//
// [New] reads /proc/self/mountinfo and /proc/self/cgroup to find the
// server's own cgroup in each hierarchy, and uses cgroup v2 when the
// unified hierarchy offers the cpu controller there (the modern default,
// with systemd's Delegate=yes), else the v1 cpu hierarchy, with the pids
// and freezer hierarchies when they are mounted. It creates
// "massvhost.PID.N" below the server's cgroup in each. [Manager.Enter]
// counts a run of a tenant and returns its [Slot], creating the tenant's
// cgroup on its first run (one mkdir per hierarchy, the cpu weight and
// pids.max, and on v2 an open of the directory; later runs do no I/O). [Manager.Leave] ends the run; when
// the tenant has none left, a goroutine sweeps its cgroup (anything there
// escaped, since the runs' processes were killed and reaped before Leave),
// and the next Enter of that tenant waits for the sweep to end (see
// tenant). A reaper removes cgroups idle for [Options.IdleTimeout] and
// forgets them, so memory and the number of cgroups follow the tenants
// active recently, not every tenant ever served. [Manager.Close] kills
// what is left and removes everything.
//
// # What it does not do
//
// It sets a memory cap only when asked ([Options.MemoryMax]), does not use
// cgroup.kill (a kernel problem with CLONE_INTO_CGROUP, see kill; sweeps
// freeze and kill by pid instead), and does not survive a SIGKILL of the
// server: scripts running then stay in their cgroups, and the empty
// directories are removed by the next server that starts.
package cgroup
