package server

import (
	"strings"
)

// acmePrefix is the one dot-directory that may be served, and only when
// Options.AllowACMEChallenge is set (HTTP-01 challenges answered from the
// docroot by an external ACME client).
const acmePrefix = "/.well-known/acme-challenge/"

// cleanPath maps a request's decoded URL path to a name relative to a
// document root, or reports ok == false when the path must answer 404.
//
// A plain http.Handler receives r.URL.Path decoded but not cleaned
// ("/../../etc/passwd", "%2e%2e" as "..", "%00" as NUL, backslashes as is;
// THREATS §0.9), so nothing may be joined to a directory before this runs.
// It rejects rather than repairs:
//
//   - a path that is empty or does not start with "/";
//   - NUL and backslash anywhere (a backslash is a separator on other
//     systems and in some proxies' eyes; no tenant needs one);
//   - any segment starting with ".": "..", "." and every dot-file or
//     dot-directory (.git, .env, .htaccess), except the ACME challenge
//     directory when allowACME is set.
//
// What remains can only differ from its path.Clean form by repeated
// slashes and a trailing slash; urlPath is the cleaned form with the
// trailing slash kept (it tells a directory request from a file request),
// and name is urlPath without the leading and trailing slash, "." for the
// root. name never escapes the root lexically; os.Root takes care of
// symlinks.
func cleanPath(p string, allowACME bool) (urlPath, name string, ok bool) {
	if p == "" || p[0] != '/' || strings.ContainsAny(p, "\x00\\") {
		return "", "", false
	}
	clean := true // no empty segments other than a trailing one
	for i := 1; i < len(p); {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p) - i
		}
		seg := p[i : i+j]
		switch {
		case seg == "":
			if i+j < len(p) {
				clean = false // "//"
			}
		case seg[0] == '.':
			// Only the first segment may be the ACME exception; the
			// segments below it are checked like any others.
			if !(allowACME && i == 1 && isACMEPath(p)) {
				return "", "", false
			}
		}
		i += j + 1
	}
	if !clean {
		p = collapseSlashes(p)
	}
	name = strings.Trim(p, "/")
	if name == "" {
		name = "."
	}
	return p, name, true
}

// collapseSlashes replaces runs of "/" by one.
func collapseSlashes(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// isACMEPath reports whether p is the ACME challenge directory or below it.
func isACMEPath(p string) bool {
	return p == acmePrefix[:len(acmePrefix)-1] || strings.HasPrefix(p, acmePrefix)
}
