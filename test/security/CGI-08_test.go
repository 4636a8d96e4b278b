// CGI-08: grandchildren, process groups and daemonizing scripts.
//
// Exploit: bg.cgi prints a complete response and then leaves "sleep 600 &"
// holding its stdout (net/http/cgi then never finished the response, and
// the grandchild was re-parented to PID 1); variants double-fork
// ("(sleep 600 &)"), detach stdout ("nohup … >/dev/null &") or leave a
// child that ignores SIGTERM; setsid.cgi escapes the process group with
// setsid(1).
//
// Expectation: every response completes with its full body; afterwards no
// process of the tenant is left (bounded poll). A process that called
// setsid is outside the group the server kills, but with per-tenant
// cgroups (cgi.cgroups, used by default as root where a cpu controller is
// writable) it is still in the tenant's cgroup, which is swept once none
// of the tenant's scripts runs: then the survivor must be gone. Without
// cgroups that is a known gap: the test checks that it cannot hold the
// response open and records that it survives.
package security

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCGI08Grandchildren(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	const resp = "printf 'Content-Type: text/plain\\r\\n\\r\\ndone\\n'\n"
	a.script("bg.cgi", resp+"sleep 600 &\n")
	a.script("doublefork.cgi", resp+"(sleep 600 &)\n")
	a.script("nohup.cgi", resp+"nohup sleep 600 >/dev/null 2>&1 &\n")
	a.script("noterm.cgi", resp+"(trap '' TERM; sleep 600) &\nexit 0\n")
	a.script("setsid.cgi", resp+"setsid sleep 600 &\n")
	p := start(t, w.config(cfg{}))

	var wg sync.WaitGroup
	for _, script := range []string{"bg.cgi", "doublefork.cgi", "nohup.cgi", "noterm.cgi"} {
		wg.Go(func() {
			r := p.get("a.test", "/cgi-bin/"+script)
			if r.Status != 200 || r.Body != "done\n" {
				t.Errorf("%s: %d %q, want the complete response", script, r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	waitNoProcs(t, a.UID, 3*time.Second)

	t.Cleanup(func() { killTenantProcs(a.UID) })
	r := p.get("a.test", "/cgi-bin/setsid.cgi")
	if r.Status != 200 || r.Body != "done\n" {
		t.Errorf("setsid.cgi: %d %q, want the complete response", r.Status, r.Body)
	}
	cgroups := strings.Contains(p.Output(), "per-tenant cgroups on")
	switch {
	case eventually(3*time.Second, func() bool { return len(procsOf(a.UID)) == 0 }):
		t.Logf("setsid.cgi: no survivor (cgroups on: %v)", cgroups)
	case cgroups:
		t.Errorf("setsid.cgi: survivor %v although the tenant's cgroup is swept", procsOf(a.UID))
	default:
		t.Logf("known gap (CGI-08 without cgroups): setsid survivor %v", procsOf(a.UID))
	}
}
