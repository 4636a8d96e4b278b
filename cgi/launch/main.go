package launch

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Main runs the launcher with the arguments after the Command word and
// returns the exit status for the process; it returns at all only when the
// launch failed. The main function of the binary must call it before doing
// any other work:
//
//	if len(os.Args) > 1 && os.Args[1] == launch.Command {
//		os.Exit(launch.Main(os.Args[2:]))
//	}
//
// In this order it: joins the -memcg cgroup (as the server's user, which
// may write cgroup.procs); sets RLIMIT_NPROC (before the uid changes, so that the
// kernel's set_user check counts against it); when -uid/-gid are given,
// empties the capability bounding set (unless -keep-bset=1), clears the
// supplementary groups, sets real, effective and saved gid and
// uid, drops every capability, and verifies all of it and that uid 0 cannot
// be regained (as root the identity flags are mandatory: a script never runs
// as root); fchdirs to DirFD; verifies that NAME there is still the regular
// file DEV:INO that the server checked; sets umask 022; marks every
// descriptor from 3 up close-on-exec; sets oom_score_adj to
// ScriptOOMScoreAdj; with -no-new-privs, sets
// PR_SET_NO_NEW_PRIVS; resets every signal to its default
// action and unblocks them all; sets the remaining limits and
// RLIMIT_CORE=0; and finally execve("./NAME", [NAME], environ).
//
// Everything from the identity change on runs as raw system calls on one
// locked OS thread with no allocation, so that the credentials (per thread
// on Linux) are the ones execve sees, and the new limits (address space,
// file descriptors) cannot break the Go runtime before the exec.
func Main(args []string) int {
	runtime.LockOSThread()
	debug.SetGCPercent(-1)
	unix.FcntlInt(StatusFD, unix.F_SETFD, unix.FD_CLOEXEC)

	spec, err := Parse(args)
	if err != nil {
		return failed(StageArgs, unix.EINVAL, err.Error())
	}
	root := unix.Geteuid() == 0
	switch {
	case root && spec.UID < 0:
		return failed(StageArgs, unix.EPERM, "refusing to run a script as root")
	case !root && spec.UID >= 0 && (spec.UID != unix.Getuid() || spec.GID != unix.Getgid()):
		return failed(StageArgs, unix.EPERM, "changing identity needs root")
	}
	if spec.MemoryCgroup != "" {
		if errno := joinCgroup(spec.MemoryCgroup); errno != 0 {
			return failed(StageCgroup, errno, "")
		}
	}
	t := &tail{noNewPrivs: spec.NoNewPrivs, switchID: root, dropBset: root && !spec.KeepBoundingSet, uid: uintptr(spec.UID), gid: uintptr(spec.GID), dev: spec.Dev, ino: spec.Ino}
	for _, l := range spec.Limits {
		lim := unix.Rlimit{Cur: l.Value, Max: l.Value}
		var cur unix.Rlimit
		if !root && unix.Getrlimit(l.Resource, &cur) == nil && cur.Max < lim.Max {
			lim = unix.Rlimit{Cur: cur.Max, Max: cur.Max} // cannot raise a hard limit without root
		}
		if l.Resource == unix.RLIMIT_NPROC {
			t.nproc, t.hasNproc = lim, true
		} else {
			t.limits = append(t.limits, tailLimit{l.Resource, lim})
		}
	}
	t.limits = append(t.limits, tailLimit{unix.RLIMIT_CORE, unix.Rlimit{}})
	if t.oomPath, err = unix.BytePtrFromString("/proc/self/oom_score_adj"); err != nil {
		return failed(StageArgs, unix.EINVAL, err.Error())
	}
	if t.name, err = unix.BytePtrFromString(spec.Name); err == nil {
		t.path, err = unix.BytePtrFromString("./" + spec.Name)
	}
	if err == nil {
		t.argv, err = syscall.SlicePtrFromStrings([]string{spec.Name})
	}
	if err == nil {
		t.envv, err = syscall.SlicePtrFromStrings(os.Environ())
	}
	if err != nil {
		return failed(StageArgs, unix.EINVAL, err.Error())
	}
	stage, errno := t.run()
	return failed(stage, errno, "")
}

// joinCgroup moves this process (all its threads) into the cgroup dir.
func joinCgroup(dir string) unix.Errno {
	fd, err := unix.Open(dir+"/cgroup.procs", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		_, err = unix.Write(fd, []byte{'0'})
		unix.Close(fd)
	}
	if err == nil {
		return 0
	}
	if errno, ok := err.(unix.Errno); ok {
		return errno
	}
	return unix.EIO
}

// failed reports a failed launch on the status pipe and on stderr
// (the tenant's error log) and returns the command's exit status. It does
// not allocate: the address-space limit may already be in force.
func failed(stage Stage, errno unix.Errno, detail string) int {
	rec := [recordLen]byte{'L', byte(stage), byte(errno), byte(errno >> 8), byte(errno >> 16), byte(errno >> 24)}
	unix.RawSyscall(unix.SYS_WRITE, StatusFD, uintptr(unsafe.Pointer(&rec[0])), recordLen)
	var buf [256]byte
	msg := append(buf[:0], "massvhost cgi-launch: "...)
	msg = append(msg, stage.String()...)
	msg = append(msg, ": "...)
	if detail != "" {
		msg = append(msg, detail[:min(len(detail), 100)]...)
	} else {
		msg = append(msg, "errno "...)
		msg = strconv.AppendUint(msg, uint64(errno), 10)
	}
	msg = append(msg, '\n')
	unix.RawSyscall(unix.SYS_WRITE, 2, uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)))
	return 127
}
