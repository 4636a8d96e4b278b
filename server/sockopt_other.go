//go:build !linux

package server

import "net"

// tuneConn sets per-connection socket options; elsewhere than Linux there
// are none to set.
func tuneConn(net.Conn) {}
