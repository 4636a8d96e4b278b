package launch

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// tail holds everything the last, raw part of a launch needs, prepared
// in advance so that run allocates nothing.
type tail struct {
	switchID   bool
	noNewPrivs bool
	dropBset   bool // empty the capability bounding set (needs CAP_SETPCAP: before the uid change)
	uid, gid   uintptr
	hasNproc   bool
	nproc      unix.Rlimit
	limits     []tailLimit
	dev, ino   uint64
	name, path *byte
	oomPath    *byte // /proc/self/oom_score_adj
	argv, envv []*byte

	// scratch space for the system calls' results
	st       unix.Stat_t
	ids      [3]uint32
	capHdr   unix.CapUserHeader
	caps     [2]unix.CapUserData
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
func (t *tail) run() (Stage, unix.Errno) {
	if t.hasNproc {
		if e := raw6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NPROC, uintptr(unsafe.Pointer(&t.nproc)), 0, 0, 0); e != 0 {
			return StageLimits, e
		}
	}
	// Under global memory pressure the kernel's OOM killer should take a
	// tenant's script before the server or a system service: scripts run
	// with oom_score_adj ScriptOOMScoreAdj, whatever the server's (as root;
	// a server without root can only raise it). Before the identity
	// switch, which makes the
	// process undumpable and its /proc files root's. Best effort: without
	// /proc it stays as is.
	atFDCWD := unix.AT_FDCWD // a variable: the constant is negative
	if fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(t.oomPath)), unix.O_WRONLY|unix.O_CLOEXEC, 0, 0, 0); e == 0 {
		raw(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&scriptOOMScoreAdj[0])), uintptr(len(scriptOOMScoreAdj)))
		raw(unix.SYS_CLOSE, fd, 0, 0)
	}
	if t.dropBset {
		// Every capability the kernel knows: PR_CAPBSET_DROP answers
		// EINVAL past the last one.
		for c := uintptr(0); c < 64; c++ {
			e := raw6(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0, 0, 0, 0)
			if e == unix.EINVAL && c > 0 {
				break
			}
			if e != 0 {
				return StageIdentity, e
			}
		}
	}
	if t.switchID {
		if e := raw(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return StageIdentity, e
		}
		if e := raw(unix.SYS_SETRESGID, t.gid, t.gid, t.gid); e != 0 {
			return StageIdentity, e
		}
		if e := raw(unix.SYS_SETRESUID, t.uid, t.uid, t.uid); e != 0 {
			return StageIdentity, e
		}
		if !t.identityHeld() {
			return StageIdentity, unix.EPERM
		}
	}
	if t.noNewPrivs {
		if e := raw6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); e != 0 {
			return StageIdentity, e
		}
	}
	if e := raw(unix.SYS_FCHDIR, DirFD, 0, 0); e != 0 {
		return StageDir, e
	}
	if e := raw6(sysFstatat, DirFD, uintptr(unsafe.Pointer(t.name)), uintptr(unsafe.Pointer(&t.st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0); e != 0 {
		return StageScript, e
	}
	if t.st.Mode&unix.S_IFMT != unix.S_IFREG || t.st.Dev != t.dev || t.st.Ino != t.ino {
		return StageScript, unix.ESTALE
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
			return StageLimits, e
		}
	}
	e := raw(unix.SYS_EXECVE, uintptr(unsafe.Pointer(t.path)), uintptr(unsafe.Pointer(&t.argv[0])), uintptr(unsafe.Pointer(&t.envv[0])))
	return StageExec, e
}

// identityHeld clears the inheritable capabilities and reports whether this
// thread now has exactly the tenant's real, effective and saved ids, no
// supplementary groups and no capabilities at all (securebits such as
// keep-caps could preserve them across the uid change), and cannot get uid
// 0 back.
func (t *tail) identityHeld() bool {
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
	// Inheritable capabilities survive a uid change; drop them all (only
	// lowering, which is always allowed), then verify.
	t.capHdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	t.caps = [2]unix.CapUserData{}
	if raw(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&t.capHdr)), uintptr(unsafe.Pointer(&t.caps[0])), 0) != 0 {
		return false
	}
	if raw(unix.SYS_CAPGET, uintptr(unsafe.Pointer(&t.capHdr)), uintptr(unsafe.Pointer(&t.caps[0])), 0) != 0 {
		return false
	}
	for _, c := range t.caps {
		if c.Effective|c.Permitted|c.Inheritable != 0 {
			return false
		}
	}
	if t.dropBset {
		for c := uintptr(0); c < 64; c++ {
			r, _, e := unix.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAPBSET_READ, c, 0, 0, 0, 0)
			if e == unix.EINVAL && c > 0 {
				break
			}
			if e != 0 || r != 0 {
				return false
			}
		}
	}
	return raw(unix.SYS_SETRESUID, 0, 0, 0) != 0
}
