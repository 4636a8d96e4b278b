package server

import (
	"fmt"
	"path"
	"strings"
)

// DefaultDenyNames are the path.Match patterns of [Options.DenyNames] when
// it is nil: the backup and swap files editors and tools leave next to what
// they edit (Emacs "x~" and "#x#", Vim "x.swp" and "x.swo" — usually
// dot-files, hidden anyway —, "x.bak", patch's "x.orig", nano's "x.save").
// A copy of index.cgi saved as index.cgi~ or config.php.bak would be served
// as source, secrets and all (THREATS FS-06). It returns a new slice on
// each call.
func DefaultDenyNames() []string {
	return []string{"*~", "*.swp", "*.swo", "*.bak", "*.orig", "*.save", "#*#"}
}

// denyList is a compiled DenyNames list. Most patterns are a fixed suffix
// ("*.bak"), or a prefix and a suffix around one star ("#*#"); those are
// matched with string comparisons, and only the rest with path.Match. A
// table of the bytes those patterns can end with rejects most names
// ("index.html", "site.css") with one lookup, so the check of a whole
// request path costs a few nanoseconds per component. The zero value
// denies nothing.
type denyList struct {
	affixes  []affix  // patterns with at most one '*' and no other metacharacter
	patterns []string // everything else, for path.Match
	// lastByte[c] is set when an affix can match a name ending in c;
	// anyLast when one can match any ending (a pattern ending in '*').
	lastByte [256]bool
	anyLast  bool
}

// affix matches the names that start with prefix and end with suffix, with
// at least len(prefix)+len(suffix) bytes: the pattern prefix*suffix. A
// pattern without a star has only a prefix and exact set.
type affix struct {
	prefix, suffix string
	exact          bool // no star: the name must equal prefix
}

// compileDenyNames checks and compiles patterns. A pattern must be valid
// for path.Match and name one path component: no '/', not empty.
func compileDenyNames(patterns []string) (denyList, error) {
	var d denyList
	for _, p := range patterns {
		if p == "" || strings.Contains(p, "/") {
			return denyList{}, fmt.Errorf("server: DenyNames entry %q: must be a non-empty pattern without '/'", p)
		}
		if _, err := path.Match(p, ""); err != nil {
			return denyList{}, fmt.Errorf("server: DenyNames entry %q: %w", p, err)
		}
		var a affix
		switch star := strings.IndexByte(p, '*'); {
		case strings.ContainsAny(p, `?[\`) || strings.Count(p, "*") > 1:
			d.patterns = append(d.patterns, p)
			continue
		case star < 0:
			a = affix{prefix: p, exact: true}
		default:
			a = affix{prefix: p[:star], suffix: p[star+1:]}
		}
		d.affixes = append(d.affixes, a)
		switch {
		case a.exact:
			d.lastByte[p[len(p)-1]] = true
		case a.suffix != "":
			d.lastByte[a.suffix[len(a.suffix)-1]] = true
		default:
			d.anyLast = true
		}
	}
	return d, nil
}

// empty reports whether d denies nothing.
func (d *denyList) empty() bool { return len(d.affixes) == 0 && len(d.patterns) == 0 }

// matchName reports whether the path component name matches a pattern.
func (d *denyList) matchName(name string) bool {
	if name == "" {
		return false
	}
	if !d.anyLast && !d.lastByte[name[len(name)-1]] {
		return d.matchPatterns(name)
	}
	for _, a := range d.affixes {
		if a.exact {
			if name == a.prefix {
				return true
			}
			continue
		}
		if len(name) >= len(a.prefix)+len(a.suffix) &&
			strings.HasPrefix(name, a.prefix) && strings.HasSuffix(name, a.suffix) {
			return true
		}
	}
	return d.matchPatterns(name)
}

// matchPatterns reports whether name matches one of the path.Match
// patterns.
func (d *denyList) matchPatterns(name string) bool {
	for _, p := range d.patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// hides reports whether any component of the URL path p matches a
// pattern: "/old~/index.html" is hidden as much as "/index.html~", and so
// is a script's PATH_INFO ("/cgi-bin/x.cgi/a.bak"), the way dot segments
// are refused wherever they appear.
func (d *denyList) hides(p string) bool {
	if d.empty() {
		return false
	}
	for len(p) > 0 {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			return d.matchName(p)
		}
		if i > 0 && d.matchName(p[:i]) {
			return true
		}
		p = p[i+1:]
	}
	return false
}
