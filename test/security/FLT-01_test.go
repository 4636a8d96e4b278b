// FLT-01: configuration reload with a bad file.
//
// Exploit: the running server's configuration file is replaced by broken
// YAML, an empty file (what a truncate-then-write editor leaves; viper's
// watcher reloads after a failed read and an empty file parses as "all
// defaults"), a file with a duplicate key, one with a misspelled key, one
// with a dangerous value (cgi.min_uid: 0, which would let scripts run as
// root) and one naming a sites.root that does not exist; each followed by
// SIGHUP. Then a valid change, written with an atomic rename, and then one
// reached through a swapped symlink (the Kubernetes ConfigMap pattern).
//
// Expectation: every bad file is rejected — the error is logged, the
// failure counter moves, and the running configuration keeps serving
// unchanged — and each valid change is applied.
package security

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFLT01BadReload(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.file("home.html", "home page\n", 0o644)
	a.file("other.html", "other page\n", 0o644)
	base := w.config(cfg{})
	p := start(t, base)
	page := func() string { return p.get("a.test", "/").Body }
	if got := page(); got != "tenant a.test\n" {
		t.Fatalf("before reload: %q", got)
	}
	failures := func() float64 { return p.metric(`massvhost_config_reloads_total{result="failure"}`) }
	successes := func() float64 { return p.metric(`massvhost_config_reloads_total{result="success"}`) }

	bad := []struct{ name, content string }{
		{"broken YAML", "sites: [\n"},
		{"empty file", ""},
		{"only a comment", "# nothing here\n"},
		{"duplicate key", strings.Replace(base, "sites:\n", "sites:\n  index: [home.html]\n  index: [other.html]\n", 1)},
		{"misspelled key", strings.Replace(base, "sites:\n", "sites:\n  indx: [home.html]\n", 1)},
		{"cgi.min_uid 0", strings.Replace(base, "cgi:\n", "cgi:\n  min_uid: 0\n", 1) + ""},
		{"cgi.min_gid 0", strings.Replace(base, "cgi:\n", "cgi:\n  min_gid: 0\n", 1)},
		{"missing sites.root", strings.Replace(base, w.Sites, filepath.Join(w.Dir, "nope"), 1)},
		{"bad duration", strings.Replace(base, "  timeout: 10s\n", "  timeout: forever\n", 1)},
	}
	for i, tc := range bad {
		f0 := failures()
		must(t, os.WriteFile(p.ConfigPath, []byte(tc.content), 0o644))
		p.signal(syscall.SIGHUP)
		if !eventually(10*time.Second, func() bool { return failures() > f0 }) {
			t.Fatalf("%s: reload failure not counted\n%s", tc.name, tail(p.Output(), 2000))
		}
		if !eventually(5*time.Second, func() bool { return strings.Count(p.Output(), "reload failed") >= i+1 }) {
			t.Errorf("%s: no reload error in the log", tc.name)
		}
		if got := page(); got != "tenant a.test\n" {
			t.Errorf("%s: the running configuration changed: GET / = %q", tc.name, got)
		}
	}
	if n := successes(); n != 0 {
		t.Errorf("%v successful reloads counted for bad files", n)
	}

	// A valid change, written as editors and config managers do: a new
	// file renamed over the old one.
	good := strings.Replace(base, "sites:\n", "sites:\n  index: [home.html]\n", 1)
	tmp := p.ConfigPath + ".new"
	must(t, os.WriteFile(tmp, []byte(good), 0o644))
	must(t, os.Rename(tmp, p.ConfigPath))
	p.signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool { return page() == "home page\n" }) {
		t.Fatalf("valid change not applied: %q\n%s", page(), tail(p.Output(), 2000))
	}

	// ConfigMap style: the file is a symlink into a versioned directory,
	// and the update swaps the symlink.
	dir := filepath.Dir(p.ConfigPath)
	v2 := filepath.Join(dir, "v2")
	must(t, os.Mkdir(v2, 0o755))
	must(t, os.WriteFile(filepath.Join(v2, "massvhost.yaml"),
		[]byte(strings.Replace(base, "sites:\n", "sites:\n  index: [other.html]\n", 1)), 0o644))
	link := filepath.Join(dir, "link.tmp")
	must(t, os.Symlink(filepath.Join(v2, "massvhost.yaml"), link))
	must(t, os.Rename(link, p.ConfigPath))
	p.signal(syscall.SIGHUP)
	if !eventually(10*time.Second, func() bool { return page() == "other page\n" }) {
		t.Fatalf("symlink-swapped change not applied: %q", page())
	}
	if !p.alive() {
		t.Fatal("server exited")
	}
}
