package cgi

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"massvhost/vhost"
)

// TestSuexecChecks builds, as root, one tenant tree per violation of the
// suEXEC model and requests the script: every one is refused with 403 and
// its reason in the log, and nothing is spawned.
func TestSuexecChecks(t *testing.T) {
	requireRoot(t)
	const script = "x.cgi"
	chmod := func(path string, mode uint32) {
		t.Helper()
		if err := unix.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	chown := func(path string, uid, gid int) {
		t.Helper()
		if err := os.Lchown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		prepare func(tn *tenant, path string)
		reason  string
	}{
		{"world-writable cgi-bin", func(tn *tenant, _ string) { chmod(tn.site.CGIBin, 0o777) }, "writable by others"},
		{"group-writable cgi-bin", func(tn *tenant, _ string) { chmod(tn.site.CGIBin, 0o775) }, "group-writable"},
		{"world-writable script", func(_ *tenant, p string) { chmod(p, 0o757) }, "writable by others"},
		{"group-writable script", func(_ *tenant, p string) { chmod(p, 0o775) }, "group-writable"},
		{"setuid script", func(_ *tenant, p string) { chmod(p, 0o4755) }, "setuid or setgid"},
		{"setgid script", func(_ *tenant, p string) { chmod(p, 0o2755) }, "setuid or setgid"},
		{"not executable", func(_ *tenant, p string) { chmod(p, 0o644) }, "not executable"},
		{"executable by group only", func(_ *tenant, p string) { chmod(p, 0o654) }, "not executable by its owner"},
		{"script of another uid", func(tn *tenant, p string) {
			chown(p, int(tn.site.Owner)+1000, int(tn.site.Group))
		}, "is owned by uid"},
		{"script of another gid", func(tn *tenant, p string) {
			chown(p, int(tn.site.Owner), int(tn.site.Group)+1000)
		}, "has gid"},
		{"script owned by root", func(_ *tenant, p string) { chown(p, 0, 0) }, "owned by uid 0"},
		{"cgi-bin of another uid", func(tn *tenant, _ string) {
			chown(tn.site.CGIBin, int(tn.site.Owner)+1000, int(tn.site.Group))
		}, "is owned by uid"},
		{"group-writable subdirectory", func(tn *tenant, _ string) {
			chmod(filepath.Join(tn.site.CGIBin, "sub"), 0o775)
		}, "group-writable"},
		{"tenant uid 0", func(tn *tenant, _ string) { tn.site.Owner = 0 }, "tenant uid is 0"},
		{"tenant gid 0", func(tn *tenant, _ string) { tn.site.Group = 0 }, "tenant gid is 0"},
		{"tenant uid below min_uid", func(tn *tenant, _ string) { tn.site.Owner = 999 }, "below min_uid"},
		{"tenant gid below min_gid", func(tn *tenant, _ string) { tn.site.Group = 33 }, "below min_gid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTenant(t, "a.test")
			tn.install("hello.cgi", script)
			path := tn.install("hello.cgi", "sub/"+script)
			target := "/cgi-bin/sub/" + script
			if !strings.Contains(tc.name, "subdirectory") {
				path = filepath.Join(tn.site.CGIBin, script)
				target = "/cgi-bin/" + script
			}
			tc.prepare(tn, path)
			h, logs := newTestHandler(t, Options{})
			w := get(h, tn.site, target)
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403 (body %q)", w.Code, w.Body)
			}
			st := h.Stats()
			if st.Spawned != 0 || st.FailedChecks != 1 {
				t.Errorf("stats %+v: want nothing spawned and one failed check", st)
			}
			if !strings.Contains(logs.String(), tc.reason) {
				t.Errorf("log lacks %q:\n%s", tc.reason, logs)
			}
			if strings.Contains(w.Body.String(), tc.reason) {
				t.Errorf("reason leaked to the client: %q", w.Body)
			}
		})
	}
	t.Run("control: a correct tree runs", func(t *testing.T) {
		tn := newTenant(t, "a.test")
		tn.install("hello.cgi", script)
		h, _ := newTestHandler(t, Options{})
		if w := get(h, tn.site, "/cgi-bin/"+script); w.Code != http.StatusOK || w.Body.String() != "hello\n" {
			t.Fatalf("status %d body %q", w.Code, w.Body)
		}
	})
}

// TestPolicy covers the check logic on synthetic stat data, privileged and
// not, so that it runs without root too.
func TestPolicy(t *testing.T) {
	site := vhost.Site{Owner: 20001, Group: 20001}
	stat := func(mode uint32, uid, gid uint32) unix.Stat_t { return unix.Stat_t{Mode: mode, Uid: uid, Gid: gid} }
	dir := func(perm uint32) unix.Stat_t { return stat(unix.S_IFDIR|perm, 20001, 20001) }
	file := func(perm uint32) unix.Stat_t { return stat(unix.S_IFREG|perm, 20001, 20001) }
	anon := Identity{UID: 65534, GID: 65534}
	rootDir := func(perm uint32) unix.Stat_t { return stat(unix.S_IFDIR|perm, 0, 0) }
	rootFile := func(perm uint32) unix.Stat_t { return stat(unix.S_IFREG|perm, 0, 0) }
	rootSite := vhost.Site{Owner: 0, Group: 0}
	tests := []struct {
		name       string
		privileged bool
		anonymous  Identity
		dirs       []unix.Stat_t
		file       unix.Stat_t
		site       vhost.Site
		reason     string   // "" = allowed
		runAs      Identity // checked when allowed and privileged
	}{
		{name: "root: ok", privileged: true, dirs: []unix.Stat_t{dir(0o755)}, file: file(0o755), site: site, runAs: Identity{20001, 20001}},
		{name: "root: 0700 script ok", privileged: true, dirs: []unix.Stat_t{dir(0o711)}, file: file(0o700), site: site, runAs: Identity{20001, 20001}},
		{name: "root: group-writable dir", privileged: true, dirs: []unix.Stat_t{dir(0o775)}, file: file(0o755), site: site, reason: "group-writable"},
		{name: "root: foreign file", privileged: true, dirs: []unix.Stat_t{dir(0o755)}, file: stat(unix.S_IFREG|0o755, 1, 20001), site: site, reason: "owned by uid 1"},
		{name: "root: min uid", privileged: true, dirs: []unix.Stat_t{dir(0o755)}, file: file(0o755), site: vhost.Site{Owner: 500, Group: 20001}, reason: "below min_uid"},
		{name: "root: script dir not searchable by owner", privileged: true, dirs: []unix.Stat_t{dir(0o755), dir(0o655)}, file: file(0o755), site: site, reason: "not searchable by uid 20001"},
		{name: "root: root-owned site without anonymous", privileged: true, dirs: []unix.Stat_t{rootDir(0o755)}, file: rootFile(0o755), site: rootSite, reason: "tenant uid is 0"},
		{name: "anonymous: root-owned site", privileged: true, anonymous: anon, dirs: []unix.Stat_t{rootDir(0o755)}, file: rootFile(0o755), site: rootSite, runAs: anon},
		{name: "anonymous: system-owned site", privileged: true, anonymous: anon,
			dirs: []unix.Stat_t{stat(unix.S_IFDIR|0o755, 33, 33)}, file: stat(unix.S_IFREG|0o755, 33, 33), site: vhost.Site{Owner: 33, Group: 33}, runAs: anon},
		{name: "anonymous: tenant keeps its own uid", privileged: true, anonymous: anon, dirs: []unix.Stat_t{dir(0o755)}, file: file(0o755), site: site, runAs: Identity{20001, 20001}},
		{name: "anonymous: tenant gid below min_gid still refused", privileged: true, anonymous: anon, dirs: []unix.Stat_t{dir(0o755)}, file: file(0o755), site: vhost.Site{Owner: 20001, Group: 100}, reason: "below min_gid"},
		{name: "anonymous: script of another owner", privileged: true, anonymous: anon, dirs: []unix.Stat_t{rootDir(0o755)}, file: file(0o755), site: rootSite, reason: "owned by uid 20001"},
		{name: "anonymous: group-writable script", privileged: true, anonymous: anon, dirs: []unix.Stat_t{rootDir(0o755)}, file: rootFile(0o775), site: rootSite, reason: "group-writable"},
		{name: "anonymous: script not executable by others", privileged: true, anonymous: anon, dirs: []unix.Stat_t{rootDir(0o755)}, file: rootFile(0o750), site: rootSite, reason: "not executable by the anonymous uid 65534"},
		{name: "anonymous: script executable through its group", privileged: true, anonymous: anon,
			dirs: []unix.Stat_t{stat(unix.S_IFDIR|0o750, 0, 65534)}, file: stat(unix.S_IFREG|0o750, 0, 65534), site: vhost.Site{Owner: 0, Group: 65534}, runAs: anon},
		{name: "anonymous: script dir not searchable", privileged: true, anonymous: anon, dirs: []unix.Stat_t{rootDir(0o700)}, file: rootFile(0o755), site: rootSite, reason: "not searchable by uid 65534"},
		{name: "anonymous: site owned by the anonymous user", privileged: true, anonymous: anon,
			dirs: []unix.Stat_t{stat(unix.S_IFDIR|0o755, 65534, 0)}, file: stat(unix.S_IFREG|0o755, 65534, 0), site: vhost.Site{Owner: 65534, Group: 0}, reason: "anonymous user's"},
		{name: "user: group-writable allowed", dirs: []unix.Stat_t{dir(0o775)}, file: file(0o775), site: site},
		{name: "user: foreign owner allowed", dirs: []unix.Stat_t{stat(unix.S_IFDIR|0o755, 1, 1)}, file: stat(unix.S_IFREG|0o755, 1, 1), site: vhost.Site{}},
		{name: "user: root-owned site allowed", anonymous: anon, dirs: []unix.Stat_t{rootDir(0o755)}, file: rootFile(0o755), site: rootSite},
		{name: "user: world-writable dir", dirs: []unix.Stat_t{dir(0o757)}, file: file(0o755), site: site, reason: "writable by others"},
		{name: "user: world-writable file", dirs: []unix.Stat_t{dir(0o755)}, file: file(0o777), site: site, reason: "writable by others"},
		{name: "user: setuid", dirs: []unix.Stat_t{dir(0o755)}, file: file(0o4755), site: site, reason: "setuid"},
		{name: "user: not executable", dirs: []unix.Stat_t{dir(0o755)}, file: file(0o644), site: site, reason: "not executable"},
		{name: "user: executable by others only", dirs: []unix.Stat_t{dir(0o755)}, file: file(0o641), site: site},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{dirs: tc.dirs, file: tc.file, filename: "/t/cgi-bin/x.cgi"}
			for range tc.dirs {
				s.dirNames = append(s.dirNames, "/t/cgi-bin")
			}
			p := policy{privileged: tc.privileged, minUID: 1000, minGID: 1000, anonymous: tc.anonymous}
			id, rf := p.check(s, tc.site)
			switch {
			case tc.reason == "" && rf != nil:
				t.Fatalf("refused: %v", rf)
			case tc.reason == "" && id != tc.runAs:
				t.Fatalf("runs as %+v, want %+v", id, tc.runAs)
			case tc.reason != "" && (rf == nil || !strings.Contains(rf.reason, tc.reason)):
				t.Fatalf("got %v, want a refusal mentioning %q", rf, tc.reason)
			case rf != nil && rf.status != http.StatusForbidden:
				t.Fatalf("status %d, want 403", rf.status)
			}
		})
	}
}
