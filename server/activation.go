package server

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// SystemdPrefix starts a listen address that names a socket passed in by
// systemd socket activation: "systemd:https" is the socket whose
// FileDescriptorName= is "https" in the .socket unit. systemd keeps the
// listening socket open while the service restarts, so a binary upgrade or
// a crash refuses no connection: they wait in the socket's backlog until
// the new process accepts them.
const SystemdPrefix = "systemd:"

// inherited are the sockets passed by systemd, by name, until Listen
// takes them. The environment is read and the descriptors are marked
// close-on-exec in init, before any CGI script can be started, so they
// never leak into a child.
var inherited struct {
	mu     sync.Mutex
	byName map[string]*os.File
}

func init() {
	inherited.byName = parseListenFDs(os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"), os.Getpid())
	if inherited.byName != nil {
		// sd_listen_fds(3) with unset_environment: children must not
		// take the sockets for theirs.
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}
}

// listenFDsStart is SD_LISTEN_FDS_START: passed sockets are descriptors
// 3, 4, ….
const listenFDsStart = 3

// parseListenFDs returns the passed descriptors by name, per the protocol
// of sd_listen_fds(3): LISTEN_PID must be this process, LISTEN_FDS counts
// the descriptors from 3, LISTEN_FDNAMES names them, colon-separated
// (systemd names unnamed ones "unknown"). It returns nil when nothing was
// passed to this process.
func parseListenFDs(pid, fds, names string, self int) map[string]*os.File {
	if pid != strconv.Itoa(self) {
		return nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n <= 0 || n > 1024 {
		return nil
	}
	nameList := strings.Split(names, ":")
	out := make(map[string]*os.File, n)
	for i := range n {
		fd := listenFDsStart + i
		syscall.CloseOnExec(fd)
		name := "unknown"
		if i < len(nameList) && nameList[i] != "" {
			name = nameList[i]
		}
		if _, dup := out[name]; dup {
			name += "#" + strconv.Itoa(i)
		}
		out[name] = os.NewFile(uintptr(fd), "systemd:"+name)
	}
	return out
}

// Listen returns a TCP listener for addr: bound now for host:port, or,
// for SystemdPrefix+name, the socket systemd passed under that name. An
// inherited socket can be taken once; a second Listen of the same name
// (after a reload moved the port away and back) fails and names it.
func Listen(addr string) (net.Listener, error) {
	name, ok := strings.CutPrefix(addr, SystemdPrefix)
	if !ok {
		return net.Listen("tcp", addr)
	}
	inherited.mu.Lock()
	f := inherited.byName[name]
	delete(inherited.byName, name)
	inherited.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("no socket named %q was passed by systemd (LISTEN_FDNAMES), or it was already used", name)
	}
	defer f.Close() // FileListener has its own, close-on-exec duplicate
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("systemd socket %q: %w", name, err)
	}
	if _, ok := ln.(*net.TCPListener); !ok {
		ln.Close()
		return nil, fmt.Errorf("systemd socket %q is not a TCP listening socket", name)
	}
	return ln, nil
}
