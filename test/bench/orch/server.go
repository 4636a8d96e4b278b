package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"massvhost/test/bench/internal/peers"
)

// server is one running peer. It runs in its own process group so that
// stop can end every process it forked, and only those.
type server struct {
	spec  peers.Spec
	cmd   *exec.Cmd
	pid   int
	start time.Time
	log   string
	done  chan struct{} // closed when the process has been reaped
	err   error         // exit status, valid after done
}

// startServer execs spec with its output in logPath. The start time is
// taken immediately before exec, so start-up figures include exec itself.
func startServer(spec peers.Spec, logPath string) (*server, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s := &server{spec: spec, cmd: cmd, log: logPath, done: make(chan struct{})}
	s.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	s.pid = cmd.Process.Pid
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the server's output, for error messages.
func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, " | ")
}

// waitReady polls with full HTTPS requests (new connection each time) until
// one answers 200, and returns the time since exec. It fails when the server
// exits or bound passes.
func (s *server) waitReady(ctx context.Context, addr, host string, bound time.Duration) (time.Duration, error) {
	deadline := s.start.Add(bound)
	for {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err := probe(addr, host, "/"); err == nil {
			return time.Since(s.start), nil
		}
		if s.exited() {
			return 0, fmt.Errorf("%s exited during start-up (%v): %s", s.spec.Name, s.err, s.logTail())
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s not serving after %s: %w", s.spec.Name, bound, errBound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var errBound = errors.New("bound exceeded")

// probe makes one HTTPS GET with SNI and Host set to host and reports an
// error unless the answer is 200.
func probe(addr, host, path string) error {
	d := net.Dialer{Timeout: time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(raw, &tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		return err
	}
	fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// stop asks the server to exit with its stop signal, waits up to grace,
// then kills what remains of its process group; it returns once the group
// is empty or a bound passes.
func (s *server) stop(grace time.Duration) error {
	if !s.exited() {
		s.cmd.Process.Signal(s.spec.Stop)
		select {
		case <-s.done:
		case <-time.After(grace):
			syscall.Kill(-s.pid, syscall.SIGKILL)
			<-s.done
		}
	}
	// Children that outlive the leader (Apache's, nginx's workers) are
	// still in the group; end them too.
	for i := 0; i < 100; i++ {
		left := groupMembers(s.pid)
		if len(left) == 0 {
			return nil
		}
		if i == 20 {
			syscall.Kill(-s.pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: processes of group %d still running after stop", s.spec.Name, s.pid)
}

// waitPortFree waits until nothing accepts connections on addr, so the next
// peer's start-up is not measured against the previous one's listener.
func waitPortFree(ctx context.Context, addr string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return nil
		}
		c.Close()
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s still accepting connections after %s", addr, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback address with a port the kernel just handed
// out and released; every peer then listens there in turn.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// runChecked runs a short command (a config test, a build) with a bound.
func runChecked(ctx context.Context, bound time.Duration, dir string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
