package main

import (
	"strings"
	"testing"
)

func TestSplice(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"empty document", "", "# Benchmarks\n\n" + beginMarker + "\nNEW\n" + endMarker + "\n"},
		{"no markers", "# Benchmarks\n\nunit figures\n", "# Benchmarks\n\nunit figures\n\n" + beginMarker + "\nNEW\n" + endMarker + "\n"},
		{"replace between markers",
			"head\n" + beginMarker + "\nOLD\nOLD\n" + endMarker + "\ntail\n",
			"head\n" + beginMarker + "\nNEW\n" + endMarker + "\ntail\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(splice([]byte(tc.doc), "NEW\n")); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	// Idempotent.
	once := splice([]byte("a\n"), "X")
	if twice := splice(once, "X"); string(twice) != string(once) {
		t.Errorf("second splice changed the document:\n%s", twice)
	}
	if strings.Count(string(once), beginMarker) != 1 {
		t.Errorf("marker duplicated")
	}
}
