package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSizedFile checks that ServeContent answers the same through
// sizedFile as through the *os.File: whole file, ranges, multiple ranges,
// an unsatisfiable range, HEAD.
func TestSizedFile(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 300) // 4,800 bytes
	path := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	mod := time.Unix(1700000000, 0)
	serve := func(method, rng string, sized bool) *httptest.ResponseRecorder {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var content io.ReadSeeker = f
		if sized {
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			content = &sizedFile{f: f, size: fi.Size()}
		}
		r := httptest.NewRequest(method, "/f.txt", nil)
		if rng != "" {
			r.Header.Set("Range", rng)
		}
		w := httptest.NewRecorder()
		w.Header().Set("Content-Type", "text/plain")
		http.ServeContent(w, r, "", mod, content)
		return w
	}
	tests := []struct{ name, method, rng string }{
		{"whole", "GET", ""},
		{"head", "HEAD", ""},
		{"first bytes", "GET", "bytes=0-99"},
		{"middle", "GET", "bytes=1000-1999"},
		{"suffix", "GET", "bytes=-10"},
		{"open end", "GET", "bytes=4790-"},
		{"multiple", "GET", "bytes=0-9,100-109,-5"},
		{"unsatisfiable", "GET", "bytes=5000-6000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, got := serve(tc.method, tc.rng, false), serve(tc.method, tc.rng, true)
			if got.Code != want.Code || got.Header().Get("Content-Length") != want.Header().Get("Content-Length") ||
				got.Header().Get("Content-Range") != want.Header().Get("Content-Range") {
				t.Errorf("status %d, length %q, range %q; want %d, %q, %q", got.Code, got.Header().Get("Content-Length"),
					got.Header().Get("Content-Range"), want.Code, want.Header().Get("Content-Length"), want.Header().Get("Content-Range"))
			}
			// Multipart boundaries are random; compare single bodies only.
			if !strings.Contains(tc.rng, ",") && got.Body.String() != want.Body.String() {
				t.Errorf("body %d bytes differs from the *os.File's %d bytes", got.Body.Len(), want.Body.Len())
			}
			if strings.Contains(tc.rng, ",") && got.Body.Len() != want.Body.Len() {
				t.Errorf("multipart body %d bytes, want %d", got.Body.Len(), want.Body.Len())
			}
		})
	}
}

func TestSizedFileSeek(t *testing.T) {
	s := &sizedFile{size: 100}
	for _, tc := range []struct {
		off    int64
		whence int
		want   int64
		bad    bool
	}{
		{0, io.SeekEnd, 100, false},
		{-10, io.SeekEnd, 90, false},
		{5, io.SeekCurrent, 95, false},
		{3, io.SeekStart, 3, false},
		{-4, io.SeekCurrent, 0, true},
		{0, 7, 0, true},
	} {
		got, err := s.Seek(tc.off, tc.whence)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("Seek(%d, %d) = %d, %v; want %d (error %t)", tc.off, tc.whence, got, err, tc.want, tc.bad)
		}
	}
}
