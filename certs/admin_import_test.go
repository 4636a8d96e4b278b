package certs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"massvhost/test/certtest"
)

// importTree writes a directory mixing the files layout and a certbot tree,
// with broken pairs of every kind, and returns it with the names that must
// import.
func importTree(t *testing.T) (dir string, valid []string) {
	t.Helper()
	dir = t.TempDir()
	ca := certtest.NewCA(t)
	now := time.Now()
	write := func(p string, data []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pair := func(name string) ([]byte, []byte) { return ca.Leaf(t, name) }

	c, k := pair("good.test")
	certtest.WritePair(t, dir, "good.test", c, k)
	c, k = pair("*.wild.test")
	certtest.WritePair(t, dir, "*.wild.test", c, k)
	c, k = pair("upper.test")
	certtest.WritePair(t, dir, "Upper.Test", c, k) // imported as upper.test
	c, _ = pair("mismatch.test")
	_, k = pair("mismatch.test")
	certtest.WritePair(t, dir, "mismatch.test", c, k)
	c, k = ca.LeafWith(t, certtest.LeafOptions{Names: []string{"expired.test"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	certtest.WritePair(t, dir, "expired.test", c, k)
	c, k = pair("other.test")
	certtest.WritePair(t, dir, "wronghost.test", c, k)
	c, k = pair("a.test")
	certtest.WritePair(t, dir, "bad name", c, k)
	write(filepath.Join(dir, "nokey.test.crt"), c)
	write(filepath.Join(dir, "orphan.test.key"), k)
	write(filepath.Join(dir, "garbage.test.crt"), []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"))
	write(filepath.Join(dir, "garbage.test.key"), k)

	// certbot: live/<name>/ symlinks into archive/<name>/.
	certbot := func(lineage, name string) {
		c, k := pair(name)
		arch := filepath.Join(dir, "archive", lineage)
		write(filepath.Join(arch, "fullchain1.pem"), c)
		write(filepath.Join(arch, "privkey1.pem"), k)
		live := filepath.Join(dir, "live", lineage)
		if err := os.MkdirAll(live, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"fullchain", "privkey"} {
			if err := os.Symlink(filepath.Join("..", "..", "archive", lineage, f+"1.pem"), filepath.Join(live, f+".pem")); err != nil {
				t.Fatal(err)
			}
		}
	}
	certbot("cb.test", "cb.test")
	certbot("cb2.test-0001", "cb2.test")
	certbot("good.test", "good.test") // duplicate of the files layout
	write(filepath.Join(dir, "live", "README"), []byte("certbot readme"))
	write(filepath.Join(dir, "live", "halfway.test", "fullchain.pem"), c)

	return dir, []string{"*.wild.test", "cb.test", "cb2.test", "good.test", "upper.test"}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	dir, valid := importTree(t)
	wantInvalid := []string{"bad name", "expired.test", "garbage.test", "good.test", "halfway.test", "mismatch.test", "nokey.test", "orphan.test", "wronghost.test"}
	for _, st := range bothStores(t, "imp:") {
		t.Run(st.name, func(t *testing.T) {
			dry, err := Import(ctx, st.store, dir, ImportOptions{DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sorted(dry.Imported), valid) {
				t.Errorf("dry run would import %v", dry.Imported)
			}
			if n := countNames(t, st.store); n != 0 {
				t.Fatalf("dry run wrote %d names", n)
			}

			var progress [][2]int
			rep, err := Import(ctx, st.store, dir, ImportOptions{BatchSize: 2, Progress: func(d, total int) {
				progress = append(progress, [2]int{d, total})
			}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sorted(rep.Imported), valid) || len(rep.Unchanged) != 0 {
				t.Errorf("imported %v, unchanged %v", rep.Imported, rep.Unchanged)
			}
			var bad []string
			for _, p := range rep.Invalid {
				if p.Err == nil || p.Source == "" {
					t.Errorf("problem without reason or source: %v", p)
				}
				bad = append(bad, p.Name)
			}
			if !slices.Equal(sorted(bad), wantInvalid) {
				t.Errorf("invalid %v\nwant %v", sorted(bad), wantInvalid)
				for _, p := range rep.Invalid {
					t.Log(p)
				}
			}
			last := progress[len(progress)-1]
			if len(progress) < 3 || last[0] != last[1] || last[1] != len(valid)+len(wantInvalid) {
				t.Errorf("progress %v", progress)
			}
			for _, n := range valid {
				c, k, err := st.store.Get(ctx, n)
				if err == nil {
					_, err = CheckPair(n, c, k, time.Now(), false)
				}
				if err != nil {
					t.Errorf("%s after import: %v", n, err)
				}
			}

			// A rerun (after an interruption, say) changes nothing.
			again, err := Import(ctx, st.store, dir, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Imported) != 0 || !slices.Equal(sorted(again.Unchanged), valid) || len(again.Invalid) != len(rep.Invalid) {
				t.Errorf("rerun: imported %v unchanged %v invalid %d", again.Imported, again.Unchanged, len(again.Invalid))
			}
		})
	}
}

func TestImportStops(t *testing.T) {
	dir, _ := importTree(t)
	if _, err := Import(context.Background(), FileStore{Dir: t.TempDir()}, filepath.Join(dir, "missing"), ImportOptions{}); err == nil {
		t.Error("Import of a missing directory succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Import(ctx, FileStore{Dir: t.TempDir()}, dir, ImportOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Import with a canceled context: %v", err)
	}
	srv, rs := startRedisStore(t, "")
	srv.Kill()
	rep, err := Import(context.Background(), rs, dir, ImportOptions{})
	if !errors.Is(err, ErrUnavailable) || len(rep.Imported) != 0 {
		t.Errorf("Import with Redis down: %v, imported %v", err, rep.Imported)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func countNames(t *testing.T, l Lister) int {
	t.Helper()
	n := 0
	if err := l.List(context.Background(), func(string) error { n++; return nil }); err != nil && !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	return n
}
