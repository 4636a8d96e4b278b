package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPprof(t *testing.T) {
	e := newEnv(t, nil)
	paths := []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap?debug=1"}
	for _, p := range paths {
		if code, _ := e.get(p); code != http.StatusNotFound {
			t.Errorf("pprof off: GET %s = %d, want 404", p, code)
		}
	}
	e.admin.SetPprof(true)
	for _, p := range paths {
		if code, _ := e.get(p); code != http.StatusOK {
			t.Errorf("pprof on: GET %s = %d, want 200", p, code)
		}
	}
	if _, body := e.get("/debug/pprof/goroutine?debug=1"); !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine?debug=1 is not a goroutine profile: %.80q", body)
	}
	if code, _ := e.get("/metrics"); code != http.StatusOK {
		t.Errorf("/metrics = %d with pprof on", code)
	}
	e.admin.SetPprof(false)
	if code, _ := e.get("/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Errorf("pprof turned off again: cmdline = %d, want 404", code)
	}
}

func TestPprofOption(t *testing.T) {
	e := newEnv(t, nil)
	a, err := New(Options{Server: e.srv, Components: func() Components { return e.comp }, Pprof: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/cmdline", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("Options.Pprof: cmdline = %d, want 200", rec.Code)
	}
}
