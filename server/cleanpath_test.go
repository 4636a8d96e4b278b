package server

import (
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		in        string
		acme      bool
		ok        bool
		url, name string
	}{
		{"/", false, true, "/", "."},
		{"/index.html", false, true, "/index.html", "index.html"},
		{"/a/b/", false, true, "/a/b/", "a/b"},
		{"//a///b", false, true, "/a/b", "a/b"},
		{"/a//", false, true, "/a/", "a"},
		{"/%2e%2e", false, true, "/%2e%2e", "%2e%2e"}, // a literal name, as decoded once
		{"/a..b", false, true, "/a..b", "a..b"},
		{"", false, false, "", ""},
		{"a", false, false, "", ""},
		{"/..", false, false, "", ""},
		{"/a/../b", false, false, "", ""},
		{"/./a", false, false, "", ""},
		{"/a/.", false, false, "", ""},
		{"/.env", false, false, "", ""},
		{"/a/.git/config", false, false, "", ""},
		{"/a\\b", false, false, "", ""},
		{"/a\x00b", false, false, "", ""},
		{"/.well-known/acme-challenge/tok", false, false, "", ""},
		{"/.well-known/acme-challenge/tok", true, true, "/.well-known/acme-challenge/tok", ".well-known/acme-challenge/tok"},
		{"/.well-known/acme-challenge", true, true, "/.well-known/acme-challenge", ".well-known/acme-challenge"},
		{"/.well-known/acme-challenge/../x", true, false, "", ""},
		{"/.well-known/acme-challenge/.x", true, false, "", ""},
		{"/.well-known/other", true, false, "", ""},
		{"/.well-known/", true, false, "", ""},
		{"/a/.well-known/acme-challenge/tok", true, false, "", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			url, name, ok := cleanPath(tc.in, tc.acme)
			if ok != tc.ok || url != tc.url || name != tc.name {
				t.Fatalf("cleanPath(%q, %v) = %q, %q, %v; want %q, %q, %v", tc.in, tc.acme, url, name, ok, tc.url, tc.name, tc.ok)
			}
		})
	}
}

// FuzzCleanPath checks that a mapped path never escapes the root and never
// has a dot segment (other than the allowed ACME directory).
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/../x", "/.git", "//x//y/", "/a\\b", "/.well-known/acme-challenge/t"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, p string, acme bool) {
		url, name, ok := cleanPath(p, acme)
		if !ok {
			return
		}
		if !strings.HasPrefix(url, "/") || strings.Contains(url, "//") || strings.ContainsAny(url, "\x00\\") {
			t.Fatalf("url %q from %q", url, p)
		}
		if name != "." {
			if !filepath.IsLocal(name) || path.Clean(name) != name || strings.HasPrefix(name, "/") {
				t.Fatalf("name %q from %q escapes or is not clean", name, p)
			}
			if strings.Trim(url, "/") != name {
				t.Fatalf("url %q and name %q disagree", url, name)
			}
		}
		for i, seg := range strings.Split(name, "/") {
			if seg == ".." || (seg != "." && strings.HasPrefix(seg, ".") && !(acme && i == 0 && seg == ".well-known")) {
				t.Fatalf("dot segment %q in %q from %q", seg, name, p)
			}
			if acme && i == 1 && strings.HasPrefix(name, ".well-known/") && seg != "acme-challenge" {
				t.Fatalf("dot directory other than ACME in %q", name)
			}
		}
		if !acme && strings.HasPrefix(name, ".") && name != "." {
			t.Fatalf("dot name %q without acme", name)
		}
	})
}
