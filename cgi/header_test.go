package cgi

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		status   int
		location string
		header   http.Header
		bad      bool
	}{
		{name: "document", in: "Content-Type: text/html\n\nbody",
			header: http.Header{"Content-Type": {"text/html"}}},
		{name: "crlf and spaces", in: "Content-Type:   text/plain  \r\nX-A: 1\r\n\r\n",
			header: http.Header{"Content-Type": {"text/plain"}, "X-A": {"1"}}},
		{name: "status with reason", in: "Status: 404 Not Found\nContent-Type: text/plain\n\n", status: 404,
			header: http.Header{"Content-Type": {"text/plain"}}},
		{name: "status tab reason", in: "Status: 201\tCreated\n\n", status: 201, header: http.Header{}},
		{name: "lowercase names", in: "status: 200\nlocation: /x\ncontent-type: a/b\n\n", status: 200, location: "/x",
			header: http.Header{"Content-Type": {"a/b"}}},
		{name: "repeated field", in: "Set-Cookie: a=1\nSet-Cookie: b=2\n\n",
			header: http.Header{"Set-Cookie": {"a=1", "b=2"}}},
		{name: "framing dropped", in: "Content-Length: 5\nTransfer-Encoding: chunked\nConnection: close\nProxy-X: 1\nTE: x\n\n",
			header: http.Header{}},
		{name: "status 101", in: "Status: 101 Switching Protocols\n\n", bad: true},
		{name: "status 099", in: "Status: 099\n\n", bad: true},
		{name: "status -10", in: "Status: -10\n\n", bad: true},
		{name: "status 1000", in: "Status: 1000\n\n", bad: true},
		{name: "status abc", in: "Status: abc\n\n", bad: true},
		{name: "status 2x0", in: "Status: 2x0\n\n", bad: true},
		{name: "status empty", in: "Status:\n\n", bad: true},
		{name: "status twice", in: "Status: 200\nStatus: 200\n\n", bad: true},
		{name: "location twice", in: "Location: /a\nLocation: /b\n\n", bad: true},
		{name: "content-type twice", in: "Content-Type: a/b\nContent-Type: c/d\n\n", bad: true},
		{name: "empty block", in: "\nbody", bad: true},
		{name: "no blank line", in: "Content-Type: text/plain\n", bad: true},
		{name: "body only", in: "hello world\n", bad: true},
		{name: "nothing", in: "", bad: true},
		{name: "no colon", in: "Content-Type text/plain\n\n", bad: true},
		{name: "space in name", in: "Bad Name: x\n\n", bad: true},
		{name: "continuation", in: "X-A: 1\n folded\n\n", bad: true},
		{name: "bare CR in value", in: "X-Inj: a\rSet-Cookie: s=1\n\n", bad: true},
		{name: "NUL in value", in: "X-A: a\x00b\n\n", bad: true},
		{name: "long line", in: "X-Long: " + strings.Repeat("z", maxHeaderLine) + "\n\n", bad: true},
		{name: "too many lines", in: strings.Repeat("X-A: 1\n", maxHeaderLines+1) + "\n", bad: true},
		{name: "at the line limit", in: strings.Repeat("X-A: 1\n", maxHeaderLines) + "\n",
			header: http.Header{"X-A": strings.Split(strings.TrimSuffix(strings.Repeat("1,", maxHeaderLines), ","), ",")}},
		{name: "too many bytes", in: strings.Repeat("X-A: "+strings.Repeat("a", 4000)+"\n", 17) + "\n", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := parseHeader(bufio.NewReaderSize(strings.NewReader(tc.in), copyBufferBytes))
			if tc.bad {
				if !errors.Is(err, errMalformed) {
					t.Fatalf("err %v, want errMalformed (resp %+v)", err, resp)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != tc.status || resp.location != tc.location {
				t.Errorf("status %d location %q, want %d %q", resp.status, resp.location, tc.status, tc.location)
			}
			if len(resp.header) != len(tc.header) {
				t.Fatalf("header %v, want %v", resp.header, tc.header)
			}
			for k, v := range tc.header {
				if strings.Join(resp.header[k], "|") != strings.Join(v, "|") {
					t.Errorf("%s = %q, want %q", k, resp.header[k], v)
				}
			}
		})
	}
}

func TestIsLocalPath(t *testing.T) {
	for loc, want := range map[string]bool{
		"/x": true, "/": true, "/a?b=c": true,
		"//host/x": false, `/\host`: false, "http://h/": false, "x": false, "": false,
	} {
		if got := isLocalPath(loc); got != want {
			t.Errorf("isLocalPath(%q) = %v, want %v", loc, got, want)
		}
	}
}

// FuzzParseHeader feeds arbitrary script output to the header parser: it
// must never panic, and whatever it accepts must be safe to hand to
// net/http: a status WriteHeader takes, valid field names and values, and
// no more fields than the bounds allow.
func FuzzParseHeader(f *testing.F) {
	for _, seed := range []string{
		"Content-Type: text/plain\r\n\r\nbody",
		"Status: 302 Found\nLocation: http://x/\n\n",
		"Status: 099\n\n",
		"Location: //evil/\n\n",
		"X: a\rSet-Cookie: s=1\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		resp, err := parseHeader(bufio.NewReaderSize(strings.NewReader(string(in)), copyBufferBytes))
		if err != nil {
			return
		}
		if resp.status != 0 && (resp.status < 200 || resp.status > 599) {
			t.Fatalf("accepted status %d", resp.status)
		}
		if !httpguts.ValidHeaderFieldValue(resp.location) {
			t.Fatalf("accepted Location %q", resp.location)
		}
		n := 0
		for k, vs := range resp.header {
			if !httpguts.ValidHeaderFieldName(k) || isHopByHop(k) {
				t.Fatalf("accepted field %q", k)
			}
			for _, v := range vs {
				if !httpguts.ValidHeaderFieldValue(v) {
					t.Fatalf("accepted value %q", v)
				}
				n++
			}
		}
		if n > maxHeaderLines {
			t.Fatalf("accepted %d fields", n)
		}
	})
}
