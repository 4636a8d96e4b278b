package vhost

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePattern(t *testing.T) {
	valid := []string{
		"%0", "%0/htdocs", "%0/cgi-bin", "%-1/%-2/%0", "%1.1/%1.2/%0/htdocs",
		"%2+/%1", "%-2+", "%2.-1+", "%2.0.%3", "%%/%0", "sites/%0/web", "%10",
		"%-0", "%0+", "%1.9+", "a.%0.0.b", "..%0", "%0/.well",
	}
	for _, s := range valid {
		t.Run("valid "+s, func(t *testing.T) {
			p, err := ParsePattern(s)
			if err != nil || string(p) != s {
				t.Fatalf("ParsePattern(%q) = %q, %v", s, p, err)
			}
		})
	}
	invalid := []struct {
		in, mention string // mention: a substring the error must contain
	}{
		{"", "empty"},
		{"/srv/%0", "relative"},
		{"../%0", `".."`},
		{"%0/../b", `".."`},
		{"%0/..", `".."`},
		{"./%0", `"."`},
		{"%0//htdocs", `""`},
		{"%0/", `""`},
		{"%0\x00", "NUL"},
		{`%0\htdocs`, "backslash"},
		{"htdocs", "no host directive"},
		{"%%/htdocs", "no host directive"},
		{"%p/%0", `"%p"`},
		{"%x/%0", `"%x"`},
		{"%0/%", `"%"`},
		{"%-", `"%-"`},
		{"%-x", `"%-x"`},
		{"%+1", `"%+"`},
		{"%1.", `"%1."`},
		{"%1.x", `"%1.x"`},
		{"%1.-", `"%1.-"`},
		{"%1.%2", `"%1.%"`},
		{"%1.-+", `"%1.-+"`},
	}
	for _, tc := range invalid {
		t.Run("invalid "+tc.in, func(t *testing.T) {
			p, err := ParsePattern(tc.in)
			if err == nil {
				t.Fatalf("ParsePattern(%q) = %q, want error", tc.in, p)
			}
			if !errors.Is(err, errPattern) {
				t.Errorf("error %v does not wrap errPattern", err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %s", err, tc.mention)
			}
			if _, err := Pattern(tc.in).Expand("a.test"); err == nil {
				t.Errorf("Pattern(%q).Expand succeeded", tc.in)
			}
		})
	}
}

func TestPatternExpand(t *testing.T) {
	tests := []struct {
		pattern, host string
		want          string // "" means an error wrapping ErrInvalidName
	}{
		{"%0", "www.example.com", "www.example.com"},
		{"%0/htdocs", "www.example.com", "www.example.com/htdocs"},
		{"%1", "www.example.com", "www"},
		{"%2", "www.example.com", "example"},
		{"%3", "www.example.com", "com"},
		{"%4", "www.example.com", "_"},
		{"%9", "a.test", "_"},
		{"%-1", "www.example.com", "com"},
		{"%-2", "www.example.com", "example"},
		{"%-3", "www.example.com", "www"},
		{"%-4", "www.example.com", "_"},
		{"%2+", "www.example.com", "example.com"},
		{"%3+", "www.example.com", "com"},
		{"%4+", "www.example.com", "_"},
		{"%-2+", "www.example.com", "www.example"},
		{"%-3+", "www.example.com", "www"},
		{"%-4+", "www.example.com", "_"},
		{"%1+", "www.example.com", "www.example.com"},
		{"%-1+", "www.example.com", "www.example.com"},
		{"%-0", "www.example.com", "www.example.com"},
		{"%2.1", "www.example.com", "e"},
		{"%2.2", "www.example.com", "x"},
		{"%2.7", "www.example.com", "e"},
		{"%2.8", "www.example.com", "_"},
		{"%2.0", "www.example.com", "example"},
		{"%2.-1", "www.example.com", "e"},
		{"%2.-2", "www.example.com", "l"},
		{"%2.-8", "www.example.com", "_"},
		{"%2.2+", "www.example.com", "xample"},
		{"%2.-2+", "www.example.com", "exampl"},
		{"%-2.1", "www.example.com", "e"},
		{"%2+.1", "www.example.com", "e"},
		{"%0.1", "www.example.com", "w"},
		{"%0.-1", "www.example.com", "m"},
		{"%4.1", "www.example.com", "_"},
		{"%%%0", "a.test", "%a.test"},
		{"%%/%0", "a.test", "%/a.test"},
		{"%2.0.%3", "www.example.com", "example.com"},
		{"%10", "a.test", "a0"},
		{"sites/%-1/%-2/%0/htdocs", "a.test", "sites/test/a/a.test/htdocs"},
		{"%1.1/%1.2/%0", "example.com", "e/x/example.com"},
		{"%1.1/%1.2/%1.3+/%0", "example.com", "e/x/ample/example.com"},
		{"%1.1/%1.2/%0", "a.test", "a/_/a.test"},
		{"%1/%1.1", "localhost", "localhost/l"},
		{"%-2/%-1", "localhost", "_/localhost"},
		{"%0/htdocs", "xn--bcher-kva.example", "xn--bcher-kva.example/htdocs"},

		// A character selection can pick a dot out of the name.
		{"x/%0.2/y", "a.b", "x/y"},
		{"x/%0.2%0.2", "a.b", ""},
		{"x/.%0.2", "a.b", ""},
		{"%0.2%0.2/x", "a.b", ""},
		{"%0.2", "a.b", ""},
		{"%0.-2+", "ab.c", "ab."},

		// The host must be canonical.
		{"%0", "A.test", ""},
		{"%0", "a.test.", ""},
		{"%0", "a.test:443", ""},
		{"%0", "..", ""},
		{"%0", "../../etc/passwd", ""},
		{"%0", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+" "+tc.host, func(t *testing.T) {
			got, err := Pattern(tc.pattern).Expand(tc.host)
			if tc.want == "" {
				if !errors.Is(err, ErrInvalidName) {
					t.Fatalf("Expand(%q) = %q, %v; want ErrInvalidName", tc.host, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Expand(%q) = %q, %v; want %q", tc.host, got, err, tc.want)
			}
		})
	}
}

func TestPatternTenantPrefix(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"%0/htdocs", "%0"},
		{"%0", "%0"},
		{"%0/cgi-bin", "%0"},
		{"%1.1/%1.2/%0/htdocs", "%1.1/%1.2/%0"},
		{"sites/%-1/%-2/public/htdocs", "sites/%-1/%-2"},
		{"%%/%0/web", "%%/%0"},
		{"%0/%%/web", "%0"},
		{"%2.0.%3/x", "%2.0.%3"},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			if got := Pattern(tc.pattern).tenantPrefix(); string(got) != tc.want {
				t.Fatalf("tenantPrefix = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzExpand checks the confinement promise: for any valid pattern and any
// name, an expansion joined to a root lies strictly below it.
func FuzzExpand(f *testing.F) {
	for _, seed := range []struct{ pattern, host string }{
		{"%0/htdocs", "a.test"},
		{"%1.1/%1.2/%0", "example.com"},
		{"x/.%0.2", "a.b"},
		{"%-2+/%2.-1+", "www.example.com"},
		{"%0.2%0.2", "a.b.c"},
		{"..%0", "a.test"},
	} {
		f.Add(seed.pattern, seed.host)
	}
	const root = "/srv/sites"
	f.Fuzz(func(t *testing.T, pattern, host string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		if h, err := Normalize(host); err == nil {
			host = h // reach the interpolation more often
		}
		rel, err := p.Expand(host)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("Expand(%q) with valid pattern %q: error %v does not wrap ErrInvalidName", host, pattern, err)
			}
			return
		}
		if rel == "" || rel[0] == '/' || strings.IndexByte(rel, 0) >= 0 {
			t.Fatalf("Pattern(%q).Expand(%q) = %q", pattern, host, rel)
		}
		for comp := range strings.SplitSeq(rel, "/") {
			if comp == ".." || comp == "." || comp == "" {
				t.Fatalf("Pattern(%q).Expand(%q) = %q: component %q", pattern, host, rel, comp)
			}
		}
		joined := filepath.Join(root, rel)
		if !strings.HasPrefix(joined, root+"/") {
			t.Fatalf("Pattern(%q).Expand(%q) = %q escapes %s: %s", pattern, host, rel, root, joined)
		}
	})
}
