package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"massvhost/vhost"
)

// ServeHTTP routes one request: Host → 400/421/404 checks → the site's
// dispatcher (CGI or static). It is the handler of the HTTPS listener and,
// unless RedirectHTTPS is set, of the HTTP listener. Safe for concurrent use.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, false)
}

// serveHTTPPort is the handler of the HTTP listener: like ServeHTTP, but a
// request for a known site is redirected when RedirectHTTPS is set.
func (s *Server) serveHTTPPort(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, true)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, plainPort bool) {
	st := s.acquire()
	defer st.release()
	s.metrics.inFlight.Add(1)
	rw := newResponseWriter(w, st.opts.WriteTimeout, s.reqSeq.Add(1), s.idPrefix)
	// The request's context carries its ID, so that every log line written
	// for it (here, in the CGI runner) can name it; see LogHandler.
	r = r.WithContext(context.WithValue(r.Context(), requestKey{}, rw))
	defer s.finish(rw, r, st)
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	closeAfterChunked(rw, r)
	if tooManyFields(rw, r, st.opts.MaxHeaderFields) {
		return
	}
	if plainPort && st.opts.ACMEHTTP != nil && st.opts.ACMEHTTP(rw, r) {
		return
	}

	redirect := plainPort && st.opts.RedirectHTTPS
	var site vhost.Site
	host, err := vhost.Normalize(r.Host)
	switch {
	case err == nil:
		rw.host = host
		if r.TLS != nil && !s.covered(r, st, host) {
			writeError(rw, http.StatusMisdirectedRequest)
			return
		}
		site, err = st.sites.Resolve(r.Context(), host)
	case r.TLS == nil && !redirect:
		// An IP literal or a missing Host (HTTP/1.0) names no tenant; the
		// resolver answers with its default site if it has one (VH-03),
		// and with ErrInvalidName otherwise and for malformed names.
		site, err = st.sites.Resolve(r.Context(), r.Host)
	default:
		// Over TLS a request must name a host its certificate covers, and
		// a redirect must name a valid host.
		writeError(rw, http.StatusBadRequest)
		return
	}
	switch {
	case errors.Is(err, vhost.ErrNoSuchHost):
		writeError(rw, http.StatusNotFound) // the same answer for every unknown name
		return
	case errors.Is(err, vhost.ErrInvalidName):
		writeError(rw, http.StatusBadRequest)
		return
	case err != nil:
		s.internalError(rw, r, "resolve site", err)
		return
	}
	rw.host = site.Name
	rw.site, rw.hasSite = site, true
	if redirect {
		s.redirectHTTPS(rw, r, host)
		return
	}
	s.serveSite(rw, r, site, st)
}

// covered reports whether the certificate this TLS connection was
// established with is valid for host (leaf.VerifyHostname, wildcards
// included).
//
// Without it, any tenant is reachable over a connection authenticated as any
// other tenant: HTTP/2 clients reuse a connection for every name its
// certificate covers (RFC 9113 §9.1.1), a hostile client can send any Host
// or :authority, and per-tenant TLS policy (client certificates, the
// session binding in tls.go) would be bypassed, as in Caddy's
// CVE-2018-21246. RFC 9110 §15.5.20 defines 421 for exactly this: the
// client retries on a new connection with a matching SNI.
//
// The certificate checked is the one actually sent: the TLS config records
// it on the connection (see recordHello), so no second lookup is needed and
// a certificate replaced in the store meanwhile cannot change the answer.
// For connections that did not come through our listener (Handler used
// with another server) the CertSource is asked for r.TLS.ServerName.
// A client that sent no SNI got the CertSource's default certificate, if
// any, and is served exactly the hosts that certificate covers. A wildcard
// certificate covers all its names, so coalescing across them keeps
// working.
func (s *Server) covered(r *http.Request, st *state, host string) bool {
	var cert *tls.Certificate
	c, _ := r.Context().Value(connKey{}).(*conn)
	if c != nil {
		if h := c.coveredHost.Load(); h != nil && *h == host {
			return true
		}
		if res := c.hello.Load(); res != nil {
			cert = res.cert
		}
	} else if st.certs != nil {
		cert, _ = st.certs.Lookup(r.Context(), r.TLS.ServerName)
	}
	if cert == nil {
		return false
	}
	leaf, err := leafOf(cert)
	if err != nil || leaf.VerifyHostname(host) != nil {
		return false
	}
	if c != nil {
		c.coveredHost.Store(&host)
	}
	return true
}

// redirectHTTPS answers 308 with the same path and query on https://host.
// host is canonical and names a known site, so the redirect never points at
// a name the attacker made up.
func (s *Server) redirectHTTPS(w http.ResponseWriter, r *http.Request, host string) {
	target := "https://" + host
	if port := s.httpsPort(); port != "" && port != "443" {
		target += ":" + port
	}
	uri := r.URL.RequestURI()
	if !strings.HasPrefix(uri, "/") {
		uri = "/" // OPTIONS *, CONNECT
	}
	w.Header().Set("Location", target+uri)
	w.WriteHeader(http.StatusPermanentRedirect)
}

// ServeSite dispatches r within site, skipping the Host checks: paths with a
// dot segment or a DenyNames component answer 404, "/cgi-bin" and below go
// to the CGI runner, files with a CGI extension in the docroot too,
// everything else is a static file. The CGI runner uses it for local
// redirects (RFC 3875 §6.2.2), which must stay within the tenant.
func (s *Server) ServeSite(w http.ResponseWriter, r *http.Request, site vhost.Site) {
	s.serveSite(w, r, site, s.state.Load())
}

func (s *Server) serveSite(w http.ResponseWriter, r *http.Request, site vhost.Site, st *state) {
	if r.URL.Path == "*" && r.Method == http.MethodOptions {
		w.Header().Set("Allow", allowedMethods)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	urlPath, name, ok := cleanPath(r.URL.Path, st.opts.AllowACMEChallenge)
	if !ok || st.opts.deny.hides(urlPath) {
		writeError(w, http.StatusNotFound)
		return
	}
	if urlPath != r.URL.Path {
		r = withPath(r, urlPath)
	}
	if isCGIBin(urlPath) {
		if st.cgi == nil {
			writeError(w, http.StatusNotFound)
			return
		}
		s.serveCGI(w, r, site, st, CGIScriptAlias)
		return
	}
	if st.cgi != nil && st.cgi.IsScriptPath(urlPath) {
		s.serveCGI(w, r, site, st, CGIDocroot)
		return
	}
	s.serveStatic(w, r, site, st, urlPath, name)
}

// serveCGI hands r to the CGI runner, counting it per tenant while it runs
// and timing the script's response headers.
func (s *Server) serveCGI(w http.ResponseWriter, r *http.Request, site vhost.Site, st *state, mode CGIMode) {
	s.cgiTenants.add(site.Tenant, 1)
	defer s.cgiTenants.add(site.Tenant, -1)
	if rw, ok := w.(*responseWriter); ok && rw.cgiStart.IsZero() {
		rw.cgiStart, rw.cgiHist = time.Now(), &s.metrics.cgiHeader
	}
	st.cgi.ServeCGI(w, r, site, mode)
}

// isCGIBin reports whether a cleaned URL path is "/cgi-bin" or below it.
func isCGIBin(p string) bool {
	const prefix = "/cgi-bin"
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}

// withPath returns a shallow copy of r whose URL path is p (already clean).
func withPath(r *http.Request, p string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = p, ""
	r2.URL = &u
	return r2
}

// finish runs after every request: it recovers a panic (500, or an aborted
// connection if the response had started), extends the write deadline for
// the final flush and writes the access log line.
func (s *Server) finish(rw *responseWriter, r *http.Request, st *state) {
	v := recover()
	if v != nil && v != http.ErrAbortHandler {
		s.panics.Add(1)
		s.logger().Error("server: panic in handler", "id", rw.id(), "host", rw.host, "remote", r.RemoteAddr,
			"method", r.Method, "uri", r.RequestURI, "panic", v, "stack", string(debug.Stack()))
		if !rw.wroteHeader {
			clear(rw.Header())
			rw.Header().Set("X-Content-Type-Options", "nosniff")
			s.writeInternal(rw, rw.id())
			v = nil
		}
	}
	rw.extend()
	end := time.Now()
	s.metrics.inFlight.Add(-1)
	s.metrics.countRequest(r, rw.statusOrOK())
	if rw.hasSite {
		s.topTenants.add(rw.site.Tenant, end)
	}
	s.access.record(rw, r, s, end)
	if v != nil {
		// The response is partly written: abort the connection (or HTTP/2
		// stream) so the client sees a truncated response, without
		// net/http's "http: panic serving" log.
		panic(http.ErrAbortHandler)
	}
}

// internalError logs err with the request ID and answers 500 without any
// detail beyond that ID.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, op string, err error) {
	id := requestID(w, s)
	s.logger().Error("server: "+op, "id", id, "host", r.Host, "remote", r.RemoteAddr, "uri", r.RequestURI, "err", err)
	s.writeInternal(w, id)
}

func (s *Server) writeInternal(w http.ResponseWriter, id string) {
	resetForError(w.Header())
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, "Internal Server Error\nrequest id: "+id+"\n")
}

// writeError answers code with its status text as a plain-text body. Error
// bodies never carry paths or internal error text (STYLE §5).
func writeError(w http.ResponseWriter, code int) {
	resetForError(w.Header())
	w.WriteHeader(code)
	io.WriteString(w, http.StatusText(code)+"\n")
}

func resetForError(h http.Header) {
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Range", "ETag", "Last-Modified", "Accept-Ranges"} {
		delete(h, k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
}

// Interface guards.
var _ http.Handler = (*Server)(nil)
