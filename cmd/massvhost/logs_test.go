package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"massvhost/vhost"
)

// TestReopenFileNoTornLines writes whole lines from several goroutines
// while the file is rotated many times, then checks that every line
// arrived exactly once and whole, in one file or another.
func TestReopenFileNoTornLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	f, err := openReopenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const writers, lines = 4, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(f, "writer %d line %d %s\n", w, i, strings.Repeat("x", i%200))
			}
		})
	}
	for i := range 20 {
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, i)); err != nil {
			t.Fatal(err)
		}
		if err := f.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	seen := map[string]bool{}
	files, _ := filepath.Glob(path + "*")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l == "" {
				continue
			}
			var w, i int
			var pad string
			if n, _ := fmt.Sscanf(l, "writer %d line %d %s", &w, &i, &pad); n < 2 || (i%200 != 0 && len(pad) != i%200) {
				t.Fatalf("torn line in %s: %q", name, l)
			}
			key := fmt.Sprint(w, i)
			if seen[key] {
				t.Fatalf("line %s written twice", key)
			}
			seen[key] = true
		}
	}
	if len(seen) != writers*lines {
		t.Fatalf("%d lines found, want %d", len(seen), writers*lines)
	}
}

func tenantSite(t *testing.T, sites, host string) vhost.Site {
	t.Helper()
	root := filepath.Join(sites, host)
	if err := os.MkdirAll(filepath.Join(root, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return vhost.Site{Name: host, Tenant: host, Root: root}
}

func TestTenantLogs(t *testing.T) {
	sites := t.TempDir()
	tl := newTenantLogs(sites, "%0/logs/access.log", 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a, b, c := tenantSite(t, sites, "a.test"), tenantSite(t, sites, "b.test"), tenantSite(t, sites, "c.test")
	for _, s := range []vhost.Site{a, b, c, a} {
		if err := tl.WriteTenant(s, []byte("line for "+s.Tenant+"\n")); err != nil {
			t.Fatalf("%s: %v", s.Tenant, err)
		}
	}
	if n := tl.files.Len(); n != 2 {
		t.Errorf("%d files open, want the bound 2", n)
	}
	got, _ := os.ReadFile(filepath.Join(a.Root, "logs", "access.log"))
	if string(got) != "line for a.test\nline for a.test\n" {
		t.Errorf("a.test log = %q", got)
	}

	t.Run("symlink out of the tenant", func(t *testing.T) {
		evil := tenantSite(t, sites, "evil.test")
		victim := filepath.Join(b.Root, "logs", "access.log")
		if err := os.Symlink(victim, filepath.Join(evil.Root, "logs", "access.log")); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(victim)
		if err := tl.WriteTenant(evil, []byte("forged\n")); err == nil {
			t.Fatal("write through a symlink to another tenant succeeded")
		}
		after, _ := os.ReadFile(victim)
		if string(before) != string(after) {
			t.Fatalf("victim log changed: %q", after)
		}
	})
	t.Run("fifo", func(t *testing.T) {
		fifo := tenantSite(t, sites, "fifo.test")
		if err := syscall.Mkfifo(filepath.Join(fifo.Root, "logs", "access.log"), 0o644); err != nil {
			t.Skip("mkfifo:", err)
		}
		if err := tl.WriteTenant(fifo, []byte("x\n")); err == nil {
			t.Fatal("write to a FIFO succeeded (it would block the writer)")
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		none := vhost.Site{Name: "none.test", Tenant: "none.test", Root: filepath.Join(sites, "none.test")}
		if err := tl.WriteTenant(none, []byte("x\n")); err == nil {
			t.Fatal("write without the tenant's logs directory succeeded")
		}
	})
	t.Run("reopen", func(t *testing.T) {
		log := filepath.Join(c.Root, "logs", "access.log")
		if err := os.Rename(log, log+".1"); err != nil {
			t.Fatal(err)
		}
		tl.closeAll()
		if err := tl.WriteTenant(c, []byte("after rotation\n")); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(log); string(got) != "after rotation\n" {
			t.Fatalf("new file = %q", got)
		}
	})
}
