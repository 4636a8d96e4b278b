package server

import (
	"strings"
	"testing"
)

// parseListenFDs takes nothing that was not passed to this very process.
// (The descriptors themselves are taken end to end, through the binary:
// test/e2e TestSocketActivation.)
func TestParseListenFDsNotForUs(t *testing.T) {
	for _, tc := range []struct{ pid, fds string }{
		{"", ""},          // no activation
		{"1", "2"},        // for another process (the shell that exec'd us, say)
		{"4242", "x"},     // garbage count
		{"4242", "0"},     // nothing passed
		{"4242", "-1"},    // negative
		{"4242", "99999"}, // absurd
	} {
		if got := parseListenFDs(tc.pid, tc.fds, "http:https", 4242); got != nil {
			t.Errorf("LISTEN_PID=%q LISTEN_FDS=%q: %v, want nothing", tc.pid, tc.fds, got)
		}
	}
}

func TestListenUnknownSystemdSocket(t *testing.T) {
	_, err := Listen(SystemdPrefix + "nope")
	if err == nil || !strings.Contains(err.Error(), `no socket named "nope"`) {
		t.Fatalf("Listen(systemd:nope) = %v, want an error naming the socket", err)
	}
}
