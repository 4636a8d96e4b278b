package cgi

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"massvhost/cgi/cgroup"
)

// eachCgroupHandler runs test with a handler that has Cgroups on: on the
// detected cgroups and, when the machine binds cpu to cgroup v1 but has a
// cgroup2 hierarchy (as on CI), also on the v2 interface of that hierarchy
// (scripts cloned into their cgroup; see cgroup.NewWithLayout). It skips
// when this machine (or user) cannot have cgroups.
func eachCgroupHandler(t *testing.T, o Options, test func(t *testing.T, h *Handler)) {
	t.Helper()
	requireRoot(t)
	o.Cgroups = CgroupsOn
	variants := []struct {
		name   string
		layout *cgroup.Layout
	}{{"detected", nil}}
	probe, err := New(o)
	if errors.Is(err, cgroup.ErrUnavailable) {
		t.Skipf("no writable cgroup cpu controller here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	v1 := probe.cgroups.Version() == cgroup.V1
	probe.Close()
	if unified, err := cgroup.UnifiedLayout(); err == nil && v1 {
		variants = append(variants, struct {
			name   string
			layout *cgroup.Layout
		}{"v2-without-cpu", &unified})
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			o := o
			o.cgroupLayout = v.layout
			h, err := New(o)
			if errors.Is(err, cgroup.ErrUnavailable) {
				t.Skipf("cgroups unusable here: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			test(t, h)
		})
	}
}

// The launcher puts the script into its tenant's cgroup, in every
// hierarchy, before its first instruction; no_new_privs is set when asked.
func TestScriptRunsInTenantCgroup(t *testing.T) {
	eachCgroupHandler(t, Options{NoNewPrivs: true}, func(t *testing.T, h *Handler) {
		tn := newTenant(t, "a.test")
		tn.write("cg.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\ncat /proc/self/cgroup\ngrep NoNewPrivs /proc/self/status\n")
		w := get(h, tn.site, "/cgi-bin/cg.cgi")
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		body := w.Body.String()
		for _, d := range tenantDirs(t, h, "a.test") {
			// /proc/self/cgroup shows paths relative to the hierarchy's root:
			// the last two elements are the parent and the tenant's cgroup.
			rel := "/" + filepath.Base(filepath.Dir(d)) + "/" + filepath.Base(d) + "\n"
			if !strings.Contains(body, rel) {
				t.Errorf("script's /proc/self/cgroup lacks %q:\n%s", rel, body)
			}
		}
		if !strings.Contains(body, "NoNewPrivs:\t1") {
			t.Errorf("no_new_privs not set:\n%s", body)
		}
	})
}

// tenantDirs returns the cgroup directories of tenant (Enter and Leave
// once, which creates them when needed).
func tenantDirs(t *testing.T, h *Handler, tenant string) []string {
	t.Helper()
	slot, err := h.cgroups.Enter(t.Context(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	h.cgroups.Leave(tenant)
	return slot.Dirs
}

// A process that left the script's process group (setsid) is killed once
// the tenant's requests have ended, while a request of the same tenant
// that starts as the previous one ends is served in full.
func TestSetsidEscapeeKilled(t *testing.T) {
	eachCgroupHandler(t, Options{}, func(t *testing.T, h *Handler) {
		tn := newTenant(t, "a.test")
		// The script ends only once its job has left the process group
		// (it writes to a FIFO after setsid), so the job really escapes
		// the group kill at the end of the run, however the job and the
		// script are scheduled.
		tn.write("escape.cgi", "#!/bin/sh\nf=/tmp/massvhost-escape.$$\nmkfifo -m 600 $f\n"+
			"setsid sh -c \"echo out > $f; exec sleep 300\" </dev/null >/dev/null 2>&1 &\n"+
			"read x < $f\nrm -f $f\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' $!\n")
		tn.write("slow.cgi", "#!/bin/sh\nsleep 0.3\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslept\\n'\n")
		for round := range 5 {
			w := get(h, tn.site, "/cgi-bin/escape.cgi")
			if w.Code != http.StatusOK {
				t.Fatalf("escape.cgi: %d %s", w.Code, w.Body)
			}
			// The escapee is the background job ($!, printed by the script)
			// or, when setsid(1) had to fork, its child; until it execs it
			// is named setsid, then sleep. Checking names alone would see
			// nothing while the job is still setsid and find it as sleep a
			// moment later, so the pid is followed as well.
			job, err := strconv.Atoi(strings.TrimSpace(w.Body.String()))
			if err != nil {
				t.Fatalf("escape.cgi printed %q, want the job's pid", w.Body)
			}
			owner := tn.site.Owner
			left := func() []int {
				pids := sleepsOf(owner)
				for _, p := range alive(func(p proc) bool { return p.uid == owner && (p.pid == job || p.comm == "setsid") }) {
					if !slices.Contains(pids, p.pid) {
						pids = append(pids, p.pid)
					}
				}
				return pids
			}
			slow := make(chan *http.Response, 1)
			go func() { slow <- get(h, tn.site, "/cgi-bin/slow.cgi").Result() }()
			deadline := time.Now().Add(3 * time.Second)
			pids := left()
			for len(pids) > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				pids = left()
			}
			if len(pids) > 0 {
				t.Errorf("round %d: setsid escapee still alive: %v", round, pids)
			}
			r := <-slow
			if r.StatusCode != http.StatusOK {
				t.Errorf("round %d: the concurrent request of the same tenant: %d", round, r.StatusCode)
			}
		}
		if st := h.Stats(); st.Escaped == 0 {
			t.Errorf("Stats().Escaped = 0 after %d escapees", 5)
		}
	})
}

// sleepsOf lists the pids of "sleep 300" processes owned by uid.
func sleepsOf(uid uint32) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name(), &st) != nil || st.Uid != uid {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if string(cmd) == "sleep\x00300\x00" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// A tenant's cgroup removed behind the server's back (by hand, by a tool
// that cleans up cgroups) is made again: the request that finds it gone
// fails with 500, the following ones run in a new cgroup.
func TestRemovedCgroupIsMadeAgain(t *testing.T) {
	eachCgroupHandler(t, Options{}, func(t *testing.T, h *Handler) {
		tn := newTenant(t, "a.test")
		tn.write("cg.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\ncat /proc/self/cgroup\n")
		if w := get(h, tn.site, "/cgi-bin/cg.cgi"); w.Code != http.StatusOK {
			t.Fatalf("first run: %d %s", w.Code, w.Body)
		}
		dirs := tenantDirs(t, h, "a.test")
		for _, d := range dirs {
			if err := unix.Rmdir(d); err != nil {
				t.Fatalf("remove %s: %v", d, err)
			}
		}
		w := get(h, tn.site, "/cgi-bin/cg.cgi")
		t.Logf("the run that found the cgroup gone: %d", w.Code)
		for i := range 3 {
			w = get(h, tn.site, "/cgi-bin/cg.cgi")
			if w.Code != http.StatusOK {
				t.Fatalf("run %d after the removal: %d %s", i, w.Code, w.Body)
			}
		}
		for _, d := range dirs {
			if _, err := os.Stat(d); err != nil {
				t.Errorf("%s not made again: %v", d, err)
			}
			rel := "/" + filepath.Base(filepath.Dir(d)) + "/" + filepath.Base(d) + "\n"
			if !strings.Contains(w.Body.String(), rel) {
				t.Errorf("script's /proc/self/cgroup lacks %q:\n%s", rel, w.Body)
			}
		}
	})
}
