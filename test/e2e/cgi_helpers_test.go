package e2e

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Tenant uids for the identity tests, as in THREATS.md's fixture.
const (
	cgiTenantUID = 20001
	cgiOtherUID  = 20002
)

func cgiAsRoot() bool { return os.Geteuid() == 0 }

// cgiMarkSeq numbers the markers of the CGI tests' long-running processes.
var cgiMarkSeq atomic.Uint32

// newCGIMark returns a sleep duration that no other process on the machine
// is likely to use: the scripts sleep for it, so that their processes
// (grandchildren included) can be found in /proc by their command line.
func newCGIMark() string {
	return fmt.Sprintf("86%04d.%06d", os.Getpid()%10000, cgiMarkSeq.Add(1))
}

// addScript writes an executable (0755) file at rel below the tenant's
// directory ("cgi-bin/x.cgi", "htdocs/x.cgi"), creating directories 0755.
// Ownership is settled afterwards by chownTenant.
func (w *world) addScript(t *testing.T, host, rel, content string) string {
	t.Helper()
	p := filepath.Join(w.Sites, host, filepath.FromSlash(rel))
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), 0o755))
	must(t, os.Chmod(p, 0o755)) // whatever the umask
	return p
}

// chownTenant gives host's whole tree to uid:gid when the tests run as root
// (the site's scripts then run as that uid); without root it does nothing.
func (w *world) chownTenant(t *testing.T, host string, uid int) {
	t.Helper()
	if !cgiAsRoot() {
		return
	}
	err := filepath.WalkDir(filepath.Join(w.Sites, host), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	must(t, err)
}

// cgiScript is a shell CGI script: a header block, then body (shell code).
func cgiScript(headers, body string) string {
	return "#!/bin/sh\nprintf '" + strings.ReplaceAll(headers, "\n", `\r\n`) + `\r\n'` + "\n" + body + "\n"
}

// procOptions say how to start massvhost in ways start does not cover.
type procOptions struct {
	bin  string   // executable; "" = the binary TestMain built
	dir  string   // working directory; "" = the test's
	env  []string // added to the test's environment
	args []string // after "serve"
	// sockets are passed as systemd socket activation does: descriptors
	// 3, 4, … with LISTEN_FDS, LISTEN_FDNAMES from socketNames, and
	// LISTEN_PID set to the server's pid (by a shell that then execs it).
	sockets     []*os.File
	socketNames []string
}

// startServe runs `massvhost serve` with o and waits for its listening line,
// like start. Both stop the process when the test ends.
func startServe(t *testing.T, o procOptions) *proc {
	t.Helper()
	bin := o.bin
	if bin == "" {
		bin = binary
	}
	p := &proc{t: t, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve"}, o.args...)...)
	if len(o.sockets) > 0 {
		// The pid is the shell's, which exec keeps.
		script := fmt.Sprintf(`LISTEN_PID=$$ LISTEN_FDS=%d LISTEN_FDNAMES=%s exec "$0" serve "$@"`, len(o.sockets), strings.Join(o.socketNames, ":"))
		p.cmd = exec.Command("/bin/sh", append([]string{"-c", script, bin}, o.args...)...)
		p.cmd.ExtraFiles = o.sockets
	}
	p.cmd.Dir = o.dir
	p.cmd.Env = append(os.Environ(), o.env...)
	stdout, err := p.cmd.StdoutPipe()
	must(t, err)
	p.cmd.Stderr = &lockedWriter{mu: &p.logMu, w: &p.log}
	must(t, p.cmd.Start())
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.logMu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.logMu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- [2]string{m[1], m[2]}:
				default:
				}
			}
		}
	}()
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("massvhost output:\n%s", p.Output())
		}
	})
	select {
	case addrs := <-ready:
		p.HTTPAddr, p.HTTPSAddr = addrs[0], addrs[1]
	case <-p.exited:
		t.Fatalf("massvhost exited before listening: %v\n%s", p.waitErr, p.Output())
	case <-time.After(30 * time.Second):
		t.Fatalf("massvhost did not report its listeners\n%s", p.Output())
	}
	return p
}

// cgiProcess is what the stray-process scan reads of one process.
type cgiProcess struct {
	pid, ppid int
	state     byte
	cmdline   string
}

func (p cgiProcess) String() string {
	return fmt.Sprintf("pid %d ppid %d state %c %q", p.pid, p.ppid, p.state, p.cmdline)
}

func cgiProcesses() []cgiProcess {
	entries, _ := os.ReadDir("/proc")
	var out []cgiProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(stat)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 {
			continue
		}
		p := cgiProcess{pid: pid, state: f[0][0]}
		p.ppid, _ = strconv.Atoi(f[1])
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		out = append(out, p)
	}
	return out
}

// marked returns the live processes whose command line contains mark.
func markedProcs(mark string) []cgiProcess {
	var out []cgiProcess
	for _, p := range cgiProcesses() {
		if p.state != 'Z' && strings.Contains(p.cmdline, mark) {
			out = append(out, p)
		}
	}
	return out
}

// waitNoMarked polls /proc until no live process carries mark, failing the
// test with what is left after within. The deadline bounds the wait; it is
// not a timing claim.
func waitNoMarked(t *testing.T, mark string, within time.Duration) {
	t.Helper()
	if !eventually(within, func() bool { return len(markedProcs(mark)) == 0 }) {
		t.Fatalf("processes marked %s still alive after %v: %v", mark, within, markedProcs(mark))
	}
}

// waitMarkedCount polls until n live processes carry mark: a script's
// children show their command line only once they have exec'ed.
func waitMarkedCount(t *testing.T, mark string, n int) {
	t.Helper()
	if !eventually(10*time.Second, func() bool { return len(markedProcs(mark)) == n }) {
		t.Fatalf("want %d processes marked %s, have %v", n, mark, markedProcs(mark))
	}
}

// checkNoStrays registers a check, run before the server is stopped, that
// no process carrying one of marks is alive and that the server has no
// unreaped (zombie) child.
func checkNoStrays(t *testing.T, p *proc, marks ...string) {
	t.Cleanup(func() {
		ok := eventually(5*time.Second, func() bool {
			for _, m := range marks {
				if len(markedProcs(m)) > 0 {
					return false
				}
			}
			return len(zombiesOf(p.cmd.Process.Pid)) == 0
		})
		if !ok {
			for _, m := range marks {
				if left := markedProcs(m); len(left) > 0 {
					t.Errorf("stray processes marked %s: %v", m, left)
				}
			}
			if z := zombiesOf(p.cmd.Process.Pid); len(z) > 0 {
				t.Errorf("zombie children of massvhost: %v", z)
			}
		}
	})
}

func zombiesOf(pid int) []cgiProcess {
	var out []cgiProcess
	for _, p := range cgiProcesses() {
		if p.ppid == pid && p.state == 'Z' {
			out = append(out, p)
		}
	}
	return out
}
