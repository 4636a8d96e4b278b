// CGI-07: scripts that never exit or never write (timeouts, client abort).
//
// Exploit: sleep.cgi ("sleep 3600"), spin.cgi (a busy loop) and
// partial.cgi (headers, then "sleep 3600"), against a server with
// cgi.timeout 2s; and sleep.cgi again with a client that gives up after
// the script started, against a server whose timeout (60s) cannot be what
// ends it. net/http/cgi has no timeout and kills nothing on disconnect
// (verified: the child outlived the client).
//
// Expectation: 504 for the scripts that sent nothing; partial.cgi's
// response is cut (connection closed, body incomplete) at the timeout; the
// client abort kills the script's whole process group: in every case the
// tenant uid has no process left shortly after (bounded poll), and the
// server's timeout/killed counters account for the runs.
package security

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestCGI07Timeouts(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("sleep.cgi", "sleep 3600\n")
	a.script("spin.cgi", "while :; do :; done\n")
	a.script("partial.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nfirst part\\n'\nsleep 3600\n")
	a.script("sleepkids.cgi", "sleep 3600 & sleep 3600 & sleep 3600\n")
	p := start(t, w.config(cfg{CGI: "  timeout: 2s\n"}))

	var wg sync.WaitGroup
	for _, script := range []string{"sleep.cgi", "spin.cgi", "sleepkids.cgi"} {
		wg.Go(func() {
			r := p.get("a.test", "/cgi-bin/"+script)
			if r.Status != 504 {
				t.Errorf("%s: %d %q, want 504", script, r.Status, r.Body)
			}
		})
	}

	conn, err := net.Dial("tcp", p.HTTPAddr)
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "GET /cgi-bin/partial.cgi HTTP/1.1\r\nHost: a.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	must(t, err)
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "first part\n" || err == nil {
		t.Errorf("partial.cgi: %d %q, read error %v; want 200, the first part, then an aborted body", resp.StatusCode, body, err)
	}
	wg.Wait()
	waitNoProcs(t, a.UID, 3*time.Second)
	if n := p.metric("massvhost_cgi_timeouts_total"); n != 4 {
		t.Errorf("cgi timeouts counter %v, want 4", n)
	}
}

func TestCGI07ClientAbort(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.script("sleep.cgi", "sleep 3600 & sleep 3600\n")
	p := start(t, w.config(cfg{CGI: "  timeout: 60s\n"}))

	started := func() bool { return len(procsOf(a.UID)) >= 2 }

	// HTTP/1.1: the client closes its connection.
	conn, err := net.Dial("tcp", p.HTTPAddr)
	must(t, err)
	io.WriteString(conn, "GET /cgi-bin/sleep.cgi HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if !eventually(10*time.Second, started) {
		t.Fatal("http/1.1: the script never started")
	}
	conn.Close()
	waitNoProcs(t, a.UID, 3*time.Second)

	// HTTP/2: the client resets the stream (RST_STREAM) and keeps the
	// connection.
	c := p.client(w, "a.test", true)
	req, _ := http.NewRequestWithContext(abortWhen(started), "GET", "https://a.test/cgi-bin/sleep.cgi", nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("h2: response %d before the abort", resp.StatusCode)
	}
	waitNoProcs(t, a.UID, 3*time.Second)
	if n := p.metric("massvhost_cgi_timeouts_total"); n != 0 {
		t.Errorf("%v timeouts: the scripts were ended by the timeout, not by the abort", n)
	}
	if n := p.metric("massvhost_cgi_killed_total"); n != 2 {
		t.Errorf("cgi killed counter %v, want 2", n)
	}
}
