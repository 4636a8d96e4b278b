package redistest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sentinelTimeout bounds how long a new sentinel may take to report its
// master.
const sentinelTimeout = 15 * time.Second

// StartSentinel starts a Redis Sentinel (redis-server --sentinel) that
// monitors master under masterName, with a quorum of one, and returns its
// address once it reports the master. Clients using Sentinel connect to this
// address and ask it for the master.
func StartSentinel(tb testing.TB, master *Server, masterName string) *Server {
	tb.Helper()
	host, port, ok := strings.Cut(master.Addr, ":")
	if !ok {
		tb.Fatalf("redistest: bad master address %q", master.Addr)
	}
	s := startServer(tb, func(s *Server) {
		// Sentinel insists on a config file it can rewrite.
		s.conf = filepath.Join(s.Dir, "sentinel.conf")
		body := fmt.Sprintf("sentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 5000\n", masterName, host, port, masterName)
		if err := os.WriteFile(s.conf, []byte(body), 0o600); err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		s.extra = []string{"--sentinel"}
	})
	deadline := time.Now().Add(sentinelTimeout)
	for {
		reply, err := command(s.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)
		if err == nil && reply == host+" "+port {
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: sentinel on %s does not know master %q: %v", s.Addr, masterName, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
