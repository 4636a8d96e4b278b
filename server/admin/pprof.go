package admin

import (
	"net/http"
	"net/http/pprof"
)

// pprofHandler serves the runtime profiles of net/http/pprof (CPU, heap,
// allocations, goroutines, mutex and block contention, execution traces)
// under /debug/pprof/ while profiling is enabled, and 404 otherwise, so
// that a reload can turn it on or off without rebinding the listener.
//
// The handlers are registered here, on the admin mux only, and never on a
// tenant listener: a profile names every function and a goroutine dump
// shows every request in flight, host names included. The package's init
// also registers them on http.DefaultServeMux, which massvhost never
// serves.
func (a *Admin) pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // also /debug/pprof/<profile name>
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.pprof.Load() {
			http.NotFound(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// SetPprof turns the /debug/pprof/ endpoints on or off; the command calls
// it with admin.pprof on start and after each reload.
func (a *Admin) SetPprof(on bool) { a.pprof.Store(on) }
