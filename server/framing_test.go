package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCloseAfterChunked(t *testing.T) {
	for _, tc := range []struct {
		name      string
		major     int
		te        []string
		wantClose bool
	}{
		{"HTTP/1.1 chunked", 1, []string{"chunked"}, true},
		{"HTTP/1.1 plain", 1, nil, false},
		{"HTTP/2", 2, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.ProtoMajor, r.TransferEncoding = tc.major, tc.te
			w := httptest.NewRecorder()
			closeAfterChunked(w, r)
			if got := w.Header().Get("Connection") == "close"; got != tc.wantClose {
				t.Errorf("Connection: close set %t, want %t", got, tc.wantClose)
			}
		})
	}
}
