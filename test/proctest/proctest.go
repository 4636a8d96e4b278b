// Package proctest runs the massvhost binary for black-box tests and reads
// what Linux's /proc says about it and about tenant processes: open file
// descriptors, resident memory, threads, the processes of a uid. It serves
// the abuse and soak suites, which watch resources rather than responses.
//
// Every process it starts is killed by PID when the test ends (and by the
// kernel if the test binary dies first). Product code never imports it.
package proctest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles massvhost into a new temporary directory, readable by
// every uid (tenant scripts are launched from it), and returns the binary's
// path and a function removing the directory. It is meant for TestMain.
func Build() (binary string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "massvhost-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	if err := os.Chmod(dir, 0o755); err != nil {
		cleanup()
		return "", nil, err
	}
	binary = filepath.Join(dir, "massvhost")
	build := exec.Command("go", "build", "-o", binary, "massvhost/cmd/massvhost")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building massvhost: %w", err)
	}
	return binary, cleanup, nil
}

// Main is the body of a suite's TestMain: it builds the binary (and, with
// withLauncher, massvhost-cgi-launch beside it, as a deployment has them),
// stores its path in *binary, runs the tests, removes the build and exits
// with the tests' status. suite prefixes a build error.
func Main(m *testing.M, suite string, binary *string, withLauncher bool) {
	bin, cleanup, err := Build()
	if err == nil && withLauncher {
		err = InstallLauncher(bin)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, suite+":", err)
		if cleanup != nil {
			cleanup()
		}
		os.Exit(1)
	}
	*binary = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// InstallLauncher builds massvhost-cgi-launch beside binary (a path from
// [Build]), as `go install ./cmd/...` installs the two, so that a server
// started from binary runs scripts through the small launcher, as a
// deployed one does, instead of re-executing itself.
func InstallLauncher(binary string) error {
	build := exec.Command("go", "build", "-o", filepath.Join(filepath.Dir(binary), "massvhost-cgi-launch"), "massvhost/cmd/massvhost-cgi-launch")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building massvhost-cgi-launch: %w", err)
	}
	return nil
}

// Server is a running `massvhost serve`.
type Server struct {
	tb         testing.TB
	cmd        *exec.Cmd
	ConfigPath string
	// Addresses from the server's listening line ("" when disabled).
	HTTPAddr, HTTPSAddr, AdminAddr string

	logMu  sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
}

var listeningRE = regexp.MustCompile(`massvhost: listening http=(\S*) https=(\S*) admin=(\S*)`)

// Start writes cfg to configPath, runs `binary serve --config configPath`
// and waits for its listening line. The process is killed when the test
// ends; if the test failed, the tail of its output is logged.
func Start(tb testing.TB, binary, configPath, cfg string) *Server {
	tb.Helper()
	if err := os.WriteFile(configPath, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	s := &Server{tb: tb, ConfigPath: configPath, exited: make(chan struct{})}
	s.cmd = exec.Command(binary, "serve", "--config", configPath)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	s.cmd.Stderr = writerFunc(s.appendLog)
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			s.appendLog([]byte(line + "\n"))
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case ready <- m[1:]:
				default:
				}
			}
		}
	}()
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	tb.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
		if tb.Failed() {
			out := s.Output()
			if len(out) > 20000 {
				out = "…" + out[len(out)-20000:]
			}
			tb.Logf("massvhost output:\n%s", out)
		}
	})
	select {
	case a := <-ready:
		s.HTTPAddr, s.HTTPSAddr, s.AdminAddr = a[0], a[1], a[2]
	case <-s.exited:
		tb.Fatalf("massvhost exited before listening:\n%s", s.Output())
	case <-time.After(60 * time.Second):
		tb.Fatalf("massvhost did not report its listeners\n%s", s.Output())
	}
	return s
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (s *Server) appendLog(b []byte) (int, error) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.Write(b)
}

// Output returns everything the server printed so far.
func (s *Server) Output() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// PID is the server's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Alive reports whether the server process is still running.
func (s *Server) Alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Reload rewrites the configuration file and sends SIGHUP.
func (s *Server) Reload(cfg string) {
	s.tb.Helper()
	if err := os.WriteFile(s.ConfigPath, []byte(cfg), 0o644); err != nil {
		s.tb.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		s.tb.Fatal(err)
	}
}

// Stats reads the server's /proc entries; it fails the test if the
// process is gone.
func (s *Server) Stats() Stats {
	s.tb.Helper()
	st, err := ReadStats(s.PID())
	if err != nil {
		s.tb.Fatalf("reading /proc of the server: %v", err)
	}
	return st
}

// Metric returns the value of an unlabelled metric from the admin
// listener's /metrics, or -1 if it is absent or cannot be read.
func (s *Server) Metric(name string) float64 {
	resp, err := http.Get("http://" + s.AdminAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// Stats is what /proc tells about a process.
type Stats struct {
	FDs     int   // open file descriptors
	RSS     int64 // resident set, bytes
	Threads int
}

// ReadStats reads /proc/pid.
func ReadStats(pid int) (Stats, error) {
	var s Stats
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.FDs = len(ents)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			s.RSS = kb << 10
		case "Threads:":
			s.Threads, _ = strconv.Atoi(f[1])
		}
	}
	return s, nil
}

// UIDProcs lists the processes whose real uid is uid; none for uid < 0.
func UIDProcs(uid int) []int {
	if uid < 0 {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var pids []int
	want := strconv.Itoa(uid)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 && f[0] == want {
					pids = append(pids, pid)
				}
				break
			}
		}
	}
	return pids
}

// KillUID sends SIGKILL to every process of uid until none is left (or a
// second has passed): a safety net so that one failed test does not leave
// tenant processes to the next.
func KillUID(uid int) {
	for range 50 {
		pids := UIDProcs(uid)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Eventually polls cond until it holds or within passes, and reports
// whether it held; for state that changes asynchronously, not for timing.
func Eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
	return true
}

// MakeReachable opens dir and its parents up to the system temp directory
// to every uid (mode 0755), so tenant uids can reach trees built inside a
// test's temporary directory.
func MakeReachable(tb testing.TB, dir string) {
	tb.Helper()
	for d := dir; d != "/" && d != os.TempDir() && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
}

var _ io.Writer = writerFunc(nil)
