package vhost

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Default patterns: the tenant layout <sites.root>/<host>/htdocs and
// <sites.root>/<host>/cgi-bin.
const (
	DefaultDocRoot Pattern = "%0/htdocs"
	DefaultCGIBin  Pattern = "%0/cgi-bin"
)

// errPattern is wrapped by every pattern syntax error.
var errPattern = errors.New("vhost: bad pattern")

// Pattern maps a canonical host name to a directory relative to the sites
// root, with the interpolation syntax of Apache's mod_vhost_alias
// (VirtualDocumentRoot):
//
//	%%      a literal "%"
//	%0      the whole name
//	%N      the Nth label from the left (N is one digit, 1..9)
//	%-N     the Nth label from the right
//	%N+     label N and every label after it
//	%-N+    label N from the right and every label before it
//	%N.M    the Mth character of what %N selects (M is one digit, 1..9)
//	%N.-M   the Mth character from the end
//	%N.M+   the Mth character and every character after it
//	%N.-M+  the Mth character from the end and every character before it
//
// "%1+" and "%-1+" equal "%0"; M = 0 selects the whole label. A label or
// character beyond the end of the name interpolates "_", as in Apache. A "."
// right after a directive always starts the M part, so a literal dot after a
// directive is written "%2.0.%3". For "www.example.com": "%0" is
// "www.example.com", "%2" is "example", "%-1" is "com", "%2+" is
// "example.com", "%-2+" is "www.example", "%2.1" is "e", "%-2.-1" is "e".
//
// Apache's "%p" (the port) is not supported: ports are not part of a
// canonical host name.
//
// A Pattern is a plain string so that configuration can hold one; build it
// with [ParsePattern] to have it checked up front. [Pattern.Expand] checks
// again, so an unchecked Pattern is never unsafe, only late to fail.
type Pattern string

// directive is one %-interpolation. n == 0 selects the whole name and
// m == 0 the whole selection.
type directive struct {
	n, m               int
	nFromEnd, mFromEnd bool
	nPlus, mPlus       bool
}

// ParsePattern checks s as a [Pattern] and returns it. s must be a relative,
// slash-separated path with no "." or ".." components, no NUL or backslash,
// and at least one host directive (a pattern without one would give every
// host the same directory). Errors name the offending directive.
func ParsePattern(s string) (Pattern, error) {
	p := Pattern(s)
	if err := p.check(); err != nil {
		return "", err
	}
	return p, nil
}

func (p Pattern) errorf(format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", errPattern, string(p), fmt.Sprintf(format, args...))
}

// check validates p without a host: the syntax of every directive, and the
// literal parts that could make a path absolute or escape the sites root.
func (p Pattern) check() error {
	s := string(p)
	switch {
	case s == "":
		return p.errorf("empty")
	case s[0] == '/':
		return p.errorf("must be relative to the sites root")
	case strings.ContainsAny(s, "\x00\\"):
		return p.errorf("NUL and backslash are not allowed")
	}
	for comp := range strings.SplitSeq(s, "/") {
		if comp == "" || comp == "." || comp == ".." {
			return p.errorf("component %q is not allowed", comp)
		}
	}
	hasDirective := false
	for i := 0; i < len(s); {
		if s[i] != '%' {
			i++
			continue
		}
		d, next, err := p.parseDirective(i)
		if err != nil {
			return err
		}
		if d != nil {
			hasDirective = true
		}
		i = next
	}
	if !hasDirective {
		return p.errorf("no host directive (such as %%0): every host would share one directory")
	}
	return nil
}

// parseDirective parses the directive that starts with the '%' at s[i]. It
// returns nil for "%%" and the index just past the directive. The grammar is
// Apache's: "%" ( "%" | ["-"] digit ["+"] ["." ["-"] digit ["+"]] ).
func (p Pattern) parseDirective(i int) (*directive, int, error) {
	s := string(p)
	start := i
	i++ // '%'
	bad := func(why string) error {
		end := min(i+1, len(s))
		return p.errorf("directive %q at offset %d: %s", s[start:end], start, why)
	}
	if i < len(s) && s[i] == '%' {
		return nil, i + 1, nil
	}
	if i < len(s) && s[i] == 'p' {
		return nil, 0, bad("the port (%p) is not part of a host name")
	}
	var d directive
	if i < len(s) && s[i] == '-' {
		d.nFromEnd = true
		i++
	}
	if i >= len(s) || s[i] < '0' || s[i] > '9' {
		return nil, 0, bad(`want a label number 0..9, "-N", or "%%"`)
	}
	d.n = int(s[i] - '0')
	i++
	if i < len(s) && s[i] == '+' {
		d.nPlus = true
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i < len(s) && s[i] == '-' {
			d.mFromEnd = true
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return nil, 0, bad(`want a character number 0..9 after "." (write a literal dot as "%N.0.")`)
		}
		d.m = int(s[i] - '0')
		i++
		if i < len(s) && s[i] == '+' {
			d.mPlus = true
			i++
		}
	}
	return &d, i, nil
}

// Expand interpolates host into p and returns a relative, slash-separated,
// cleaned path. host must be canonical (a result of [Normalize]); otherwise
// the error wraps [ErrInvalidName]. The result is never absolute, never
// empty, and never contains a ".." component or a NUL byte: a name whose
// expansion would (possible only with character selections such as "%0.2"
// that can pick a dot) is rejected with an error wrapping ErrInvalidName.
// A syntactically bad pattern returns the same error [ParsePattern] would.
func (p Pattern) Expand(host string) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	if h, err := Normalize(host); err != nil {
		return "", err
	} else if h != host {
		return "", invalid(host, reasonNormalized)
	}
	// bounds[k] .. bounds[k+1] delimit label k+1, Apache-style: bounds[0] is
	// -1 and the others are the dots and the end of the name.
	var boundsBuf [maxNameLen/2 + 2]int
	bounds := append(boundsBuf[:0], -1)
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			bounds = append(bounds, i)
		}
	}
	bounds = append(bounds, len(host))
	labels := len(bounds) - 1

	s := string(p)
	var b strings.Builder
	b.Grow(len(s) + 2*len(host))
	for i := 0; i < len(s); {
		if s[i] != '%' {
			b.WriteByte(s[i])
			i++
			continue
		}
		d, next, _ := p.parseDirective(i) // checked above
		i = next
		if d == nil {
			b.WriteByte('%')
			continue
		}
		b.WriteString(d.selectFrom(host, bounds, labels))
	}
	return confine(b.String(), host)
}

// selectFrom returns the part of host that d selects, or "_" when d points
// past the end of the name.
func (d *directive) selectFrom(host string, bounds []int, labels int) string {
	start, end := 0, len(host)
	if d.n != 0 {
		switch {
		case d.n > labels:
			return "_"
		case !d.nFromEnd:
			start = bounds[d.n-1] + 1
			if !d.nPlus {
				end = bounds[d.n]
			}
		default:
			if !d.nPlus {
				start = bounds[labels-d.n] + 1
			}
			end = bounds[labels-d.n+1]
		}
	}
	if d.m != 0 {
		switch {
		case d.m > end-start:
			return "_"
		case !d.mFromEnd:
			start += d.m - 1
			if !d.mPlus {
				end = start + 1
			}
		default:
			if !d.mPlus {
				start = end - d.m
			}
			end = end - d.m + 1
		}
	}
	return host[start:end]
}

// confine checks an expansion and returns it cleaned. Host labels hold only
// [a-z0-9-] and literals were checked, so only a dot picked out of the name
// by a character selection can form a ".." component; it is checked before
// cleaning, which would otherwise fold "x/../y" into "y".
func confine(rel, host string) (string, error) {
	if rel == "" || rel[0] == '/' || strings.IndexByte(rel, 0) >= 0 {
		return "", invalid(host, reasonPatternPath)
	}
	for comp := range strings.SplitSeq(rel, "/") {
		if comp == ".." {
			return "", invalid(host, reasonPatternPath)
		}
	}
	rel = path.Clean(rel)
	if rel == "." {
		return "", invalid(host, reasonPatternPath)
	}
	return rel, nil
}

// tenantPrefix returns the leading components of p up to and including the
// last one that holds a host directive: "%0" for "%0/htdocs",
// "%1.1/%1.2/%0" for "%1.1/%1.2/%0/htdocs", "%0" for "%0". It expands to
// the tenant's own directory, Site.Root. p must have passed check.
func (p Pattern) tenantPrefix() Pattern {
	s := string(p)
	end := 0
	for i := 0; i < len(s); {
		if s[i] != '%' {
			i++
			continue
		}
		d, next, _ := p.parseDirective(i)
		i = next
		if d == nil {
			continue
		}
		if slash := strings.IndexByte(s[next:], '/'); slash >= 0 {
			end = next + slash
		} else {
			end = len(s)
		}
	}
	return Pattern(s[:end])
}
