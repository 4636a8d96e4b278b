package cgi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"massvhost/cgi/cgroup"
	"massvhost/vhost"
)

// Defaults for the zero fields of [Options] and [Limits]. The operator-facing
// configuration (the cgi.* keys) refers to these so that there is one source
// of truth.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultMinUID         = 1000
	DefaultMinGID         = 1000
	DefaultMaxBodyBytes   = 10 << 20
	DefaultMaxOutputBytes = 1 << 30
	DefaultMaxStderrBytes = 64 << 10
	DefaultMaxPerTenant   = 16
	DefaultMaxTotal       = 256
	DefaultPath           = "/usr/local/bin:/usr/bin:/bin"
	DefaultKillGrace      = 500 * time.Millisecond
	DefaultWaitDelay      = time.Second
	DefaultLauncher       = "/proc/self/exe"
	DefaultServerSoftware = "massvhost"

	DefaultCPU          = 30 * time.Second
	DefaultAddressSpace = 1 << 30
	DefaultProcesses    = 64
	DefaultOpenFiles    = 256
	DefaultFileSize     = 100 << 20

	DefaultCPUWeight       = cgroup.DefaultWeight
	DefaultTenantProcesses = 512

	// MaxRedirects is how many internal redirects (local Location
	// responses) one client request may follow; the next one answers 500.
	// Apache's LimitInternalRecursion has the same default.
	MaxRedirects = 10
)

// DefaultExtensions are the file extensions that make a file inside a
// document root a CGI script when [Options.Extensions] is nil.
var DefaultExtensions = []string{".cgi"}

// DefaultPassEnv are the server environment variables passed to scripts when
// [Options.PassEnv] is nil.
var DefaultPassEnv = []string{"LANG", "LC_ALL", "TZ"}

// Options configure a [Handler]. The zero value is usable: every zero field
// means the documented default. Options are copied by [New]; changing the
// caller's value afterwards has no effect.
type Options struct {
	// Timeout is the wall-clock bound on one script run, from spawn to the
	// last byte of output; the whole process group is killed when it
	// expires. If zero, DefaultTimeout.
	Timeout time.Duration
	// Extensions mark CGI scripts inside a document root (AddHandler-like).
	// Each starts with a dot and matches case-sensitively. If nil,
	// DefaultExtensions; an empty non-nil slice disables document-root CGI.
	Extensions []string
	// MinUID and MinGID are the smallest tenant uid and gid a script may
	// run as when the server is root (suEXEC's AP_UID_MIN). If zero,
	// DefaultMinUID and DefaultMinGID. uid and gid 0 are always refused.
	MinUID, MinGID uint32
	// Anonymous is the identity scripts run as, when the server is root,
	// for sites whose document root is owned by a uid below MinUID: sites
	// that root or a system account manages for the operator, such as the
	// examples shipped with massvhost. The suEXEC checks then require the
	// script's tree to belong to that owner (so the anonymous user cannot
	// change the code it runs), and all such sites share this one identity,
	// as every script shares www-data on an Apache without suEXEC. It must
	// be at least MinUID and MinGID, and must own no site. The zero value
	// runs nothing for such sites (403), as before there was this field.
	// [LookupUser] resolves a user name.
	Anonymous Identity
	// MaxBodyBytes bounds the request body; larger requests get 413 before
	// anything is spawned. If zero, DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxOutputBytes bounds the response body a script may produce; beyond
	// it the response is cut (aborted) and the cut is logged. If zero,
	// DefaultMaxOutputBytes.
	MaxOutputBytes int64
	// MaxStderrBytes bounds what one run may write to the error log; the
	// rest is read and dropped. If zero, DefaultMaxStderrBytes.
	MaxStderrBytes int64
	// MaxPerTenant and MaxTotal cap concurrently running scripts per tenant
	// and for the whole handler. Requests beyond a cap get 503 with
	// Retry-After at once; there is no queue. If zero, DefaultMaxPerTenant
	// and DefaultMaxTotal.
	MaxPerTenant, MaxTotal int
	// Path is the PATH given to scripts. If empty, DefaultPath.
	Path string
	// PassEnv names server environment variables copied into the script
	// environment when set. Nothing else of the server's environment
	// reaches a script. Names that CGI itself defines (or HTTP_*) are
	// refused by New. If nil, DefaultPassEnv; an empty non-nil slice
	// passes nothing.
	PassEnv []string
	// PassAuthorization passes the Authorization header as
	// HTTP_AUTHORIZATION (Apache's CGIPassAuth). Off by default so that
	// credentials meant for the server are not handed to tenant code.
	PassAuthorization bool
	// Limits are the resource limits in force from the script's first
	// instruction.
	Limits Limits
	// Cgroups says whether each tenant's scripts run in a cgroup of the
	// tenant's own (package massvhost/cgi/cgroup): CPU shared by weight
	// between tenants rather than by process count, a process limit per
	// tenant whatever the uid, and, once none of a tenant's scripts runs,
	// the kill of what escaped the process group (setsid, daemons). The
	// zero value is CgroupsAuto.
	Cgroups CgroupMode
	// CPUWeight is each tenant's CPU weight, 1..10000 (cgroup v2
	// cpu.weight; v1 cpu.shares = CPUWeight*1024/100). If zero,
	// DefaultCPUWeight.
	CPUWeight int
	// TenantCPUMax caps the CPU all of a tenant's scripts may use
	// together, in CPUs (cgroup v2 cpu.max; v1 cpu.cfs_quota_us), over
	// [cgroup.CPUPeriod]. Zero sets no cap.
	TenantCPUMax float64
	// TenantMemoryMax caps the memory all of a tenant's scripts use
	// together, in bytes (cgroup.Options.MemoryMax). Zero sets no cap.
	TenantMemoryMax int64
	// TenantCPUDemote is the CPU use (CPUs, averaged over
	// cgroup.DemoteWindow) above which a tenant is demoted to idle CPU
	// priority for TenantCPUDemoteFor (cgroup.Options.DemoteAbove). Zero
	// never demotes.
	TenantCPUDemote float64
	// TenantCPUDemoteFor is cgroup.Options.DemoteFor; if zero,
	// cgroup.DefaultDemoteFor.
	TenantCPUDemoteFor time.Duration
	// TenantProcesses is pids.max of each tenant's cgroup: the tasks
	// (threads count, launchers included) all its scripts may have at
	// once. It fences tenants that share a uid, which RLIMIT_NPROC cannot.
	// If zero, DefaultTenantProcesses; negative sets no limit.
	TenantProcesses int64
	// NoNewPrivs sets PR_SET_NO_NEW_PRIVS in the launcher, so that no
	// setuid or setgid program (or file capability) gives a script more
	// than its tenant's rights. Off by default: setgid helpers stop
	// working, among them postfix's postdrop, which sendmail(1) and PHP's
	// mail() use to queue mail.
	NoNewPrivs bool
	// KeepBoundingSet leaves the capability bounding set of scripts as
	// the server's. By default the launcher empties it when it switches to
	// the tenant's identity, so that a setuid-root program a script runs
	// gets no capabilities (launch.Spec.KeepBoundingSet).
	KeepBoundingSet bool
	// KillGrace is the time between SIGTERM and SIGKILL when a run is
	// terminated early (timeout, client gone, shutdown, output cap).
	// If zero, DefaultKillGrace.
	KillGrace time.Duration
	// WaitDelay bounds how long a finished run may keep the response open:
	// after the script exits, the rest of its process group gets this long
	// to close stdout before it is killed; after the script closes stdout,
	// it gets this long to exit. If zero, DefaultWaitDelay.
	WaitDelay time.Duration
	// Launcher is the executable started for every script, with argv[1]
	// LaunchCommand; it must run [Launch] (package massvhost/cgi/launch).
	// It runs as the server's user (root, when scripts switch identity)
	// until it execs the script, so it must be as trusted as the server
	// binary. If empty, DefaultLauncher: the running binary itself, even if
	// it was replaced on disk since start. A binary built from package
	// launch alone (cmd/massvhost-cgi-launch) starts in less than half the
	// CPU time of the full server binary; see the package doc.
	Launcher string
	// TempDir holds request bodies of unknown length that exceed 1 MiB
	// while they are buffered. The files are unlinked at creation.
	// If empty, os.TempDir().
	TempDir string
	// ServerSoftware is the SERVER_SOFTWARE value. If empty,
	// DefaultServerSoftware.
	ServerSoftware string
	// Logger receives refusals (with their reason), failures and, unless
	// ErrorLog is set, the scripts' stderr. If nil, slog.Default().
	Logger *slog.Logger
	// ErrorLog returns the writer for a site's script stderr (the tenant's
	// error log). It receives whole lines, at most MaxStderrBytes per run,
	// and must be safe for concurrent use. If nil, lines go to Logger with
	// the host attribute, rate-limited across all sites.
	ErrorLog func(site vhost.Site) io.Writer
	// LocalRedirect serves a local redirect (a script answering with
	// "Location: /path" and no other status than 200) as a new GET request
	// for the same site. The request's URL, RequestURI and context are
	// rewritten; the host is never changed. If nil, local redirects are
	// sent to the client as 302.
	LocalRedirect func(w http.ResponseWriter, r *http.Request, site vhost.Site)

	// cgroupLayout, when set, is used instead of the detected cgroups
	// (tests: cgroup.NewWithLayout).
	cgroupLayout *cgroup.Layout
}

// Limits are per-script resource limits (setrlimit), applied by the
// launcher before the script's first instruction. A zero field means its
// default; a negative field means no limit is set (the script inherits the
// server's). RLIMIT_CORE is always 0.
type Limits struct {
	// CPU is RLIMIT_CPU, rounded up to whole seconds. If zero, DefaultCPU.
	CPU time.Duration
	// AddressSpace is RLIMIT_AS in bytes. If zero, DefaultAddressSpace.
	AddressSpace int64
	// Processes is RLIMIT_NPROC. The kernel counts it per real uid, so it
	// is only set when scripts run as their tenant's uid (server is root).
	// If zero, DefaultProcesses.
	Processes int64
	// OpenFiles is RLIMIT_NOFILE. If zero, DefaultOpenFiles.
	OpenFiles int64
	// FileSize is RLIMIT_FSIZE in bytes. If zero, DefaultFileSize.
	FileSize int64
}

// reservedEnv are names the handler sets itself; PassEnv may not shadow them.
var reservedEnv = []string{
	"AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "DOCUMENT_ROOT",
	"GATEWAY_INTERFACE", "HTTPS", "PATH", "PATH_INFO", "PATH_TRANSLATED",
	"QUERY_STRING", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_IDENT",
	"REMOTE_PORT", "REMOTE_USER", "REQUEST_METHOD", "REQUEST_SCHEME",
	"REQUEST_URI", "SCRIPT_FILENAME", "SCRIPT_NAME", "SERVER_ADDR",
	"SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "SERVER_SOFTWARE",
}

// withDefaults validates o and returns a copy with every zero field set.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("cgi: %s: "+format, append([]any{key}, args...)...))
	}
	dur := func(key string, d *time.Duration, def time.Duration) {
		switch {
		case *d < 0:
			bad(key, "must not be negative, got %v", *d)
		case *d == 0:
			*d = def
		}
	}
	num := func(key string, n *int64, def int64) {
		switch {
		case *n < 0:
			bad(key, "must not be negative, got %d", *n)
		case *n == 0:
			*n = def
		}
	}
	dur("Timeout", &o.Timeout, DefaultTimeout)
	dur("KillGrace", &o.KillGrace, DefaultKillGrace)
	dur("WaitDelay", &o.WaitDelay, DefaultWaitDelay)
	num("MaxBodyBytes", &o.MaxBodyBytes, DefaultMaxBodyBytes)
	num("MaxOutputBytes", &o.MaxOutputBytes, DefaultMaxOutputBytes)
	num("MaxStderrBytes", &o.MaxStderrBytes, DefaultMaxStderrBytes)
	perTenant, total := int64(o.MaxPerTenant), int64(o.MaxTotal)
	num("MaxPerTenant", &perTenant, DefaultMaxPerTenant)
	num("MaxTotal", &total, DefaultMaxTotal)
	o.MaxPerTenant, o.MaxTotal = int(perTenant), int(total)
	if o.MinUID == 0 {
		o.MinUID = DefaultMinUID
	}
	if o.MinGID == 0 {
		o.MinGID = DefaultMinGID
	}
	if a := o.Anonymous; !a.IsZero() {
		switch {
		case a.UID == 0 || a.GID == 0:
			bad("Anonymous", "uid %d, gid %d: scripts never run as root", a.UID, a.GID)
		case a.UID < o.MinUID || a.GID < o.MinGID:
			bad("Anonymous", "uid %d, gid %d is below MinUID %d or MinGID %d", a.UID, a.GID, o.MinUID, o.MinGID)
		}
	}
	if o.Extensions == nil {
		o.Extensions = DefaultExtensions
	}
	o.Extensions = append([]string(nil), o.Extensions...)
	for _, ext := range o.Extensions {
		if len(ext) < 2 || ext[0] != '.' || strings.ContainsAny(ext, "/\\\x00") {
			bad("Extensions", "%q is not a file extension like \".cgi\"", ext)
		}
	}
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if strings.ContainsRune(o.Path, 0) {
		bad("Path", "contains NUL")
	}
	if o.PassEnv == nil {
		o.PassEnv = DefaultPassEnv
	}
	o.PassEnv = append([]string(nil), o.PassEnv...)
	for _, name := range o.PassEnv {
		switch {
		case !validEnvName(name):
			bad("PassEnv", "%q is not a variable name", name)
		case strings.HasPrefix(name, "HTTP_") || slices.Contains(reservedEnv, name):
			bad("PassEnv", "%q is set by the CGI handler itself", name)
		}
	}
	if o.Limits.CPU == 0 {
		o.Limits.CPU = DefaultCPU
	}
	for _, l := range []struct {
		n   *int64
		def int64
	}{
		{&o.Limits.AddressSpace, DefaultAddressSpace},
		{&o.Limits.Processes, DefaultProcesses},
		{&o.Limits.OpenFiles, DefaultOpenFiles},
		{&o.Limits.FileSize, DefaultFileSize},
	} {
		if *l.n == 0 {
			*l.n = l.def
		}
	}
	switch o.Cgroups {
	case CgroupsAuto, CgroupsOn, CgroupsOff:
	default:
		bad("Cgroups", "unknown mode %d", o.Cgroups)
	}
	switch {
	case o.CPUWeight == 0:
		o.CPUWeight = DefaultCPUWeight
	case o.CPUWeight < 1 || o.CPUWeight > cgroup.MaxWeight:
		bad("CPUWeight", "must be in 1..%d, got %d", cgroup.MaxWeight, o.CPUWeight)
	}
	if o.TenantMemoryMax < 0 {
		bad("TenantMemoryMax", "must not be negative, got %d", o.TenantMemoryMax)
	}
	if o.TenantCPUDemote < 0 || o.TenantCPUDemoteFor < 0 {
		bad("TenantCPUDemote", "must not be negative, got %v for %v", o.TenantCPUDemote, o.TenantCPUDemoteFor)
	}
	if o.TenantCPUMax < 0 {
		bad("TenantCPUMax", "must not be negative, got %v", o.TenantCPUMax)
	}
	if o.TenantProcesses == 0 {
		o.TenantProcesses = DefaultTenantProcesses
	}
	if o.Launcher == "" {
		o.Launcher = DefaultLauncher
	}
	if o.ServerSoftware == "" {
		o.ServerSoftware = DefaultServerSoftware
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, errors.Join(errs...)
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
