// Package peerproc runs one benchmark peer (a server under test, or the
// redis-server the benchmarks share) as a process group of its own: start
// it with its output in a log, wait until it answers HTTPS, and stop it
// with every process it forked. The orchestrator and the profiler both
// use it.
package peerproc

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
	"strings"
	"syscall"
	"time"

	"massvhost/test/bench/internal/peers"
)

// Process is one running peer. It runs in its own process group so that
// Stop can end every process it forked, and only those.
type Process struct {
	Spec    peers.Spec
	Pid     int       // also the process group
	Started time.Time // taken immediately before exec
	Err     error     // exit status, valid once Exited

	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has been reaped
}

// Start execs spec with its output in logPath. The start time is
// taken immediately before exec, so start-up figures include exec itself.
func Start(spec peers.Spec, logPath string) (*Process, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s := &Process{Spec: spec, cmd: cmd, log: logPath, done: make(chan struct{})}
	s.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	s.Pid = cmd.Process.Pid
	go func() {
		s.Err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// Exited reports whether the process has been reaped.
func (s *Process) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// LogTail returns the last lines of the server's output, for error messages.
func (s *Process) LogTail() string {
	b, _ := os.ReadFile(s.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, " | ")
}

// WaitReady polls with full HTTPS requests (new connection each time) until
// one answers 200, and returns the time since exec. It fails when the server
// exits or bound passes.
func (s *Process) WaitReady(ctx context.Context, addr, host string, bound time.Duration) (time.Duration, error) {
	deadline := s.Started.Add(bound)
	for {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err := Probe(addr, host, "/"); err == nil {
			return time.Since(s.Started), nil
		}
		if s.Exited() {
			return 0, fmt.Errorf("%s exited during start-up (%v): %s", s.Spec.Name, s.Err, s.LogTail())
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s not serving after %s: %w", s.Spec.Name, bound, ErrBound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ErrBound is wrapped by WaitReady when the bound passes.
var ErrBound = errors.New("bound exceeded")

// Probe makes one HTTPS GET with SNI and Host set to host and reports an
// error unless the answer is 200.
func Probe(addr, host, path string) error {
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

// Stop asks the server to exit with its stop signal, waits up to grace,
// then kills what remains of its process group; it returns once the group
// is empty or a bound passes.
func (s *Process) Stop(grace time.Duration) error {
	if !s.Exited() {
		s.cmd.Process.Signal(s.Spec.Stop)
		select {
		case <-s.done:
		case <-time.After(grace):
			syscall.Kill(-s.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	// Children that outlive the leader (Apache's, nginx's workers) are
	// still in the group; end them too.
	for i := 0; i < 100; i++ {
		if syscall.Kill(-s.Pid, 0) != nil {
			return nil // the group is empty
		}
		if i == 20 {
			syscall.Kill(-s.Pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: processes of group %d still running after stop", s.Spec.Name, s.Pid)
}
