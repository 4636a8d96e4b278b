// Package redistest runs real redis-server processes for tests: a standalone
// server on a free loopback port, or a small Redis Cluster of masters. Every
// process is stopped by PID in tb.Cleanup, and each server keeps its files in
// tb.TempDir(). Servers never persist data (no RDB, no AOF) and never use the
// default port 6379, so tests cannot touch a developer's Redis.
//
// When redis-server is not installed the test is skipped, unless the CI
// environment variable is set: there a missing server is a failure, so a
// broken CI image cannot turn the Redis tests green by skipping them.
//
// Product code never imports this package.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a freshly started server may take to answer
// PING before the attempt counts as failed.
const startTimeout = 15 * time.Second

// bindAttempts is how many fresh ports are tried when a server fails to start
// (another process may grab a port between our probe and redis' bind).
const bindAttempts = 5

// Server is one redis-server process on a loopback port. Its methods are safe
// for concurrent use. Kill, Restart and Pause exist for fault-injection tests.
type Server struct {
	// Addr is "127.0.0.1:port"; it stays the same across Restart.
	Addr string
	// Dir is the server's working directory (its log file is Dir/redis.log).
	Dir string

	bin   string
	conf  string   // config file, passed first; "" for none
	extra []string // additional redis-server arguments (cluster, sentinel)

	procMu sync.Mutex
	proc   *exec.Cmd // nil while killed
	exited chan struct{}
}

// Start launches a standalone redis-server on a free loopback port and returns
// its address. The server is killed when the test ends.
func Start(tb testing.TB) string {
	tb.Helper()
	return StartServer(tb).Addr
}

// StartServer is Start returning a handle that can kill, restart and pause the
// server.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	return startServer(tb, nil)
}

// redisServerPath returns the redis-server binary, skipping (or, under CI,
// failing) the test when it is missing.
func redisServerPath(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redistest: redis-server not found (CI is set, so this fails instead of skipping): %v", err)
		}
		tb.Skipf("redistest: redis-server not found, skipping: %v", err)
	}
	return p
}

// startServer starts a server. setup, if non-nil, is called before each
// attempt, after Addr is chosen, and may set conf and extra (cluster bus
// port, sentinel configuration).
func startServer(tb testing.TB, setup func(s *Server)) *Server {
	tb.Helper()
	bin := redisServerPath(tb)
	s := &Server{bin: bin, Dir: tb.TempDir()}
	tb.Cleanup(s.Kill)

	var lastErr error
	for range bindAttempts {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if setup != nil {
			setup(s)
		}
		if lastErr = s.launch(); lastErr == nil {
			return s
		}
	}
	tb.Fatalf("redistest: could not start redis-server after %d attempts: %v", bindAttempts, lastErr)
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago. Redis
// binds it itself, so a race with another process is possible; callers retry.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("probe free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("probe free port: %w", err)
	}
	return port, nil
}

// launch starts the process on s.Addr and waits until it answers PING.
func (s *Server) launch() error {
	_, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return err
	}
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(args,
		"--port", port,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.Dir,
		"--logfile", filepath.Join(s.Dir, "redis.log"),
		"--daemonize", "no",
	)
	args = append(args, s.extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.Dir
	// If the test binary dies without running cleanups, the kernel kills
	// the server instead of leaving it behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	s.procMu.Lock()
	s.proc, s.exited = cmd, exited
	s.procMu.Unlock()

	if err := waitPing(s.Addr, exited); err != nil {
		s.Kill()
		return fmt.Errorf("redis-server on %s: %w (log: %s)", s.Addr, err, s.logTail())
	}
	return nil
}

// waitPing polls addr with PING until it answers PONG, the process exits or
// startTimeout passes.
func waitPing(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		reply, err := command(addr, "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-exited:
			return errors.New("process exited before answering PING")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %v: %v", startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// command sends one command to addr on a fresh connection and returns the
// reply as text: a simple string or an integer without its type byte, a bulk
// string whole, an array of bulk strings joined by spaces (a nil array as
// ""). An error reply is returned as an error.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		return readBulk(r, line)
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("unexpected reply %q", line)
		}
		parts := make([]string, 0, max(n, 0))
		for range n {
			l, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			p, err := readBulk(r, strings.TrimRight(l, "\r\n"))
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, " "), nil
	default:
		return "", fmt.Errorf("unexpected reply %q", line)
	}
}

// readBulk reads the body of a bulk string whose header line is line.
func readBulk(r *bufio.Reader, line string) (string, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(line, "$"))
	if !strings.HasPrefix(line, "$") || err != nil {
		return "", fmt.Errorf("unexpected reply %q", line)
	}
	if n < 0 {
		return "", nil // nil bulk string
	}
	buf := make([]byte, n+2)
	if _, err := readFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func readFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// logTail returns the end of the server's log for failure messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// Kill stops the server with SIGKILL, as a crash or an OOM kill would, and
// waits for the process to be reaped. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.procMu.Lock()
	cmd, exited := s.proc, s.exited
	s.proc, s.exited = nil, nil
	s.procMu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts the server again on the same address after Kill (the data
// is gone: the server does not persist). It fails the test if the port was
// taken in the meantime.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Kill()
	var err error
	// The old socket may linger for a moment after the kill.
	for range bindAttempts {
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("redistest: restart on %s: %v", s.Addr, err)
}

// Pause makes the server hold every client's commands for d (CLIENT PAUSE
// ALL), as a blocking command or an overloaded Redis would; connections stay
// open. Redis also holds a CLIENT UNPAUSE sent meanwhile, so the pause
// always lasts d; use Freeze for a stall that a test ends itself.
func (s *Server) Pause(tb testing.TB, d time.Duration) {
	tb.Helper()
	ms := strconv.FormatInt(max(d.Milliseconds(), 1), 10)
	if _, err := command(s.Addr, "CLIENT", "PAUSE", ms, "ALL"); err != nil {
		tb.Fatalf("redistest: CLIENT PAUSE on %s: %v", s.Addr, err)
	}
}

// Freeze stops the server process (SIGSTOP), as `docker pause` or a
// partition that drops packets would look to clients: connections are
// accepted by the kernel, but nothing answers. Thaw resumes it. Kill works
// on a frozen server.
func (s *Server) Freeze(tb testing.TB) { s.signal(tb, syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw(tb testing.TB) { s.signal(tb, syscall.SIGCONT) }

func (s *Server) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	s.procMu.Lock()
	defer s.procMu.Unlock()
	if s.proc == nil {
		tb.Fatalf("redistest: %v to %s: server is not running", sig, s.Addr)
	}
	if err := s.proc.Process.Signal(sig); err != nil {
		tb.Fatalf("redistest: %v to %s: %v", sig, s.Addr, err)
	}
}

// Do runs one command on the server over a fresh connection and returns a
// simple-string, integer or bulk-string reply as text. It is meant for test
// set-up and inspection (INFO, CONFIG SET, FLUSHALL), not for heavy use.
func (s *Server) Do(tb testing.TB, args ...string) string {
	tb.Helper()
	reply, err := command(s.Addr, args...)
	if err != nil {
		tb.Fatalf("redistest: %s on %s: %v", strings.Join(args, " "), s.Addr, err)
	}
	return reply
}

// PID returns the server's process id, or 0 while it is killed.
func (s *Server) PID() int {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Process.Pid
}
