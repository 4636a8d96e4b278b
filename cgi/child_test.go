package cgi

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A script that sleeps past the timeout, ignoring SIGTERM, with a grandchild
// of its own: 504, and both are gone.
func TestTimeoutBeforeHeaders(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("sleep.cgi", "sleep.cgi")
	sink := &stderrSink{}
	h, _ := newTestHandler(t, Options{Timeout: time.Second, KillGrace: 200 * time.Millisecond, ErrorLog: sink.errorLog})
	w := get(h, tn.site, "/cgi-bin/sleep.cgi")
	if w.Code != http.StatusGatewayTimeout || w.Body.String() != "Gateway Timeout\n" {
		t.Fatalf("status %d body %q, want a bare 504", w.Code, w.Body)
	}
	// ServeCGI returned after SIGKILL to the group and reaping the script;
	// the grandchild may take a moment to die from its SIGKILL.
	waitGone(t, "process group after the timeout", time.Second, inGroup(pgidFrom(t, sink.String())))
	if st := h.Stats(); st.Timeouts != 1 || st.Killed != 1 || st.Running != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A timeout after the headers aborts the response: the client sees an
// incomplete body, not a short complete one.
func TestTimeoutAfterHeaders(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.child("partial", "partial")
	sink := &stderrSink{}
	h, _ := newTestHandler(t, Options{Timeout: time.Second, KillGrace: 100 * time.Millisecond, ErrorLog: sink.errorLog, Limits: goChild})
	srv := testServer(t, h, tn.site, ScriptAlias)
	resp, err := http.Get(srv.URL + "/cgi-bin/partial")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "first chunk\n" || err == nil {
		t.Fatalf("status %d body %q err %v: want the first chunk, then an error", resp.StatusCode, body, err)
	}
	waitFor(t, "the run to end", 5*time.Second, func() bool { return h.Stats().Running == 0 })
	waitGone(t, "process group", time.Second, inGroup(pgidFrom(t, sink.String())))
}

// A client that disconnects mid-response takes the script's whole process
// group with it, within a second (SIGTERM is ignored, so this includes the
// SIGKILL after the default KillGrace).
func TestClientDisconnectKillsGroup(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.child("partial", "partial")
	sink := &stderrSink{}
	h, _ := newTestHandler(t, Options{ErrorLog: sink.errorLog, Limits: goChild})
	srv := testServer(t, h, tn.site, ScriptAlias)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/cgi-bin/partial", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first chunk\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	var pgid int
	waitFor(t, "the script's pgid", 5*time.Second, func() bool { return strings.Contains(sink.String(), "pgid=") })
	pgid = pgidFrom(t, sink.String())
	if len(alive(inGroup(pgid))) < 2 {
		t.Fatalf("want the script and its grandchild running, have %v", alive(inGroup(pgid)))
	}
	cancel()
	resp.Body.Close()
	waitGone(t, "process group after the client left", time.Second, inGroup(pgid))
	waitFor(t, "the run to be reaped", 5*time.Second, func() bool { return h.Stats().Running == 0 })
}

// A script that answers and exits, leaving a grandchild that holds stdout:
// the response completes (bounded by WaitDelay) and the grandchild dies.
func TestGrandchildHoldingStdout(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.child("bg", "bg")
	sink := &stderrSink{}
	h, _ := newTestHandler(t, Options{WaitDelay: 200 * time.Millisecond, ErrorLog: sink.errorLog, Limits: goChild})
	w := get(h, tn.site, "/cgi-bin/bg")
	if w.Code != 200 || w.Body.String() != "background\n" {
		t.Fatalf("status %d body %q", w.Code, w.Body)
	}
	waitGone(t, "grandchild after the response", time.Second, inGroup(pgidFrom(t, sink.String())))
}

// A grandchild that leaves the process group with setsid escapes the group
// kill (a documented limit of process groups); it still cannot hold the
// response open.
func TestEscapedGrandchildCannotHoldResponse(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.child("escape", "escape")
	sink := &stderrSink{}
	h, _ := newTestHandler(t, Options{WaitDelay: 200 * time.Millisecond, ErrorLog: sink.errorLog, Limits: goChild})
	w := get(h, tn.site, "/cgi-bin/escape")
	var escaped int
	for _, line := range strings.Split(sink.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "escaped="); ok {
			escaped, _ = strconv.Atoi(v)
		}
	}
	if escaped > 0 {
		unix.Kill(escaped, unix.SIGKILL)
		waitGone(t, "escaped process", 5*time.Second, func(p proc) bool { return p.pid == escaped })
	}
	if w.Code != 200 || w.Body.String() != "escaped\n" {
		t.Fatalf("status %d body %q", w.Code, w.Body)
	}
}

// Beyond a cap the answer is 503 with Retry-After at once; other tenants
// are unaffected by one tenant's cap.
func TestConcurrencyCaps(t *testing.T) {
	a, b := newTenant(t, "a.test"), newTenant(t, "b.test")
	a.install("hang.cgi", "hang.cgi")
	b.install("hello.cgi", "hello.cgi")
	b.install("hang.cgi", "hang.cgi")
	h, _ := newTestHandler(t, Options{MaxPerTenant: 2, MaxTotal: 3, KillGrace: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	hang := func(tn *tenant) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest(http.MethodGet, "/cgi-bin/hang.cgi", nil).WithContext(ctx)
			serve(h, tn.site, ScriptAlias, r)
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	hang(a)
	hang(a)
	waitFor(t, "two scripts running", 5*time.Second, func() bool { return h.Stats().Running == 2 })

	w := get(h, a.site, "/cgi-bin/hang.cgi")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the tenant cap: status %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := get(h, b.site, "/cgi-bin/hello.cgi"); w.Code != http.StatusOK {
		t.Fatalf("other tenant: status %d", w.Code)
	}
	hang(b)
	waitFor(t, "three scripts running", 5*time.Second, func() bool { return h.Stats().Running == 3 })
	if w := get(h, b.site, "/cgi-bin/hello.cgi"); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("over the total cap: status %d", w.Code)
	}
	if st := h.Stats(); st.RejectedCap != 2 {
		t.Errorf("RejectedCap = %d, want 2", st.RejectedCap)
	}
	cancel()
	wg.Wait()
	if st := h.Stats(); st.Running != 0 || st.Killed != 3 {
		t.Errorf("after cancel: %+v", st)
	}
	if w := get(h, b.site, "/cgi-bin/hello.cgi"); w.Code != http.StatusOK {
		t.Fatalf("after the slots were freed: status %d", w.Code)
	}
}

// Close terminates running scripts, waits for their requests, and refuses
// new ones.
func TestClose(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("sleep.cgi", "sleep.cgi")
	sink := &stderrSink{}
	h, _ := newTestHandler(t, Options{KillGrace: 100 * time.Millisecond, ErrorLog: sink.errorLog})
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- get(h, tn.site, "/cgi-bin/sleep.cgi") }()
	waitFor(t, "the script to start", 5*time.Second, func() bool { return strings.Contains(sink.String(), "pgid=") })
	h.Close()
	if running := h.Stats().Running; running != 0 {
		t.Fatalf("Close returned with %d scripts running", running)
	}
	if w := <-done; w.Code != http.StatusServiceUnavailable {
		t.Errorf("in-flight request: status %d, want 503", w.Code)
	}
	waitGone(t, "process group after Close", time.Second, inGroup(pgidFrom(t, sink.String())))
	if w := get(h, tn.site, "/cgi-bin/sleep.cgi"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("after Close: status %d, want 503", w.Code)
	}
}
