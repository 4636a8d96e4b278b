package cgi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"massvhost/cgi/launch"
	"massvhost/vhost"
)

// drainIdle is how long stdout may stay silent, once the script's process
// group has been killed after the script exited, before the output counts
// as complete. Only a process that escaped the group (setsid) can still
// write then, and its output is not waited for.
const drainIdle = 100 * time.Millisecond

// endReason says why a run was ended before its script finished.
type endReason int32

const (
	endNone     endReason = iota
	endTimeout            // Options.Timeout expired
	endCanceled           // the request's context was canceled (client gone)
	endShutdown           // Handler.Close
	endAborted            // the handler gave up: output cap, client write error
)

// child is one running script: its process (the launcher, then the script
// in the same process), a process group and session of its own, and the
// pipes to it.
//
// The leader is reaped only in finish, after the last signal to its group:
// while the leader is unreaped its pid cannot be reused, so kill(-pid)
// never reaches a stranger's process group.
//
// exec.Cmd's Cancel and WaitDelay are not used: all three pipes are our own
// *os.File ends, so exec starts no copying goroutine for WaitDelay to bound,
// and Cancel runs when a context ends, while here the group must also be
// killed when the script exits, when its output is cut, and only before the
// leader is reaped. watch and finish implement both bounds instead: a
// grandchild holding stdout keeps the response open for at most WaitDelay
// after the script exits, and the group gets KillGrace between SIGTERM
// and SIGKILL.
type child struct {
	h      *Handler
	cmd    *exec.Cmd
	pid    int
	stdout *os.File // read end
	stderr *os.File // read end
	status *os.File // read end of the launcher's status pipe; nil in direct mode
	stdin  *os.File // write end when the body is fed by copyBody; else nil
	// cgroupLost: the launcher could not join the tenant's v1 memory
	// cgroup because it is gone (copied to the script by respond).
	cgroupLost bool

	exited     chan struct{} // closed when the leader has exited (not yet reaped)
	stop       chan struct{} // closed when the watcher is no longer needed
	watched    chan struct{} // closed when the watcher has returned
	stderrDone chan struct{}
	feedDone   chan struct{} // nil when there is no feeder
	rc         *http.ResponseController

	reason   atomic.Int32 // endReason; the first one wins
	draining atomic.Bool

	// feedStop and feedReading let finish tell a feeder blocked on the
	// client's body (which needs a read deadline) from one about to notice
	// that stdin is closed: each side stores its flag, then loads the
	// other's.
	feedStop, feedReading atomic.Bool
}

// start spawns the launcher (or, in direct mode, the script) for s.
func (h *Handler) start(w http.ResponseWriter, r *http.Request, site vhost.Site, s *script, b *body, env []string) (*child, *refusal) {
	var parentEnds, childEnds []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	pipe := func() (rd, wr *os.File, err error) {
		rd, wr, err = os.Pipe()
		if err == nil {
			parentEnds = append(parentEnds, rd)
			childEnds = append(childEnds, wr)
		}
		return rd, wr, err
	}
	fail := func(err error) (*child, *refusal) {
		closeAll(parentEnds)
		closeAll(childEnds)
		return nil, refuse(http.StatusInternalServerError, "create pipes", err)
	}
	c := &child{
		h:          h,
		exited:     make(chan struct{}),
		stop:       make(chan struct{}),
		watched:    make(chan struct{}),
		stderrDone: make(chan struct{}),
		rc:         http.NewResponseController(w),
	}
	cmd := &exec.Cmd{
		Env:         env,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	var err error
	var stdoutW, stderrW *os.File
	if c.stdout, stdoutW, err = pipe(); err != nil {
		return fail(err)
	}
	if c.stderr, stderrW, err = pipe(); err != nil {
		return fail(err)
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	switch {
	case b.file != nil:
		cmd.Stdin = b.file
	case b.length > 0:
		// pipe() would hand the write end to the child: here the parent writes.
		rd, wr, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		parentEnds, childEnds = append(parentEnds, wr), append(childEnds, rd)
		cmd.Stdin, c.stdin = rd, wr
	}
	if s.cgroup != nil && s.cgroup.FD >= 0 {
		// cgroup v2: born in the tenant's cgroup (cgroup.Slot).
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, s.cgroup.FD
	}
	if h.directExec {
		cmd.Path, cmd.Args, cmd.Dir = s.filename, []string{s.name}, s.dirPath
		if h.policy.privileged {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: s.runAs.UID, Gid: s.runAs.GID, Groups: []uint32{}}
		}
	} else {
		var statusW *os.File
		if c.status, statusW, err = pipe(); err != nil {
			return fail(err)
		}
		dir, err := unix.Dup(s.dirFD)
		if err != nil {
			return fail(err)
		}
		dirFile := os.NewFile(uintptr(dir), s.dirPath)
		childEnds = append(childEnds, dirFile)
		cmd.Path, cmd.Dir = h.opts.Launcher, "/"
		cmd.Args = append([]string{"massvhost", launch.Command}, h.launchSpec(s).Args()...)
		cmd.ExtraFiles = []*os.File{statusW, dirFile}
	}
	c.cmd = cmd
	if s.cgroup != nil {
		err = s.cgroup.Spawn(cmd.Start)
	} else {
		err = cmd.Start()
	}
	closeAll(childEnds)
	if err != nil {
		closeAll(parentEnds)
		// A cgroup directory that was removed fails clone3 (v2) or the
		// spawning thread's join (v1) with ENOENT (so would a missing
		// launcher: re-creating the cgroup then costs nothing).
		s.cgroupLost = s.cgroup != nil && errors.Is(err, syscall.ENOENT)
		if errors.Is(err, syscall.EAGAIN) {
			return nil, refuse(http.StatusServiceUnavailable, "spawn", err)
		}
		return nil, refuse(http.StatusInternalServerError, "spawn", err)
	}
	c.pid = cmd.Process.Pid
	h.spawned.Add(1)
	h.running.Add(1)

	go c.wait()
	go c.watch(r)
	go func() {
		defer close(c.stderrDone)
		h.copyStderr(c.stderr, site, s.scriptName)
	}()
	if c.stdin != nil {
		c.feedDone = make(chan struct{})
		src := b.stream
		if src == nil {
			src = bytes.NewReader(b.mem)
		}
		// An HTTP/1 server otherwise waits for the body to be consumed
		// before it writes any of the response, while the script may
		// well answer before (or without) reading all of its input.
		c.rc.EnableFullDuplex()
		go c.feed(src)
	}
	return c, nil
}

// launchSpec is the launcher invocation for s: identity when privileged,
// the tenant's cgroups, no_new_privs when configured, and the configured
// limits (NPROC only with an identity switch, since the
// kernel counts processes per uid and the server's own would count
// otherwise; the anonymous identity's count is shared by all its sites).
func (h *Handler) launchSpec(s *script) *launch.Spec {
	spec := &launch.Spec{UID: -1, GID: -1, Dev: s.file.Dev, Ino: s.file.Ino, Name: s.name,
		NoNewPrivs: h.opts.NoNewPrivs, KeepBoundingSet: h.opts.KeepBoundingSet}
	if s.cgroup != nil {
		spec.MemoryCgroup = s.cgroup.MemoryDir()
	}
	l := h.opts.Limits
	add := func(resource int, v int64) {
		if v > 0 {
			spec.Limits = append(spec.Limits, launch.Limit{Resource: resource, Value: uint64(v)})
		}
	}
	if h.policy.privileged {
		spec.UID, spec.GID = int(s.runAs.UID), int(s.runAs.GID)
		add(unix.RLIMIT_NPROC, l.Processes)
	}
	if l.CPU > 0 {
		add(unix.RLIMIT_CPU, int64((l.CPU+time.Second-1)/time.Second))
	}
	add(unix.RLIMIT_AS, l.AddressSpace)
	add(unix.RLIMIT_NOFILE, l.OpenFiles)
	add(unix.RLIMIT_FSIZE, l.FileSize)
	return spec
}

// feed copies the request body to the script's stdin, then closes it.
func (c *child) feed(src io.Reader) {
	defer close(c.feedDone)
	defer c.stdin.Close()
	buf := make([]byte, copyBufferBytes)
	for {
		c.feedReading.Store(true)
		if c.feedStop.Load() {
			c.feedReading.Store(false)
			return
		}
		n, err := src.Read(buf)
		c.feedReading.Store(false)
		if n > 0 {
			if _, werr := c.stdin.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// wait closes c.exited once the leader has exited, without reaping it.
func (c *child) wait() {
	defer close(c.exited)
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, c.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// watch ends the run on timeout, cancellation or shutdown, and bounds how
// long the rest of the process group may hold stdout after the leader has
// exited: WaitDelay, then the group is killed and stdout drains.
func (c *child) watch(r *http.Request) {
	defer close(c.watched)
	timeout := time.NewTimer(c.h.opts.Timeout)
	defer timeout.Stop()
	exited := c.exited
	var grace <-chan time.Time
	for {
		select {
		case <-r.Context().Done():
			c.end(endCanceled)
			return
		case <-timeout.C:
			c.end(endTimeout)
			return
		case <-c.h.shutdown:
			c.end(endShutdown)
			return
		case <-c.stop:
			return
		case <-exited:
			exited = nil
			t := time.NewTimer(c.h.opts.WaitDelay)
			defer t.Stop()
			grace = t.C
		case <-grace:
			grace = nil
			unix.Kill(-c.pid, unix.SIGKILL)
			c.draining.Store(true)
			c.stdout.SetReadDeadline(time.Now().Add(drainIdle))
		}
	}
}

// end records why the run ends (the first reason wins), asks the whole
// process group to terminate, and unblocks the handler's reads.
func (c *child) end(why endReason) {
	c.reason.CompareAndSwap(int32(endNone), int32(why))
	unix.Kill(-c.pid, unix.SIGTERM)
	past := time.Unix(1, 0)
	c.stdout.SetReadDeadline(past)
	if c.status != nil {
		c.status.SetReadDeadline(past)
	}
}

func (c *child) endReason() endReason { return endReason(c.reason.Load()) }

// Read reads the script's stdout. Once the group has been killed after the
// leader exited, every read gets a fresh idle deadline, so output already in
// the pipe is never lost to a slow client, and a process that escaped the
// group cannot hold the response open.
func (c *child) Read(p []byte) (int, error) {
	if c.draining.Load() && c.endReason() == endNone {
		c.stdout.SetReadDeadline(time.Now().Add(drainIdle))
	}
	n, err := c.stdout.Read(p)
	if err != nil && c.draining.Load() && c.endReason() == endNone && errors.Is(err, os.ErrDeadlineExceeded) {
		err = io.EOF
	}
	return n, err
}

// launchFailure reads the launcher's status pipe. It returns nil once the
// script runs, or the refusal for a failed launch.
func (c *child) launchFailure() *refusal {
	if c.status == nil {
		return nil
	}
	f, err := launch.ReadStatus(c.status)
	switch {
	case err != nil && c.endReason() != endNone:
		return nil // timeout or cancellation: the caller looks at endReason
	case err != nil:
		return refuse(http.StatusInternalServerError, "launcher status", err)
	case f == nil:
		return nil
	}
	reason := "launcher: " + f.Stage.String()
	c.cgroupLost = f.Stage == launch.StageCgroup && f.Errno == unix.ENOENT
	switch {
	case f.Errno == unix.EAGAIN:
		// RLIMIT_NPROC reached: the kernel defers the check to execve.
		return refuse(http.StatusServiceUnavailable, reason, f.Errno)
	case f.Stage == launch.StageScript && f.Errno == unix.ENOENT:
		return refuse(http.StatusNotFound, reason, f.Errno)
	case f.Stage == launch.StageScript:
		return refuse(http.StatusForbidden, "script changed between check and exec", f.Errno)
	case f.Errno == unix.EACCES || f.Errno == unix.EPERM && f.Stage != launch.StageIdentity:
		return refuse(http.StatusForbidden, reason, f.Errno)
	case f.Stage == launch.StageExec:
		return refuse(http.StatusBadGateway, reason, f.Errno)
	}
	return refuse(http.StatusInternalServerError, reason, f.Errno)
}

// finish ends the run for good: it gives the leader grace to exit, kills
// whatever is left of the process group, reaps the leader, and waits for the
// stderr copier and the body feeder. It is called exactly once, before the
// handler returns.
func (c *child) finish(grace time.Duration) *os.ProcessState {
	close(c.stop)
	<-c.watched
	t := time.NewTimer(grace)
	select {
	case <-c.exited:
	case <-t.C:
	}
	t.Stop()
	unix.Kill(-c.pid, unix.SIGKILL)
	<-c.exited
	c.cmd.Wait()
	c.h.running.Add(-1)

	t = time.NewTimer(c.h.opts.WaitDelay)
	select {
	case <-c.stderrDone:
	case <-t.C:
		c.stderr.SetReadDeadline(time.Unix(1, 0))
		<-c.stderrDone
	}
	t.Stop()
	if c.stdin != nil {
		c.feedStop.Store(true)
		c.stdin.Close() // unblocks a feeder stuck writing
		if c.feedReading.Load() {
			// The feeder waits for a slow client's body: only a read
			// deadline on the connection ends that wait.
			c.rc.SetReadDeadline(time.Unix(1, 0))
		}
		<-c.feedDone
	}
	c.stdout.Close()
	c.stderr.Close()
	if c.status != nil {
		c.status.Close()
	}
	return c.cmd.ProcessState
}
