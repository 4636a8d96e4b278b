// CGI-16: a script's identity and privileges.
//
// Exploit: whoami.cgi in tenant a reports its uids, gids, supplementary
// groups, capability sets and umask, and tries to read tenant b's files
// (b's tree is 0750, owned by b), to write into b's docroot, to read the
// server's TLS private key (0600, root) and the server process's
// environment (which holds a secret).
//
// Expectation: real, effective and saved uid and gid are exactly tenant
// a's, no supplementary groups, every capability set empty, umask 0022;
// every read and write is denied. Needs root.
package security

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestCGI16Identity(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	a, b := w.tenant("a.test"), w.tenant("b.test")
	secret := b.file("secret.txt", "TENANT-B-SECRET\n", 0o644)
	b.script("b.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nTENANT-B-SCRIPT\\n'\n")
	serverKey := filepath.Join(w.CertDir, "a.test.key")
	a.script("whoami.cgi", fmt.Sprintf(`printf 'Content-Type: text/plain\r\n\r\n'
grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/$$/status
echo "umask=$(umask)"
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name=ALLOWED"; else echo "$name=denied"; fi; }
try read-b-abs cat %q
try read-b-rel cat ../../b.test/htdocs/secret.txt
try list-b ls ../../b.test
try read-b-script cat %q
try write-b touch %q
try read-server-key cat %q
try read-server-env cat /proc/$PPID/environ
try read-shadow cat /etc/shadow
`, secret, filepath.Join(b.CGIBin, "b.cgi"), filepath.Join(b.DocRoot, "pwned"), serverKey))
	p := start(t, w.config(cfg{}), startOpts{Env: []string{"SERVER_SECRET=hunter2"}})

	r := p.get("a.test", "/cgi-bin/whoami.cgi")
	if r.Status != 200 {
		t.Fatalf("whoami.cgi: %d %q", r.Status, r.Body)
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(r.Body, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		} else if k, v, ok := strings.Cut(line, ":"); ok {
			got[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	id := fmt.Sprint(a.UID)
	gid := fmt.Sprint(a.GID)
	want := map[string]string{
		"Uid":    strings.Join([]string{id, id, id, id}, " "),
		"Gid":    strings.Join([]string{gid, gid, gid, gid}, " "),
		"Groups": "",
		"CapInh": "0000000000000000",
		"CapPrm": "0000000000000000",
		"CapEff": "0000000000000000",
		"CapAmb": "0000000000000000",
		"CapBnd": "0000000000000000",
		"umask":  "0022",
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: %q (reported: %t), want %q", k, g, ok, v)
		}
	}
	for _, k := range []string{"read-b-abs", "read-b-rel", "list-b", "read-b-script", "write-b", "read-server-key", "read-server-env", "read-shadow"} {
		if got[k] != "denied" {
			t.Errorf("%s: %q, want denied", k, got[k])
		}
	}
	if strings.Contains(r.Body, "TENANT-B") || strings.Contains(r.Body, "hunter2") || strings.Contains(r.Body, "PRIVATE KEY") {
		t.Errorf("output leaks another party's data:\n%s", r.Body)
	}
	if t.Failed() {
		t.Logf("whoami.cgi output:\n%s", r.Body)
	}
}
