package redistest

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterTimeout bounds how long a new cluster may take to reach
// cluster_state:ok on every node.
const clusterTimeout = 30 * time.Second

// Cluster is a Redis Cluster of masters without replicas, each a Server on
// its own loopback port with its cluster bus on another free port.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns the nodes' addresses, usable as go-redis cluster seeds.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// StartCluster starts n cluster-enabled masters (n ≥ 3, Redis' minimum),
// joins them with `redis-cli --cluster create` and waits until every node
// reports cluster_state:ok. It returns the node addresses.
func StartCluster(tb testing.TB, n int) []string {
	tb.Helper()
	return StartClusterNodes(tb, n).Addrs()
}

// StartClusterNodes is StartCluster returning the node handles.
func StartClusterNodes(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 3 {
		tb.Fatalf("redistest: a Redis Cluster needs at least 3 masters, got %d", n)
	}
	redisServerPath(tb)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Skipf("redistest: redis-cli not found, skipping cluster test: %v", err)
	}

	c := &Cluster{}
	for range n {
		s := startServer(tb, func(s *Server) {
			bus, err := freePort()
			if err != nil {
				tb.Fatalf("redistest: %v", err)
			}
			// The config file name is resolved against --dir, which is
			// the server's own TempDir.
			s.extra = []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-node-timeout", "2000",
			}
		})
		c.Nodes = append(c.Nodes, s)
	}

	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK(tb)
	return c
}

// waitOK polls CLUSTER INFO on every node until each reports
// cluster_state:ok and knows every node.
func (c *Cluster) waitOK(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(clusterTimeout)
	want := "cluster_known_nodes:" + strconv.Itoa(len(c.Nodes))
	for _, s := range c.Nodes {
		for {
			info, err := command(s.Addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, want) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("redistest: cluster node %s not ready within %v: %v\n%s", s.Addr, clusterTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// String lists the nodes, for failure messages.
func (c *Cluster) String() string {
	return fmt.Sprintf("cluster%v", c.Addrs())
}
