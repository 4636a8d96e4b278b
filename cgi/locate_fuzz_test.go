package cgi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLocate maps arbitrary decoded URL paths onto a fixed cgi-bin and
// document root holding scripts, a hidden script, a symlink to a file
// outside and a symlink to the parent directory. Whatever the path, a
// script that is found is one of the tree's regular files, inside the base
// directory the mode names, reached through no symlink or hidden name, and
// SCRIPT_NAME plus PATH_INFO give back the request path; nothing panics and
// no descriptor is left open.
func FuzzLocate(f *testing.F) {
	dir := f.TempDir()
	site := filepath.Join(dir, "site")
	cgiBin, docRoot := filepath.Join(site, "cgi-bin"), filepath.Join(site, "htdocs")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{filepath.Join(cgiBin, "sub"), filepath.Join(docRoot, "app"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	scripts := map[string]bool{}
	for _, p := range []string{
		filepath.Join(cgiBin, "a.cgi"), filepath.Join(cgiBin, "sub", "b.cgi"), filepath.Join(cgiBin, ".hidden.cgi"),
		filepath.Join(docRoot, "index.cgi"), filepath.Join(docRoot, "app", "c.cgi"), filepath.Join(outside, "secret.cgi"),
	} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			f.Fatal(err)
		}
		if !strings.Contains(p, "/outside/") && !strings.Contains(p, "/.") {
			scripts[p] = true
		}
	}
	for link, target := range map[string]string{
		filepath.Join(cgiBin, "link.cgi"): filepath.Join(outside, "secret.cgi"),
		filepath.Join(cgiBin, "up"):       "..",
		filepath.Join(docRoot, "out"):     outside,
		filepath.Join(docRoot, "rel.cgi"): "../../outside/secret.cgi",
	} {
		if err := os.Symlink(target, link); err != nil {
			f.Fatal(err)
		}
	}
	for _, seed := range []string{
		"/cgi-bin/a.cgi", "/cgi-bin/sub/b.cgi/x/y", "/cgi-bin/link.cgi", "/cgi-bin/up/htdocs/index.cgi",
		"/cgi-bin/../outside/secret.cgi", "/cgi-bin/.hidden.cgi", "/cgi-bin//a.cgi", "/cgi-bin/a.cgi/../../x",
		"/index.cgi", "/app/c.cgi/info", "/out/secret.cgi", "/rel.cgi", "/cgi-bin/a.cgi\x00", "/cgi-bin\\a.cgi",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	// Descriptors are counted every few thousand inputs in each fuzzing
	// process: a refusal path that forgot to close one shows as growth.
	fdsBase, runs := -1, 0
	f.Fuzz(func(t *testing.T, urlPath string, docroot bool) {
		if runs++; runs%4096 == 1 {
			n := openFDs(t)
			if fdsBase < 0 {
				fdsBase = n
			} else if n > fdsBase+16 {
				t.Fatalf("descriptors grew from %d to %d while locating scripts", fdsBase, n)
			}
		}
		mode, base := ScriptAlias, cgiBin
		if docroot {
			mode, base = Docroot, docRoot
		}
		segs, prefix, rf := splitURLPath(urlPath, mode)
		if rf != nil {
			return
		}
		s, rf := locate(base, segs, prefix)
		if rf != nil {
			if rf.status < 400 || rf.status > 599 {
				t.Fatalf("%q: refusal with status %d", urlPath, rf.status)
			}
			return
		}
		defer s.close()
		if !scripts[s.filename] {
			t.Fatalf("%q: located %q, which is not a script of the tree", urlPath, s.filename)
		}
		if rel, err := filepath.Rel(base, s.filename); err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("%q: located %q outside %q", urlPath, s.filename, base)
		}
		if got := s.scriptName + s.pathInfo; got != urlPath {
			t.Fatalf("%q: SCRIPT_NAME %q + PATH_INFO %q do not give the request path back", urlPath, s.scriptName, s.pathInfo)
		}
		if filepath.Join(s.dirPath, s.name) != s.filename {
			t.Fatalf("%q: directory %q and name %q do not make %q", urlPath, s.dirPath, s.name, s.filename)
		}
	})
}

func openFDs(tb testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Skip("no /proc/self/fd")
	}
	return len(ents)
}
