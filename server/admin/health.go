package admin

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Check states, worst last.
const (
	stateOK       = "ok"
	stateDegraded = "degraded"
	stateFailed   = "failed"
)

// check is one line of a readiness report.
type check struct {
	Name   string
	State  string
	Detail string
}

// readiness is the outcome of all checks: the worst state wins.
type readiness struct {
	State  string
	Checks []check
}

// ready runs the readiness checks.
//
// Only local conditions make a node not ready (503): its listeners are not
// serving (starting, or draining after SIGTERM), or its sites root or
// certificate directory cannot be read. Redis is shared by every node: if
// an unreachable Redis took every node out of the load balancer, a Redis
// outage would become a total outage, while the nodes can still serve the
// certificates they have cached and, with redis+files, those on disk. So
// Redis down is "degraded" and still 200, unless the caller asks for
// ?strict.
func (a *Admin) ready(ctx context.Context) readiness {
	comp := a.opts.Components()
	var checks []check
	add := func(name, state, detail string) {
		checks = append(checks, check{Name: name, State: state, Detail: detail})
	}
	if a.opts.Server.Serving() {
		h, s := a.opts.Server.Addrs()
		add("listeners", stateOK, strings.TrimSpace(addrLabel("http", h)+" "+addrLabel("https", s)))
	} else {
		add("listeners", stateFailed, "not serving (starting or shutting down)")
	}
	dirCheck := func(name, dir string) {
		if dir == "" {
			return
		}
		if err := readableDir(dir); err != nil {
			add(name, stateFailed, err.Error())
			return
		}
		add(name, stateOK, dir)
	}
	dirCheck("sites", comp.SitesRoot)
	dirCheck("certs_dir", comp.CertsDir)
	if comp.Redis != nil {
		breaker := comp.Redis.BreakerState()
		if err := a.pingRedis(ctx, comp.Redis); err != nil {
			add("redis", stateDegraded, fmt.Sprintf("unreachable, serving cached certificates; breaker %s: %v", breaker, err))
		} else if breaker != "closed" {
			add("redis", stateDegraded, "reachable; breaker "+breaker)
		} else {
			add("redis", stateOK, "reachable; breaker closed")
		}
	}
	r := readiness{State: stateOK, Checks: checks}
	for _, c := range checks {
		if rank(c.State) > rank(r.State) {
			r.State = c.State
		}
	}
	return r
}

func rank(state string) int {
	switch state {
	case stateOK:
		return 0
	case stateDegraded:
		return 1
	}
	return 2
}

// readableDir reports an error unless dir can be opened for reading (a
// directory the server cannot list serves nothing). It reads no entries: a
// sites root can hold millions.
func readableDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	return nil
}

func addrLabel(name string, a interface{ String() string }) string {
	if a == nil {
		return ""
	}
	return name + "=" + a.String()
}

// serveHealthz answers 200 while the process runs and its handler
// goroutines are scheduled: liveness only, never a dependency.
func (a *Admin) serveHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// serveReadyz answers 200 when ready or degraded, 503 when failed (or
// degraded with ?strict). The body's first line is the overall state, then
// one "name: state detail" line per check.
func (a *Admin) serveReadyz(w http.ResponseWriter, r *http.Request) {
	res := a.ready(r.Context())
	code := http.StatusOK
	if res.State == stateFailed || (res.State == stateDegraded && r.URL.Query().Has("strict")) {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	var b strings.Builder
	b.WriteString(res.State + "\n")
	for _, c := range res.Checks {
		fmt.Fprintf(&b, "%s: %s %s\n", c.Name, c.State, c.Detail)
	}
	w.Write([]byte(b.String()))
}
