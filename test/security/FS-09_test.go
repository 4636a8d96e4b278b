// FS-09: Range amplification (CVE-2011-3192 "Apache Killer" class).
//
// Exploit: "Range: bytes=0-0,0-0,…" with 5000 parts against a 300 KB file;
// Go's ServeContent answers 206 with one multipart section per part (a
// 20 KB header buying a multi-MB body), and variants with overlapping
// ("0-,0-,0-"), suffix ("-1,-1,…") and adjacent small parts over the cap.
//
// Expectation: 200 with exactly the file (or 416), never a multipart body
// larger than the file; one valid range is still 206.
package security

import (
	"strconv"
	"strings"
	"testing"
)

func TestFS09RangeAmplification(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	a := w.tenant("a.test")
	const size = 300 << 10
	a.file("300k.bin", strings.Repeat("r", size), 0o644)
	p := start(t, w.config(cfg{}))

	parts := func(n int, f func(i int) string) string {
		s := make([]string, n)
		for i := range s {
			s[i] = f(i)
		}
		return "bytes=" + strings.Join(s, ",")
	}
	for name, rng := range map[string]string{
		"5000 x 0-0":        parts(5000, func(int) string { return "0-0" }),
		"3 x 0-":            "bytes=0-,0-,0-",
		"1000 x -1":         parts(1000, func(int) string { return "-1" }),
		"300 adjacent":      parts(300, func(i int) string { return strconv.Itoa(2*i) + "-" + strconv.Itoa(2*i+1) }),
		"overlap 0-99,50-":  "bytes=0-99,50-149",
		"spaces 5000 x 0-0": "bytes=" + strings.Repeat(" 0-0 ,", 4999) + " 0-0",
	} {
		r := p.raw("GET /300k.bin HTTP/1.1\r\nHost: a.test\r\nRange: " + rng + "\r\nConnection: close\r\n\r\n")
		switch {
		case r.Status == 416:
		case r.Status == 200 && len(r.Body) == size:
		default:
			t.Errorf("%s: status %d with %d bytes (Content-Type %q), want 200 with the %d-byte file or 416",
				name, r.Status, len(r.Body), r.Header.Get("Content-Type"), size)
		}
		if len(r.Body) > size {
			t.Errorf("%s: %d-byte body for a %d-byte file: amplification", name, len(r.Body), size)
		}
	}
	r := p.raw("GET /300k.bin HTTP/1.1\r\nHost: a.test\r\nRange: bytes=10-19\r\nConnection: close\r\n\r\n")
	if r.Status != 206 || len(r.Body) != 10 || r.Header.Get("Content-Range") != "bytes 10-19/"+strconv.Itoa(size) {
		t.Errorf("single range: %d, %d bytes, Content-Range %q", r.Status, len(r.Body), r.Header.Get("Content-Range"))
	}
	r = p.raw("GET /300k.bin HTTP/1.1\r\nHost: a.test\r\nRange: bytes=0-9,100-109\r\nConnection: close\r\n\r\n")
	if r.Status != 206 || !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/byteranges") {
		t.Errorf("two disjoint ranges: %d %q, want a 206 multipart answer", r.Status, r.Header.Get("Content-Type"))
	}
}
