package cgi

import (
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"massvhost/vhost"
)

// buildEnv returns the script's environment, built from nothing: the
// RFC 3875 meta-variables, one HTTP_* variable per acceptable request
// header, PATH, and the PassEnv allowlist. The server's own environment
// (secrets, REDIS_*, GODEBUG…) never leaks through.
//
// bodyLen is the request body length handed to stdin, or 0 when none.
func (h *Handler) buildEnv(r *http.Request, site vhost.Site, s *script, bodyLen int64) []string {
	env := make([]string, 0, 32+len(r.Header))
	set := func(k, v string) { env = append(env, k+"="+v) }

	scheme, defaultPort := "http", "80"
	if r.TLS != nil {
		scheme, defaultPort = "https", "443"
		set("HTTPS", "on")
	}
	set("GATEWAY_INTERFACE", "CGI/1.1")
	set("SERVER_SOFTWARE", h.opts.ServerSoftware)
	set("SERVER_NAME", site.Name)
	set("SERVER_PROTOCOL", r.Proto)
	set("REQUEST_SCHEME", scheme)
	serverPort := defaultPort
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if host, port, err := net.SplitHostPort(addr.String()); err == nil {
			set("SERVER_ADDR", host)
			serverPort = port
		}
	}
	set("SERVER_PORT", serverPort)
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		set("REMOTE_ADDR", host)
		set("REMOTE_PORT", port)
	} else if r.RemoteAddr != "" {
		set("REMOTE_ADDR", r.RemoteAddr)
	}
	set("REQUEST_METHOD", r.Method)
	requestURI := r.RequestURI
	if requestURI == "" {
		requestURI = r.URL.RequestURI()
	}
	set("REQUEST_URI", requestURI)
	set("QUERY_STRING", r.URL.RawQuery)
	set("SCRIPT_NAME", s.scriptName)
	set("SCRIPT_FILENAME", s.filename)
	set("DOCUMENT_ROOT", site.DocRoot)
	if s.pathInfo != "" {
		set("PATH_INFO", s.pathInfo)
		// PATH_INFO holds no dot segments (splitURLPath refused them), so
		// the translation stays inside the document root.
		set("PATH_TRANSLATED", filepath.Join(site.DocRoot, filepath.FromSlash(path.Clean(s.pathInfo))))
	}
	if bodyLen > 0 {
		set("CONTENT_LENGTH", strconv.FormatInt(bodyLen, 10))
		if ct := r.Header.Get("Content-Type"); ct != "" {
			set("CONTENT_TYPE", ct)
		}
	}
	if r.Host != "" {
		set("HTTP_HOST", r.Host)
	}
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if key, ok := h.headerEnvName(name); ok {
			sep := ", "
			if key == "HTTP_COOKIE" {
				sep = "; "
			}
			set(key, strings.Join(r.Header[name], sep))
		}
	}
	set("PATH", h.opts.Path)
	for _, name := range h.opts.PassEnv {
		if v, ok := os.LookupEnv(name); ok {
			set(name, v)
		}
	}
	return env
}

// headerEnvName maps a request header name to its HTTP_* variable, or
// reports false for headers that must not reach a script:
//
//   - names with anything but letters, digits and '-': in particular '_',
//     because "X_Forwarded_For" and "X-Forwarded-For" would both become
//     HTTP_X_FORWARDED_FOR and the attacker's could win (Apache 2.4, nginx,
//     Django CVE-2015-0219 drop them too);
//   - Proxy, which would become HTTP_PROXY (httpoxy, CVE-2016-5386);
//   - Authorization unless PassAuthorization, and Proxy-Authorization always;
//   - Content-Type and Content-Length, which are CONTENT_TYPE/CONTENT_LENGTH;
//   - Host, which comes from the request line (HTTP_HOST is set above).
func (h *Handler) headerEnvName(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '-' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return "", false
		}
	}
	key := "HTTP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	switch key {
	case "HTTP_PROXY", "HTTP_PROXY_AUTHORIZATION", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_HOST":
		return "", false
	case "HTTP_AUTHORIZATION":
		return key, h.opts.PassAuthorization
	}
	return key, true
}
