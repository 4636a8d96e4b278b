// FS-06: dot-files and other hidden names.
//
// Exploit: fetch a tenant's .git/config, .env, .htaccess, .htpasswd and a
// nested .git/HEAD, directly and through encodings the router sees decoded
// (%2e, %67, an encoded slash), as raw bytes. http.Dir serves every one.
//
// Expectation: 404 for all, with none of the files' bytes; the ACME
// challenge directory is not served either unless configured.
package security

import (
	"strings"
	"testing"
)

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
