package conf

import (
	_ "embed"
	"time"

	"massvhost/vhost"
)

// defaultYAML is the default configuration: every key with its default value
// and a comment saying what it means. It is the single source of defaults
// and doubles as the example configuration shipped with the project.
//
//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default configuration file, comments
// included, for commands that print a starting configuration.
func DefaultYAML() []byte {
	return append([]byte(nil), defaultYAML...)
}

// Config is the whole massvhost configuration, decoded from defaults, the
// config file, MASSVHOST_* environment variables and flags, in that order of
// precedence. The mapstructure tags are the key names users write.
//
// A Config returned by [Load] has been validated and its relative paths made
// absolute. It is a plain value: the server builds package options from it
// and never changes it after start-up; a reload loads a new one.
type Config struct {
	// Listen holds the addresses of the HTTP and HTTPS listeners.
	Listen Listen `mapstructure:"listen"`
	// DataDir is the directory for local state such as the local CA
	// (default "./data"); created 0700 when missing.
	DataDir string `mapstructure:"data_dir"`
	// Sites configures how a host name maps to a tenant directory.
	Sites Sites `mapstructure:"sites"`
	// HTTP configures the plain-HTTP listener.
	HTTP HTTP `mapstructure:"http"`
	// Server holds connection timeouts and request limits.
	Server Server `mapstructure:"server"`
	// Certs configures the certificate store and its in-memory cache.
	Certs Certs `mapstructure:"certs"`
	// ACME configures on-demand certificates from an ACME CA.
	ACME ACME `mapstructure:"acme"`
	// Redis configures the Redis connection used by the redis stores.
	Redis Redis `mapstructure:"redis"`
	// CGI configures script execution.
	CGI CGI `mapstructure:"cgi"`
	// Log configures the access log and the server log.
	Log Log `mapstructure:"log"`
	// Admin configures the admin (metrics, health, status) listener.
	Admin Admin `mapstructure:"admin"`

	// LoadedAt is when Load produced this value (zero for Default).
	LoadedAt time.Time `mapstructure:"-"`

	// source is the config file's absolute path; "" for the embedded default.
	source string
}

// Listen is the "listen" section.
type Listen struct {
	// HTTP is the plain-HTTP listener's host:port (default
	// "127.0.0.1:8080"); "" disables it, port 0 picks a free port.
	HTTP string `mapstructure:"http"`
	// HTTPS is the TLS listener's host:port (default "127.0.0.1:8443");
	// "" disables it.
	HTTPS string `mapstructure:"https"`
}

// Sites is the "sites" section.
type Sites struct {
	// Root is the directory holding the tenant directories (default
	// "./examples/sites"); it must exist.
	Root string `mapstructure:"root"`
	// DocRoot is the document root pattern relative to Root, in Apache
	// VirtualDocumentRoot syntax (default "%0/htdocs").
	DocRoot vhost.Pattern `mapstructure:"docroot"`
	// CGIBin is the CGI directory pattern relative to Root (default
	// "%0/cgi-bin").
	CGIBin vhost.Pattern `mapstructure:"cgi_bin"`
	// Index lists the index files tried in order for a directory (default
	// [index.html]); plain file names only.
	Index []string `mapstructure:"index"`
	// Listing enables directory listings when no index exists (default
	// false: listings reveal file names).
	Listing bool `mapstructure:"listing"`
	// DenyNames are path.Match patterns of names never served, whatever
	// directory they are in; a request naming one (as a file, a directory
	// on the way, a script or its path info) gets 404 (default the editor
	// and backup names of server.DefaultDenyNames; [] denies nothing).
	DenyNames []string `mapstructure:"deny_names"`
	// WWWAlias serves www.X from X's directory when www.X has none (default
	// false).
	WWWAlias bool `mapstructure:"www_alias"`
	// Default is the host whose site answers unknown hosts (default "":
	// unknown hosts get 404).
	Default string `mapstructure:"default"`
	// CacheSize is the number of host resolutions kept (default 10000).
	CacheSize int `mapstructure:"cache_size"`
	// CacheTTL is how long a resolution, found or not, is trusted (default
	// 5s).
	CacheTTL time.Duration `mapstructure:"cache_ttl"`
}

// HTTP is the "http" section.
type HTTP struct {
	// RedirectHTTPS makes the plain-HTTP listener answer 308 to the same URL
	// on https:// (default false).
	RedirectHTTPS bool `mapstructure:"redirect_https"`
}

// Server is the "server" section.
type Server struct {
	// ReadHeaderTimeout bounds reading request headers (default 10s).
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included (default
	// 60s).
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// WriteTimeout aborts a response write that makes no progress for this
	// long (default 60s); the deadline rolls forward while data flows.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// IdleTimeout is how long an idle keep-alive connection stays open
	// (default 120s).
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxHeaderBytes caps the request header block (default 65536).
	MaxHeaderBytes int64 `mapstructure:"max_header_bytes"`
	// MaxHeaderFields caps the number of request header fields; more get
	// 431 (default 100, Apache's LimitRequestFields).
	MaxHeaderFields int `mapstructure:"max_header_fields"`
	// ShutdownTimeout is how long in-flight requests may run on shutdown or
	// reload (default 30s).
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// MaxConnsPerIP caps concurrent connections from one client IP (default
	// 256; 0 means unlimited).
	MaxConnsPerIP int `mapstructure:"max_conns_per_ip"`
	// MaxConcurrentStreams caps HTTP/2 streams per connection (default 100).
	MaxConcurrentStreams int `mapstructure:"max_concurrent_streams"`
	// MaxRanges is the most Range parts served as 206; more get a 200 with
	// the full body (default 200, Apache's MaxRanges).
	MaxRanges int `mapstructure:"max_ranges"`
}

// Certificate store kinds accepted in certs.store.
const (
	StoreFiles      = "files"
	StoreRedis      = "redis"
	StoreRedisFiles = "redis+files"
)

// Certs is the "certs" section.
type Certs struct {
	// Store selects the certificate store: "files", "redis" or
	// "redis+files" (default "files").
	Store string `mapstructure:"store"`
	// Dir holds <host>.crt and <host>.key pairs (default
	// "./examples/certs"); it must exist when Store uses files.
	Dir string `mapstructure:"dir"`
	// CacheSize is the number of parsed certificates kept in memory
	// (default 10000).
	CacheSize int `mapstructure:"cache_size"`
	// TTL is how long a cached certificate is used before the store is read
	// again (default 1h).
	TTL time.Duration `mapstructure:"ttl"`
	// NegativeTTL is how long "no certificate for this name" is remembered
	// (default 30s).
	NegativeTTL time.Duration `mapstructure:"negative_ttl"`
	// NegativeCacheSize bounds the names remembered as missing (default
	// 100000).
	NegativeCacheSize int `mapstructure:"negative_cache_size"`
	// LookupTimeout bounds one store lookup during a handshake (default 2s).
	LookupTimeout time.Duration `mapstructure:"lookup_timeout"`
	// NewNameRate limits store lookups per second for names never seen
	// (default 200; 0 means unlimited).
	NewNameRate float64 `mapstructure:"new_name_rate"`
	// NewNameBurst is the burst allowed above NewNameRate (default 400).
	NewNameBurst int `mapstructure:"new_name_burst"`
	// NewNameRatePerIP limits the new-name lookups of one client IP (IPv6:
	// one /64) per second, within NewNameRate (default 20; 0 means no
	// per-client limit).
	NewNameRatePerIP float64 `mapstructure:"new_name_rate_per_ip"`
	// NewNameBurstPerIP is the burst allowed above NewNameRatePerIP
	// (default 50).
	NewNameBurstPerIP int `mapstructure:"new_name_burst_per_ip"`
	// Preload loads every certificate at start-up (default false; baseline
	// mode for comparisons).
	Preload bool `mapstructure:"preload"`
	// LocalCA mints certificates from the local CA for existing tenants that
	// have none (default true).
	LocalCA bool `mapstructure:"local_ca"`
	// Default is the name whose certificate answers clients without SNI
	// (default "": such handshakes fail with unrecognized_name).
	Default string `mapstructure:"default"`
}

// UsesFiles reports whether the store reads certificate files from Dir.
func (c Certs) UsesFiles() bool { return c.Store == StoreFiles || c.Store == StoreRedisFiles }

// UsesRedis reports whether the store talks to Redis.
func (c Certs) UsesRedis() bool { return c.Store == StoreRedis || c.Store == StoreRedisFiles }

// ACME is the "acme" section: certificates obtained on demand from an ACME
// CA (Let's Encrypt by default) for tenants that have none, and renewed.
// It replaces certs.local_ca; the two cannot both be on.
type ACME struct {
	// Enabled obtains certificates from the CA (default false).
	Enabled bool `mapstructure:"enabled"`
	// Directory is the CA's ACME directory URL (default Let's Encrypt
	// production). It must be https, except on a loopback host.
	Directory string `mapstructure:"directory"`
	// Email is the account contact the CA writes to about expiring
	// certificates and incidents (default "": none).
	Email string `mapstructure:"email"`
	// AcceptTerms records agreement to the CA's terms of service; required
	// when Enabled (default false).
	AcceptTerms bool `mapstructure:"accept_terms"`
	// EABKID and EABHMACKey are the External Account Binding key ID and
	// base64url HMAC key some CAs require; both or neither (default "").
	// The key is never logged; see [Config.Redacted].
	EABKID     string `mapstructure:"eab_kid"`
	EABHMACKey string `mapstructure:"eab_hmac_key"`
	// Challenges lists the challenge types in order of preference (default
	// [tls-alpn-01, http-01]).
	Challenges []string `mapstructure:"challenges"`
	// CARoots is a PEM file of roots trusted for the CA's HTTPS endpoint,
	// for a private CA (default "": the system roots).
	CARoots string `mapstructure:"ca_roots"`
	// Ask is a URL asked before each order with ?domain=NAME; only a 200
	// allows the order (default "": no ask).
	Ask string `mapstructure:"ask"`
	// AskTimeout bounds one ask request (default 2s).
	AskTimeout time.Duration `mapstructure:"ask_timeout"`
	// HandshakeWait is how long the handshake that triggered an order waits
	// for it (default 10s).
	HandshakeWait time.Duration `mapstructure:"handshake_wait"`
	// OrderTimeout bounds one order from start to stored certificate
	// (default 2m).
	OrderTimeout time.Duration `mapstructure:"order_timeout"`
	// LockLease is the cluster-wide per-name issuance lock lease (default
	// 30s).
	LockLease time.Duration `mapstructure:"lock_lease"`
	// RetryBackoff is the pause after a name's first failed order, doubled
	// at each further failure up to MaxRetryBackoff (defaults 2m and 4h).
	RetryBackoff    time.Duration `mapstructure:"retry_backoff"`
	MaxRetryBackoff time.Duration `mapstructure:"max_retry_backoff"`
	// RenewInterval is how often the renewal schedule is read (default
	// 10m).
	RenewInterval time.Duration `mapstructure:"renew_interval"`
	// PerDomainRate and PerDomainBurst are orders per hour per registrable
	// domain and the burst above it, per node (defaults 5 and 10).
	PerDomainRate  float64 `mapstructure:"per_domain_rate"`
	PerDomainBurst int     `mapstructure:"per_domain_burst"`
	// GlobalRate and GlobalBurst are the same for all names (defaults 60
	// and 30).
	GlobalRate  float64 `mapstructure:"global_rate"`
	GlobalBurst int     `mapstructure:"global_burst"`
	// MaxConcurrentOrders caps the orders one node runs or waits for at
	// once (default 20).
	MaxConcurrentOrders int `mapstructure:"max_concurrent_orders"`
}

// Redis is the "redis" section.
type Redis struct {
	// Addrs lists the Redis servers as host:port (default
	// ["127.0.0.1:6379"]); sentinels when MasterName is set, seed nodes when
	// Cluster is set.
	Addrs []string `mapstructure:"addrs"`
	// MasterName is the Sentinel master name (default "": no Sentinel).
	MasterName string `mapstructure:"master_name"`
	// Cluster talks to a Redis Cluster (default false).
	Cluster bool `mapstructure:"cluster"`
	// Username for Redis ACL authentication (default "").
	Username string `mapstructure:"username"`
	// Password for Redis authentication (default ""). Never logged; see
	// [Config.Redacted].
	Password string `mapstructure:"password"`
	// DB is the database number for standalone and Sentinel (default 0).
	DB int `mapstructure:"db"`
	// TLS connects to Redis with TLS (default false).
	TLS bool `mapstructure:"tls"`
	// KeyPrefix is prepended to every key (default "").
	KeyPrefix string `mapstructure:"key_prefix"`
	// DialTimeout bounds connecting (default 1s).
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	// ReadTimeout bounds one read (default 500ms).
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// WriteTimeout bounds one write (default 500ms).
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// PoolSize is the number of connections per node (default 0: the
	// go-redis default, 10 per CPU).
	PoolSize int `mapstructure:"pool_size"`
}

// CGI is the "cgi" section.
type CGI struct {
	// Enabled runs CGI scripts (default true).
	Enabled bool `mapstructure:"enabled"`
	// Timeout is the wall-clock limit per request; the script's process
	// group is killed when it passes (default 30s).
	Timeout time.Duration `mapstructure:"timeout"`
	// Extensions mark a file as a CGI script (default [.cgi]); each starts
	// with a dot.
	Extensions []string `mapstructure:"extensions"`
	// MinUID is the lowest uid a script may run as (default 1000; at least
	// 1 so no script runs as root).
	MinUID int `mapstructure:"min_uid"`
	// MinGID is the lowest gid a script may run as (default 1000; at least
	// 1).
	MinGID int `mapstructure:"min_gid"`
	// AnonymousUser is the user (name or numeric uid) that scripts of sites
	// owned by a uid below MinUID (root-owned, operator-managed sites such
	// as the shipped examples) run as when the server is root; all such
	// sites share it. "" refuses to run their scripts (403). Resolved when
	// the configuration is loaded; ignored when the server is not root
	// (default "nobody").
	AnonymousUser string `mapstructure:"anonymous_user"`
	// MaxBodyBytes caps the request body passed to a script; beyond it the
	// request gets 413 (default 10485760).
	MaxBodyBytes int64 `mapstructure:"max_body_bytes"`
	// MaxOutputBytes caps a script's stdout; beyond it the response is cut
	// and the event logged (default 1073741824).
	MaxOutputBytes int64 `mapstructure:"max_output_bytes"`
	// MaxStderrBytes caps the stderr kept per request for the tenant error
	// log (default 65536).
	MaxStderrBytes int64 `mapstructure:"max_stderr_bytes"`
	// MaxPerTenant caps concurrent scripts per tenant; beyond it, 503
	// (default 16).
	MaxPerTenant int `mapstructure:"max_per_tenant"`
	// MaxTotal caps concurrent scripts overall (default 256).
	MaxTotal int `mapstructure:"max_total"`
	// Path is the PATH given to scripts (default
	// "/usr/local/bin:/usr/bin:/bin"); every element is absolute.
	Path string `mapstructure:"path"`
	// PassEnv names server environment variables passed to scripts
	// (default [LANG, LC_ALL, TZ]).
	PassEnv []string `mapstructure:"pass_env"`
	// PassAuthorization passes the Authorization header as
	// HTTP_AUTHORIZATION (default false, like Apache's CGIPassAuth).
	PassAuthorization bool `mapstructure:"pass_authorization"`
	// Launcher is the absolute path of the CGI launcher executable that
	// starts every script (cmd/massvhost-cgi-launch, or massvhost itself).
	// "" (the default) uses a massvhost-cgi-launch next to the massvhost
	// binary if there is one, else the running massvhost binary.
	Launcher string `mapstructure:"launcher"`
	// Cgroups is "auto" (the default: per-tenant cgroups when the server
	// is root and a cpu controller is writable), "on" (refuse to start
	// without them) or "off".
	Cgroups string `mapstructure:"cgroups"`
	// CPUWeight is each tenant cgroup's CPU weight, 1..10000 (default
	// 100).
	CPUWeight int `mapstructure:"cpu_weight"`
	// TenantCPUMax caps each tenant cgroup's CPU, in CPUs; 0 sets no cap
	// (the default).
	TenantCPUMax float64 `mapstructure:"tenant_cpu_max"`
	// TenantCPUDemote is the CPU use, in CPUs averaged over a second,
	// above which a tenant's cgroup is demoted to idle priority; 0 never
	// demotes (the default).
	TenantCPUDemote float64 `mapstructure:"tenant_cpu_demote"`
	// TenantMemoryMax caps the memory of all of a tenant's scripts
	// together, in bytes (cgroup memory.max); 0 sets no cap (default 2 GiB).
	TenantMemoryMax int64 `mapstructure:"tenant_memory_max"`
	// TenantCPUDemoteFor is how long a first demotion lasts (default
	// 10s); repeated ones last up to 8 times as long.
	TenantCPUDemoteFor time.Duration `mapstructure:"tenant_cpu_demote_for"`
	// TenantProcesses is pids.max of each tenant cgroup; 0 sets no limit
	// (default 512).
	TenantProcesses int `mapstructure:"tenant_processes"`
	// NoNewPrivs sets no_new_privs on scripts (default false: setgid
	// helpers such as postfix's postdrop stop working with it).
	NoNewPrivs bool `mapstructure:"no_new_privs"`
	// KeepBoundingSet keeps the capability bounding set of scripts
	// (default false: it is emptied, so setuid-root programs get no
	// capabilities).
	KeepBoundingSet bool `mapstructure:"keep_bounding_set"`
	// Limits are the resource limits set on every script.
	Limits CGILimits `mapstructure:"limits"`
}

// CGILimits is the "cgi.limits" section: rlimits applied to each script.
type CGILimits struct {
	// CPU is RLIMIT_CPU, rounded up to whole seconds (default 30s).
	CPU time.Duration `mapstructure:"cpu"`
	// AddressSpace is RLIMIT_AS in bytes (default 1073741824).
	AddressSpace int64 `mapstructure:"address_space"`
	// Processes is RLIMIT_NPROC per tenant uid (default 64); meaningful
	// only when scripts run as their tenant.
	Processes int `mapstructure:"processes"`
	// OpenFiles is RLIMIT_NOFILE (default 256).
	OpenFiles int `mapstructure:"open_files"`
	// FileSize is RLIMIT_FSIZE in bytes (default 104857600).
	FileSize int64 `mapstructure:"file_size"`
}

// Special values of log.access.
const (
	AccessStdout = "stdout"
	AccessStderr = "stderr"
	AccessOff    = "off"
)

// Log is the "log" section.
type Log struct {
	// Access is where access log lines go: "stdout", "stderr", "off" or a
	// file path (default "stdout").
	Access string `mapstructure:"access"`
	// AccessFormat is "vhost_combined" (Apache's) or "json" (default
	// "vhost_combined").
	AccessFormat string `mapstructure:"access_format"`
	// Level is the server log level: debug, info, warn or error (default
	// "info").
	Level string `mapstructure:"level"`
	// Format is the server log format: text or json (default "text").
	Format string `mapstructure:"format"`
	// Error is where the server log goes: "stderr" or a file path (default
	// "stderr"). A file is reopened on SIGUSR1, like the access log.
	Error string `mapstructure:"error"`
	// AccessPerTenant is a pattern, relative to sites.root in docroot
	// syntax, naming each tenant's own access log, e.g.
	// "%0/logs/access.log" (default "": no per-tenant logs). The file must
	// lie inside the tenant's directory; its directory must exist.
	AccessPerTenant vhost.Pattern `mapstructure:"access_per_tenant"`
	// MaxOpenFiles bounds the per-tenant access log files kept open; the
	// least recently written is closed beyond it (default 256).
	MaxOpenFiles int `mapstructure:"max_open_files"`
}

// ErrorIsFile reports whether Error names a file rather than stderr.
func (l Log) ErrorIsFile() bool { return l.Error != AccessStderr }

// AccessIsFile reports whether Access names a file rather than stdout,
// stderr or off.
func (l Log) AccessIsFile() bool {
	switch l.Access {
	case AccessStdout, AccessStderr, AccessOff:
		return false
	}
	return true
}

// Admin is the "admin" section.
type Admin struct {
	// Listen is the admin listener's host:port (default "127.0.0.1:9090");
	// "" disables it.
	Listen string `mapstructure:"listen"`
	// Pprof serves the Go runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the admin listener, never on the tenant listeners.
	Pprof bool `mapstructure:"pprof"`
}

// Default returns the built-in configuration, decoded from the embedded
// default file. Paths are as written there (relative); [Load] with an empty
// path returns the same values with paths made absolute and validated.
// Each call returns a new value.
func Default() *Config {
	c, err := decodeDefault()
	if err != nil {
		// The embedded file is part of the binary and covered by tests; a
		// failure here is a build defect, not a configuration problem.
		panic("conf: embedded default.yaml: " + err.Error())
	}
	return c
}

// Source returns the absolute path of the file the configuration was read
// from, or "embedded default" when none was given.
func (c *Config) Source() string {
	if c.source == "" {
		return "embedded default"
	}
	return c.source
}

// Redacted returns a copy with secrets replaced by "REDACTED", for status
// pages and logs.
func (c *Config) Redacted() *Config {
	r := *c
	r.Sites.Index = append([]string(nil), c.Sites.Index...)
	r.Sites.DenyNames = append([]string(nil), c.Sites.DenyNames...)
	r.Redis.Addrs = append([]string(nil), c.Redis.Addrs...)
	r.CGI.Extensions = append([]string(nil), c.CGI.Extensions...)
	r.CGI.PassEnv = append([]string(nil), c.CGI.PassEnv...)
	r.ACME.Challenges = append([]string(nil), c.ACME.Challenges...)
	if r.Redis.Password != "" {
		r.Redis.Password = "REDACTED"
	}
	if r.ACME.EABHMACKey != "" {
		r.ACME.EABHMACKey = "REDACTED"
	}
	return &r
}
