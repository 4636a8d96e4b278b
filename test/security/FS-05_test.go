// FS-05: filesystem error mapping.
//
// Exploit: provoke the error paths of the static file server — a
// 5000-character path, a 300-character name (ENAMETOOLONG), files and
// directories the tenant made unreadable with chmod, a path
// through a file ("/file/x", ENOTDIR), a FIFO and a symlink loop — hoping
// for a 500 whose body names the server's paths.
//
// Expectation: 404, 403 or 414, never 500 or a hang, and no body contains a
// filesystem path (the temporary tree lives under /tmp). A file others may
// not read (chmod 000, 0600, or inside a 0700 directory) is not served even
// though the server runs as root and could read it: a tenant's chmod means
// what it means under an unprivileged web server.
package security

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestFS05ErrorMapping(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.file("locked.txt", "LOCKED-CONTENT\n", 0o000)
	a.file("lockeddir/inner.txt", "LOCKED-CONTENT\n", 0o644)
	must(t, os.Chmod(filepath.Join(a.DocRoot, "lockeddir"), 0o000))
	a.file("plain.txt", "plain\n", 0o644)
	a.file("private.txt", "LOCKED-CONTENT\n", 0o600)
	a.file("privdir/inner.txt", "LOCKED-CONTENT\n", 0o644)
	must(t, os.Chmod(filepath.Join(a.DocRoot, "privdir"), 0o700))
	must(t, syscall.Mkfifo(filepath.Join(a.DocRoot, "fifo"), 0o644))
	a.symlink("loop2", "loop1")
	a.symlink("loop1", "loop2")
	p := start(t, w.config(cfg{}))

	cases := []struct {
		path string
		want []int
	}{
		{"/" + strings.Repeat("a", 5000), []int{404, 414}},
		{"/" + strings.Repeat("abcdefghi/", 500), []int{404, 414}},
		{"/" + strings.Repeat("n", 300) + ".html", []int{404, 414}},
		{"/locked.txt", []int{403, 404}},
		{"/lockeddir/inner.txt", []int{403, 404}},
		{"/lockeddir/", []int{403, 404}},
		{"/private.txt", []int{403, 404}},
		{"/privdir/inner.txt", []int{403, 404}},
		{"/plain.txt/x", []int{404}},
		{"/plain.txt/", []int{404}},
		{"/fifo", []int{403, 404}},
		{"/loop1", []int{404}},
	}
	for _, tc := range cases {
		r := p.get("a.test", tc.path)
		ok := false
		for _, s := range tc.want {
			ok = ok || r.Status == s
		}
		name := tc.path
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		if !ok {
			t.Errorf("GET %s: status %d, want one of %v", name, r.Status, tc.want)
		}
		for _, leak := range []string{w.Dir, "/tmp", os.TempDir(), "LOCKED-CONTENT", "htdocs"} {
			if strings.Contains(r.Body, leak) {
				t.Errorf("GET %s: body reveals %q: %q", name, leak, r.Body)
			}
		}
	}
	if r := p.get("a.test", "/plain.txt"); r.Status != 200 {
		t.Errorf("control: GET /plain.txt: %d", r.Status)
	}
}
