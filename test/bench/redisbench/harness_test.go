package redisbench

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
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

	"massvhost/test/proctest"
)

var enabled = flag.Bool("redisbench", false, "run the handshake measurements (starts redis-server and the massvhost binary)")

// binary is the massvhost binary built by TestMain when -redisbench is set.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if !*enabled {
		os.Exit(m.Run())
	}
	proctest.Main(m, "redisbench", &binary, false)
}

func skipUnlessEnabled(t *testing.T) {
	t.Helper()
	if !*enabled {
		t.Skip("measurement: run with -redisbench")
	}
}

// server is a running `massvhost serve`.
type server struct {
	cmd   *exec.Cmd
	Addr  string // HTTPS listener
	mu    sync.Mutex
	out   bytes.Buffer
	ready chan string
}

var listeningRE = regexp.MustCompile(`massvhost: listening http=\S* https=(\S+)`)

// configFor returns a configuration serving only HTTPS from the Redis at
// redisAddr; certs holds extra lines for the certs section.
func configFor(t *testing.T, redisAddr, certsExtra string) string {
	dir := t.TempDir()
	sites := filepath.Join(dir, "sites")
	if err := os.Mkdir(sites, 0o755); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`listen: {http: "", https: "127.0.0.1:0"}
data_dir: %q
sites: {root: %q}
certs:
  store: redis
  local_ca: false
  ttl: 1h
%sredis: {addrs: [%q]}
server: {max_conns_per_ip: 0}
cgi: {enabled: false}
log: {access: "off", level: warn}
admin: {listen: ""}
`, filepath.Join(dir, "data"), sites, certsExtra, redisAddr)
}

// startServer runs the binary with cfg and waits for its listening line.
// It is killed by PID when the test ends.
func startServer(t *testing.T, cfg string) *server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "massvhost.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: exec.Command(binary, "serve", "--config", path), ready: make(chan string, 1)}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = writerFunc(s.write)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("massvhost output:\n%s", s.output())
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.write([]byte(sc.Text() + "\n"))
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case s.ready <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case s.Addr = <-s.ready:
	case <-exited:
		t.Fatalf("massvhost exited:\n%s", s.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("massvhost did not start:\n%s", s.output())
	}
	return s
}

func (s *server) write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(b)
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// memKB returns a field of /proc/PID/status in kB (VmRSS, VmHWM).
func (s *server) memKB(t *testing.T, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/PID/status", field)
	return 0
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
