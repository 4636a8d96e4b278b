package cgi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func parseKV(body string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
	}
	return kv
}

// The script runs as the tenant with no supplementary groups and no
// capabilities, in its own session, with only fds 0-2, the configured
// limits, umask 022, default signal dispositions, in its directory, even
// though the test process holds a descriptor without close-on-exec.
func TestLaunchIsolation(t *testing.T) {
	leaked, err := unix.Open("/dev/null", unix.O_RDONLY, 0) // deliberately not O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leaked)
	tn := newTenant(t, "a.test")
	tn.child("whoami", "whoami")
	h, logs := newTestHandler(t, Options{Limits: Limits{
		CPU: 1500 * time.Millisecond, AddressSpace: 4 << 30, Processes: 50, OpenFiles: 200, FileSize: 1 << 20,
	}})
	w := get(h, tn.site, "/cgi-bin/whoami")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %q", w.Code, w.Body)
	}
	kv := parseKV(w.Body.String())
	t.Logf("child sees: %v", kv)
	check := func(k, want string) {
		t.Helper()
		if kv[k] != want {
			t.Errorf("%s = %q, want %q", k, kv[k], want)
		}
	}
	if kv["fds"] != "0,1,2" {
		t.Errorf("fds = %q, want 0,1,2; log:\n%s", kv["fds"], logs)
	}
	if _, err := os.Stat("/usr/bin/perl"); err == nil {
		tn.install("fds.cgi", "fds.cgi")
		if got := parseKV(get(h, tn.site, "/cgi-bin/fds.cgi").Body.String())["fds"]; got != "0,1,2" {
			t.Errorf("perl script sees fds %q, want 0,1,2", got)
		}
	}
	check("umask", "022")
	check("oom_score_adj", "500")
	check("cwd", tn.site.CGIBin)
	check("SigIgn", "0000000000000000")
	check("SigBlk", "0000000000000000")
	check("rlimit_cpu", "2")
	check("rlimit_as", fmt.Sprint(4<<30))
	check("rlimit_nofile", "200")
	check("rlimit_fsize", fmt.Sprint(1<<20))
	check("rlimit_core", "0")
	if kv["pgid"] != kv["pid"] || kv["sid"] != kv["pid"] {
		t.Errorf("pid %s pgid %s sid %s: want a session and group of its own", kv["pid"], kv["pgid"], kv["sid"])
	}
	if isRoot() {
		uid := fmt.Sprint(tn.site.Owner)
		check("uid", uid)
		check("euid", uid)
		check("gid", fmt.Sprint(tn.site.Group))
		check("egid", fmt.Sprint(tn.site.Group))
		check("groups", "[]")
		check("CapEff", "0000000000000000")
		check("CapPrm", "0000000000000000")
		check("CapInh", "0000000000000000")
		check("CapBnd", "0000000000000000")
		check("rlimit_nproc", "50")
	} else {
		t.Log("not root: identity switch not exercised")
	}
}

// RLIMIT_NPROC is per real uid, so it only fences a tenant whose scripts
// run under its own uid.
func TestLaunchForkCappedByNproc(t *testing.T) {
	requireRoot(t)
	requireInterpreter(t, "/usr/bin/perl")
	tn := newTenant(t, "a.test")
	tn.install("fork.cgi", "fork.cgi")
	h, _ := newTestHandler(t, Options{Limits: Limits{Processes: 16}})
	w := get(h, tn.site, "/cgi-bin/fork.cgi")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %q", w.Code, w.Body)
	}
	var forked, failed int
	if _, err := fmt.Sscanf(w.Body.String(), "forked=%d failed=%d", &forked, &failed); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if forked >= 16 || failed < 1000-16 {
		t.Errorf("forked %d, failed %d: want fewer than 16 forks", forked, failed)
	}
	waitGone(t, "forked children", 5*time.Second, ofUID(tn.site.Owner))
}

// A tenant over its process limit gets 503: the kernel flags the launcher's
// setuid (the count exceeds RLIMIT_NPROC) and fails its execve with EAGAIN.
func TestLaunchNprocExhaustedIs503(t *testing.T) {
	requireRoot(t)
	tn := newTenant(t, "a.test")
	tn.install("hello.cgi", "hello.cgi")
	// Three processes already run as the tenant, whose limit is two.
	for range 3 {
		cmd := exec.Command("/bin/sleep", "600")
		cmd.SysProcAttr = credential(tn)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	h, _ := newTestHandler(t, Options{Limits: Limits{Processes: 2}})
	w := get(h, tn.site, "/cgi-bin/hello.cgi")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q, want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
}

// A script swapped for another file between the check and the exec is
// refused by the launcher, which compares device and inode.
func TestLaunchDetectsSwappedScript(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("hello.cgi", "hello.cgi")
	h, logs := newTestHandler(t, Options{})
	r := httptest.NewRequest(http.MethodGet, "/cgi-bin/hello.cgi", nil)
	segs, prefix, rf := splitURLPath(r.URL.Path, ScriptAlias)
	if rf != nil {
		t.Fatal(rf)
	}
	s, rf := locate(tn.site.CGIBin, segs, prefix)
	if rf != nil {
		t.Fatal(rf)
	}
	defer s.close()
	if s.runAs, rf = h.policy.check(s, tn.site); rf != nil {
		t.Fatal(rf)
	}
	// Replace the file after it was located and checked.
	tn.install("env.cgi", "hello.cgi.new")
	if err := os.Rename(tn.site.CGIBin+"/hello.cgi.new", tn.site.CGIBin+"/hello.cgi"); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.run(w, r, tn.site, s, &body{})
	if w.Code != http.StatusForbidden {
		t.Fatalf("status %d, want 403; body %q", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "script changed between check and exec") {
		t.Errorf("log does not say why: %s", logs)
	}
}

// With KeepBoundingSet the script keeps the server's capability bounding
// set; by default (TestLaunchIsolation) it is empty.
func TestLaunchKeepsBoundingSet(t *testing.T) {
	requireRoot(t)
	tn := newTenant(t, "a.test")
	tn.child("whoami", "whoami")
	// The child is this test binary: under the race detector it needs more
	// address space than the default RLIMIT_AS, as in TestLaunchIsolation.
	h, logs := newTestHandler(t, Options{KeepBoundingSet: true, Limits: Limits{AddressSpace: 4 << 30}})
	w := get(h, tn.site, "/cgi-bin/whoami")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %q; log:\n%s", w.Code, w.Body, logs)
	}
	if got := parseKV(w.Body.String())["CapBnd"]; got == "" || got == "0000000000000000" {
		t.Errorf("CapBnd = %q with KeepBoundingSet, want the server's (non-zero)", got)
	}
}
