package cgi

import (
	"fmt"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// rootOwned makes the tenant's whole tree belong to root, as the shipped
// examples do when root clones the repository.
func (tn *tenant) rootOwned() {
	tn.t.Helper()
	err := filepath.WalkDir(tn.site.Root, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, 0, 0)
	})
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.site.Owner, tn.site.Group = 0, 0
}

// As root, a root-owned site's scripts run as the anonymous identity with
// no supplementary groups, while a tenant that owns its tree keeps its own
// uid under the same handler.
func TestAnonymousIdentity(t *testing.T) {
	requireRoot(t)
	anon := nextUID.Add(1) - 1 // in the test range, so the stray scan covers it
	h, logs := newTestHandler(t, Options{Anonymous: Identity{UID: anon, GID: anon}, Limits: goChild})

	shared := newTenant(t, "alpha.test")
	shared.child("whoami", "whoami")
	shared.rootOwned()
	w := get(h, shared.site, "/cgi-bin/whoami")
	if w.Code != http.StatusOK {
		t.Fatalf("root-owned site: status %d, log:\n%s", w.Code, logs)
	}
	kv := parseKV(w.Body.String())
	for k, want := range map[string]string{
		"uid": fmt.Sprint(anon), "euid": fmt.Sprint(anon), "gid": fmt.Sprint(anon), "egid": fmt.Sprint(anon),
		"groups": "[]", "CapEff": "0000000000000000",
	} {
		if kv[k] != want {
			t.Errorf("root-owned site: %s = %q, want %q", k, kv[k], want)
		}
	}

	own := newTenant(t, "a.test")
	own.child("whoami", "whoami")
	w = get(h, own.site, "/cgi-bin/whoami")
	if got := parseKV(w.Body.String())["uid"]; w.Code != http.StatusOK || got != fmt.Sprint(own.site.Owner) {
		t.Errorf("tenant-owned site: status %d uid %q, want 200 and uid %d", w.Code, got, own.site.Owner)
	}
}

// Without an anonymous identity a root-owned site runs nothing; with one,
// the suEXEC checks still hold against the site's owner, root: a script
// that is not root's, or that the anonymous user could not execute, is
// refused before anything is spawned.
func TestAnonymousChecks(t *testing.T) {
	requireRoot(t)
	anon := nextUID.Add(1) - 1
	tests := []struct {
		name    string
		anon    Identity
		prepare func(t *testing.T, tn *tenant, script string)
		reason  string
	}{
		{"no anonymous identity", Identity{}, func(*testing.T, *tenant, string) {}, "tenant uid is 0"},
		{"script owned by a tenant uid", Identity{anon, anon}, func(t *testing.T, tn *tenant, p string) {
			must(t, os.Lchown(p, int(anon)+1, int(anon)+1))
		}, "is owned by uid"},
		{"script owned by the anonymous user", Identity{anon, anon}, func(t *testing.T, tn *tenant, p string) {
			must(t, os.Lchown(p, int(anon), 0))
		}, "is owned by uid"},
		{"script not executable by others", Identity{anon, anon}, func(t *testing.T, tn *tenant, p string) {
			must(t, os.Chmod(p, 0o750))
		}, "not executable by the anonymous uid"},
		{"cgi-bin not searchable by others", Identity{anon, anon}, func(t *testing.T, tn *tenant, _ string) {
			must(t, os.Chmod(tn.site.CGIBin, 0o750))
		}, "not searchable"},
		{"site owned by the anonymous user", Identity{anon, anon}, func(t *testing.T, tn *tenant, _ string) {
			tn.site.Owner = anon
		}, "anonymous user's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTenant(t, "alpha.test")
			p := tn.install("hello.cgi", "hello.cgi")
			tn.rootOwned()
			tc.prepare(t, tn, p)
			h, logs := newTestHandler(t, Options{Anonymous: tc.anon})
			w := get(h, tn.site, "/cgi-bin/hello.cgi")
			if w.Code != http.StatusForbidden || h.Stats().Spawned != 0 {
				t.Fatalf("status %d, spawned %d: want 403 and nothing spawned", w.Code, h.Stats().Spawned)
			}
			if !strings.Contains(logs.String(), tc.reason) {
				t.Errorf("log lacks %q:\n%s", tc.reason, logs)
			}
		})
	}
}

func TestNewRejectsAnonymous(t *testing.T) {
	for _, id := range []Identity{{0, 65534}, {65534, 0}, {999, 65534}, {65534, 10}} {
		if _, err := New(Options{Anonymous: id}); err == nil || !strings.Contains(err.Error(), "Anonymous") {
			t.Errorf("New(Anonymous: %+v) = %v, want an error naming Anonymous", id, err)
		}
	}
	if h, err := New(Options{Anonymous: Identity{500, 500}, MinUID: 100, MinGID: 100}); err != nil {
		t.Errorf("uid 500 with MinUID 100: %v", err)
	} else {
		h.Close()
	}
}

func TestLookupUser(t *testing.T) {
	for _, name := range []string{"", "root", "0", "no-such-user-massvhost"} {
		if id, err := LookupUser(name); err == nil {
			t.Errorf("LookupUser(%q) = %+v, want an error", name, id)
		}
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	want := fmt.Sprintf("{UID:%s GID:%s}", u.Uid, u.Gid)
	for _, name := range []string{"nobody", u.Uid} {
		id, err := LookupUser(name)
		if err != nil || fmt.Sprintf("%+v", id) != want {
			t.Errorf("LookupUser(%q) = %+v, %v; want %s", name, id, err, want)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
