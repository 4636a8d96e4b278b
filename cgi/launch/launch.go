// Package launch is the CGI launcher: the small program that sits between
// the server and every CGI script, as Apache's suexec does, and sets the
// script's identity and resource limits before the script's first
// instruction. The cgi package starts it (by default the massvhost binary
// re-executed as "massvhost cgi-launch") with a [Spec] encoded by
// [Spec.Args]; [Main] is the launcher's side.
//
// It is a package of its own so that a launcher binary can be built from it
// alone: the launcher's cost is mostly the Go runtime and package
// initialization of the binary it runs in, and this package imports nothing
// beyond the standard library's basics and golang.org/x/sys/unix.
//
// # Contract
//
// Arguments (after the Command word):
//
//	[-uid=U -gid=G] [-memcg=DIR] [-no-new-privs=1] [-keep-bset=1] [-nproc=N]
//	[-cpu=SECONDS] [-as=BYTES] [-nofile=N] [-fsize=BYTES] -file=DEV:INO
//	-- NAME
//
// The server creates the launcher inside its tenant's cgroups (package
// massvhost/cgi/cgroup, Slot.Spawn), but for one: -memcg names the
// tenant's cgroup v1 memory directory (absolute and clean), which the
// launcher joins first, while still the server's user, by writing "0" to
// DIR/cgroup.procs. A server thread must not sit in a tenant's v1 memory
// cgroup even for the time of a fork: the cgroup's OOM killer considers
// every task in it and would weigh the server's whole address space.
// -no-new-privs=1 sets PR_SET_NO_NEW_PRIVS before the exec. With an
// identity switch the capability bounding set is emptied before the uid
// changes, unless -keep-bset=1.
//
// Descriptors and environment:
//
//	fd 0, 1, 2  the script's stdin, stdout, stderr
//	fd 3        StatusFD, write end of a pipe: on failure one record
//	            (see ReadStatus); closed by a successful exec, so EOF
//	            without a record means the script runs
//	fd 4        DirFD, the script's directory (an O_PATH descriptor is enough)
//	environ     the script's environment, passed on unchanged
package launch

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Command is the subcommand word that selects the launcher: argv[1].
const Command = "cgi-launch"

// Descriptors the launcher receives besides stdin, stdout and stderr.
const (
	StatusFD = 3 // write end of the status pipe
	DirFD    = 4 // the script's directory
)

// ScriptOOMScoreAdj is the oom_score_adj every script runs with: above
// the server's and a system service's usual 0, so that under global
// memory pressure the kernel's OOM killer takes a tenant's script first.
const ScriptOOMScoreAdj = 500

// scriptOOMScoreAdj is ScriptOOMScoreAdj as written to oom_score_adj.
var scriptOOMScoreAdj = []byte(strconv.Itoa(ScriptOOMScoreAdj))

// Stage is the step at which a launch failed.
type Stage byte

// Stages, in the order Main runs them (but for StageCgroup, which runs
// first). Their numbers are the status record's.
const (
	StageArgs     Stage = 1 + iota // bad arguments or caller
	StageLimits                    // setrlimit
	StageIdentity                  // setgroups/setresgid/setresuid, capabilities, or their verification
	StageDir                       // fchdir to the script's directory
	StageScript                    // the script is missing, or not the file that was checked (ESTALE)
	StageExec                      // execve
	// StageCgroup: joining the -memcg cgroup (write to DIR/cgroup.procs).
	StageCgroup
)

var stageNames = [...]string{
	StageArgs: "arguments", StageLimits: "setrlimit", StageIdentity: "identity",
	StageDir: "chdir", StageScript: "script check", StageExec: "exec",
	StageCgroup: "cgroup",
}

func (s Stage) String() string {
	if int(s) < len(stageNames) && stageNames[s] != "" {
		return stageNames[s]
	}
	return "stage " + strconv.Itoa(int(s))
}

// Failure is a failed launch as reported on the status pipe.
type Failure struct {
	Stage Stage
	Errno syscall.Errno
}

func (f *Failure) Error() string { return "cgi launcher: " + f.Stage.String() + ": " + f.Errno.Error() }

// recordLen is the size of a failure record: 'L', the stage, and the errno
// as a little-endian uint32.
const recordLen = 6

// ReadStatus reads the launcher's status pipe until EOF. It returns nil, nil
// once the script runs (the pipe closed without a record), a *Failure for a
// failed launch, or the error that stopped the read (a deadline, say).
func ReadStatus(r io.Reader) (*Failure, error) {
	var rec [recordLen]byte
	n, err := io.ReadFull(r, rec[:])
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		return nil, err
	case rec[0] != 'L':
		return nil, errors.New("cgi launcher: bad status record")
	}
	errno := uint32(rec[2]) | uint32(rec[3])<<8 | uint32(rec[4])<<16 | uint32(rec[5])<<24
	return &Failure{Stage: Stage(rec[1]), Errno: syscall.Errno(errno)}, nil
}

// Spec is one launch. Args and Parse are the two sides of the argv
// contract.
type Spec struct {
	UID, GID int // the tenant identity; -1 keeps the caller's (only without root)
	Limits   []Limit
	Dev, Ino uint64 // device and inode of the script that was checked
	Name     string // the script's file name in its directory
	// NoNewPrivs sets PR_SET_NO_NEW_PRIVS before the exec, so that setuid
	// and setgid files (and file capabilities) give the script nothing.
	NoNewPrivs bool
	// KeepBoundingSet leaves the capability bounding set as it is. By
	// default a launch that switches identity empties it (PR_CAPBSET_DROP
	// of every capability, while still root), so that a setuid-root or
	// file-capability program the script runs gets no capability: at most
	// uid 0 without privileges, rather than root.
	KeepBoundingSet bool
	// MemoryCgroup is the tenant's cgroup v1 memory directory, which the
	// launcher joins before anything else; "" for none.
	MemoryCgroup string
}

// Limit is one resource limit, set as both soft and hard limit.
type Limit struct {
	Resource int // unix.RLIMIT_NPROC, _CPU (seconds), _AS, _NOFILE or _FSIZE
	Value    uint64
}

// limitFlags name the limits Spec carries on the command line.
var limitFlags = []struct {
	flag     string
	resource int
}{
	{"nproc", unix.RLIMIT_NPROC},
	{"cpu", unix.RLIMIT_CPU},
	{"as", unix.RLIMIT_AS},
	{"nofile", unix.RLIMIT_NOFILE},
	{"fsize", unix.RLIMIT_FSIZE},
}

// Args encodes s as the launcher's arguments after the Command word.
func (s *Spec) Args() []string {
	a := make([]string, 0, 12)
	if s.UID >= 0 {
		a = append(a, "-uid="+strconv.Itoa(s.UID), "-gid="+strconv.Itoa(s.GID))
	}
	if s.MemoryCgroup != "" {
		a = append(a, "-memcg="+s.MemoryCgroup)
	}
	if s.NoNewPrivs {
		a = append(a, "-no-new-privs=1")
	}
	if s.KeepBoundingSet {
		a = append(a, "-keep-bset=1")
	}
	for _, l := range s.Limits {
		for _, f := range limitFlags {
			if f.resource == l.Resource {
				a = append(a, "-"+f.flag+"="+strconv.FormatUint(l.Value, 10))
			}
		}
	}
	return append(a, fmt.Sprintf("-file=%d:%d", s.Dev, s.Ino), "--", s.Name)
}

// Parse is the strict inverse of Args: every flag is -name=value, known,
// and given at most once; uid and gid go together and are not 0; exactly
// one plain file name follows "--".
func Parse(args []string) (*Spec, error) {
	s := &Spec{UID: -1, GID: -1}
	seen := map[string]bool{}
	for i, a := range args {
		if a == "--" {
			rest := args[i+1:]
			switch {
			case len(rest) != 1 || !validName(rest[0]):
				return nil, errors.New("want exactly one script file name after --")
			case !seen["file"]:
				return nil, errors.New("missing -file")
			case seen["uid"] != seen["gid"]:
				return nil, errors.New("-uid and -gid go together")
			}
			s.Name = rest[0]
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
				s.UID = int(n)
			} else {
				s.GID = int(n)
			}
		case "file":
			dev, ino, ok := strings.Cut(v, ":")
			d, err1 := strconv.ParseUint(dev, 10, 64)
			i, err2 := strconv.ParseUint(ino, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("bad file identity %q", v)
			}
			s.Dev, s.Ino = d, i
		case "memcg":
			if len(v) < 2 || v[0] != '/' || path.Clean(v) != v || strings.ContainsRune(v, 0) {
				return nil, fmt.Errorf("bad cgroup directory %q", v)
			}
			s.MemoryCgroup = v
		case "no-new-privs", "keep-bset":
			if v != "1" {
				return nil, fmt.Errorf("bad argument %q", a)
			}
			if k == "no-new-privs" {
				s.NoNewPrivs = true
			} else {
				s.KeepBoundingSet = true
			}
		default:
			res := -1
			for _, f := range limitFlags {
				if f.flag == k {
					res = f.resource
				}
			}
			if res < 0 || err != nil {
				return nil, fmt.Errorf("bad argument %q", a)
			}
			s.Limits = append(s.Limits, Limit{Resource: res, Value: n})
		}
	}
	return nil, errors.New("missing -- and script name")
}

// validName reports whether name is one plain directory entry.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}
