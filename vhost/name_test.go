package vhost

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61) // 3*64 + 61
	tests := []struct {
		name string
		in   string
		want string // "" means an error wrapping ErrInvalidName
	}{
		// Accepted, and mapped to one spelling.
		{"canonical", "a.test", "a.test"},
		{"uppercase", "A.TEST", "a.test"},
		{"mixed case", "WwW.Example.COM", "www.example.com"},
		{"trailing dot", "a.test.", "a.test"},
		{"port", "a.test:443", "a.test"},
		{"trailing dot and port", "a.test.:443", "a.test"},
		{"port with leading zeros", "a.test:0443", "a.test"},
		{"highest port", "a.test:65535", "a.test"},
		{"single label", "localhost", "localhost"},
		{"single label with port", "LOCALHOST:8080", "localhost"},
		{"digits and hyphens", "0-a.b-1.test", "0-a.b-1.test"},
		{"leading digit label", "1a.test", "1a.test"},
		{"double hyphen inside", "ab--cd.test", "ab--cd.test"},
		{"hex-looking non-final label", "0xff.test", "0xff.test"},
		{"final label mixes digits and letters", "a.1b", "a.1b"},
		{"punycode", "xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"punycode uppercase prefix", "XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"punycode sharp s", "xn--zca.test", "xn--zca.test"},
		{"63-char label", label63 + ".test", label63 + ".test"},
		{"253-char name", name253, name253},
		{"253-char name with dot and port", name253 + ".:443", name253},

		// Rejected: traversal and key injection (TLS-02).
		{"traversal", "../../etc/passwd", ""},
		{"slash", "a/b", ""},
		{"slash and colon", "a/b:c", ""},
		{"backslash", `a\b.test`, ""},
		{"percent", "a%2e.test", ""},
		{"star", "*", ""},
		{"wildcard", "*.a.test", ""},
		{"question mark", "a?test", ""},
		{"brackets", "[a]", ""},
		{"NUL", "a.test\x00.evil", ""},
		{"space", "a .test", ""},
		{"CRLF", "a.test\r\nX: y", ""},
		{"underscore", "a_test.test", ""},
		{"dot dot", "..", ""},
		{"only a dot", ".", ""},
		{"empty", "", ""},

		// Rejected: structure (VH-01).
		{"empty label", "a..test", ""},
		{"leading dot", ".a.test", ""},
		{"two trailing dots", "a.test..", ""},
		{"leading hyphen", "-a.test", ""},
		{"trailing hyphen", "a-.test", ""},
		{"hyphen in final label end", "a.test-", ""},
		{"64-char label", strings.Repeat("a", 64) + ".test", ""},
		{"254-char name", name253 + "b", ""},
		{"many labels", strings.Repeat("a.", 130) + "test", ""},
		{"huge input", strings.Repeat("a", 100000), ""},

		// Rejected: ports.
		{"port not a number", "a.test:abc", ""},
		{"empty port", "a.test:", ""},
		{"port zero", "a.test:0", ""},
		{"port too big", "a.test:65536", ""},
		{"port too long", "a.test:000443", ""},
		{"negative port", "a.test:-1", ""},
		{"port only", ":443", ""},
		{"two ports", "a.test:1:2", ""},
		{"dot after port", "a.test:443.", ""},

		// Rejected: Unicode and bad punycode.
		{"U-label", "ä.test", ""},
		{"U-label uppercase", "Ä.TEST", ""},
		{"fullwidth dot", "a\uff0etest", ""},
		{"invalid UTF-8", "a\xff.test", ""},
		{"invalid punycode", "xn--zz.test", ""},
		{"empty punycode", "xn--.test", ""},
		{"punycode of ASCII", "xn--abc-.test", ""},
		{"punycode not canonical", "xn--bcher-KVA.example.xn--ZZ", ""},
		{"punycode of uppercase", "xn--bcher-kva.xn--BCHER-KVA", "xn--bcher-kva.xn--bcher-kva"},
		{"punycode of uppercase U-label", "xn--7ba.test", ""},                // "Ä"
		{"punycode of joiner", "xn--ab-n1t.test", ""},                        // "ab" + ZWJ
		{"punycode of ideographic dot", "xn--ab-r13a.test", ""},              // "a。b"
		{"punycode of mapped character", "xn--t4g.test", ""},                 // "Ⅳ"
		{"punycode of symbol UTS 46 allows", "xn--n3h.test", "xn--n3h.test"}, // "☃"
		{"punycode lowercase U-label", "xn--4ca.test", "xn--4ca.test"},       // "ä"

		// Rejected: IP literals.
		{"IPv4", "1.2.3.4", ""},
		{"IPv4 with port", "1.2.3.4:80", ""},
		{"IPv4 trailing dot", "1.2.3.4.", ""},
		{"short IPv4", "127.1", ""},
		{"decimal IPv4", "2130706433", ""},
		{"hex IPv4", "0x7f.0x1", ""},
		{"hex final label", "a.0xFF", ""},
		{"bare 0x", "a.0x", ""},
		{"numeric final label", "a.123", ""},
		{"IPv6 with port", "[::1]:443", ""},
		{"IPv6 brackets", "[::1]", ""},
		{"IPv6 bare", "::1", ""},
		{"IPv6 full", "2001:db8::1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Normalize(%q) = %q, want error", tc.in, got)
				}
				if !errors.Is(err, ErrInvalidName) {
					t.Fatalf("Normalize(%q) error %v does not wrap ErrInvalidName", tc.in, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestNormalizeNoHost checks which rejected inputs name no host at all (IP
// literals, the empty host), which Resolve answers with the default site,
// as opposed to malformed names.
func TestNormalizeNoHost(t *testing.T) {
	for in, want := range map[string]bool{
		"":                 true,
		"1.2.3.4":          true,
		"1.2.3.4:80":       true,
		"127.1":            true,
		"[::1]":            true,
		"[::1]:443":        true,
		"::1":              true,
		"[fe80::1]:8443":   true,
		"[::ffff:1.2.3.4]": true,
		"[a]":              false,
		"[::1]x":           false,
		"[::1]:abc":        false,
		"[1.2.3.4]":        false,
		"a:b:c":            false,
		".":                false,
		":443":             false,
		"a..test":          false,
		"../../etc":        false,
	} {
		_, err := Normalize(in)
		if err == nil {
			t.Errorf("Normalize(%q) succeeded", in)
			continue
		}
		if got := namesNoTenant(err); got != want {
			t.Errorf("namesNoTenant(Normalize(%q)) = %v, want %v (%v)", in, got, want, err)
		}
	}
}

func TestNormalizeErrorQuotesInput(t *testing.T) {
	_, err := Normalize("evil\x1b[2J\n" + strings.Repeat("x", 1000))
	if err == nil {
		t.Fatal("want error")
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\x1b\n") {
		t.Errorf("error repeats control characters raw: %q", msg)
	}
	if len(msg) > 200 {
		t.Errorf("error message is %d bytes, want the input truncated: %q", len(msg), msg)
	}
	if !strings.Contains(msg, `"evil\x1b[2J\n`) {
		t.Errorf("error does not quote the input: %q", msg)
	}
}

func TestNormalizeAllocs(t *testing.T) {
	for _, in := range []string{"a.test", "www.example.com", "a.test.", "a.test:443", "localhost"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = Normalize(in) }); n != 0 {
			t.Errorf("Normalize(%q) allocates %v times, want 0", in, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = Normalize("WWW.Example.COM") }); n != 1 {
		t.Errorf("Normalize of a mixed-case name allocates %v times, want 1", n)
	}
}

func TestNormalizeWildcard(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means an error wrapping ErrInvalidName
	}{
		{"canonical", "*.example.com", "*.example.com"},
		{"uppercase", "*.Example.COM", "*.example.com"},
		{"trailing dot", "*.example.com.", "*.example.com"},
		{"punycode", "*.xn--bcher-kva.example", "*.xn--bcher-kva.example"},
		{"single-label parent", "*.com", ""},
		{"no star", "example.com", ""},
		{"star inside", "a.*.example.com", ""},
		{"double star", "*.*.example.com", ""},
		{"partial star", "a*.example.com", ""},
		{"port", "*.example.com:443", ""},
		{"bad parent", "*.a..b", ""},
		{"IP parent", "*.1.2.3.4", ""},
		{"bare star", "*", ""},
		{"star dot", "*.", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeWildcard(tc.in)
			if tc.want == "" {
				if !errors.Is(err, ErrInvalidName) {
					t.Fatalf("NormalizeWildcard(%q) = %q, %v; want ErrInvalidName", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeWildcard(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestWildcardParent(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"a.b.c", "*.b.c", true},
		{"www.example.com", "*.example.com", true},
		{"x.y.example.com", "*.y.example.com", true},
		{"a.test", "", false},
		{"localhost", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := WildcardParent(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("WildcardParent(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
			if ok {
				if w, err := NormalizeWildcard(got); err != nil || w != got {
					t.Errorf("NormalizeWildcard(%q) = %q, %v; want it unchanged", got, w, err)
				}
			}
		})
	}
}

// FuzzNormalize checks that whatever comes in, what comes out is canonical:
// a fixed point of Normalize, only [a-z0-9.-], within the DNS length limits.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"a.test", "A.TEST", "a.test.:443", "../../etc/passwd", "xn--bcher-kva.example",
		"xn--zz.test", "ä.test", "[::1]:443", "1.2.3.4", "a..test", "localhost:65535",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("Normalize(%q) error %v does not wrap ErrInvalidName", in, err)
			}
			return
		}
		if out == "" || len(out) > maxNameLen {
			t.Fatalf("Normalize(%q) = %q: length %d", in, out, len(out))
		}
		for i := 0; i < len(out); i++ {
			c := out[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("Normalize(%q) = %q: byte %q", in, out, c)
			}
		}
		if strings.Contains(out, "..") || out[0] == '.' || out[len(out)-1] == '.' {
			t.Fatalf("Normalize(%q) = %q: empty label", in, out)
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Fatalf("Normalize(Normalize(%q)) = %q, %v; want %q", in, again, err, out)
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"canonical", "www.example-tenant.com"},
		{"mixed-case", "WWW.Example-Tenant.COM"},
		{"port", "www.example-tenant.com:443"},
		{"punycode", "xn--bcher-kva.example"},
		{"invalid", "../../etc/passwd"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Normalize(bc.in)
			}
		})
	}
}
