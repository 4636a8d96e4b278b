package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/test/redistest"
)

// TestRedisCertsCLI drives `massvhost certs` against a Redis store: what put
// refuses and why, what get reports, ls --match, rm, import of a tree with
// broken pairs (and its rerun), expiring --within, and usage errors.
func TestRedisCertsCLI(t *testing.T) {
	srv := redistest.StartServer(t)
	w := newWorld(t, nil)
	cfgPath := writeConfig(t, w.redisConfig(redisSetup{Addrs: []string{srv.Addr}}))
	now := time.Now()

	t.Run("put refuses bad pairs", func(t *testing.T) {
		crt, _ := w.CA.Leaf(t, "bad.test")
		_, otherKey := w.CA.Leaf(t, "bad.test")
		forOther, forOtherKey := w.CA.Leaf(t, "someone-else.test")
		expired, expiredKey := mustLeafWith(t, w.CA, "bad.test", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
		for _, tc := range []struct {
			name, reason string
			crt, key     []byte
		}{
			{"mismatched key", "does not match", crt, otherKey},
			{"another host", "does not cover", forOther, forOtherKey},
			{"expired", "expired", expired, expiredKey},
			{"not PEM", "unusable certificate/key pair", []byte("hello"), []byte("world")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := putCLI(t, cfgPath, "bad.test", tc.crt, tc.key)
				if r.Code != 1 || !strings.Contains(r.Stderr, tc.reason) {
					t.Fatalf("%s, want exit 1 with %q", r, tc.reason)
				}
			})
		}
		if r := cli(t, cfgPath, "certs", "get", "bad.test"); r.Code != 1 {
			t.Fatalf("a refused pair was stored: %s", r)
		}
		crt, key := mustLeafWith(t, w.CA, "expired.test", now.Add(-48*time.Hour), now.Add(-time.Hour))
		if r := putCLI(t, cfgPath, "expired.test", crt, key, "--force"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "stored expired.test") {
			t.Fatalf("expired pair with --force: %s", r)
		}
	})

	fps := map[string]string{}
	t.Run("put and get", func(t *testing.T) {
		for _, name := range []string{"a.test", "b.test", "shop.b.test", "*.b.test"} {
			crt, key := w.CA.Leaf(t, name)
			r := putCLI(t, cfgPath, name, crt, key)
			if r.Code != 0 || !strings.HasPrefix(r.Stdout, "stored "+name+" (expires ") {
				t.Fatalf("put %s: %s", name, r)
			}
			fps[name] = pemFingerprint(t, crt)
		}
		// A name is canonicalized: case and a trailing dot do not matter.
		out := cliOK(t, cfgPath, "certs", "get", "A.Test.").Stdout
		for _, want := range []string{
			`(?m)^name:\s+a\.test$`, `(?m)^layout:\s+hash$`, `(?m)^sans:\s+a\.test$`,
			`(?m)^sha256:\s+` + regexp.QuoteMeta(fps["a.test"]) + `$`, `(?m)^not after:\s+\d{4}-`,
			`(?m)^issuer:\s+\S`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("certs get a.test: no match for %s in\n%s", want, out)
			}
		}
		crt, key := w.CA.Leaf(t, "legacy.test")
		srv.Do(t, "SET", "legacy.test.crt", string(crt))
		srv.Do(t, "SET", "legacy.test.key", string(key))
		if out := cliOK(t, cfgPath, "certs", "get", "legacy.test").Stdout; !regexp.MustCompile(`(?m)^layout:\s+legacy$`).MatchString(out) {
			t.Errorf("certs get legacy.test: want layout legacy in\n%s", out)
		}
		if r := cli(t, cfgPath, "certs", "get", "nothing.test"); r.Code != 1 || !strings.Contains(r.Stderr, "not found") {
			t.Errorf("get of a missing name: %s, want exit 1 saying not found", r)
		}
	})

	t.Run("ls and rm", func(t *testing.T) {
		all := lines(cliOK(t, cfgPath, "certs", "ls").Stdout)
		slices.Sort(all) // SCAN order
		want := []string{"*.b.test", "a.test", "b.test", "expired.test", "legacy.test", "shop.b.test"}
		if !slices.Equal(all, want) {
			t.Fatalf("certs ls: %v, want %v", all, want)
		}
		got := lines(cliOK(t, cfgPath, "certs", "ls", "--match", "*.b.test").Stdout)
		if slices.Sort(got); !slices.Equal(got, []string{"*.b.test", "shop.b.test"}) {
			t.Fatalf("certs ls --match '*.b.test': %v", got)
		}
		if r := cliOK(t, cfgPath, "certs", "rm", "a.test"); r.Stdout != "removed a.test\n" {
			t.Fatalf("rm: %s", r)
		}
		if r := cliOK(t, cfgPath, "certs", "rm", "legacy.test"); r.Stdout != "removed legacy.test\n" {
			t.Fatalf("rm legacy: %s", r)
		}
		if n := srv.Do(t, "EXISTS", "cert:a.test", "legacy.test.crt", "legacy.test.key"); n != "0" {
			t.Fatalf("rm left %s keys behind", n)
		}
		if got := lines(cliOK(t, cfgPath, "certs", "ls").Stdout); slices.Contains(got, "a.test") || slices.Contains(got, "legacy.test") {
			t.Fatalf("certs ls after rm: %v", got)
		}
	})

	t.Run("import", func(t *testing.T) {
		dir := t.TempDir()
		good := []string{"imp1.test", "imp2.test", "*.imp.test"}
		for _, name := range good {
			crt, key := w.CA.Leaf(t, name)
			certtest.WritePair(t, dir, name, crt, key)
		}
		// certbot layout, with a second lineage suffix.
		live := filepath.Join(dir, "live", "cb.test-0001")
		must(t, os.MkdirAll(live, 0o755))
		cbCrt, cbKey := w.CA.Leaf(t, "cb.test")
		must(t, os.WriteFile(filepath.Join(live, "fullchain.pem"), append(cbCrt, w.CA.CertPEM...), 0o644))
		must(t, os.WriteFile(filepath.Join(live, "privkey.pem"), cbKey, 0o600))
		good = append(good, "cb.test")
		// Broken pairs.
		crt, _ := w.CA.Leaf(t, "mismatch.test")
		_, key := w.CA.Leaf(t, "mismatch.test")
		certtest.WritePair(t, dir, "mismatch.test", crt, key)
		other, otherKey := w.CA.Leaf(t, "elsewhere.test")
		certtest.WritePair(t, dir, "wronghost.test", other, otherKey)
		certtest.WritePair(t, dir, "garbage.test", []byte("not pem"), []byte("not pem"))
		must(t, os.WriteFile(filepath.Join(dir, "lonely.test.crt"), crt, 0o644))
		broken := map[string]string{
			"mismatch.test":  "does not match",
			"wronghost.test": "does not cover",
			"garbage.test":   "unusable",
			"lonely.test":    "no lonely.test.key",
		}

		r := cli(t, cfgPath, "certs", "import", dir)
		if r.Code != 1 {
			t.Fatalf("import with broken pairs: %s, want exit 1", r)
		}
		for name, reason := range broken {
			if !regexp.MustCompile(`(?m)^invalid: ` + regexp.QuoteMeta(name) + ` .*` + regexp.QuoteMeta(reason)).MatchString(r.Stdout) {
				t.Errorf("import did not report %s with %q:\n%s", name, reason, r.Stdout)
			}
		}
		if !strings.Contains(r.Stdout, "imported 4, unchanged 0, invalid 4\n") {
			t.Fatalf("import summary:\n%s", r.Stdout)
		}
		for _, name := range good {
			cliOK(t, cfgPath, "certs", "get", name)
		}
		for name := range broken {
			if r := cli(t, cfgPath, "certs", "get", name); r.Code == 0 {
				t.Errorf("broken %s was imported", name)
			}
		}
		r = cli(t, cfgPath, "certs", "import", dir)
		if !strings.Contains(r.Stdout, "imported 0, unchanged 4, invalid 4\n") {
			t.Fatalf("rerun of import: %s", r)
		}
	})

	t.Run("expiring", func(t *testing.T) {
		crt, key := mustLeafWith(t, w.CA, "soon.test", now.Add(-time.Hour), now.Add(6*time.Hour))
		cliOK(t, cfgPath, "certs", "put", "soon.test", "--cert", writeTemp(t, crt), "--key", writeTemp(t, key))
		srv.Do(t, "SET", "broken.test.crt", "junk")
		srv.Do(t, "SET", "broken.test.key", "junk")

		// certtest leaves are valid for 24h: 12h selects only soon.test,
		// the expired one and the unreadable one.
		r := cliOK(t, cfgPath, "certs", "expiring", "--within", "12h")
		got := map[string]string{}
		for _, l := range lines(r.Stdout) {
			name, rest, _ := strings.Cut(l, "\t")
			got[name] = rest
		}
		if len(got) != 3 || got["soon.test"] == "" || got["expired.test"] == "" || !strings.HasPrefix(got["broken.test"], "unreadable:") {
			t.Fatalf("certs expiring --within 12h:\n%s", r.Stdout)
		}
		if n := len(lines(cliOK(t, cfgPath, "certs", "expiring", "--within", "2d").Stdout)); n < 10 {
			t.Fatalf("certs expiring --within 2d listed %d names, want every one", n)
		}
		srv.Do(t, "DEL", "broken.test.crt", "broken.test.key")
		cliOK(t, cfgPath, "certs", "rm", "expired.test")
		cliOK(t, cfgPath, "certs", "rm", "soon.test")
		if r := cliOK(t, cfgPath, "certs", "expiring", "--within", "1h"); r.Stdout != "" || !strings.Contains(r.Stderr, "no certificate expires") {
			t.Fatalf("nothing expiring: %s", r)
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"certs"},
			{"certs", "frob"},
			{"certs", "put", "a.test"},
			{"certs", "put", "a.test", "--cert", "x.pem"},
			{"certs", "get"},
			{"certs", "get", "a.test", "b.test"},
			{"certs", "ls", "extra"},
			{"certs", "ls", "--bogus"},
			{"certs", "expiring", "--within", "soon"},
			{"certs", "import"},
		} {
			r := cli(t, cfgPath, args...)
			if r.Code != 2 || !strings.Contains(r.Stderr, "massvhost certs --help") {
				t.Errorf("massvhost %s: %s, want exit 2 with a usage hint", strings.Join(args, " "), r)
			}
		}
	})
}
