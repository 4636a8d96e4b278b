package vhost

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// Limits from RFC 1035 §2.3.4: a label is at most 63 octets, a name at most
// 253 characters in text form (255 octets on the wire).
const (
	maxNameLen  = 253
	maxLabelLen = 63
	// maxInputLen bounds the raw input: a maximal name, one trailing dot
	// and ":65535".
	maxInputLen = maxNameLen + 1 + len(":65535")
	// maxQuoted bounds how much of a rejected input an error message repeats.
	maxQuoted = 64
)

// Reasons a name is rejected. They are constants so that rejecting a flood of
// garbage names costs one small allocation each, not a formatted string.
const (
	reasonEmpty       = "empty name"
	reasonTooLong     = "longer than 253 characters"
	reasonIP          = "IP literal, not a host name"
	reasonPort        = "port is not a number in 1..65535"
	reasonEmptyLabel  = "empty label"
	reasonLongLabel   = "label longer than 63 characters"
	reasonHyphen      = "label begins or ends with a hyphen"
	reasonNonASCII    = "non-ASCII byte (send the xn-- A-label, not the Unicode form)"
	reasonByte        = "character not allowed in a host name"
	reasonPunycode    = "xn-- label is not a valid A-label"
	reasonWildcard    = "not a wildcard name of the form *.parent"
	reasonWildParent  = "wildcard parent must have at least two labels"
	reasonWildPort    = "wildcard name carries a port"
	reasonNormalized  = "host is not in canonical form (see Normalize)"
	reasonPatternPath = "expands to a path that is not confined to the sites root"
)

// nameError is the error Normalize and its relatives return. It wraps
// [ErrInvalidName]; the input is quoted with %q only when Error is called, so
// control characters and terminal escapes in attacker input never reach a
// log line raw.
type nameError struct {
	input  string
	reason string
}

func (e *nameError) Error() string {
	in := e.input
	if len(in) > maxQuoted {
		in = in[:maxQuoted] + "…"
	}
	return fmt.Sprintf("%v %q: %s", ErrInvalidName, in, e.reason)
}

func (e *nameError) Unwrap() error { return ErrInvalidName }

func invalid(input, reason string) error {
	if len(input) > maxQuoted {
		// Do not keep a large attacker string alive through the error.
		input = input[:maxQuoted+1]
	}
	return &nameError{input: input, reason: reason}
}

// namesNoTenant reports whether err says the input was an IP literal or empty:
// a request that names no host at all (an IP-only or HTTP/1.0 client), as
// opposed to a malformed host name.
func namesNoTenant(err error) bool {
	var e *nameError
	return errors.As(err, &e) && (e.reason == reasonIP || e.reason == reasonEmpty)
}

// Normalize returns the canonical form of a host name taken from SNI, a Host
// header, an HTTP/2 :authority or an absolute-form request target. Every
// cache key, file path and Redis key in massvhost is built from its result, so
// it runs before any I/O: a name that is not returned by Normalize never
// reaches open(2) or a Redis command.
//
// Normalize lowercases ASCII letters, strips a ":port" suffix (the port must
// be decimal in 1..65535) and one trailing dot, then requires LDH labels
// ([a-z0-9-], no leading or trailing hyphen) of 1..63 characters and at most
// 253 characters in all. Everything else is rejected with an error wrapping
// [ErrInvalidName]:
//
//   - "_", "/", "\", "%", "*", "?", "[", "]", NUL, spaces and every other
//     byte outside the LDH set, and empty labels ("a..b", ".a");
//   - any non-ASCII byte: internationalized names must arrive as A-labels
//     ("xn--bcher-kva.example"), which is what browsers, curl and the TLS
//     SNI extension (RFC 6066 §3) send. Accepting U-labels would mean a
//     second spelling of the same tenant and a Unicode mapping step on the
//     hot path;
//   - "xn--" labels that are not valid A-labels: the label must decode
//     under the [idna.Lookup] profile (UTS #46 non-transitional processing,
//     what browsers apply) and encode back to exactly the same A-label, so
//     each IDN tenant has one spelling. Labels that decode to mapped or
//     disallowed characters ("Ä", "Ⅳ", "。", joiners) fail; symbols that
//     UTS #46 allows ("xn--n3h", ☃) pass, as they do in browsers;
//   - IP literals: "[::1]:443", bare IPv6, and any name whose last label is
//     a number ("1.2.3.4", "127.1", "0x7f"), following the WHATWG URL
//     standard's "ends in a number" rule that browsers apply. An IP names a
//     machine, not a tenant.
//
// Single-label names such as "localhost" are accepted: they are valid host
// names on a private network, and a tenant directory must exist before one
// is served or gets a certificate.
//
// Normalize does not allocate when name is already canonical (or only needs
// a port or trailing dot removed); lowercasing costs one allocation. Names
// with "xn--" labels additionally pay for the IDNA check.
func Normalize(name string) (string, error) {
	if name == "" {
		return "", invalid(name, reasonEmpty)
	}
	if len(name) > maxInputLen {
		return "", invalid(name, reasonTooLong)
	}
	host := name
	if host[0] == '[' {
		return "", invalid(name, ipv6Reason(host))
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		if strings.IndexByte(host[:i], ':') >= 0 {
			return "", invalid(name, ipv6Reason(host)) // bare IPv6 such as ::1
		}
		if !validPort(host[i+1:]) {
			return "", invalid(name, reasonPort)
		}
		host = host[:i]
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	if host == "" {
		return "", invalid(name, reasonEmptyLabel)
	}
	if len(host) > maxNameLen {
		return "", invalid(name, reasonTooLong)
	}

	upper, idn := false, false
	start := 0 // first byte of the current label
	for i := 0; i < len(host); i++ {
		switch byteClass[host[i]] {
		case classLDH:
		case classUpper:
			upper = true
		case classDot:
			reason, xn := checkLabel(host[start:i])
			if reason != "" {
				return "", invalid(name, reason)
			}
			idn = idn || xn
			start = i + 1
		case classHigh:
			return "", invalid(name, reasonNonASCII)
		default:
			return "", invalid(name, reasonByte)
		}
	}
	reason, xn := checkLabel(host[start:])
	if reason != "" {
		return "", invalid(name, reason)
	}
	idn = idn || xn
	if endsInNumber(host[start:]) {
		return "", invalid(name, reasonIP)
	}
	if upper {
		host = lowerASCII(host)
	}
	if idn && !validIDN(host) {
		return "", invalid(name, reasonPunycode)
	}
	return host, nil
}

// Byte classes for the scan in Normalize; the zero value, classBad, is every
// byte that may not appear in a host name.
const (
	classBad = iota
	classLDH
	classUpper
	classDot
	classHigh
)

var byteClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = classLDH
		t[c-'a'+'A'] = classUpper
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = classLDH
	}
	t['-'] = classLDH
	t['.'] = classDot
	for c := 0x80; c <= 0xff; c++ {
		t[c] = classHigh
	}
	return t
}()

// checkLabel returns why label (letters still in either case) is not a valid
// LDH label, or "", and reports whether it carries the "xn--" A-label prefix.
func checkLabel(label string) (reason string, xn bool) {
	n := len(label)
	switch {
	case n == 0:
		return reasonEmptyLabel, false
	case n > maxLabelLen:
		return reasonLongLabel, false
	case label[0] == '-' || label[n-1] == '-':
		return reasonHyphen, false
	}
	return "", n >= 4 && label[2] == '-' && label[3] == '-' &&
		label[0]|0x20 == 'x' && label[1]|0x20 == 'n'
}

// ipv6Reason says why a name holding "[" or several colons is rejected: it
// is an IPv6 literal, bracketed with an optional port or bare, or garbage.
func ipv6Reason(s string) string {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		addr, port, ok := strings.Cut(rest, "]")
		if !ok || (port != "" && (port[0] != ':' || !validPort(port[1:]))) {
			return reasonByte
		}
		s = addr
	}
	if ip, err := netip.ParseAddr(s); err == nil && ip.Is6() {
		return reasonIP
	}
	return reasonByte
}

// validPort reports whether s is a decimal port number in 1..65535. An empty
// port ("a.test:") is rejected although RFC 3986 allows it: no client needs
// it, and one spelling per name is the point of Normalize.
func validPort(s string) bool {
	if len(s) == 0 || len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

// endsInNumber reports whether the last label of a name makes it an IPv4
// address for a browser: all decimal digits, or "0x" followed by hex digits
// (WHATWG URL standard, "ends in a number checker").
func endsInNumber(label string) bool {
	if len(label) >= 2 && label[0] == '0' && label[1]|0x20 == 'x' {
		for i := 2; i < len(label); i++ {
			c := label[i] | 0x20
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(label); i++ {
		if label[i] < '0' || label[i] > '9' {
			return false
		}
	}
	return true
}

// lowerASCII lowercases s, which holds at most maxNameLen ASCII bytes, with
// one allocation (strings.ToLower checks for Unicode first and may allocate
// a builder).
func lowerASCII(s string) string {
	var buf [maxNameLen]byte
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return string(b)
}

// validIDN reports whether every "xn--" label of the lowercase LDH name host
// is an A-label that decodes under the idna.Lookup profile (UTS #46
// non-transitional, with the CheckHyphens, CheckJoiners and Bidi rules) and
// encodes back to itself. Other labels were checked by Normalize already.
// The Bidi rule is applied to each xn-- label alone: RFC 5893 also constrains
// the LDH labels of a name that holds a right-to-left label, which protects
// how a name is displayed, not which tenant it names.
func validIDN(host string) bool {
	for label := range strings.SplitSeq(host, ".") {
		if !strings.HasPrefix(label, "xn--") {
			continue
		}
		u, err := idna.Lookup.ToUnicode(label)
		if err != nil {
			return false
		}
		a, err := idna.Lookup.ToASCII(u)
		if err != nil || a != label {
			return false
		}
	}
	return true
}

// NormalizeWildcard returns the canonical form of a wildcard certificate name
// "*.parent", as certificate stores name wildcard pairs. The parent is
// canonicalized by [Normalize], may not carry a port, and must have at least
// two labels: "*.com" would cover a whole top-level domain. Errors wrap
// [ErrInvalidName].
func NormalizeWildcard(name string) (string, error) {
	parent, ok := strings.CutPrefix(name, "*.")
	if !ok {
		return "", invalid(name, reasonWildcard)
	}
	if strings.IndexByte(parent, ':') >= 0 {
		return "", invalid(name, reasonWildPort)
	}
	p, err := Normalize(parent)
	if err != nil {
		return "", err
	}
	if strings.IndexByte(p, '.') < 0 {
		return "", invalid(name, reasonWildParent)
	}
	if p == parent {
		return name, nil
	}
	return "*." + p, nil
}

// WildcardParent returns the wildcard name that covers name ("*.b.c" for
// "a.b.c") and reports whether there is one. name must be a result of
// [Normalize]. There is none when the parent would have fewer than two
// labels ("a.test" and "localhost" have none): a certificate for "*.test"
// would cover a whole top-level domain, and certificate stores never hold one.
func WildcardParent(name string) (string, bool) {
	i := strings.IndexByte(name, '.')
	if i < 0 || strings.IndexByte(name[i+1:], '.') < 0 {
		return "", false
	}
	return "*" + name[i:], true
}
