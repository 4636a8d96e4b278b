package server

import (
	"net"

	"golang.org/x/sys/unix"
)

// notSentLowat is the TCP_NOTSENT_LOWAT set on every accepted connection:
// the most response bytes the kernel holds that it has not yet sent.
//
// The rolling write deadline (Options.WriteTimeout) measures progress by
// how long one write blocks. Without this option Linux lets a socket queue
// up to tcp_wmem's maximum (4 MiB by default) and wakes a blocked writer
// only when about half of the queue has drained, so a client reading a
// large file at 1 MB/s leaves a write blocked for two seconds and is cut
// by a 1 s WriteTimeout although its download never stopped moving (and a
// 30 KB/s client is cut by the 60 s default). With the unsent part capped
// at this size a write unblocks after every few tens of KiB the client
// reads, so the deadline measures the client and not the kernel's
// buffering. Bytes already sent but not yet acknowledged are not counted,
// so the congestion window, and throughput on long fat links, is not
// limited.
const notSentLowat = 128 << 10

// tuneConn sets per-connection socket options on an accepted connection.
// Failures are ignored: the option is an improvement, not a requirement.
func tuneConn(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
	})
}
