package cgi

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"massvhost/vhost"
)

func TestStatus(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("status.cgi", "status.cgi")
	h, logs := newTestHandler(t, Options{})
	tests := []struct {
		status string
		want   int
	}{
		{"201", 201},
		{"404", 404},
		{"599", 599},
		{"099", 502},
		{"-10", 502},
		{"1000", 502},
		{"abc", 502},
		{"101", 502},
		{"103", 502},
		{"000", 502},
		{"199", 502},
		{"600", 502},
		{"20", 502},
		{"2000", 502},
		{"", 502},
	}
	for _, tc := range tests {
		t.Run(tc.status, func(t *testing.T) {
			w := get(h, tn.site, "/cgi-bin/status.cgi?"+tc.status)
			if w.Code != tc.want {
				t.Fatalf("Status: %s gave %d, want %d", tc.status, w.Code, tc.want)
			}
			if tc.want == 502 && w.Body.String() != "Bad Gateway\n" {
				t.Errorf("body %q", w.Body)
			}
		})
	}
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("a panic was logged:\n%s", logs)
	}
}

func TestBadResponses(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("garbage.cgi", "garbage.cgi")
	tn.install("die.cgi", "die.cgi")
	tn.child("crash", "crash")
	tn.child("longline", "longline")
	tn.write("empty.cgi", "#!/bin/sh\nprintf '\\r\\nbody'\n")
	tn.write("nonl.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n'\n")
	tn.write("fold.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n folded\\r\\n\\r\\n'\n")
	tn.write("cr.cgi", "#!/bin/sh\nprintf 'X-Inj: a\\rSet-Cookie: s=1\\r\\nContent-Type: text/plain\\r\\n\\r\\n'\n")
	tn.write("badname.cgi", "#!/bin/sh\nprintf 'Bad Name: x\\r\\n\\r\\n'\n")
	tn.write("twostatus.cgi", "#!/bin/sh\nprintf 'Status: 200\\r\\nStatus: 200\\r\\n\\r\\n'\n")
	tn.write("notexec.cgi", "#!/nonexistent/interpreter\n")
	errLog := &stderrSink{}
	h, logs := newTestHandler(t, Options{ErrorLog: errLog.errorLog, Limits: goChild})
	for _, name := range []string{"garbage.cgi", "die.cgi", "crash", "longline", "empty.cgi",
		"nonl.cgi", "fold.cgi", "cr.cgi", "badname.cgi", "twostatus.cgi", "notexec.cgi"} {
		t.Run(name, func(t *testing.T) {
			w := get(h, tn.site, "/cgi-bin/"+name)
			if w.Code != http.StatusBadGateway || w.Body.String() != "Bad Gateway\n" {
				t.Fatalf("status %d body %q, want a bare 502", w.Code, w.Body)
			}
			if w.Header().Get("Set-Cookie") != "" {
				t.Fatal("injected header reached the client")
			}
		})
	}
	if !strings.Contains(errLog.String(), "die.cgi: something broke") {
		t.Errorf("script stderr not in the tenant log: %q", errLog)
	}
	if !strings.Contains(logs.String(), "exit status 1") {
		t.Errorf("exit status not logged:\n%s", logs)
	}
	if got := h.Stats().BadResponses; got != 11 {
		t.Errorf("BadResponses = %d, want 11", got)
	}
}

// A script printing header lines forever is cut off at the header bounds,
// with memory bounded by them rather than by the script.
func TestHeaderFlood(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.child("flood", "flood")
	h, _ := newTestHandler(t, Options{Limits: goChild})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w := get(h, tn.site, "/cgi-bin/flood")
	runtime.ReadMemStats(&after)
	if w.Code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", w.Code)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("allocated %d bytes for one flooding script", grew)
	}
	if st := h.Stats(); st.Killed != 1 || st.Running != 0 {
		t.Errorf("stats %+v: want the flooding script killed", st)
	}
}

func TestNonZeroExitAfterResponse(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("exit.cgi", "exit.cgi")
	h, logs := newTestHandler(t, Options{})
	w := get(h, tn.site, "/cgi-bin/exit.cgi")
	if w.Code != 200 || w.Body.String() != "body before exit\n" {
		t.Fatalf("status %d body %q", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "exit status 3") {
		t.Errorf("exit status not logged:\n%s", logs)
	}
}

func TestContentTypeDefault(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("nosniff.cgi", "nosniff.cgi")
	tn.install("hello.cgi", "hello.cgi")
	h, _ := newTestHandler(t, Options{})
	w := get(h, tn.site, "/cgi-bin/nosniff.cgi")
	if ct := w.Header().Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q, want application/octet-stream", ct)
	}
	for _, path := range []string{"/cgi-bin/nosniff.cgi", "/cgi-bin/hello.cgi"} {
		if w := get(h, tn.site, path); w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no X-Content-Type-Options: nosniff", path)
		}
	}
}

func TestFramingHeadersDropped(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.write("frame.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 5\\r\\n"+
		"Transfer-Encoding: chunked\\r\\nConnection: close\\r\\nUpgrade: h2c\\r\\nKeep-Alive: 1\\r\\n"+
		"Trailer: X\\r\\nProxy-Foo: 1\\r\\nX-Kept: yes\\r\\n\\r\\n0123456789'\n")
	h, _ := newTestHandler(t, Options{})
	srv := testServer(t, h, tn.site, ScriptAlias)
	resp, err := http.Get(srv.URL + "/cgi-bin/frame.cgi")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "0123456789" {
		t.Fatalf("body %q, %v: the script's Content-Length was trusted", body, err)
	}
	for _, k := range []string{"Upgrade", "Keep-Alive", "Trailer", "Proxy-Foo"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("%s: %q passed to the client", k, v)
		}
	}
	if resp.Close || resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("close %v, X-Kept %q", resp.Close, resp.Header.Get("X-Kept"))
	}
}

func TestHead(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("big.cgi", "big.cgi")
	h, _ := newTestHandler(t, Options{})
	w := serve(h, tn.site, ScriptAlias, httptest.NewRequest(http.MethodHead, "/cgi-bin/big.cgi?5000", nil))
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Fatalf("HEAD: status %d, %d body bytes", w.Code, w.Body.Len())
	}
}

func TestLargeOutput(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("big.cgi", "big.cgi")
	h, _ := newTestHandler(t, Options{})
	w := get(h, tn.site, "/cgi-bin/big.cgi")
	if w.Code != 200 || w.Body.Len() != 1<<20 || strings.Trim(w.Body.String(), "x") != "" {
		t.Fatalf("status %d, %d bytes, want 1 MiB of x", w.Code, w.Body.Len())
	}
}

// Output over MaxOutputBytes is cut and the response aborted, so that the
// client cannot mistake it for a complete body.
func TestOutputCap(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("big.cgi", "big.cgi")
	h, logs := newTestHandler(t, Options{MaxOutputBytes: 64 << 10})
	srv := testServer(t, h, tn.site, ScriptAlias)
	resp, err := http.Get(srv.URL + "/cgi-bin/big.cgi")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(body) > 64<<10 {
		t.Fatalf("read %d bytes, err %v: want a cut response of at most 64 KiB", len(body), err)
	}
	waitFor(t, "the cut to be logged", 5*time.Second, func() bool { return strings.Contains(logs.String(), "cgi response cut") })
}

func TestRedirects(t *testing.T) {
	requireInterpreter(t, "/usr/bin/python3")
	tn := newTenant(t, "a.test")
	tn.install("location.cgi", "location.cgi")
	tn.install("echo.cgi", "echo.cgi")
	tn.install("loop.cgi", "loop.cgi")
	var h *Handler
	var redirected atomic.Int32
	h, _ = newTestHandler(t, Options{LocalRedirect: func(w http.ResponseWriter, r *http.Request, site vhost.Site) {
		redirected.Add(1)
		if site.Name != tn.site.Name || r.Host != "example.invalid" {
			t.Errorf("redirect to site %q host %q", site.Name, r.Host)
		}
		h.ServeCGI(w, r, site, ScriptAlias)
	}})
	loc := func(location, status string) string {
		q := url.Values{"loc": {location}}
		if status != "" {
			q.Set("status", status)
		}
		return "/cgi-bin/location.cgi?" + q.Encode()
	}
	tests := []struct {
		name       string
		target     string
		status     int
		location   string // expected Location header
		redirected bool
	}{
		{"absolute URL", loc("http://elsewhere.example/x", ""), 302, "http://elsewhere.example/x", false},
		{"scheme-relative", loc("//b.test/cgi-bin/env.cgi", ""), 302, "//b.test/cgi-bin/env.cgi", false},
		{"backslash", loc(`/\b.test/x`, ""), 302, `/\b.test/x`, false},
		{"absolute with status", loc("https://e.example/", "301"), 301, "https://e.example/", false},
		{"local with 3xx status is a client redirect", loc("/x", "303"), 303, "/x", false},
		{"local with 201", loc("/x", "201"), 201, "/x", false},
		{"local", loc("/cgi-bin/echo.cgi?x=1", ""), 200, "", true},
		{"local with explicit 200", loc("/cgi-bin/echo.cgi", "200"), 200, "", true},
		{"local to a bad path", loc("/cgi-bin/../../bin/sh", ""), 400, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			redirected.Store(0)
			r := httptest.NewRequest(http.MethodPost, tc.target, strings.NewReader("posted body"))
			r.Host = "example.invalid"
			w := serve(h, tn.site, ScriptAlias, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tc.status, w.Body)
			}
			if got := w.Header().Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if got := redirected.Load() > 0; got != tc.redirected {
				t.Fatalf("internal redirect %v, want %v", got, tc.redirected)
			}
			if tc.redirected && tc.status == 200 {
				// echo.cgi ran as a GET without the POST body.
				if w.Header().Get("X-Method") != "GET" || w.Header().Get("X-Content-Length") != "none" || w.Body.Len() != 0 {
					t.Errorf("redirected request: method %q, length %q, body %q",
						w.Header().Get("X-Method"), w.Header().Get("X-Content-Length"), w.Body)
				}
			}
		})
	}
	t.Run("loop", func(t *testing.T) {
		before := h.Stats().Spawned
		r := httptest.NewRequest(http.MethodGet, "/cgi-bin/loop.cgi", nil)
		r.Host = "example.invalid"
		w := serve(h, tn.site, ScriptAlias, r)
		if w.Code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", w.Code)
		}
		if spawned := h.Stats().Spawned - before; spawned != MaxRedirects+1 {
			t.Errorf("spawned %d scripts, want %d", spawned, MaxRedirects+1)
		}
	})
}

// Without a LocalRedirect dispatcher a local Location goes to the client.
func TestLocalRedirectWithoutDispatcher(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("loop.cgi", "loop.cgi")
	h, _ := newTestHandler(t, Options{})
	w := get(h, tn.site, "/cgi-bin/loop.cgi")
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/cgi-bin/loop.cgi" {
		t.Fatalf("status %d Location %q", w.Code, w.Header().Get("Location"))
	}
}

func TestRequestBody(t *testing.T) {
	requireInterpreter(t, "/usr/bin/python3")
	tn := newTenant(t, "a.test")
	tn.install("echo.cgi", "echo.cgi")
	const max = 3 << 20
	h, _ := newTestHandler(t, Options{MaxBodyBytes: max})
	srv := testServer(t, h, tn.site, ScriptAlias)
	payload := func(n int) []byte { return bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n] }
	tests := []struct {
		name    string
		size    int
		chunked bool
		status  int
	}{
		{"small", 1000, false, 200},
		{"at the limit", max, false, 200},
		{"over the limit", max + 1, false, 413},
		{"chunked small", 1000, true, 200},
		{"chunked spilled to disk", 2 << 20, true, 200},
		{"chunked at the limit", max, true, 200},
		{"chunked over the limit", max + 1, true, 413},
		{"empty", 0, false, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.Stats().Spawned
			data := payload(tc.size)
			var body io.Reader = bytes.NewReader(data)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: chunked encoding
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/cgi-bin/echo.cgi", body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 413 {
				if h.Stats().Spawned != before {
					t.Error("spawned a script for an oversized body")
				}
				return
			}
			wantLen := "none"
			if tc.size > 0 {
				wantLen = strconv.Itoa(tc.size)
			}
			if cl := resp.Header.Get("X-Content-Length"); cl != wantLen {
				t.Errorf("CONTENT_LENGTH %q, want %q", cl, wantLen)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("echoed %d bytes, want the %d sent", len(got), len(data))
			}
		})
	}
}

// A script that never reads its stdin does not hang the request.
func TestUnreadBody(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("hello.cgi", "hello.cgi")
	h, _ := newTestHandler(t, Options{})
	srv := testServer(t, h, tn.site, ScriptAlias)
	resp, err := http.Post(srv.URL+"/cgi-bin/hello.cgi", "application/octet-stream", bytes.NewReader(make([]byte, 5<<20)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello\n" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

func TestStderrCapped(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("stderr.cgi", "stderr.cgi")
	sink := &stderrSink{}
	h, logs := newTestHandler(t, Options{ErrorLog: sink.errorLog, MaxStderrBytes: 1000})
	w := get(h, tn.site, "/cgi-bin/stderr.cgi?2000")
	if w.Code != 200 || w.Body.String() != "done\n" {
		t.Fatalf("status %d body %q", w.Code, w.Body)
	}
	if n := len(sink.String()); n == 0 || n > 1000 {
		t.Errorf("tenant log got %d bytes, want 1..1000", n)
	}
	if !strings.Contains(logs.String(), "cgi stderr truncated") {
		t.Errorf("truncation not logged:\n%s", logs)
	}
}

func TestStderrRateLimited(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("stderr.cgi", "stderr.cgi")
	h, logs := newTestHandler(t, Options{MaxStderrBytes: 1 << 20})
	if w := get(h, tn.site, "/cgi-bin/stderr.cgi?3000"); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	logged := strings.Count(logs.String(), `msg="cgi stderr"`)
	if dropped := h.Stats().StderrDropped; dropped == 0 || logged+int(dropped) != 3000 || logged > stderrBurst+100 {
		t.Errorf("logged %d, dropped %d of 3000 lines", logged, dropped)
	}
}

// A client that declares a body and stalls cannot hold a request whose
// script has answered without reading it: the read of the body is cut.
func TestStalledUpload(t *testing.T) {
	tn := newTenant(t, "a.test")
	tn.install("hello.cgi", "hello.cgi")
	h, _ := newTestHandler(t, Options{})
	srv := testServer(t, h, tn.site, ScriptAlias)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "POST /cgi-bin/hello.cgi HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\n0123456789")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(body) != "hello\n" {
		t.Fatalf("status %d body %q err %v", resp.StatusCode, body, err)
	}
}
