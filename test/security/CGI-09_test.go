// CGI-09: zombie processes.
//
// Exploit: 50 runs of scripts that exit at once, fail, background a
// child, or double-fork, as fast as the client can send them.
//
// Expectation: afterwards the server has no unreaped (zombie) children and
// the tenant no processes. (Orphaned grandchildren are re-parented to PID
// 1 or a subreaper, which must reap them; that is the container's init's
// job: see the operations notes.)
package security

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCGI09NoZombies(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	const resp = "printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'\n"
	a.script("quick.cgi", resp)
	a.script("fail.cgi", "exit 7\n")
	a.script("bg.cgi", resp+"sleep 0.2 &\n")
	a.script("double.cgi", resp+"(sleep 0.2 &)\n")
	p := start(t, w.config(cfg{}))
	var wg sync.WaitGroup
	for i := range 50 {
		script := []string{"quick", "fail", "bg", "double"}[i%4]
		wg.Go(func() { p.get("a.test", "/cgi-bin/"+script+".cgi") })
	}
	wg.Wait()
	waitNoProcs(t, a.UID, 5*time.Second)
	var zombies []string
	if !eventually(5*time.Second, func() bool { zombies = zombiesOf(p.pid()); return len(zombies) == 0 }) {
		t.Errorf("server has zombie children: %v", zombies)
	}
}

// zombiesOf lists the zombie children of pid.
func zombiesOf(pid int) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(pid) {
			out = append(out, fmt.Sprintf("pid %s", e.Name()))
		}
	}
	return out
}
