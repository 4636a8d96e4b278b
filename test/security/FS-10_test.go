// FS-10: conditional requests.
//
// Exploit: If-None-Match with a list and "*", If-Match that does not
// match, If-Range with a stale ETag, a garbage If-Modified-Since.
//
// Expectation: 304 without a body, 412, 200 with the full body, 200; the
// ETag is the same from two server processes serving the same files (no
// inode in it).
package security

import (
	"testing"
)

func TestFS10Conditionals(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	w.tenant("a.test").file("f.txt", "0123456789", 0o644)
	p := start(t, w.config(cfg{}))
	etag := p.get("a.test", "/f.txt").Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req := func(h string) response {
		return p.raw("GET /f.txt HTTP/1.1\r\nHost: a.test\r\n" + h + "Connection: close\r\n\r\n")
	}
	if r := req("If-None-Match: \"x\", " + etag + "\r\n"); r.Status != 304 || r.Body != "" {
		t.Errorf("If-None-Match list: %d %q", r.Status, r.Body)
	}
	if r := req("If-None-Match: *\r\n"); r.Status != 304 {
		t.Errorf("If-None-Match *: %d", r.Status)
	}
	if r := req("If-Match: \"nope\"\r\n"); r.Status != 412 {
		t.Errorf("If-Match mismatch: %d", r.Status)
	}
	if r := req("If-Range: \"old\"\r\nRange: bytes=0-0\r\n"); r.Status != 200 || r.Body != "0123456789" {
		t.Errorf("stale If-Range: %d %q", r.Status, r.Body)
	}
	if r := req("If-Modified-Since: garbage\r\n"); r.Status != 200 {
		t.Errorf("garbage If-Modified-Since: %d", r.Status)
	}
	p2 := start(t, w.config(cfg{}))
	if e2 := p2.get("a.test", "/f.txt").Header.Get("ETag"); e2 != etag {
		t.Errorf("ETag differs between two servers: %s vs %s", etag, e2)
	}
}
