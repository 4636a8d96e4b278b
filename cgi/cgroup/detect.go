package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Version is the cgroup interface a [Layout] uses.
type Version int

const (
	V1 Version = 1 // one hierarchy per controller (cpu, pids, freezer)
	V2 Version = 2 // the unified hierarchy
)

// Layout is where the server's own cgroups are: for V2, one directory in
// the unified hierarchy; for V1, one directory per controller that is
// mounted (CPU always, Pids and Freezer when their hierarchies exist).
// Directories are absolute paths in this mount namespace.
type Layout struct {
	Version Version
	// Unified is the server's own cgroup in the cgroup2 hierarchy (V2), or
	// "" when no cgroup2 is mounted where this process can reach it.
	Unified string
	// CPU, Pids and Freezer are the server's own cgroups in the v1
	// hierarchies of those controllers; "" when not mounted.
	CPU, Pids, Freezer string
	// CPUAcct is the server's own cgroup in the v1 cpuacct hierarchy
	// (where a tenant's CPU time is read), the same directory as CPU when
	// the two controllers share a mount, as they usually do.
	CPUAcct string
	// Memory is the server's own cgroup in the v1 memory hierarchy.
	Memory string
}

// mount is one cgroup or cgroup2 line of /proc/self/mountinfo.
type mount struct {
	root, point string
	v2          bool
	controllers []string // v1 only: cpu, cpuacct, pids, ...
}

// parseMountinfo returns the cgroup mounts listed in a mountinfo file
// (proc(5)): "ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE
// SOURCE SUPEROPTS".
func parseMountinfo(data []byte) ([]mount, error) {
	var ms []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			return nil, fmt.Errorf("cgroup: malformed mountinfo line %q", sc.Text())
		}
		m := mount{root: unescapeMount(f[3]), point: unescapeMount(f[4])}
		switch g[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			for opt := range strings.SplitSeq(g[2], ",") {
				if controllerNames[opt] {
					m.controllers = append(m.controllers, opt)
				}
			}
		default:
			continue
		}
		ms = append(ms, m)
	}
	return ms, sc.Err()
}

// controllerNames are the v1 super options that name a controller (others
// are flags such as rw or name=systemd).
var controllerNames = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "pids": true,
	"freezer": true, "devices": true, "blkio": true, "net_cls": true,
	"net_prio": true, "perf_event": true, "hugetlb": true, "rdma": true, "misc": true,
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// membership is one line of /proc/self/cgroup: "ID:CONTROLLERS:PATH".
type membership struct {
	v2          bool // the "0::PATH" line
	controllers []string
	path        string
}

func parseProcCgroup(data []byte) ([]membership, error) {
	var ms []membership
	for line := range strings.SplitSeq(strings.TrimRight(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		id, rest, ok1 := strings.Cut(line, ":")
		ctl, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("cgroup: malformed /proc/self/cgroup line %q", line)
		}
		m := membership{path: p}
		if id == "0" && ctl == "" {
			m.v2 = true
		} else {
			m.controllers = strings.Split(ctl, ",")
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// errNoCgroups is returned by locate when no hierarchy this package can
// use is reachable.
var errNoCgroups = errors.New("no cgroup2 mount and no cgroup v1 cpu hierarchy")

// locate finds the server's own cgroup in each hierarchy, from the
// contents of /proc/self/mountinfo and /proc/self/cgroup. The Version of
// the result is left zero: which interface to use depends on the
// controllers the unified hierarchy offers, which only the file system can
// tell ([detect]). A hierarchy whose mount does not contain the process's
// cgroup (a container that sees only a subtree) is skipped.
func locate(mountinfo, selfCgroup []byte) (Layout, error) {
	mounts, err := parseMountinfo(mountinfo)
	if err != nil {
		return Layout{}, err
	}
	members, err := parseProcCgroup(selfCgroup)
	if err != nil {
		return Layout{}, err
	}
	var l Layout
	for _, mb := range members {
		for _, mt := range mounts {
			if mt.v2 != mb.v2 || !mb.v2 && !sameSet(mt.controllers, mb.controllers) {
				continue
			}
			dir, ok := within(mt, mb.path)
			if !ok {
				continue
			}
			switch {
			case mb.v2:
				if l.Unified == "" {
					l.Unified = dir
				}
			default:
				for _, c := range mb.controllers {
					switch {
					case c == "cpu" && l.CPU == "":
						l.CPU = dir
					case c == "pids" && l.Pids == "":
						l.Pids = dir
					case c == "freezer" && l.Freezer == "":
						l.Freezer = dir
					case c == "cpuacct" && l.CPUAcct == "":
						l.CPUAcct = dir
					case c == "memory" && l.Memory == "":
						l.Memory = dir
					}
				}
			}
			break
		}
	}
	if l.Unified == "" && l.CPU == "" {
		return l, errNoCgroups
	}
	return l, nil
}

// within returns the directory of cgroup p under mount m, and false when
// the mount does not contain p.
func within(m mount, p string) (string, bool) {
	rel := p
	if m.root != "/" {
		if p != m.root && !strings.HasPrefix(p, m.root+"/") {
			return "", false
		}
		rel = strings.TrimPrefix(p, m.root)
	}
	return path.Join(m.point, rel), true
}

// sameSet reports whether a and b hold the same names.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}
