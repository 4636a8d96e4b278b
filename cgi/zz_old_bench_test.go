package cgi

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func BenchmarkSpawnOld(b *testing.B) {
	launcher := os.Getenv("OLD_LAUNCHER")
	if launcher == "" {
		b.Skip()
	}
	tn := newTenant(b, "a.test")
	tn.install("hello.cgi", "hello.cgi")
	h, _ := newTestHandler(b, Options{Launcher: launcher})
	r := httptest.NewRequest(http.MethodGet, "/cgi-bin/hello.cgi", nil)
	var s0, c0 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &s0)
	unix.Getrusage(unix.RUSAGE_CHILDREN, &c0)
	n := 0
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeCGI(w, r, tn.site, ScriptAlias)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
		n++
	}
	var s1, c1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &s1)
	unix.Getrusage(unix.RUSAGE_CHILDREN, &c1)
	child := cpuTime(&c1) - cpuTime(&c0)
	self := cpuTime(&s1) - cpuTime(&s0)
	b.ReportMetric(float64(child)/float64(time.Millisecond)/float64(n), "child-cpu-ms/op")
	b.ReportMetric(float64(child+self)/float64(time.Millisecond)/float64(n), "cpu-ms/op")
}
