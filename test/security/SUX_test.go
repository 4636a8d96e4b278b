// SUX: the suEXEC checks (Apache support/suexec.c), black-box.
//
// Exploit: scripts that suEXEC refuses to run, requested over HTTP: in a
// world-writable cgi-bin, group-writable, setuid, setgid, not executable,
// owned by another tenant, owned by root, a symlink (to /bin/sh and to a
// file of the tenant's own), below a group-writable subdirectory, a cgi-bin
// that is itself a symlink to /usr/bin, and tenants whose tree belongs to
// root or to a uid below cgi.min_uid (a system account).
//
// Expectation: 403 (or 404 for what is not a script at all), never a run:
// the spawn counter moves only for the control script. With
// cgi.anonymous_user (default nobody), root- and system-owned sites run
// their scripts as that user instead — never as root or as the owning
// system account. Needs root.
package security

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSUXChecks(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	w := newWorld(t, "a.test", "b.test", "ww.test", "low.test", "root.test", "symbin.test")
	a, b := w.tenant("a.test"), w.tenant("b.test")
	const body = "printf 'Content-Type: text/plain\\r\\n\\r\\nRAN\\n'\n"
	a.script("good.cgi", body)
	chmod := func(p string, mode os.FileMode) { must(t, os.Chmod(p, mode)) }
	chmod(a.script("groupw.cgi", body), 0o775)
	chmod(a.script("otherw.cgi", body), 0o757)
	chmod(a.script("setuid.cgi", body), os.ModeSetuid|0o755)
	chmod(a.script("setgid.cgi", body), os.ModeSetgid|0o755)
	chmod(a.script("noexec.cgi", body), 0o644)
	must(t, os.Lchown(a.script("foreign.cgi", body), int(b.UID), int(b.GID)))
	must(t, os.Lchown(a.script("rootowned.cgi", body), 0, 0))
	must(t, os.Lchown(a.script("rootgroup.cgi", body), int(a.UID), 0))
	a.script("sub/inner.cgi", body)
	chmod(filepath.Join(a.CGIBin, "sub"), 0o775)
	for name, target := range map[string]string{"sh.cgi": "/bin/sh", "own.cgi": "good.cgi"} {
		p := filepath.Join(a.CGIBin, name)
		must(t, os.Symlink(target, p))
		must(t, os.Lchown(p, int(a.UID), int(a.GID)))
	}

	ww := w.tenant("ww.test")
	ww.script("x.cgi", body)
	chmod(ww.CGIBin, 0o777)
	const whoami = "printf 'Content-Type: text/plain\\r\\n\\r\\nRAN uid=%s\\n' \"$(id -u)\"\n"
	w.tenant("low.test").script("x.cgi", whoami)
	chownTree(t, w.tenant("low.test"), 500)
	w.tenant("root.test").script("x.cgi", whoami)
	chownTree(t, w.tenant("root.test"), 0)
	sb := w.tenant("symbin.test")
	must(t, os.Remove(sb.CGIBin))
	must(t, os.Symlink("/usr/bin", sb.CGIBin))

	// Without an anonymous user, sites owned by root or by a uid below
	// min_uid run nothing, as under suEXEC.
	p := start(t, w.config(cfg{CGI: "  anonymous_user: \"\"\n"}))
	before := p.metric("massvhost_cgi_spawned_total")
	for _, tc := range []struct{ host, path string }{
		{"a.test", "/cgi-bin/groupw.cgi"},
		{"a.test", "/cgi-bin/otherw.cgi"},
		{"a.test", "/cgi-bin/setuid.cgi"},
		{"a.test", "/cgi-bin/setgid.cgi"},
		{"a.test", "/cgi-bin/noexec.cgi"},
		{"a.test", "/cgi-bin/foreign.cgi"},
		{"a.test", "/cgi-bin/rootowned.cgi"},
		{"a.test", "/cgi-bin/rootgroup.cgi"},
		{"a.test", "/cgi-bin/sub/inner.cgi"},
		{"a.test", "/cgi-bin/sh.cgi"},
		{"a.test", "/cgi-bin/own.cgi"},
		{"ww.test", "/cgi-bin/x.cgi"},
		{"low.test", "/cgi-bin/x.cgi"},
		{"root.test", "/cgi-bin/x.cgi"},
		{"symbin.test", "/cgi-bin/id"},
	} {
		r := p.get(tc.host, tc.path)
		if r.Status != 403 && r.Status != 404 || strings.HasPrefix(r.Body, "RAN") {
			t.Errorf("%s%s: %d %q, want 403 or 404", tc.host, tc.path, r.Status, r.Body)
		}
	}
	if after := p.metric("massvhost_cgi_spawned_total"); after != before {
		t.Errorf("spawn counter moved from %v to %v: a refused script ran", before, after)
	}
	if r := p.get("a.test", "/cgi-bin/good.cgi"); r.Status != 200 || r.Body != "RAN\n" {
		t.Errorf("control script: %d %q", r.Status, r.Body)
	}
	if n := p.metric(`massvhost_cgi_rejected_total{reason="check"}`); n < 10 {
		t.Errorf("only %v refusals counted by the checks", n)
	}

	// With the default anonymous user (nobody), those sites' scripts run
	// as nobody: never as root, never as the system account owning them.
	p = start(t, w.config(cfg{}))
	for _, host := range []string{"low.test", "root.test"} {
		r := p.get(host, "/cgi-bin/x.cgi")
		if r.Status != 200 || r.Body != "RAN uid=65534\n" {
			t.Errorf("%s with anonymous_user nobody: %d %q, want to run as uid 65534", host, r.Status, r.Body)
		}
	}
	for _, path := range []string{"/cgi-bin/setuid.cgi", "/cgi-bin/foreign.cgi", "/cgi-bin/sh.cgi"} {
		if r := p.get("a.test", path); r.Status != 403 && r.Status != 404 {
			t.Errorf("a.test%s with anonymous_user nobody: %d, want 403 or 404", path, r.Status)
		}
	}
}

// chownTree gives a tenant's whole tree to uid (and the same gid).
func chownTree(t *testing.T, tn *tenant, uid int) {
	t.Helper()
	must(t, filepath.Walk(tn.Root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	}))
	tn.UID, tn.GID = uint32(uid), uint32(uid)
}
