package cgi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkSpawn measures one whole CGI request for a trivial sh script
// through ServeCGI: path lookup and checks, spawn, header parsing, reaping.
// "launcher" is the production path (re-exec of this binary, which applies
// identity and rlimits and then execs the script); "direct" execs the
// script straight from os/exec with SysProcAttr credentials and no
// rlimits, so the difference is what the launcher costs.
func BenchmarkSpawn(b *testing.B) {
	for _, mode := range []struct {
		name   string
		direct bool
	}{{"direct", true}, {"launcher", false}} {
		b.Run(mode.name, func(b *testing.B) {
			tn := newTenant(b, "a.test")
			tn.install("hello.cgi", "hello.cgi")
			h, _ := newTestHandler(b, Options{})
			h.directExec = mode.direct
			r := httptest.NewRequest(http.MethodGet, "/cgi-bin/hello.cgi", nil)
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeCGI(w, r, tn.site, ScriptAlias)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
