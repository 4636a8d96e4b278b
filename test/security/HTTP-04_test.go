// HTTP-04: request smuggling and message framing.
//
// Exploit: raw HTTP/1.1 messages whose length a front-end proxy and the
// server could disagree on — Content-Length plus Transfer-Encoding (CL.TE
// and TE.CL, with the Transfer-Encoding spelled "xchunked", with a space
// before the colon, with a tab, folded, or repeated), "Content-Length: +5",
// "5, 5", two different Content-Lengths, a negative one, bare-LF line
// endings, a chunk size that overflows 64 bits and a 1 MB chunk extension.
// Each message hides "GET /smuggled.txt" where a parser using the other
// framing would find a request, and is followed on the same connection by
// a legitimate pipelined "GET /follow.txt".
//
// Expectation: the hidden request is never answered (no response carries
// the smuggled file); a malformed message is refused with 400/501 and ends
// the connection; the follow-up gets at most one response. A message with
// both Content-Length and Transfer-Encoding is processed by its chunked
// framing and the connection is closed after the response (RFC 9112 §6.3:
// "the server MUST close the connection after responding"), so the bytes
// after it are never read as a request.
package security

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestHTTP04Smuggling(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	a.file("smuggled.txt", "SMUGGLED\n", 0o644)
	a.file("follow.txt", "FOLLOW\n", 0o644)
	a.script("cat.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\nlen=%s\\n' \"$CONTENT_LENGTH\"\ncat\n")
	p := start(t, w.config(cfg{}))

	const hidden = "GET /smuggled.txt HTTP/1.1\r\nHost: a.test\r\n\r\n"
	const follow = "GET /follow.txt HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
	chunkedHidden := "0\r\n\r\n" + hidden
	post := func(target, headers, body string) string {
		return "POST " + target + " HTTP/1.1\r\nHost: a.test\r\n" + headers + "\r\n" + body
	}
	cases := []struct{ name, raw string }{
		{"CL.TE", post("/cgi-bin/cat.cgi", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n", len(chunkedHidden)), chunkedHidden)},
		{"CL.TE static", post("/", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n", len(chunkedHidden)), chunkedHidden)},
		{"TE.CL", post("/cgi-bin/cat.cgi", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(hidden), hidden))},
		{"TE tab", post("/cgi-bin/cat.cgi", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding:\tchunked\r\n", len(chunkedHidden)), chunkedHidden)},
		{"TE xchunked", post("/cgi-bin/cat.cgi", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: xchunked\r\n", len(chunkedHidden)), chunkedHidden)},
		{"TE space before colon", post("/cgi-bin/cat.cgi", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding : chunked\r\n", len(chunkedHidden)), chunkedHidden)},
		{"TE chunked, identity", post("/cgi-bin/cat.cgi", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", len(chunkedHidden)), chunkedHidden)},
		{"TE chunked twice", post("/cgi-bin/cat.cgi", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked, chunked\r\n", len(chunkedHidden)), chunkedHidden)},
		{"TE obs-fold", post("/cgi-bin/cat.cgi", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding:\r\n chunked\r\n", len(chunkedHidden)), chunkedHidden)},
		{"CL +5", post("/cgi-bin/cat.cgi", "Content-Length: +5\r\n", "hello"+hidden)},
		{"CL 5, 5", post("/cgi-bin/cat.cgi", "Content-Length: 5, 5\r\n", "hello"+hidden)},
		{"CL 5 and 6", post("/cgi-bin/cat.cgi", "Content-Length: 5\r\nContent-Length: 6\r\n", "hello"+hidden)},
		{"CL -1", post("/cgi-bin/cat.cgi", "Content-Length: -1\r\n", hidden)},
		{"CL hex", post("/cgi-bin/cat.cgi", "Content-Length: 0x5\r\n", "hello"+hidden)},
		{"bare LF", "POST /cgi-bin/cat.cgi HTTP/1.1\nHost: a.test\nContent-Length: 5\n\nhello"},
		{"chunk size overflow", post("/cgi-bin/cat.cgi", "Transfer-Encoding: chunked\r\n", "ffffffffffffffff1\r\n"+hidden+"\r\n0\r\n\r\n")},
		{"chunk extension 1 MB", post("/cgi-bin/cat.cgi", "Transfer-Encoding: chunked\r\n", "5;"+strings.Repeat("e", 1<<20)+"\r\nhello\r\n0\r\n\r\n")},
		{"TE on HTTP/1.0", "POST /cgi-bin/cat.cgi HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(chunkedHidden)) + chunkedHidden},
	}
	for _, tc := range cases {
		conn, err := net.DialTimeout("tcp", p.HTTPAddr, 5*time.Second)
		must(t, err)
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		// The write may fail once the server has refused and closed.
		go func() { conn.Write([]byte(tc.raw + follow)) }()
		rs := readResponses(conn, 5)
		conn.Close()
		var got []string
		for _, r := range rs {
			got = append(got, fmt.Sprintf("%d %q", r.Status, tail(r.Body, 60)))
			if strings.Contains(r.Body, "SMUGGLED") {
				t.Errorf("%s: the hidden request was answered", tc.name)
			}
			if strings.Contains(r.Body, "GET /smuggled") && r.Status == 200 && !strings.HasPrefix(r.Body, "len=") {
				t.Errorf("%s: hidden bytes reached a handler outside a body", tc.name)
			}
		}
		switch {
		case len(rs) == 0:
			t.Errorf("%s: no response at all", tc.name)
		case rs[0].Status == 400 || rs[0].Status == 501 || rs[0].Status == 413 || rs[0].Status == 431:
			if len(rs) > 1 {
				t.Errorf("%s: refused with %d but the connection went on: %v", tc.name, rs[0].Status, got)
			}
		case rs[0].Status >= 500:
			t.Errorf("%s: %v", tc.name, got)
		case len(rs) > 2 || len(rs) == 2 && rs[1].Body != "FOLLOW\n":
			t.Errorf("%s: responses %v, want one for the message and at most one for the follow-up", tc.name, got)
		}
		t.Logf("%-22s %v", tc.name, got)
	}
}
