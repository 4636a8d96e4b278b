// Package server owns massvhost's listeners and request path: the HTTPS and
// HTTP listeners, the tls.Config, the http.Server limits, routing between
// static files and CGI, the 421 check, the access log, reload and graceful
// shutdown. It does not parse configuration (it takes typed [Options]),
// resolve host names to directories (a [SiteResolver] does), load
// certificates (a [CertSource] does) or run scripts (a [CGIRunner] does).
//
// # Data flow
//
// A TCP connection is accepted by a listener that caps connections per
// client IP. On the HTTPS port the ClientHello's SNI goes to the CertSource;
// an unknown or invalid name fails the handshake with the unrecognized_name
// alert, an unavailable store with internal_error, and the certificate sent
// is recorded on the connection. Session tickets carry the canonical SNI
// they were issued for and resume only under the same name.
//
// Each request then goes through one handler:
//
//	more than MaxHeaderFields header fields                               → 431, close
//	Host (or :authority, or an absolute-form target) → vhost.Normalize   bad → 400
//	TLS: Host covered by the certificate sent on this connection?         no  → 421
//	SiteResolver.Resolve(host)                                            none → 404
//	dot segment, or a component matching DenyNames (*~, *.bak, …)        → 404
//	/cgi-bin, /cgi-bin/…        → CGIRunner (ScriptAlias)
//	*.cgi in the docroot, index.cgi → CGIRunner (Docroot)
//	anything else               → static file from the docroot (openat2 or os.Root)
//
// and ends with one access log line, written by a background goroutine.
//
// # Why 421 and not 404
//
// All tenants share one listener, and a certificate can cover many names
// (wildcards, multi-SAN). HTTP/2 clients reuse a connection for every name
// its certificate covers, and a hostile client can send any Host over any
// connection. Answering a Host the connection's certificate does not cover
// would let a request authenticated as one tenant reach another (Caddy's
// CVE-2018-21246 bypassed TLS client authentication this way). 421
// Misdirected Request (RFC 9110 §15.5.20) tells a legitimate client to
// retry on a new connection with the right SNI, which a 404 would not: the
// site exists, just not on this connection.
//
// # Why os.Root
//
// A tenant controls its document root, symlinks included. http.Dir follows
// symlinks anywhere, so a link to another tenant's file or to "/" would be
// served. Checking paths first and opening them later races against a
// tenant swapping a file for a symlink (Apache's SymLinksIfOwnerMatch has
// exactly this hole). os.Root resolves each component with openat inside
// the root and refuses every step out of it, in the kernel's view of the
// tree at the moment of the open. On Linux 5.6 and later a regular file is
// opened with one openat2 and RESOLVE_BENEATH instead, which has the
// kernel itself refuse the same steps, atomically, for fewer system calls
// (serveRegularFast); directories and older kernels use os.Root. URL paths
// are still cleaned first: dot segments, dot-files, editor backups
// (DenyNames), NUL and backslashes answer 404 before any system call.
//
// # Why Range is capped
//
// http.ServeContent honours any number of byte ranges as long as their sum
// does not exceed the file, so "bytes=0-0,0-0,…" with thousands of parts
// turns a header of a few hundred kilobytes into a multipart body tens of
// times larger (the "Apache Killer" pattern, CVE-2011-3192). Like Apache's
// MaxRanges, more than MaxRanges parts, or overlapping parts, get the plain
// file with 200.
//
// # Limits
//
// A document root is not a sandbox: neither os.Root nor RESOLVE_BENEATH
// stops hard links, bind mounts or device files the tenant could create;
// those are for the operating system (protected_hardlinks, per-tenant
// permissions). Files
// that are not regular files or directories answer 404.
package server
