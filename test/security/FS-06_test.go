// FS-06: dot-files and other hidden names.
//
// Exploit: fetch a tenant's .git/config, .env, .htaccess, .htpasswd and a
// nested .git/HEAD, directly and through encodings the router sees decoded
// (%2e, %67, an encoded slash), as raw bytes. http.Dir serves every one.
// Then the backups editors and tools leave beside what they edit
// (index.html~, config.php.bak, .swp/.swo, .orig, .save, #x#), as files,
// as directories on the way, as scripts in cgi-bin and as their path info,
// directly and percent-encoded.
//
// Expectation: 404 for all, with none of the files' bytes; the ACME
// challenge directory is not served either unless configured. Backup
// names (sites.deny_names) get exactly the 404 of a missing file, run no
// script and are left out of listings; other names are served.
package security

import (
	"strings"
	"testing"
)

func TestFS06BackupNames(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	for _, f := range []string{"index.html~", "config.php.bak", "config.php.swp", "config.php.swo", "app.cgi.orig",
		"notes.save", "#draft.html#", "old~/secret.txt", "backup.bak/db.sql", "sub/page.html.swo", "sub/deep/x.bak"} {
		a.file(f, "HIDDEN-"+f+"\n", 0o644)
	}
	a.file("sub/page.html", "visible page\n", 0o644)
	a.file("notes.txt", "visible notes\n", 0o644)
	a.script("env.cgi~", "printf 'Content-Type: text/plain\\r\\n\\r\\nHIDDEN-ran\\n'\n")
	a.script("env.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nran %s\\n' \"$PATH_INFO\"\n")
	a.script("env.cgi.bak", "printf 'Content-Type: text/plain\\r\\n\\r\\nHIDDEN-ran\\n'\n")
	p := start(t, w.config(cfg{Sites: "  listing: true\n"}))
	missing := p.get("a.test", "/no-such-file")
	if missing.Status != 404 {
		t.Fatalf("missing file: %d, want 404", missing.Status)
	}
	spawned := p.metric("massvhost_cgi_spawned_total")
	for _, path := range []string{
		"/index.html~", "/config.php.bak", "/config.php.swp", "/config.php.swo", "/app.cgi.orig", "/notes.save",
		"/%23draft.html%23", "/index.html%7e", "/index.html%7E", "/config.php%2ebak", "/config%2Ephp.bak",
		"/old~/secret.txt", "/old%7e/secret.txt", "/backup.bak/db.sql", "/backup.bak/", "/backup.bak",
		"/sub/page.html.swo", "/sub//deep/x.bak", "/sub/deep/x.bak/",
		"/cgi-bin/env.cgi~", "/cgi-bin/env.cgi.bak", "/cgi-bin/env.cgi%7e", "/cgi-bin/env.cgi/x.bak",
	} {
		r := p.get("a.test", path)
		if r.Status != 404 || r.Body != missing.Body || strings.Contains(r.Body, "HIDDEN-") {
			t.Errorf("GET %s: %d %q, want the 404 of a missing file", path, r.Status, r.Body)
		}
	}
	if d := p.metric("massvhost_cgi_spawned_total") - spawned; d != 0 {
		t.Errorf("%v scripts started for backup names", d)
	}
	for path, want := range map[string]string{
		"/notes.txt": "visible notes\n", "/sub/page.html": "visible page\n", "/cgi-bin/env.cgi/x.txt": "ran /x.txt\n",
	} {
		if r := p.get("a.test", path); r.Status != 200 || r.Body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, r.Status, r.Body, want)
		}
	}
	for _, dir := range []string{"/sub/", "/sub/deep/"} {
		r := p.get("a.test", dir)
		if r.Status != 200 || !strings.Contains(r.Body, "<h1>") {
			t.Fatalf("listing %s: %d %q", dir, r.Status, r.Body)
		}
		for _, name := range []string{"~", ".bak", ".swp", ".swo", ".orig", ".save", "#"} {
			if strings.Contains(r.Body, name) {
				t.Errorf("listing %s shows a %q name: %q", dir, name, r.Body)
			}
		}
	}
}

func TestFS06DotFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	for _, f := range []string{".git/config", ".env", ".htaccess", ".htpasswd", "sub/.git/HEAD", ".ssh/id_rsa",
		".well-known/acme-challenge/tok"} {
		a.file(f, "HIDDEN-"+f+"\n", 0o644)
	}
	p := start(t, w.config(cfg{}))
	for _, path := range []string{
		"/.git/config", "/.env", "/.htaccess", "/.htpasswd", "/sub/.git/HEAD", "/.ssh/id_rsa",
		"/.%67it/config", "/%2egit/config", "/.git%2fconfig", "/%2e%65nv", "/sub/%2egit/HEAD",
		"/.git/", "/.git", "/sub/.git/", "//.env", "/sub//.git/HEAD", "/./.env",
		"/.well-known/acme-challenge/tok",
	} {
		r := p.get("a.test", path)
		if r.Status != 404 || strings.Contains(r.Body, "HIDDEN-") {
			t.Errorf("GET %s: %d %q, want 404", path, r.Status, r.Body)
		}
	}
}
