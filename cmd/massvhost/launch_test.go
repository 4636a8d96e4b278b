package main

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"massvhost/cgi"
)

func TestCheckLauncher(t *testing.T) {
	root := os.Geteuid() == 0
	tests := []struct {
		name     string
		prepare  func(t *testing.T, dir, file string) string // returns the path to check
		wantErr  string                                      // "" = accepted
		rootOnly bool
	}{
		{name: "regular executable", prepare: func(_ *testing.T, _, f string) string { return f }},
		{name: "symlink resolved", prepare: func(t *testing.T, dir, f string) string {
			link := filepath.Join(t.TempDir(), "link")
			if err := os.Symlink(f, link); err != nil {
				t.Fatal(err)
			}
			return link
		}},
		{name: "missing", prepare: func(_ *testing.T, dir, _ string) string { return filepath.Join(dir, "nope") }, wantErr: "no such file"},
		{name: "not executable", prepare: func(t *testing.T, _, f string) string { chmod(t, f, 0o644); return f }, wantErr: "not an executable file"},
		{name: "a directory", prepare: func(_ *testing.T, dir, _ string) string { return dir }, wantErr: "not an executable file"},
		{name: "file writable by others", prepare: func(t *testing.T, _, f string) string { chmod(t, f, 0o757); return f }, wantErr: "writable by others"},
		{name: "directory writable by others", prepare: func(t *testing.T, dir, f string) string { chmod(t, dir, 0o757); return f }, wantErr: "writable by others"},
		{name: "group-writable as root", rootOnly: true, prepare: func(t *testing.T, _, f string) string { chmod(t, f, 0o775); return f }, wantErr: "group-writable"},
		{name: "not root's as root", rootOnly: true, prepare: func(t *testing.T, _, f string) string {
			if err := os.Chown(f, 20001, 0); err != nil {
				t.Fatal(err)
			}
			return f
		}, wantErr: "owned by uid 20001, not root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rootOnly && !root {
				t.Skip("needs root")
			}
			dir := t.TempDir()
			chmod(t, dir, 0o755)
			file := filepath.Join(dir, launcherName)
			if err := os.WriteFile(file, []byte("#!/bin/true\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			chmod(t, file, 0o755)
			path := tc.prepare(t, dir, file)
			got, err := checkLauncher(path)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr == "" && got != file:
				t.Fatalf("checkLauncher(%q) = %q, want %q", path, got, file)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("checkLauncher(%q) = %q, %v; want an error with %q", path, got, err, tc.wantErr)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestAnonymousIdentity(t *testing.T) {
	if id, err := anonymousIdentity("", 1000, 1000); err != nil || !id.IsZero() {
		t.Errorf(`anonymousIdentity("") = %+v, %v; want none`, id, err)
	}
	if os.Geteuid() != 0 {
		// Not looked up at all without root, so even a missing user is fine.
		if id, err := anonymousIdentity("no-such-user-massvhost", 1000, 1000); err != nil || !id.IsZero() {
			t.Errorf("without root: %+v, %v; want none and no error", id, err)
		}
		return
	}
	if _, err := anonymousIdentity("no-such-user-massvhost", 1000, 1000); err == nil || !strings.Contains(err.Error(), "cgi.anonymous_user") {
		t.Errorf("missing user: %v, want an error naming cgi.anonymous_user", err)
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	id, err := anonymousIdentity("nobody", 1000, 1000)
	if err != nil || id.IsZero() {
		t.Fatalf("nobody: %+v, %v", id, err)
	}
	want, _ := cgi.LookupUser(u.Username)
	if id != want {
		t.Errorf("nobody = %+v, want %+v", id, want)
	}
	if _, err := anonymousIdentity("nobody", id.UID+1, 1); err == nil || !strings.Contains(err.Error(), "below cgi.min_uid") {
		t.Errorf("nobody below min_uid: %v", err)
	}
}
