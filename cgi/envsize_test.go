package cgi

import (
	"net/http"
	"strings"
	"testing"
)

func TestCheckEnvSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want int // 0: accepted
	}{
		{"small", []string{"PATH=/bin", "HTTP_COOKIE=a=1"}, 0},
		{"one string at the limit", []string{strings.Repeat("x", maxEnvString)}, 0},
		{"one string over the limit", []string{"HTTP_X=" + strings.Repeat("x", maxEnvString)}, http.StatusRequestHeaderFieldsTooLarge},
		{"many strings over the total", func() []string {
			env := make([]string, 20)
			for i := range env {
				env[i] = strings.Repeat("y", 100<<10)
			}
			return env
		}(), http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rf := checkEnvSize(tc.env)
			switch {
			case tc.want == 0 && rf != nil:
				t.Errorf("refused: %v", rf)
			case tc.want != 0 && (rf == nil || rf.status != tc.want):
				t.Errorf("got %v, want status %d", rf, tc.want)
			}
		})
	}
}
