// Package cgi runs tenants' CGI scripts (RFC 3875) for massvhost: each
// script as its tenant's uid, inside resource limits, in a process group of
// its own that dies with the request. It owns the child's identity, limits
// and lifetime, the script's environment, and the translation of its output
// into an HTTP response. It knows nothing about certificates, host names or
// routing: the server resolves the site and decides which requests are CGI
// ([Handler.IsScriptPath], the /cgi-bin/ prefix), then calls
// [Handler.ServeCGI].
//
// This is its own host on os/exec, not net/http/cgi's Handler, which cannot
// bound a child: it has no context, timeout, process group or credentials,
// re-dispatches "Location: //other-host/" into another site, panics on
// "Status: 099", lets "X_Forwarded_For" override "X-Forwarded-For" in the
// environment, and trusts an unbounded header block.
//
// # Data flow
//
// ServeCGI validates the decoded URL path (no dot segments, NUL or
// backslash), walks it from the site's cgi-bin (or document root) one
// component at a time with openat(O_PATH|O_NOFOLLOW) until a regular file
// (the rest is PATH_INFO), refusing symlinks, hidden names and anything not
// regular, and applies the suEXEC checks to the fstat of the descriptors it
// holds. It then prepares the body (413 over max_body_bytes; a body of
// unknown length is buffered, spilling to an unlinked temporary file, so
// that CONTENT_LENGTH is always right), takes a slot under the per-tenant
// and total caps without waiting (503 + Retry-After), and builds the
// environment from nothing. The launcher starts the script; ServeCGI
// parses its header block (at most 100 lines and 64 KiB), streams the body
// (at most max_output_bytes), copies stderr to the tenant's error log
// (capped and rate-limited), and always kills what is left of the process
// group and reaps the script before it returns.
//
// # The launcher, and what it costs
//
// Go's SysProcAttr sets credentials but no resource limits, and a limit set
// with prlimit after Start is set too late: the script is already running.
// So every script is started through a launcher (package
// massvhost/cgi/launch), as suEXEC sits between Apache and the script:
// [Options.Launcher], by default the running binary re-executed as
// "<binary> cgi-launch" ([Launch]). The massvhost command points it at a
// massvhost-cgi-launch binary (built from package launch alone) installed
// beside it when there is one. In the new process, on one locked thread
// and with raw system calls only, the launcher sets RLIMIT_NPROC, clears
// the supplementary groups, sets gid and uid, drops every capability (and
// checks that uid 0 cannot be regained), moves into the script's directory
// through the descriptor the server checked, verifies that the script there
// is still the file (device and inode) that was checked, sets umask 022,
// marks every descriptor but 0-2 close-on-exec, resets signal dispositions
// and mask, sets the other limits and RLIMIT_CORE=0, and execs the script.
// The limits are therefore in force from the script's first instruction,
// and the identity check and the exec see the same file. Failures come back
// on a status pipe as a stage and an errno, so that EAGAIN from
// RLIMIT_NPROC becomes 503 and a script swapped after the check becomes
// 403, never a confusing 502.
//
// The price is a second exec, of a Go binary, per request, and it is all in
// the launcher's start-up: the Go runtime, page faults on the binary, and
// package initialization. BenchmarkSpawn (a trivial sh script through
// ServeCGI, 2-vCPU VM, go1.26.8; docs/CGI.md has the command, the
// conditions and every figure) puts the CPU time of the launcher and script
// per request at about 0.8 ms when os/exec starts the script directly
// (where no limit can be set), 2.5 ms through massvhost-cgi-launch, and
// 5.7 ms through the full massvhost binary, which was 8.4 ms before that
// binary started its launcher from package initialization (package
// massvhost/cgi/launch/early), ahead of the packages that need net, TLS,
// Redis or metrics. None of it grows with the server's resident set:
// os/exec forks with CLONE_VM|CLONE_VFORK, so no spawn copies the server's
// page tables, which is the cost that grows with a preloading server's RSS.
// The alternatives are worse: prlimit after Start is racy (a fork bomb runs
// before NPROC lands), a per-thread setrlimit trick cannot work (limits are
// per process on Linux), and cgroups alone have no equivalent of
// RLIMIT_FSIZE or RLIMIT_NOFILE; they complement the limits (next section).
//
// # Per-tenant cgroups
//
// rlimits cannot share CPU: a tenant running 64 busy processes gets 64
// times the CPU of a tenant running one. With [Options.Cgroups] (on by
// default when the server is root and a cgroup cpu controller is
// writable), package massvhost/cgi/cgroup gives each tenant a cgroup of its
// own, created on the tenant's first script and removed after a minute
// idle, with a CPU weight (equal for all tenants, so contended CPU is
// shared per tenant, not per process), a pids.max that also fences
// tenants sharing a uid, and a memory cap for all of the tenant's
// processes together ([Options.TenantMemoryMax]). On cgroup v2 the run's
// first process is created in it (clone3 with CLONE_INTO_CGROUP); on v1 it
// is forked from a server thread that has joined the tenant's cgroups for
// that one fork (and then goes home; see cgroup.Slot.Spawn), but for the
// memory cgroup, which the launcher joins itself. Either
// way the script and everything it forks are in it from the first
// instruction; a failed placement answers 500. Once none of a tenant's
// scripts runs, whatever is still in its cgroup escaped its request
// (setsid, a daemon) and is killed (freeze, SIGKILL by pid, thaw), off
// the request path;
// a new script of the tenant waits for that sweep to end rather than be
// killed by it. Both cgroup v2 (with the cpu controller delegated) and the
// v1 cpu hierarchy (plus pids and freezer when mounted) are supported.
//
// # Security model: what a tenant can and cannot do
//
// When the server runs as root, a script runs as its site's Owner and Group
// (the owner of the document root), never as root, with no supplementary
// groups and no capabilities. Before anything is spawned, every directory
// from the cgi-bin (or document root) down to the script and the script
// itself must be owned by exactly that uid and gid, not writable by group or
// others, and the script must be a regular, owner-executable, non-setuid,
// non-setgid file, with uid and gid at least min_uid/min_gid. A site whose
// document root belongs to a uid below min_uid (root, a system account: the
// operator's own sites, the shipped examples) runs as [Options.Anonymous]
// instead when one is set, after the same checks against that owner, so
// the anonymous user can execute the site's code but not change it; all
// such sites share that identity (and its RLIMIT_NPROC count), as all
// scripts share www-data on an Apache without suEXEC, so they can signal
// and read each other's processes and files the anonymous user may write.
// Without Anonymous they are refused. A failed check answers 403 and logs
// the reason; the client sees only the status. Without root there is no
// identity to switch to: scripts run as the server's user, and only
// world-writable paths, setuid/setgid files and non-executable files are
// refused (a group-writable tree is normal under a 002 umask).
//
// A tenant's script can: read its request and the RFC 3875 variables,
// HTTP_* variables for request headers (never Proxy, never Authorization
// unless pass_authorization, never a name with '_' or other characters
// outside letters, digits and '-'), PATH and the pass_env allowlist; write
// a response with any final status 200-599, any header except framing and
// hop-by-hop fields (the server frames the body itself), and a local
// redirect ("Location: /path", status 200 or none) that the server serves as
// a GET without body for the same site, at most 10 in a row; use the files
// its uid may use; start processes within RLIMIT_NPROC (and its cgroup's
// pids.max).
//
// It cannot: run outside its tree (no "..", no symlinks, no other tenant's
// or the system's binaries through cgi-bin); redirect internally to another
// host ("//host/" and "/\host" go to the client as a 302, like any absolute
// URL); see the server's environment (secrets, REDIS_*, GODEBUG) or any of
// its descriptors; outlive its request (a wall-clock timeout, a client
// disconnect and Handler.Close each kill the whole process group, SIGTERM
// then SIGKILL, and a finished run's leftovers are killed too, and with
// cgroups whatever left the group once the tenant has no script running);
// take more than its weight of contended CPU (with cgroups); exceed its
// CPU seconds, address space, open files or file size, or its memory cap
// (with cgroups: the kernel OOM-kills within the tenant); dump core; hold a
// response open after it exits; run more than max_per_tenant scripts at
// once; flood the server's log or memory through stderr or its header.
//
// Known limits: without cgroups, a process that calls setsid leaves the
// process group and survives the group kill (it cannot hold the response
// open), and CPU is shared per process; if the server itself is killed with
// SIGKILL its running scripts are not killed (Pdeathsig does not survive
// the launcher's uid change and is per thread in Go); RLIMIT_NPROC counts
// every process of the uid on the machine, so it only fences tenants that
// have a uid of their own (pids.max of the tenant's cgroup does not have
// that limit); there is no idle-output timeout besides the wall clock; and
// no_new_privs is only set with [Options.NoNewPrivs], off by default so
// that setgid programs such as sendmail's postdrop keep working for
// scripts.
//
// # When not to use CGI
//
// CGI starts a process per request. For anything with a start-up cost (an
// interpreter loading a framework, a database connection per request) or
// that must serve many requests per second, run a long-lived application
// server instead; CGI here is for the shared-hosting case of many tenants
// with rare, small scripts, where idle tenants must cost nothing.
package cgi
