package certs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"massvhost/test/certtest"
	"massvhost/vhost"
)

func TestFileStoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs") // Put creates it
	s := FileStore{Dir: dir}
	ctx := context.Background()
	certPEM, keyPEM := certtest.NewCA(t).Leaf(t, "a.test")
	if err := s.Put(ctx, "a.test", certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	gotCert, gotKey, err := s.Get(ctx, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotCert, certPEM) || !bytes.Equal(gotKey, keyPEM) {
		t.Error("Get returned different bytes than Put wrote")
	}
	checkModes(t, dir, map[string]os.FileMode{"": 0o700, "a.test.key": 0o600, "a.test.crt": 0o644})
	// Replacing leaves no temporary files behind.
	if err := s.Put(ctx, "a.test", certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d files after two Puts, want 2", len(entries))
	}
	if err := s.Delete(ctx, "a.test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "a.test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "a.test"); err != nil {
		t.Errorf("Delete of an absent name: %v", err)
	}
}

// checkModes checks the permission bits of files in dir ("" is dir itself).
func checkModes(t *testing.T, dir string, want map[string]os.FileMode) {
	t.Helper()
	for file, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%q mode %v, want %v", file, got, mode)
		}
	}
}

func TestFileStoreGetErrors(t *testing.T) {
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Leaf(t, "a.test")
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string) (storeDir string)
		get     string
		wantErr error
	}{
		{"absent", nil, "a.test", ErrNotFound},
		{"certificate without key", func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "a.test.crt"), certPEM, 0o644)
			return dir
		}, "a.test", ErrNotFound},
		{"missing directory", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "absent")
		}, "a.test", ErrUnavailable},
		{"file over the size cap", func(t *testing.T, dir string) string {
			certtest.WritePair(t, dir, "a.test", bytes.Repeat([]byte("x"), MaxPEMSize+1), keyPEM)
			return dir
		}, "a.test", ErrInvalidCert},
		{"directory instead of a file", func(t *testing.T, dir string) string {
			os.Mkdir(filepath.Join(dir, "a.test.crt"), 0o755)
			os.WriteFile(filepath.Join(dir, "a.test.key"), keyPEM, 0o600)
			return dir
		}, "a.test", ErrInvalidCert},
		{"symbolic link out of the directory", func(t *testing.T, dir string) string {
			outside := filepath.Join(dir, "outside")
			inside := filepath.Join(dir, "certs")
			os.Mkdir(outside, 0o755)
			os.Mkdir(inside, 0o755)
			certtest.WritePair(t, outside, "a.test", certPEM, keyPEM)
			os.Symlink(filepath.Join(outside, "a.test.crt"), filepath.Join(inside, "a.test.crt"))
			os.Symlink("../outside/a.test.key", filepath.Join(inside, "a.test.key"))
			return inside
		}, "a.test", ErrUnavailable},
		{"file above the directory by name", func(t *testing.T, dir string) string {
			certtest.WritePair(t, dir, "a.test", certPEM, keyPEM)
			inside := filepath.Join(dir, "certs")
			os.Mkdir(inside, 0o755)
			return inside
		}, "../a.test", ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.prepare != nil {
				dir = tc.prepare(t, dir)
			}
			c, k, err := FileStore{Dir: dir}.Get(ctx, tc.get)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Get error = %v, want %v", err, tc.wantErr)
			}
			if c != nil || k != nil {
				t.Error("Get returned data with an error")
			}
		})
	}
}

func TestFileStoreRejectsNonCanonicalNames(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t)
	// Files exist under every spelling, so only the name check can refuse.
	for _, n := range []string{"A.test", "a.test.", "x.y", "*.test"} {
		certPEM, keyPEM := ca.Leaf(t, "a.test")
		certtest.WritePair(t, dir, n, certPEM, keyPEM)
	}
	s := FileStore{Dir: dir}
	ctx := context.Background()
	for _, name := range []string{
		"", "A.test", "a.test.", "a.test:443", "../a.test", "a/b", "*", "*.test", "**.x.y", "*.*.x.y",
		"x.*.y", ".", "..", "a.test\x00", "\\a.test", "*.A.test",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := s.Get(ctx, name)
			if !errors.Is(err, ErrNotFound) || !errors.Is(err, vhost.ErrInvalidName) {
				t.Errorf("Get(%q) error = %v, want ErrNotFound wrapping vhost.ErrInvalidName", name, err)
			}
			if err := s.Put(ctx, name, []byte("c"), []byte("k")); !errors.Is(err, vhost.ErrInvalidName) {
				t.Errorf("Put(%q) error = %v, want vhost.ErrInvalidName", name, err)
			}
			if err := s.Delete(ctx, name); !errors.Is(err, vhost.ErrInvalidName) {
				t.Errorf("Delete(%q) error = %v, want vhost.ErrInvalidName", name, err)
			}
		})
	}
	if _, _, err := s.Get(ctx, "x.y"); err != nil {
		t.Errorf("canonical name refused: %v", err)
	}
}

func TestFileStoreList(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t)
	for _, n := range []string{"b.test", "a.test", "*.wild.test", "Upper.test"} {
		certPEM, keyPEM := ca.Leaf(t, strings.ToLower(n))
		certtest.WritePair(t, dir, n, certPEM, keyPEM)
	}
	os.WriteFile(filepath.Join(dir, "lonely.test.crt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, tempPrefix+"123.crt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, tempPrefix+"123.key"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644)

	var got []string
	err := FileStore{Dir: dir}.List(context.Background(), func(name string) error {
		got = append(got, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"*.wild.test", "a.test", "b.test"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}

	stop := errors.New("stop")
	n := 0
	err = FileStore{Dir: dir}.List(context.Background(), func(string) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("List after fn error: err=%v calls=%d, want stop after 1", err, n)
	}
}
