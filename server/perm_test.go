package server

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckOthersAccess(t *testing.T) {
	if !runsAsRoot {
		t.Skip("only applies when the server runs as root")
	}
	dir := t.TempDir()
	mk := func(rel string, mode os.FileMode, isDir bool) {
		p := filepath.Join(dir, rel)
		if isDir {
			if err := os.Mkdir(p, mode); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("pub.txt", 0o644, false)
	mk("none.txt", 0o000, false)
	mk("owner.txt", 0o600, false)
	mk("searchonly", 0o711, true)
	mk("searchonly/f.txt", 0o644, false)
	mk("private", 0o755, true)
	mk("private/f.txt", 0o644, false)
	mk("open", 0o755, true)
	if err := os.Chmod(filepath.Join(dir, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range []struct {
		name string
		deny bool
	}{
		{".", false},
		{"pub.txt", false},
		{"none.txt", true},
		{"owner.txt", true},
		{"searchonly/f.txt", false},
		{"private/f.txt", true},
		{"private", true},
		{"open", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fi, err := root.Stat(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			err = checkOthersAccess(root, tc.name, fi)
			if got := errors.Is(err, fs.ErrPermission); got != tc.deny || !tc.deny && err != nil {
				t.Errorf("checkOthersAccess(%s) = %v, want deny %t", tc.name, err, tc.deny)
			}
		})
	}
}
