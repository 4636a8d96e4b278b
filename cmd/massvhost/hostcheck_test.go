package main

import (
	"strings"
	"testing"
)

func TestHostWarnings(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		root bool
		want []string // substrings, one per expected line
	}{
		{"hardened", true, nil},
		{"weak", true, []string{"sysctl fs.protected_hardlinks is 0, want 1"}},
		{"weak", false, nil}, // no uid switch: the setting does not matter
		{"missing", true, nil},
	} {
		got := hostWarnings("testdata/procsys/"+tc.dir, tc.root)
		if len(got) != len(tc.want) {
			t.Errorf("%s (root %v): %q, want %d lines", tc.dir, tc.root, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: line %q lacks %q", tc.dir, got[i], w)
			}
		}
	}
}
