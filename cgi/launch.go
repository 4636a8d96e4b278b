package cgi

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Descriptors the handler gives the launcher besides stdin, stdout, stderr.
const (
	launchStatusFD = 3 // write end of the status pipe; close-on-exec
	launchDirFD    = 4 // the script's directory, as opened by the lookup
)

// Launch stages, reported through the status pipe when a launch fails.
const (
	stageArgs     byte = 1 + iota // bad argv or caller
	stageLimits                   // setrlimit
	stageIdentity                 // setgroups/setresgid/setresuid or their verification
	stageDir                      // fchdir to the script's directory
	stageScript                   // the script is not the file that was checked
	stageFDs                      // marking inherited descriptors close-on-exec
	stageExec                     // execve
)

var stageNames = map[byte]string{
	stageArgs: "arguments", stageLimits: "setrlimit", stageIdentity: "identity",
	stageDir: "chdir", stageScript: "script check", stageFDs: "descriptors", stageExec: "exec",
}

// statusLen is the size of a failure record on the status pipe: 'L',
// the stage, and the errno as a little-endian uint32.
const statusLen = 6

// launchSpec is what one launch does; args and parseLaunchArgs are the two
// sides of the argv contract documented on [Launch].
type launchSpec struct {
	uid, gid int // -1: keep the caller's identity
	limits   []rlimit
	dev, ino uint64 // identity of the checked script
	name     string // the script's file name in its directory
}

type rlimit struct {
	flag     string
	resource int
	value    uint64
}

// rlimitFlags are the launcher's limit flags in the order they are applied.
var rlimitFlags = []struct {
	flag     string
	resource int
}{
	{"nproc", unix.RLIMIT_NPROC},
	{"cpu", unix.RLIMIT_CPU},
	{"as", unix.RLIMIT_AS},
	{"nofile", unix.RLIMIT_NOFILE},
	{"fsize", unix.RLIMIT_FSIZE},
}

// args encodes s as the launcher's arguments (after LaunchCommand).
func (s *launchSpec) args() []string {
	a := make([]string, 0, 12)
	if s.uid >= 0 {
		a = append(a, "-uid="+strconv.Itoa(s.uid), "-gid="+strconv.Itoa(s.gid))
	}
	for _, l := range s.limits {
		a = append(a, "-"+l.flag+"="+strconv.FormatUint(l.value, 10))
	}
	a = append(a, fmt.Sprintf("-file=%d:%d", s.dev, s.ino), "--", s.name)
	return a
}

// parseLaunchArgs is the strict inverse of args: every flag is -name=value,
// known, and given at most once; exactly one file name follows "--".
func parseLaunchArgs(args []string) (*launchSpec, error) {
	s := &launchSpec{uid: -1, gid: -1}
	seen := map[string]bool{}
	for i, a := range args {
		if a == "--" {
			rest := args[i+1:]
			if len(rest) != 1 || !validScriptName(rest[0]) {
				return nil, errors.New("want exactly one script file name after --")
			}
			s.name = rest[0]
			if !seen["file"] {
				return nil, errors.New("missing -file")
			}
			if seen["uid"] != seen["gid"] {
				return nil, errors.New("-uid and -gid go together")
			}
			return s, nil
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if !ok || !strings.HasPrefix(a, "-") || seen[k] {
			return nil, fmt.Errorf("bad or repeated argument %q", a)
		}
		seen[k] = true
		n, err := strconv.ParseUint(v, 10, 64)
		switch k {
		case "uid", "gid":
			if err != nil || n == 0 || n > 1<<31-1 {
				return nil, fmt.Errorf("bad %s %q", k, v)
			}
			if k == "uid" {
				s.uid = int(n)
			} else {
				s.gid = int(n)
			}
		case "file":
			dev, ino, ok := strings.Cut(v, ":")
			d, err1 := strconv.ParseUint(dev, 10, 64)
			n, err2 := strconv.ParseUint(ino, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("bad file identity %q", v)
			}
			s.dev, s.ino = d, n
		default:
			res := -1
			for _, f := range rlimitFlags {
				if f.flag == k {
					res = f.resource
				}
			}
			if res < 0 || err != nil {
				return nil, fmt.Errorf("bad argument %q", a)
			}
			s.limits = append(s.limits, rlimit{flag: k, resource: res, value: n})
		}
	}
	return nil, errors.New("missing -- and script name")
}

// validScriptName reports whether name is one plain directory entry.
func validScriptName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// Launch is the body of the hidden "massvhost cgi-launch" subcommand: the
// setuid-free equivalent of Apache's suexec, started by the [Handler] for
// every script. It returns the exit status for the command (it returns at
// all only when the launch failed).
//
// Contract (argv after the subcommand, and descriptors):
//
//	massvhost cgi-launch [-uid=U -gid=G] [-nproc=N] [-cpu=SECONDS] [-as=BYTES]
//	                     [-nofile=N] [-fsize=BYTES] -file=DEV:INO -- NAME
//
//	fd 0, 1, 2  the script's stdin, stdout, stderr
//	fd 3        status pipe (write end): on failure one 6-byte record
//	            {'L', stage, errno uint32 little-endian}; closed by a
//	            successful exec, so EOF without a record means the script runs
//	fd 4        the script's directory (an O_PATH descriptor is enough)
//	environ     the script's environment, passed on unchanged
//
// In this order it: sets RLIMIT_NPROC (before the uid changes, so that the
// kernel's set_user check counts against it); when -uid/-gid are given,
// clears the supplementary groups and sets real, effective and saved gid and
// uid, then verifies them and that uid 0 cannot be regained (as root the
// identity flags are mandatory: a script never runs as root); fchdirs to fd
// 4; verifies that NAME there is still the regular file DEV:INO that the
// server checked; sets umask 022; marks every descriptor from 3 up
// close-on-exec; resets every signal to its default action and unblocks
// them all; sets the remaining limits and RLIMIT_CORE=0; and finally
// execve("./NAME", [NAME], environ).
//
// Everything from the identity change on runs as raw system calls on one
// locked OS thread with no allocation, so that credentials (per-thread on
// Linux) are the ones execve sees, and the new limits (address space, file
// descriptors) cannot break the Go runtime before the exec. The main of the
// binary must dispatch to Launch before doing any other work.
func Launch(args []string) int {
	runtime.LockOSThread()
	debug.SetGCPercent(-1)
	unix.FcntlInt(launchStatusFD, unix.F_SETFD, unix.FD_CLOEXEC)

	spec, err := parseLaunchArgs(args)
	if err != nil {
		return launchFailed(stageArgs, unix.EINVAL, err.Error())
	}
	root := unix.Geteuid() == 0
	switch {
	case root && spec.uid < 0:
		return launchFailed(stageArgs, unix.EPERM, "refusing to run a script as root")
	case !root && spec.uid >= 0 && (spec.uid != unix.Getuid() || spec.gid != unix.Getgid()):
		return launchFailed(stageArgs, unix.EPERM, "changing identity needs root")
	}
	t := &launchTail{switchID: root, uid: uintptr(spec.uid), gid: uintptr(spec.gid), dev: spec.dev, ino: spec.ino}
	for _, l := range spec.limits {
		lim := unix.Rlimit{Cur: l.value, Max: l.value}
		var cur unix.Rlimit
		if !root && unix.Getrlimit(l.resource, &cur) == nil && cur.Max < lim.Max {
			lim = unix.Rlimit{Cur: cur.Max, Max: cur.Max} // cannot raise a hard limit without root
		}
		if l.resource == unix.RLIMIT_NPROC {
			t.nproc, t.hasNproc = lim, true
		} else {
			t.limits = append(t.limits, tailLimit{l.resource, lim})
		}
	}
	t.limits = append(t.limits, tailLimit{unix.RLIMIT_CORE, unix.Rlimit{}})
	if t.name, err = unix.BytePtrFromString(spec.name); err == nil {
		t.path, err = unix.BytePtrFromString("./" + spec.name)
	}
	if err == nil {
		t.argv, err = syscall.SlicePtrFromStrings([]string{spec.name})
	}
	if err == nil {
		t.envv, err = syscall.SlicePtrFromStrings(os.Environ())
	}
	if err != nil {
		return launchFailed(stageArgs, unix.EINVAL, err.Error())
	}
	stage, errno := t.run()
	return launchFailed(stage, errno, "")
}

// launchFailed reports a failed launch on the status pipe and on stderr
// (the tenant's error log) and returns the command's exit status. It does
// not allocate: the address-space limit may already be in force.
func launchFailed(stage byte, errno unix.Errno, detail string) int {
	rec := [statusLen]byte{'L', stage, byte(errno), byte(errno >> 8), byte(errno >> 16), byte(errno >> 24)}
	unix.RawSyscall(unix.SYS_WRITE, launchStatusFD, uintptr(unsafe.Pointer(&rec[0])), statusLen)
	var buf [256]byte
	msg := append(buf[:0], "massvhost cgi-launch: "...)
	msg = append(msg, stageNames[stage]...)
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

// launchTail holds everything the last, raw part of a launch needs, prepared
// in advance so that run allocates nothing.
type launchTail struct {
	switchID   bool
	uid, gid   uintptr
	hasNproc   bool
	nproc      unix.Rlimit
	limits     []tailLimit
	dev, ino   uint64
	name, path *byte
	argv, envv []*byte

	// scratch space for the system calls' results
	st       unix.Stat_t
	ids      [3]uint32
	sigZero  [8]uint64 // a kernel sigaction of all zeros is SIG_DFL
	maskZero uint64
}

type tailLimit struct {
	resource int
	lim      unix.Rlimit
}

func raw(trap, a1, a2, a3 uintptr) unix.Errno {
	_, _, e := unix.RawSyscall(trap, a1, a2, a3)
	return e
}

func raw6(trap, a1, a2, a3, a4, a5, a6 uintptr) unix.Errno {
	_, _, e := unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	return e
}

// run performs the launch from the limits on. It returns only on failure.
func (t *launchTail) run() (byte, unix.Errno) {
	if t.hasNproc {
		if e := raw6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NPROC, uintptr(unsafe.Pointer(&t.nproc)), 0, 0, 0); e != 0 {
			return stageLimits, e
		}
	}
	if t.switchID {
		if e := raw(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return stageIdentity, e
		}
		if e := raw(unix.SYS_SETRESGID, t.gid, t.gid, t.gid); e != 0 {
			return stageIdentity, e
		}
		if e := raw(unix.SYS_SETRESUID, t.uid, t.uid, t.uid); e != 0 {
			return stageIdentity, e
		}
		if !t.identityHeld() {
			return stageIdentity, unix.EPERM
		}
	}
	if e := raw(unix.SYS_FCHDIR, launchDirFD, 0, 0); e != 0 {
		return stageDir, e
	}
	if e := raw6(sysFstatat, launchDirFD, uintptr(unsafe.Pointer(t.name)), uintptr(unsafe.Pointer(&t.st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0); e != 0 {
		return stageScript, e
	}
	if t.st.Mode&unix.S_IFMT != unix.S_IFREG || t.st.Dev != t.dev || t.st.Ino != t.ino {
		return stageScript, unix.ESTALE
	}
	raw(unix.SYS_UMASK, 0o22, 0, 0)
	if e := raw(unix.SYS_CLOSE_RANGE, 3, ^uintptr(0), unix.CLOSE_RANGE_CLOEXEC); e != 0 {
		// Kernels before 5.11: mark them one by one.
		for fd := uintptr(3); fd < 1<<16; fd++ {
			raw(unix.SYS_FCNTL, fd, unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
	for sig := uintptr(1); sig <= 64; sig++ {
		if sig != uintptr(unix.SIGKILL) && sig != uintptr(unix.SIGSTOP) {
			raw6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&t.sigZero[0])), 0, 8, 0, 0)
		}
	}
	raw6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&t.maskZero)), 0, 8, 0, 0)
	for i := range t.limits {
		l := &t.limits[i]
		if e := raw6(unix.SYS_PRLIMIT64, 0, uintptr(l.resource), uintptr(unsafe.Pointer(&l.lim)), 0, 0, 0); e != 0 {
			return stageLimits, e
		}
	}
	e := raw(unix.SYS_EXECVE, uintptr(unsafe.Pointer(t.path)), uintptr(unsafe.Pointer(&t.argv[0])), uintptr(unsafe.Pointer(&t.envv[0])))
	return stageExec, e
}

// identityHeld reports whether this thread now has exactly the tenant's
// real, effective and saved ids, no supplementary groups, and cannot get
// uid 0 back.
func (t *launchTail) identityHeld() bool {
	p := func(i int) uintptr { return uintptr(unsafe.Pointer(&t.ids[i])) }
	if raw(unix.SYS_GETRESUID, p(0), p(1), p(2)) != 0 ||
		uintptr(t.ids[0]) != t.uid || uintptr(t.ids[1]) != t.uid || uintptr(t.ids[2]) != t.uid {
		return false
	}
	if raw(unix.SYS_GETRESGID, p(0), p(1), p(2)) != 0 ||
		uintptr(t.ids[0]) != t.gid || uintptr(t.ids[1]) != t.gid || uintptr(t.ids[2]) != t.gid {
		return false
	}
	if n, _, e := unix.RawSyscall(unix.SYS_GETGROUPS, 0, 0, 0); e != 0 || n != 0 {
		return false
	}
	return raw(unix.SYS_SETRESUID, 0, 0, 0) != 0
}
