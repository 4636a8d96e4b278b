package redistest

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestStartAnswersPing(t *testing.T) {
	addr := Start(t)
	if strings.HasSuffix(addr, ":6379") {
		t.Fatalf("Start used the default port: %s", addr)
	}
	if got, err := command(addr, "PING"); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
}

func TestServerKillRestartKeepsAddress(t *testing.T) {
	s := StartServer(t)
	s.Do(t, "SET", "k", "v")
	if got := s.Do(t, "GET", "k"); got != "v" {
		t.Fatalf("GET k = %q", got)
	}
	pid := s.PID()
	s.Kill()
	if s.PID() != 0 {
		t.Fatal("PID after Kill is not 0")
	}
	if _, err := command(s.Addr, "PING"); err == nil {
		t.Fatal("killed server still answers")
	}
	s.Restart(t)
	if s.PID() == 0 || s.PID() == pid {
		t.Fatalf("restart did not start a new process: pid %d → %d", pid, s.PID())
	}
	if got := s.Do(t, "EXISTS", "k"); got != "0" {
		t.Fatalf("data survived a restart without persistence: EXISTS = %s", got)
	}
}

func TestServerPauseEnds(t *testing.T) {
	s := StartServer(t)
	s.Pause(t, 50*time.Millisecond)
	if got := s.Do(t, "PING"); got != "PONG" {
		t.Fatalf("PING after pause = %q", got)
	}
}

func TestServerFreezeThaw(t *testing.T) {
	s := StartServer(t)
	s.Freeze(t)
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("frozen server answered %q", buf[:n])
	}
	s.Thaw(t)
	if got := s.Do(t, "PING"); got != "PONG" {
		t.Fatalf("PING after thaw = %q", got)
	}
	s.Freeze(t)
	s.Kill() // must not hang on a stopped process
}

func TestStartCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start takes a few seconds")
	}
	c := StartClusterNodes(t, 3)
	for _, n := range c.Nodes {
		info := n.Do(t, "CLUSTER", "INFO")
		if !strings.Contains(info, "cluster_state:ok") {
			t.Fatalf("%s: %s", n.Addr, info)
		}
	}
}

func TestStartSentinel(t *testing.T) {
	master := StartServer(t)
	sentinel := StartSentinel(t, master, "mymaster")
	got := sentinel.Do(t, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
	if want := strings.Replace(master.Addr, ":", " ", 1); got != want {
		t.Fatalf("sentinel reports master %q, want %q", got, want)
	}
}
