// CGI-17: file descriptors a script inherits.
//
// Exploit: the server is started the way a careless supervisor or shell
// ("exec 9</etc/shadow") would: with extra descriptors open without
// close-on-exec — a secret file and a pipe, as fds 3, 4 and 5. Go sets
// close-on-exec on the descriptors it opens itself but not on inherited
// ones, and a child then sees them (verified: fds 0 1 2 10 251).
//
// Expectation: the server does hold the inherited descriptors (the
// precondition), and fds.cgi sees only 0, 1 and 2 (plus the descriptor ls
// opens to list /proc/self/fd), none of them the secret file.
package security

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCGI17InheritedFDs(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("fds.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nls -l /proc/self/fd/\n")
	secretPath := filepath.Join(w.Dir, "inherited-secret")
	must(t, os.WriteFile(secretPath, []byte("shadow"), 0o600))
	secret, err := os.Open(secretPath)
	must(t, err)
	defer secret.Close()
	pr, pw, err := os.Pipe()
	must(t, err)
	defer pr.Close()
	defer pw.Close()
	p := start(t, w.config(cfg{}), startOpts{ExtraFiles: []*os.File{secret, pr, pw}})

	link, err := os.Readlink("/proc/" + strconv.Itoa(p.pid()) + "/fd/3")
	if err != nil || link != secretPath {
		t.Fatalf("precondition: the server's fd 3 is %q (%v), want the inherited %s", link, err, secretPath)
	}
	r := p.get("a.test", "/cgi-bin/fds.cgi")
	if r.Status != 200 {
		t.Fatalf("fds.cgi: %d %q", r.Status, r.Body)
	}
	for line := range strings.SplitSeq(r.Body, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[len(f)-2] != "->" {
			continue
		}
		fd, target := f[len(f)-3], f[len(f)-1]
		switch {
		case fd == "0" || fd == "1" || fd == "2":
		case strings.HasPrefix(target, "/proc/"):
			// ls's own descriptor of the directory it lists.
		default:
			t.Errorf("script inherited fd %s -> %s", fd, target)
		}
		if strings.Contains(target, "inherited-secret") {
			t.Errorf("script can read the server's inherited secret through fd %s", fd)
		}
	}
	if t.Failed() {
		t.Logf("fds.cgi output:\n%s", r.Body)
	}
}
