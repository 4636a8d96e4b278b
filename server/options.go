package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"massvhost/vhost"
)

// Defaults for the zero fields of [Options].
const (
	DefaultReadHeaderTimeout    = 10 * time.Second
	DefaultReadTimeout          = 60 * time.Second
	DefaultWriteTimeout         = 60 * time.Second
	DefaultIdleTimeout          = 120 * time.Second
	DefaultMaxHeaderBytes       = 64 << 10
	DefaultMaxHeaderFields      = 100
	DefaultMaxConcurrentStreams = 100
	DefaultMaxRanges            = 200
	DefaultAccessLogBuffer      = 4096
	DefaultShutdownTimeout      = 30 * time.Second
)

// Access log formats accepted in [Options.AccessFormat].
const (
	FormatVhostCombined = "vhost_combined"
	FormatJSON          = "json"
)

// SiteResolver maps a request's host to its tenant. Resolve receives the
// canonical host, or, on plain HTTP, the raw Host when it is not a valid
// name (an IP literal, or "" from an HTTP/1.0 client), so that a default
// site can answer it. It returns an error wrapping [vhost.ErrNoSuchHost] when no
// tenant serves it and one wrapping [vhost.ErrInvalidName] for a malformed
// name. Implementations are safe for concurrent use and honor ctx.
// *vhost.Resolver implements it.
type SiteResolver interface {
	Resolve(ctx context.Context, host string) (vhost.Site, error)
}

// CertSource finds the certificate for a TLS server name. sni is the raw SNI
// from the ClientHello ("" when the client sent none; the source answers with
// its default certificate, if it has one). Errors wrap certs.ErrNotFound
// (no certificate: the handshake fails with an unrecognized_name alert),
// vhost.ErrInvalidName (same alert) or certs.ErrUnavailable (the store could
// not be asked: internal_error); any other error (an unusable pair in the
// store, say) is logged and also sent as internal_error. During a handshake
// ctx carries the client's address (certs.WithClient), for sources that
// budget lookups per client. The returned certificate is shared and must
// not be modified; its Leaf should be set.
// *certs.Manager implements it.
type CertSource interface {
	Lookup(ctx context.Context, sni string) (*tls.Certificate, error)
}

// CGIMode says how a request reached a CGI script.
type CGIMode int

const (
	// CGIScriptAlias: the path is "/cgi-bin/<script>[/path-info]" and names
	// a script inside the site's CGIBin.
	CGIScriptAlias CGIMode = iota + 1
	// CGIDocroot: the path names a file with a CGI extension (or a CGI index
	// such as index.cgi) inside the site's DocRoot.
	CGIDocroot
)

// CGIRunner runs CGI scripts for a site. ServeCGI writes the whole response,
// including errors; r.URL.Path is already cleaned (no dot segments, no
// duplicate slashes, no NUL or backslash). IsScriptPath reports whether the
// last segment of a URL path has a CGI extension; such files are never
// served as static bytes. Implementations are safe for concurrent use.
type CGIRunner interface {
	ServeCGI(w http.ResponseWriter, r *http.Request, site vhost.Site, mode CGIMode)
	IsScriptPath(urlPath string) bool
}

// Options configure a [Server]. The zero value of every field means the
// documented default; only Sites (and Certs when HTTPSAddr is set) are
// required. Options are copied by [New] and [Server.Swap] and must not be
// modified afterwards.
type Options struct {
	// HTTPAddr and HTTPSAddr are the listen addresses ("127.0.0.1:8080",
	// ":0" for a free port). "" disables that listener; at least one must be
	// set. Swap rebinds a changed address (see [Server.Swap]).
	HTTPAddr, HTTPSAddr string
	// RedirectHTTPS makes the HTTP listener answer every request for a known
	// site with 308 to the same path and query on https://, instead of
	// serving it.
	RedirectHTTPS bool

	// Sites resolves hosts to tenants. Required.
	Sites SiteResolver
	// Certs picks the certificate for each TLS handshake. Required when
	// HTTPSAddr is set.
	Certs CertSource
	// CGI runs scripts; nil disables CGI: "/cgi-bin/…" answers 404 and no
	// file is treated as a script, so a docroot's x.cgi or index.cgi is then
	// served as a static file (its source), as Apache does without
	// mod_cgi. Keep scripts in cgi-bin if CGI may be turned off.
	CGI CGIRunner

	// Index lists the file names tried, in order, for a directory request.
	// A name with a CGI extension (index.cgi) runs the script. If nil,
	// ["index.html"].
	Index []string
	// Listing enables an HTML listing of directories without an index
	// (dot entries and DenyNames are never listed). Off: such directories
	// answer 403.
	Listing bool
	// DenyNames are path.Match patterns of names never served: a request
	// whose path has a component matching one answers 404, as a missing
	// file does, before any file is opened or script looked up; it applies
	// to directories, files, scripts and PATH_INFO alike. Each pattern
	// matches one component and cannot contain '/'. If nil,
	// DefaultDenyNames(); an empty non-nil slice denies nothing (dot-files
	// are refused regardless).
	DenyNames []string
	// AllowACMEChallenge serves files under /.well-known/acme-challenge/
	// from the docroot, the one exception to "dot segments answer 404".
	AllowACMEChallenge bool
	// ACMEHTTP, if set, sees every request on the HTTP listener first,
	// before redirect to HTTPS, Host resolution and 421: the CA's HTTP-01
	// validation names a host that may have no site yet and must not be
	// redirected. It returns true when it answered the request
	// (certs.ACME.HTTPChallenge).
	ACMEHTTP func(w http.ResponseWriter, r *http.Request) bool
	// ACMETLSALPN, if set, answers TLS-ALPN-01 validation handshakes
	// (certs.IsTLSALPNHello) instead of the tenant certificate lookup
	// (certs.ACME.TLSALPNConfig). An error fails the handshake.
	ACMETLSALPN func(hello *tls.ClientHelloInfo) (*tls.Config, error)

	// ReadHeaderTimeout bounds reading the request headers, and the TLS
	// handshake (which gets the smaller of this and ReadTimeout); if zero,
	// DefaultReadHeaderTimeout. Swap applies it to new connections.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading the whole request including the body; if
	// zero, DefaultReadTimeout. Swap applies it to new connections.
	ReadTimeout time.Duration
	// WriteTimeout is a rolling deadline: a response write that makes no
	// progress for this long aborts the connection, while a slow download
	// that keeps moving completes. If zero, DefaultWriteTimeout.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long; if zero,
	// DefaultIdleTimeout. Swap applies it to new connections.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps the request line plus headers (431 beyond); if
	// zero, DefaultMaxHeaderBytes. Swap applies it to new connections.
	MaxHeaderBytes int
	// MaxHeaderFields caps the number of request header fields, counted as
	// field lines (every value of a repeated field counts; Host or
	// :authority counts as one), as Apache's LimitRequestFields does: a
	// request with more is answered 431 and its connection closed (HTTP/2:
	// GOAWAY) before any tenant work. If zero, DefaultMaxHeaderFields.
	MaxHeaderFields int
	// MaxConnsPerIP caps concurrent connections from one client IP; extra
	// connections are closed at accept. Zero means unlimited.
	MaxConnsPerIP int
	// MaxConcurrentStreams caps concurrent HTTP/2 streams per connection;
	// if zero, DefaultMaxConcurrentStreams. Swap applies it to new connections.
	MaxConcurrentStreams int
	// MaxRanges is the largest number of parts a Range header may have;
	// beyond it the full body is sent with 200. If zero, DefaultMaxRanges.
	MaxRanges int

	// AccessLog receives one line per request; nil disables access logging.
	// Writes happen on a separate goroutine: a slow or failing writer never
	// delays a response (lines are dropped and counted instead).
	AccessLog io.Writer
	// TenantAccessLog, if set, receives every access log line of a request
	// that reached a site a second time, for that tenant's own log. It is
	// called on the access log's writer goroutine, never on a request's.
	TenantAccessLog TenantLogWriter
	// AccessFormat is FormatVhostCombined (the default, for "") or FormatJSON.
	AccessFormat string
	// AccessLogBuffer is the number of lines queued for the writer before
	// lines are dropped; if zero, DefaultAccessLogBuffer. Fixed at New:
	// Swap reports [ErrRestartRequired] for a change.
	AccessLogBuffer int
	// Logger receives errors and events; if nil, slog.Default(). Wrap its
	// handler with [LogHandler] to get request IDs on CGI log lines.
	Logger *slog.Logger

	// ShutdownTimeout bounds how long the connections of a listener that
	// Swap replaced may take to finish their requests; if zero,
	// DefaultShutdownTimeout. (Shutdown takes its own deadline.)
	ShutdownTimeout time.Duration

	// deny is DenyNames compiled by withDefaults.
	deny denyList
}

// TenantLogWriter writes access log lines to per-tenant logs. lines holds
// one or more whole lines, all for site's tenant. Implementations are
// called from one goroutine at a time and may block briefly (opening a
// file), but a slow one delays the main access log too.
type TenantLogWriter interface {
	WriteTenant(site vhost.Site, lines []byte) error
}

// ErrRestartRequired is wrapped by the error [Server.Swap] returns when the
// new Options change AccessLogBuffer, the one field fixed at [New]; the
// other fields were applied.
var ErrRestartRequired = errors.New("server: restart required")

// withDefaults returns a copy of o with zero fields replaced by defaults, or
// an error naming every invalid field.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.HTTPAddr == "" && o.HTTPSAddr == "" {
		errs = append(errs, errors.New("server: HTTPAddr and HTTPSAddr are both empty"))
	}
	if o.Sites == nil {
		errs = append(errs, errors.New("server: Sites is nil"))
	}
	if o.HTTPSAddr != "" && o.Certs == nil {
		errs = append(errs, errors.New("server: Certs is nil but HTTPSAddr is set"))
	}
	if o.RedirectHTTPS && o.HTTPSAddr == "" {
		errs = append(errs, errors.New("server: RedirectHTTPS needs HTTPSAddr"))
	}
	switch o.AccessFormat {
	case "":
		o.AccessFormat = FormatVhostCombined
	case FormatVhostCombined, FormatJSON:
	default:
		errs = append(errs, fmt.Errorf("server: AccessFormat %q: want %q or %q", o.AccessFormat, FormatVhostCombined, FormatJSON))
	}
	for _, name := range o.Index {
		if name == "" || name[0] == '.' || strings.ContainsAny(name, "/\\\x00") {
			errs = append(errs, fmt.Errorf("server: Index entry %q: must be a plain file name not starting with a dot", name))
		}
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"ReadHeaderTimeout", int64(o.ReadHeaderTimeout)},
		{"ReadTimeout", int64(o.ReadTimeout)},
		{"WriteTimeout", int64(o.WriteTimeout)},
		{"IdleTimeout", int64(o.IdleTimeout)},
		{"MaxHeaderBytes", int64(o.MaxHeaderBytes)},
		{"MaxHeaderFields", int64(o.MaxHeaderFields)},
		{"MaxConnsPerIP", int64(o.MaxConnsPerIP)},
		{"MaxConcurrentStreams", int64(o.MaxConcurrentStreams)},
		{"MaxRanges", int64(o.MaxRanges)},
		{"AccessLogBuffer", int64(o.AccessLogBuffer)},
		{"ShutdownTimeout", int64(o.ShutdownTimeout)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("server: %s: must not be negative, got %d", f.name, f.v))
		}
	}
	if o.DenyNames == nil {
		o.DenyNames = DefaultDenyNames()
	} else {
		o.DenyNames = append([]string{}, o.DenyNames...)
	}
	deny, err := compileDenyNames(o.DenyNames)
	if err != nil {
		errs = append(errs, err)
	}
	o.deny = deny
	if len(errs) > 0 {
		return o, errors.Join(errs...)
	}
	if o.Index == nil {
		o.Index = []string{"index.html"}
	} else {
		o.Index = append([]string(nil), o.Index...)
	}
	setDefault(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&o.ReadTimeout, DefaultReadTimeout)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.IdleTimeout, DefaultIdleTimeout)
	setDefault(&o.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&o.MaxHeaderFields, DefaultMaxHeaderFields)
	setDefault(&o.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	setDefault(&o.MaxRanges, DefaultMaxRanges)
	setDefault(&o.AccessLogBuffer, DefaultAccessLogBuffer)
	setDefault(&o.ShutdownTimeout, DefaultShutdownTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
