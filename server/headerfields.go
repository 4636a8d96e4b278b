package server

import "net/http"

// headerFields returns the number of header field lines of r: every value
// of every field, plus one for the Host header (HTTP/1) or the :authority
// pseudo-header (HTTP/2), which net/http keeps in r.Host rather than in
// r.Header. HTTP/2 cookie crumbs arrive joined into one Cookie value.
func headerFields(r *http.Request) int {
	n := 0
	for _, v := range r.Header {
		n += len(v)
	}
	if r.Host != "" {
		n++
	}
	return n
}

// tooManyFields answers 431 and closes the connection (on HTTP/2, net/http
// turns "Connection: close" into a graceful GOAWAY) when r has more header
// fields than limit, and reports whether it did.
//
// MaxHeaderBytes bounds the bytes of a header block, not its fields:
// 64 KiB holds thousands of "a:b" lines, each of which costs a map entry
// here, an environment variable for a script and a line of work in every
// handler that walks the header. Apache's LimitRequestFields (100 by
// default) bounds the count; browsers send 10 to 30 (THREATS HTTP-03).
// The check runs before the site is resolved, so such a request never
// reaches a tenant's files or scripts.
func tooManyFields(w http.ResponseWriter, r *http.Request, limit int) bool {
	if headerFields(r) <= limit {
		return false
	}
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusRequestHeaderFieldsTooLarge)
	return true
}
