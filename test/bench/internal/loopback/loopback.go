// Package loopback keeps benchmark traffic on this machine: every tool that
// dials a server checks its target with [Check] first.
package loopback

import (
	"fmt"
	"net"
)

// Check returns an error unless addr ("host:port") is a loopback address:
// 127.0.0.0/8, ::1, or the name localhost. Other names are refused rather
// than resolved, so a typo cannot send load elsewhere.
func Check(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not a loopback address: benchmark traffic stays on this machine", addr)
	}
	return nil
}
