package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// maxPartOverhead bounds the bytes a multipart/byteranges response adds per
// part: boundary, Content-Type and Content-Range lines.
const maxPartOverhead = 256

// FuzzLimitRanges feeds arbitrary Range headers through limitRanges and
// then http.ServeContent, as the static handler does. Whatever the header,
// nothing panics and the response is never larger than the file plus a
// bounded overhead for at most maxRanges parts: the header can no longer
// make the server send many times the file (THREATS FS-09).
func FuzzLimitRanges(f *testing.F) {
	for _, seed := range []struct {
		rng       string
		size, max int
	}{
		{"bytes=0-99", 1000, 200},
		{"bytes=0-0,0-0,0-0", 1000, 200},
		{"bytes=" + strings.Repeat("0-0,", 300) + "0-0", 1000, 200},
		{"bytes=" + strings.Repeat("0-0,", 999) + "0-0", 1000, 10},
		{"bytes=-10,990-", 1000, 200},
		{"bytes=0-,0-", 1000, 200},
		{"bytes=0-9,20-29,40-49", 100, 2},
		{"bytes=5-1", 100, 200},
		{"bytes= 0 - 9 , 10 - 19", 100, 200},
		{"bytes=0-999999999999999999999", 100, 200},
		{"bytes=-0", 100, 200},
		{"items=0-1", 100, 200},
		{"bytes=0-9,,,,,10-19", 100, 1},
	} {
		f.Add(seed.rng, seed.size, seed.max)
	}
	f.Fuzz(func(t *testing.T, rng string, size, maxRanges int) {
		size = size & 0xffff          // up to 64 KiB
		maxRanges = 1 + maxRanges&511 // 1..512
		content := bytes.Repeat([]byte{'x'}, size)
		req := httptest.NewRequest(http.MethodGet, "/f.txt", nil)
		req.Header.Set("Range", rng)
		limitRanges(req.Header, int64(size), maxRanges)
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "f.txt", time.Time{}, bytes.NewReader(content))
		if limit := size + maxRanges*maxPartOverhead + maxPartOverhead; rec.Body.Len() > limit {
			t.Fatalf("Range %.80q on %d bytes (max %d parts): %d-byte body, above %d",
				rng, size, maxRanges, rec.Body.Len(), limit)
		}
	})
}
