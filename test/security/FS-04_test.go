// FS-04: symlink escape from a tenant's document root.
//
// Exploit: tenant a plants symlinks to tenant b's secret — absolute,
// relative, to "/" and to b's whole docroot — and then races the server
// by swapping a regular file and a symlink to b's secret (the fumiyas loop
// that defeats Apache's SymLinksIfOwnerMatch), for a file and for a
// directory in the middle of the path. http.Dir follows all of these.
//
// Expectation: every escape is 404 (never 500, never b's bytes), including
// every request during the races; a symlink that stays inside a's docroot
// still works.
package security

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

const secretB = "TENANT-B-SECRET"

func TestFS04SymlinkEscape(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	a, b := w.tenant("a.test"), w.tenant("b.test")
	secret := b.file("secret.txt", secretB+"\n", 0o644)
	b.file("d/secret.txt", secretB+"\n", 0o644)
	a.file("own.txt", "a's own file\n", 0o644)
	a.symlink(secret, "abs")
	a.symlink("../../b.test/htdocs/secret.txt", "rel")
	a.symlink("/", "root")
	a.symlink("../../b.test/htdocs", "bdir")
	a.symlink(filepath.Dir(secret), "bdirabs")
	a.symlink("own.txt", "inside")
	a.file("race.txt", "a's race file\n", 0o644)
	a.file("rd/secret.txt", "a's dir file\n", 0o644)
	p := start(t, w.config(cfg{}))

	for _, path := range []string{"/abs", "/rel", "/root/etc/passwd", "/root" + secret,
		"/bdir/secret.txt", "/bdirabs/secret.txt", "/bdir/d/secret.txt", "/bdir/"} {
		r := p.get("a.test", path)
		if r.Status != 404 || strings.Contains(r.Body, secretB) || strings.Contains(r.Body, "root:") {
			t.Errorf("GET %s: %d %q, want 404 without the target's bytes", path, r.Status, r.Body)
		}
	}
	if r := p.get("a.test", "/inside"); r.Status != 200 || r.Body != "a's own file\n" {
		t.Errorf("symlink inside the docroot: %d %q, want 200", r.Status, r.Body)
	}

	// The races: a goroutine (standing in for tenant a's shell loop)
	// atomically exchanges a name between a regular file or directory and
	// a symlink to b (renameat2 RENAME_EXCHANGE) while the client keeps
	// asking for it.
	const iterations = 3000
	race := func(live, alt, path string) {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				unix.Renameat2(unix.AT_FDCWD, live, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE)
			}
		})
		leaks, statuses := 0, map[int]int{}
		for range iterations {
			r := p.get("a.test", path)
			statuses[r.Status]++
			if strings.Contains(r.Body, secretB) {
				leaks++
			}
		}
		close(stop)
		wg.Wait()
		if leaks != 0 {
			t.Errorf("%s race: %d of %d responses leaked b's secret", path, leaks, iterations)
		}
		for code, n := range statuses {
			if code != 200 && code != 404 {
				t.Errorf("%s race: %d responses with status %d, want only 200 and 404", path, n, code)
			}
		}
		t.Logf("%s race: %d requests, statuses %v", path, iterations, statuses)
	}
	a.symlink("../../b.test/htdocs/secret.txt", "race.alt")
	race(filepath.Join(a.DocRoot, "race.txt"), filepath.Join(a.DocRoot, "race.alt"), "/race.txt")
	a.symlink("../../b.test/htdocs/d", "rd.alt")
	race(filepath.Join(a.DocRoot, "rd"), filepath.Join(a.DocRoot, "rd.alt"), "/rd/secret.txt")
}
