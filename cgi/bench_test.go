package cgi

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSpawn measures one whole CGI request for a trivial sh script
// through ServeCGI: path lookup and checks, spawn, header parsing, reaping.
// The cases differ only in how the script is started:
//
//   - direct: os/exec starts the script itself with SysProcAttr credentials
//     and no rlimits (not a production mode: it is the floor);
//   - launcher=test: this test binary as the launcher;
//   - launcher=massvhost: the full server binary, built here, as the
//     launcher (cgi.launcher "" without massvhost-cgi-launch beside it);
//   - launcher=small: cmd/massvhost-cgi-launch, built here;
//   - launcher=small,memory-cap: the same with a tenant memory cap (the
//     server's default), which on cgroup v1 the launcher joins itself.
//
// Besides ns/op it reports child-cpu-ms/op, the CPU time of the launcher
// and script processes (getrusage RUSAGE_CHILDREN), and cpu-ms/op, that
// plus this process's own: the cost that multiplies with the request rate.
//
//	go test -run '^$' -bench Spawn -benchtime 1000x -count 6 ./cgi/
func BenchmarkSpawn(b *testing.B) {
	for _, mode := range []struct {
		name   string
		direct bool
		build  string // package built as the launcher; "" = this binary
		// memoryMax is TenantMemoryMax: on cgroup v1 the launcher then
		// joins the tenant's memory cgroup itself (-memcg).
		memoryMax int64
	}{
		{name: "direct", direct: true},
		{name: "launcher=test"},
		{name: "launcher=massvhost", build: "massvhost/cmd/massvhost"},
		{name: "launcher=small", build: "massvhost/cmd/massvhost-cgi-launch"},
		{name: "launcher=small,memory-cap", build: "massvhost/cmd/massvhost-cgi-launch", memoryMax: 2 << 30},
	} {
		b.Run(mode.name, func(b *testing.B) {
			var launcher string
			if mode.build != "" {
				launcher = buildBinary(b, mode.build)
			}
			tn := newTenant(b, "a.test")
			tn.install("hello.cgi", "hello.cgi")
			h, _ := newTestHandler(b, Options{Launcher: launcher, TenantMemoryMax: mode.memoryMax})
			h.directExec = mode.direct
			r := httptest.NewRequest(http.MethodGet, "/cgi-bin/hello.cgi", nil)
			var self0, children0 unix.Rusage
			unix.Getrusage(unix.RUSAGE_SELF, &self0)
			unix.Getrusage(unix.RUSAGE_CHILDREN, &children0)
			n := 0
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeCGI(w, r, tn.site, ScriptAlias)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
				n++
			}
			var self1, children1 unix.Rusage
			unix.Getrusage(unix.RUSAGE_SELF, &self1)
			unix.Getrusage(unix.RUSAGE_CHILDREN, &children1)
			child := cpuTime(&children1) - cpuTime(&children0)
			self := cpuTime(&self1) - cpuTime(&self0)
			b.ReportMetric(float64(child)/float64(time.Millisecond)/float64(n), "child-cpu-ms/op")
			b.ReportMetric(float64(child+self)/float64(time.Millisecond)/float64(n), "cpu-ms/op")
		})
	}
}

func cpuTime(ru *unix.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// buildBinary builds pkg (a main package of this module) into a temporary
// directory and returns the executable's path; it skips when the go
// command is not available.
func buildBinary(b *testing.B, pkg string) string {
	b.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		b.Skip("go command not found: cannot build", pkg)
	}
	out := filepath.Join(b.TempDir(), filepath.Base(pkg))
	if msg, err := exec.Command(goCmd, "build", "-o", out, pkg).CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out
}
