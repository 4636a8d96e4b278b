package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck runs `massvhost check` on configurations that the file alone
// makes valid or not, and on ones that only the machine makes invalid (a
// launcher or a user that does not exist), which serve would refuse.
func TestCheck(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(repo) // the embedded default serves examples/, relative to the working directory
	base := "sites:\n  root: " + filepath.Join(repo, "examples/sites") + "\ncerts:\n  dir: " + filepath.Join(repo, "examples/certs") + "\n"
	for _, tc := range []struct {
		name, yaml string
		root       bool   // the case needs root (the anonymous user is looked up only then)
		want       string // "" means ok
	}{
		{name: "embedded default", yaml: "", want: ""},
		{name: "unknown key", yaml: "server:\n  listn: 1\n", want: "server.listn"},
		{name: "missing launcher", yaml: "cgi:\n  launcher: /nonexistent/massvhost-cgi-launch\n", want: "cgi.launcher:"},
		{name: "relative launcher", yaml: "cgi:\n  launcher: bin/launch\n", want: "cgi.launcher:"},
		{name: "unknown anonymous user", yaml: "cgi:\n  anonymous_user: no-such-user-here\n", root: true, want: "cgi.anonymous_user:"},
		{name: "anonymous user below min_uid", yaml: "cgi:\n  anonymous_user: root\n", root: true, want: "cgi.anonymous_user:"},
		{name: "cgi off skips the machine checks", yaml: "cgi:\n  enabled: false\n  launcher: /nonexistent/x\n", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("the anonymous user is only looked up when running as root")
			}
			var args []string
			if tc.yaml != "" {
				path := filepath.Join(t.TempDir(), "massvhost.yaml")
				if err := os.WriteFile(path, []byte(base+tc.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
				args = []string{"--config", path}
			}
			var out bytes.Buffer
			err := runCheck(args, &out, &out)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("check: %v\n%s", err, out.String())
			case tc.want == "" && !okOutput(out.String()):
				t.Fatalf("check printed %q, want ok (after host warnings, if any)", out.String())
			case tc.want != "" && !errors.Is(err, errSilent):
				t.Fatalf("check: err %v, want a failure naming %s\n%s", err, tc.want, out.String())
			case tc.want != "" && !strings.Contains(out.String(), tc.want):
				t.Fatalf("check printed %q, want it to name %s", out.String(), tc.want)
			}
		})
	}
}

// okOutput reports whether check's output says ok: a last line "ok (...)"
// after nothing but host warnings (which depend on the machine's sysctls).
func okOutput(out string) bool {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "warning: ") {
			return false
		}
	}
	return strings.HasPrefix(lines[len(lines)-1], "ok (")
}
