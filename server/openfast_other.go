//go:build !linux

package server

import (
	"net/http"

	"massvhost/vhost"
)

// serveRegularFast needs openat2(2); elsewhere every request takes the
// os.Root path.
func (s *Server) serveRegularFast(http.ResponseWriter, *http.Request, vhost.Site, *state, string, string) bool {
	return false
}
