package cgi

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"massvhost/vhost"
)

// Test tenants get fresh uids from firstTestUID up, a range apart from the
// 2000x uids of other packages' fixtures, so that process counts per uid
// (RLIMIT_NPROC) and the stray-process scan see only one test's processes.
// The uids need no passwd entry.
const firstTestUID = 52001

var nextUID atomic.Uint32

func init() { nextUID.Store(firstTestUID) }

func isRoot() bool { return os.Geteuid() == 0 }

func requireRoot(t testing.TB) {
	t.Helper()
	if !isRoot() {
		t.Skip("needs root: switches uid, chowns tenant trees (CI runs these as root)")
	}
}

func requireInterpreter(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not installed", path)
	}
}

// tenant is a site directory tree in a temporary directory:
// <base>/<name>/{htdocs,cgi-bin}, owned by a fresh uid/gid when root.
type tenant struct {
	t    testing.TB
	site vhost.Site
}

func newTenant(t testing.TB, name string) *tenant {
	t.Helper()
	base := t.TempDir()
	// The tenant uid must be able to reach its own tree.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	if isRoot() {
		uid = nextUID.Add(1) - 1
		gid = uid
	}
	root := filepath.Join(base, name)
	tn := &tenant{t: t, site: vhost.Site{
		Name: name, Tenant: name, Root: root,
		DocRoot: filepath.Join(root, "htdocs"), CGIBin: filepath.Join(root, "cgi-bin"),
		Owner: uid, Group: gid,
	}}
	for _, d := range []string{root, tn.site.DocRoot, tn.site.CGIBin} {
		tn.mkdir(d)
	}
	return tn
}

func (tn *tenant) chown(path string) {
	tn.t.Helper()
	if isRoot() {
		if err := os.Lchown(path, int(tn.site.Owner), int(tn.site.Group)); err != nil {
			tn.t.Fatal(err)
		}
	}
}

// mkdir creates a directory owned by the tenant, mode 0755.
func (tn *tenant) mkdir(path string) {
	tn.t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		tn.t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		tn.t.Fatal(err)
	}
	tn.chown(path)
}

// write creates path (absolute, or relative to the cgi-bin) with content,
// owned by the tenant, mode 0755.
func (tn *tenant) write(path, content string) string {
	tn.t.Helper()
	if !filepath.IsAbs(path) {
		path = filepath.Join(tn.site.CGIBin, path)
	}
	tn.mkdir(filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		tn.t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		tn.t.Fatal(err)
	}
	tn.chown(path)
	return path
}

// install copies testdata/cgi-bin/<name> to path (see write).
func (tn *tenant) install(name, path string) string {
	tn.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cgi-bin", name))
	if err != nil {
		tn.t.Fatal(err)
	}
	return tn.write(path, string(b))
}

// child installs a script that re-runs the test binary in a child mode.
func (tn *tenant) child(path, mode string) string {
	tn.t.Helper()
	// GODEBUG keeps the child's Go runtime from opening cgroup files at
	// start-up, so that its descriptor probe sees only what it inherited.
	return tn.write(path, fmt.Sprintf("#!/bin/sh\nexport %s=%s GODEBUG=containermaxprocs=0,updatemaxprocs=0\nexec %s\n",
		childEnv, mode, childBinary))
}

// logBuffer collects a handler's log output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newTestHandler returns a handler logging into the returned buffer, closed
// at the end of the test.
func newTestHandler(t testing.TB, o Options) (*Handler, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, logs
}

// serve runs one request through ServeCGI with a recorder.
func serve(h *Handler, site vhost.Site, mode Mode, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeCGI(w, r, site, mode)
	return w
}

func get(h *Handler, site vhost.Site, target string) *httptest.ResponseRecorder {
	return serve(h, site, ScriptAlias, httptest.NewRequest(http.MethodGet, target, nil))
}

// testServer serves every request for site with h, in mode.
func testServer(t testing.TB, h *Handler, site vhost.Site, mode Mode) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeCGI(w, r, site, mode)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// proc is one line of /proc.
type proc struct {
	pid, ppid, pgid int
	uid             uint32
	state           byte
	comm            string
}

func (p proc) String() string {
	return fmt.Sprintf("pid %d (%s) state %c ppid %d pgid %d uid %d", p.pid, p.comm, p.state, p.ppid, p.pgid, p.uid)
}

func listProcs() []proc {
	entries, _ := os.ReadDir("/proc")
	var ps []proc
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
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < 0 {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 4 {
			continue
		}
		p := proc{pid: pid, comm: s[open+1 : end], state: f[0][0]}
		p.ppid, _ = strconv.Atoi(f[1])
		p.pgid, _ = strconv.Atoi(f[2])
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					u, _ := strconv.Atoi(fs[0])
					p.uid = uint32(u)
				}
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// alive returns the live (not zombie) processes that match.
func alive(match func(proc) bool) []proc {
	var out []proc
	for _, p := range listProcs() {
		if p.state != 'Z' && match(p) {
			out = append(out, p)
		}
	}
	return out
}

func inGroup(pgid int) func(proc) bool { return func(p proc) bool { return p.pgid == pgid } }

func ofUID(uid uint32) func(proc) bool { return func(p proc) bool { return p.uid == uid } }

// waitGone polls /proc until no live process matches or the deadline
// passes, and fails the test with what is left then. Polling with a
// deadline bounds the wait; it is not a timing assertion on the code.
func waitGone(t testing.TB, what string, within time.Duration, match func(proc) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := alive(match)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still alive after %v: %v", what, within, left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stderrSink records scripts' stderr per test.
type stderrSink struct{ logBuffer }

func (s *stderrSink) errorLog(vhost.Site) io.Writer { return s }

// pgidFrom extracts the "pgid=N" a script printed to stderr.
func pgidFrom(t testing.TB, stderr string) int {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		if v, ok := strings.CutPrefix(line, "pgid="); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err == nil {
				return n
			}
		}
	}
	t.Fatalf("no pgid= in the script's stderr %q", stderr)
	return 0
}

// credential runs a test command as the tenant.
func credential(tn *tenant) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tn.site.Owner, Gid: tn.site.Group, Groups: []uint32{}}}
}

// goChild are the limits for handlers that run the test binary as a script:
// a race-enabled binary maps terabytes of shadow memory, far beyond the
// default RLIMIT_AS.
var goChild = Limits{AddressSpace: -1}
