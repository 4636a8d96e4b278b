package cgi

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// childEnv selects a misbehaving-child mode when the test binary is re-run
// as a CGI script (the stdlib cgi host_test.go trick): real processes, no
// interpreter in between.
const childEnv = "CGITEST_CHILD"

// childBinary is a copy of the test binary that tenant uids may execute.
var childBinary string

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == LaunchCommand {
		os.Exit(Launch(os.Args[2:]))
	}
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runTestChild(mode))
	}
	dir, err := copyTestBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgi test setup:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := checkNoStrays(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: stray processes after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// copyTestBinary copies the running test binary where any uid can run it.
func copyTestBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "cgitest-bin-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return dir, err
	}
	src, err := os.Open(self)
	if err != nil {
		return dir, err
	}
	defer src.Close()
	childBinary = filepath.Join(dir, "cgichild")
	dst, err := os.OpenFile(childBinary, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return dir, err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return dir, err
	}
	return dir, dst.Close()
}

// checkNoStrays reports children of the test process (zombies included) and
// live processes of the test tenants' uids. A process SIGKILLed a moment
// ago may still be on its way out, so it looks for up to two seconds.
func checkNoStrays() error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		var strays []string
		for _, p := range listProcs() {
			if p.ppid == os.Getpid() || p.uid >= firstTestUID && p.uid < nextUID.Load() && p.state != 'Z' {
				strays = append(strays, p.String())
			}
		}
		if len(strays) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s", strings.Join(strays, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runTestChild is the CGI script behaviour of the re-run test binary.
func runTestChild(mode string) int {
	// Probe descriptors first, before anything here opens one.
	var fds []string
	for fd := 0; fd < 1024; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			fds = append(fds, fmt.Sprint(fd))
			if fd > 2 {
				target, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
				fmt.Fprintf(os.Stderr, "fd %d is %s\n", fd, target)
			}
		}
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	switch mode {
	case "whoami":
		fmt.Fprint(out, "Content-Type: text/plain\r\n\r\n")
		fmt.Fprintf(out, "fds=%s\n", strings.Join(fds, ","))
		groups, _ := unix.Getgroups()
		fmt.Fprintf(out, "uid=%d euid=%d gid=%d egid=%d groups=%v\n",
			unix.Getuid(), unix.Geteuid(), unix.Getgid(), unix.Getegid(), groups)
		status, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(status), "\n") {
			for _, k := range []string{"CapEff", "CapPrm", "CapInh", "CapBnd", "SigIgn", "SigBlk", "NoNewPrivs"} {
				if v, ok := strings.CutPrefix(line, k+":"); ok {
					fmt.Fprintf(out, "%s=%s\n", k, strings.TrimSpace(v))
				}
			}
		}
		if adj, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
			fmt.Fprintf(out, "oom_score_adj=%s\n", strings.TrimSpace(string(adj)))
		}
		umask := unix.Umask(0)
		fmt.Fprintf(out, "umask=%03o\n", umask)
		cwd, _ := os.Getwd()
		fmt.Fprintf(out, "cwd=%s\n", cwd)
		fmt.Fprintf(out, "pgid=%d sid=%d pid=%d\n", unix.Getpgrp(), mustSid(), os.Getpid())
		for _, l := range []struct {
			name string
			res  int
		}{{"cpu", unix.RLIMIT_CPU}, {"as", unix.RLIMIT_AS}, {"nproc", unix.RLIMIT_NPROC},
			{"nofile", unix.RLIMIT_NOFILE}, {"fsize", unix.RLIMIT_FSIZE}, {"core", unix.RLIMIT_CORE}} {
			var lim unix.Rlimit
			unix.Getrlimit(l.res, &lim)
			fmt.Fprintf(out, "rlimit_%s=%d\n", l.name, lim.Max)
		}
	case "flood":
		fmt.Fprint(out, "Content-Type: text/plain\r\n")
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(out, "X-Flood-%d: %s\r\n", i, strings.Repeat("y", 64)); err != nil {
				return 0
			}
		}
	case "longline":
		fmt.Fprintf(out, "Content-Type: text/plain\r\nX-Long: %s\r\n\r\nbody", strings.Repeat("z", 10000))
	case "crash":
		fmt.Fprint(out, "Content-Type: te")
		out.Flush()
		syscall.Kill(os.Getpid(), syscall.SIGSEGV)
		return 2
	case "partial":
		// Headers and some body, then hang with a grandchild, both
		// ignoring SIGTERM.
		signal.Ignore(syscall.SIGTERM)
		fmt.Fprint(out, "Content-Type: text/plain\r\n\r\nfirst chunk\n")
		out.Flush()
		startGrandchild(nil)
		fmt.Fprintf(os.Stderr, "pgid=%d\n", unix.Getpgrp())
		select {}
	case "bg":
		// A complete response, then exit, leaving a grandchild that holds
		// stdout open.
		fmt.Fprint(out, "Content-Type: text/plain\r\n\r\nbackground\n")
		out.Flush()
		startGrandchild(os.Stdout)
		fmt.Fprintf(os.Stderr, "pgid=%d\n", unix.Getpgrp())
		return 0
	case "escape":
		// Like bg, but the grandchild leaves the process group (setsid).
		fmt.Fprint(out, "Content-Type: text/plain\r\n\r\nescaped\n")
		out.Flush()
		cmd := exec.Command("/bin/sleep", "600")
		cmd.Stdout = os.Stdout
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "escaped=%d\n", cmd.Process.Pid)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", childEnv, mode)
		return 1
	}
	return 0
}

func mustSid() int {
	sid, _ := unix.Getsid(0)
	return sid
}

// startGrandchild starts a sleep in our process group. Signals this
// process ignores stay ignored in it.
func startGrandchild(stdout *os.File) {
	cmd := exec.Command("/bin/sleep", "600")
	cmd.Stdout = stdout
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
