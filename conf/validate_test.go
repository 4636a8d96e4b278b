package conf

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// validConfig returns Default with its directories pointing into a fresh
// temporary tree.
func validConfig(t *testing.T) *Config {
	t.Helper()
	dir := newTree(t)
	c := Default()
	c.DataDir = filepath.Join(dir, "data")
	c.Sites.Root = filepath.Join(dir, "examples/sites")
	c.Certs.Dir = filepath.Join(dir, "examples/certs")
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantErr string // "" = valid
	}{
		{name: "defaults", mutate: func(c *Config) {}},

		// Listeners.
		{name: "http disabled", mutate: func(c *Config) { c.Listen.HTTP = "" }},
		{name: "port 0", mutate: func(c *Config) { c.Listen.HTTP, c.Listen.HTTPS, c.Admin.Listen = ":0", "127.0.0.1:0", "[::1]:0" }},
		{name: "host name listener", mutate: func(c *Config) { c.Listen.HTTP = "localhost:8080" }},
		{name: "both disabled", mutate: func(c *Config) { c.Listen.HTTP, c.Listen.HTTPS = "", "" }, wantErr: "conf: listen: at least one of listen.http and listen.https must be set"},
		{name: "no port", mutate: func(c *Config) { c.Listen.HTTP = "127.0.0.1" }, wantErr: `listen.http: must be host:port, such as "127.0.0.1:8080" or ":8080", got "127.0.0.1"`},
		{name: "port out of range", mutate: func(c *Config) { c.Listen.HTTPS = ":65536" }, wantErr: `listen.https: port must be a number in 0..65535, got ":65536"`},
		{name: "service name port", mutate: func(c *Config) { c.Listen.HTTPS = ":https" }, wantErr: "listen.https: port must be a number"},
		{name: "bad host", mutate: func(c *Config) { c.Admin.Listen = "bad host:80" }, wantErr: `admin.listen: host must be an IP address or a host name, got "bad host:80"`},
		{name: "same address twice", mutate: func(c *Config) { c.Admin.Listen = c.Listen.HTTPS }, wantErr: `admin.listen: must differ from listen.https, got "127.0.0.1:8443"`},
		{name: "systemd sockets", mutate: func(c *Config) {
			c.Listen.HTTP, c.Listen.HTTPS, c.Admin.Listen = "systemd:http", "systemd:https", "systemd:admin"
		}},
		{name: "systemd socket without name", mutate: func(c *Config) { c.Listen.HTTPS = "systemd:" }, wantErr: `listen.https: must be "systemd:" and the socket's FileDescriptorName`},
		{name: "systemd socket name with colon", mutate: func(c *Config) { c.Listen.HTTPS = "systemd:a:b" }, wantErr: `listen.https: must be "systemd:" and the socket's FileDescriptorName`},
		{name: "same systemd socket twice", mutate: func(c *Config) { c.Listen.HTTP, c.Listen.HTTPS = "systemd:web", "systemd:web" }, wantErr: `listen.https: must differ from listen.http, got "systemd:web"`},

		// Directories.
		{name: "sites.root missing", mutate: func(c *Config) { c.Sites.Root += "/nope" }, wantErr: "sites.root: directory does not exist"},
		{name: "sites.root empty", mutate: func(c *Config) { c.Sites.Root = "" }, wantErr: `sites.root: must name a directory, got ""`},
		{name: "sites.root is a file", mutate: func(c *Config) { c.Sites.Root = fileIn(t, c.Sites.Root) }, wantErr: "sites.root: is not a directory"},
		{name: "data_dir may not exist yet", mutate: func(c *Config) { c.DataDir += "/later" }},
		{name: "data_dir is a file", mutate: func(c *Config) { c.DataDir = fileIn(t, c.Sites.Root) }, wantErr: "data_dir: is not a directory"},
		{name: "certs.dir missing with files", mutate: func(c *Config) { c.Certs.Dir += "/nope" }, wantErr: "certs.dir: directory does not exist"},
		{name: "certs.dir missing with redis+files", mutate: func(c *Config) { c.Certs.Store, c.Certs.Dir = StoreRedisFiles, "/nonexistent" }, wantErr: "certs.dir: directory does not exist"},
		{name: "certs.dir unused with redis", mutate: func(c *Config) { c.Certs.Store, c.Certs.Dir = StoreRedis, "/nonexistent" }},

		// Sites.
		{name: "pattern with label", mutate: func(c *Config) { c.Sites.DocRoot = "%-1/%-2/%0/htdocs" }},
		{name: "pattern escapes root", mutate: func(c *Config) { c.Sites.DocRoot = "%0/../x" }, wantErr: `sites.docroot: component ".." is not allowed, got "%0/../x"`},
		{name: "pattern absolute", mutate: func(c *Config) { c.Sites.CGIBin = "/srv/%0" }, wantErr: `sites.cgi_bin: must be relative to the sites root, got "/srv/%0"`},
		{name: "pattern bad directive", mutate: func(c *Config) { c.Sites.DocRoot = "%x/htdocs" }, wantErr: `sites.docroot: directive "%x" at offset 0`},
		{name: "pattern empty", mutate: func(c *Config) { c.Sites.CGIBin = "" }, wantErr: `sites.cgi_bin: empty, got ""`},
		{name: "index with slash", mutate: func(c *Config) { c.Sites.Index = []string{"index.html", "sub/index.html"} }, wantErr: `sites.index: must be a plain file name (no '/', not '.' or '..'), got "sub/index.html"`},
		{name: "index dot dot", mutate: func(c *Config) { c.Sites.Index = []string{".."} }, wantErr: `sites.index: must be a plain file name`},
		{name: "index empty list", mutate: func(c *Config) { c.Sites.Index = nil }},
		{name: "sites.default ok", mutate: func(c *Config) { c.Sites.Default = "localhost" }},
		{name: "sites.default IP", mutate: func(c *Config) { c.Sites.Default = "10.0.0.1" }, wantErr: `sites.default: must be a host name (IP literal, not a host name), got "10.0.0.1"`},
		{name: "sites.default wildcard", mutate: func(c *Config) { c.Sites.Default = "*.example.com" }, wantErr: "sites.default: must be a host name"},
		{name: "cache ttl zero", mutate: func(c *Config) { c.Sites.CacheTTL = 0 }, wantErr: "sites.cache_ttl: must be a positive duration, got 0s"},
		{name: "sites cache zero", mutate: func(c *Config) { c.Sites.CacheSize = 0 }, wantErr: "sites.cache_size: must be at least 1, got 0"},
		{name: "deny names none", mutate: func(c *Config) { c.Sites.DenyNames = nil }},
		{name: "deny names custom", mutate: func(c *Config) { c.Sites.DenyNames = []string{"*.sw?", "[Tt]humbs.db", "core"} }},
		{name: "deny names bad pattern", mutate: func(c *Config) { c.Sites.DenyNames = []string{"*.bak", "[a"} }, wantErr: `sites.deny_names: must be a path.Match pattern (syntax error in pattern), got "[a"`},
		{name: "deny names slash", mutate: func(c *Config) { c.Sites.DenyNames = []string{"old/*.bak"} }, wantErr: `sites.deny_names: must be a pattern for one file name (not empty, no '/'), got "old/*.bak"`},
		{name: "deny names empty entry", mutate: func(c *Config) { c.Sites.DenyNames = []string{""} }, wantErr: `sites.deny_names: must be a pattern for one file name`},

		// Server.
		{name: "no read header timeout", mutate: func(c *Config) { c.Server.ReadHeaderTimeout = 0 }, wantErr: "server.read_header_timeout: must be a positive duration, got 0s"},
		{name: "negative write timeout", mutate: func(c *Config) { c.Server.WriteTimeout = -time.Second }, wantErr: "server.write_timeout: must be a positive duration, got -1s"},
		{name: "header bytes", mutate: func(c *Config) { c.Server.MaxHeaderBytes = 0 }, wantErr: "server.max_header_bytes: must be at least 1, got 0"},
		{name: "header bytes huge", mutate: func(c *Config) { c.Server.MaxHeaderBytes = math.MaxInt64 }, wantErr: "server.max_header_bytes: must be at most"},
		{name: "conns per ip unlimited", mutate: func(c *Config) { c.Server.MaxConnsPerIP = 0 }},
		{name: "conns per ip negative", mutate: func(c *Config) { c.Server.MaxConnsPerIP = -1 }, wantErr: "server.max_conns_per_ip: must be at least 0, got -1"},
		{name: "streams", mutate: func(c *Config) { c.Server.MaxConcurrentStreams = 0 }, wantErr: "server.max_concurrent_streams: must be at least 1, got 0"},
		{name: "header fields", mutate: func(c *Config) { c.Server.MaxHeaderFields = 0 }, wantErr: "server.max_header_fields: must be at least 1, got 0"},

		// ACME.
		{name: "acme enabled", mutate: func(c *Config) { c.ACME.Enabled, c.ACME.AcceptTerms, c.Certs.LocalCA = true, true, false }},
		{name: "acme without terms", mutate: func(c *Config) { c.ACME.Enabled, c.Certs.LocalCA = true, false }, wantErr: "acme.accept_terms: must be true when acme.enabled is true"},
		{name: "acme with local ca", mutate: func(c *Config) { c.ACME.Enabled, c.ACME.AcceptTerms = true, true }, wantErr: "acme.enabled: cannot be combined with certs.local_ca"},
		{name: "acme http directory", mutate: func(c *Config) { c.ACME.Directory = "http://acme.example.com/dir" }, wantErr: `acme.directory: must be an https URL (http only on a loopback host), got "http://acme.example.com/dir"`},
		{name: "acme loopback http directory", mutate: func(c *Config) { c.ACME.Directory = "http://127.0.0.1:14000/dir" }},
		{name: "acme directory not a URL", mutate: func(c *Config) { c.ACME.Directory = "letsencrypt" }, wantErr: "acme.directory: must be an http or https URL with a host"},
		{name: "acme eab half", mutate: func(c *Config) { c.ACME.EABKID = "kid-1" }, wantErr: "acme.eab_kid: must be set together with acme.eab_hmac_key"},
		{name: "acme eab both", mutate: func(c *Config) { c.ACME.EABKID, c.ACME.EABHMACKey = "kid-1", "c2VjcmV0LWtleQ" }},
		{name: "acme eab not base64", mutate: func(c *Config) { c.ACME.EABKID, c.ACME.EABHMACKey = "kid-1", "not base64!" }, wantErr: "acme.eab_hmac_key: must be base64url"},
		{name: "acme no challenges", mutate: func(c *Config) { c.ACME.Challenges = nil }, wantErr: "acme.challenges: must list at least one"},
		{name: "acme http-01 only", mutate: func(c *Config) { c.ACME.Challenges = []string{"http-01"} }},
		{name: "acme dns-01", mutate: func(c *Config) { c.ACME.Challenges = []string{"dns-01"} }, wantErr: `acme.challenges: must be one of tls-alpn-01, http-01, got "dns-01"`},
		{name: "acme ask", mutate: func(c *Config) { c.ACME.Ask = "http://127.0.0.1:5555/allow" }},
		{name: "acme ask not a URL", mutate: func(c *Config) { c.ACME.Ask = "/allow" }, wantErr: `acme.ask: must be an http or https URL with a host, got "/allow"`},
		{name: "acme wait zero", mutate: func(c *Config) { c.ACME.HandshakeWait = 0 }, wantErr: "acme.handshake_wait: must be a positive duration, got 0s"},
		{name: "acme backoff order", mutate: func(c *Config) { c.ACME.MaxRetryBackoff = time.Minute }, wantErr: "acme.max_retry_backoff: must be at least acme.retry_backoff"},
		{name: "acme rate zero", mutate: func(c *Config) { c.ACME.GlobalRate = 0 }, wantErr: "acme.global_rate: must be a positive number of orders per hour, got 0"},
		{name: "acme rate NaN", mutate: func(c *Config) { c.ACME.PerDomainRate = math.NaN() }, wantErr: "acme.per_domain_rate: must be a positive number"},
		{name: "acme burst zero", mutate: func(c *Config) { c.ACME.PerDomainBurst = 0 }, wantErr: "acme.per_domain_burst: must be at least 1, got 0"},
		{name: "acme orders zero", mutate: func(c *Config) { c.ACME.MaxConcurrentOrders = 0 }, wantErr: "acme.max_concurrent_orders: must be at least 1, got 0"},

		// Certs.
		{name: "cache size", mutate: func(c *Config) { c.Certs.CacheSize = -3 }, wantErr: "conf: certs.cache_size: must be at least 1, got -3"},
		{name: "store", mutate: func(c *Config) { c.Certs.Store = "Files" }, wantErr: `certs.store: must be one of files, redis, redis+files, got "Files"`},
		{name: "rate unlimited, burst 0", mutate: func(c *Config) { c.Certs.NewNameRate, c.Certs.NewNameBurst = 0, 0 }},
		{name: "rate without burst", mutate: func(c *Config) { c.Certs.NewNameBurst = 0 }, wantErr: "certs.new_name_burst: must be at least 1, got 0"},
		{name: "negative rate", mutate: func(c *Config) { c.Certs.NewNameRate = -1 }, wantErr: "certs.new_name_rate: must be a number at least 0 (0 = unlimited), got -1"},
		{name: "NaN rate", mutate: func(c *Config) { c.Certs.NewNameRate = math.NaN() }, wantErr: "certs.new_name_rate: must be a number at least 0"},
		{name: "per-ip rate off", mutate: func(c *Config) { c.Certs.NewNameRatePerIP, c.Certs.NewNameBurstPerIP = 0, 0 }},
		{name: "per-ip rate without burst", mutate: func(c *Config) { c.Certs.NewNameBurstPerIP = 0 }, wantErr: "certs.new_name_burst_per_ip: must be at least 1, got 0"},
		{name: "per-ip rate negative", mutate: func(c *Config) { c.Certs.NewNameRatePerIP = -2 }, wantErr: "certs.new_name_rate_per_ip: must be a number at least 0 (0 = unlimited), got -2"},
		{name: "per-ip rate infinite", mutate: func(c *Config) { c.Certs.NewNameRatePerIP = math.Inf(1) }, wantErr: "certs.new_name_rate_per_ip: must be a number at least 0"},
		{name: "certs.default wildcard", mutate: func(c *Config) { c.Certs.Default = "*.example.com" }},
		{name: "certs.default tld wildcard", mutate: func(c *Config) { c.Certs.Default = "*.com" }, wantErr: `certs.default: must be a host name (wildcard parent must have at least two labels), got "*.com"`},
		{name: "certs.default bad", mutate: func(c *Config) { c.Certs.Default = "a..b" }, wantErr: `certs.default: must be a host name (empty label), got "a..b"`},
		{name: "negative ttl", mutate: func(c *Config) { c.Certs.NegativeTTL = 0 }, wantErr: "certs.negative_ttl: must be a positive duration, got 0s"},

		// Redis, checked only when a redis store is used.
		{name: "redis unused, bad addrs ignored", mutate: func(c *Config) { c.Redis.Addrs = nil }},
		{name: "redis no addrs", mutate: func(c *Config) { c.Certs.Store, c.Redis.Addrs = StoreRedis, nil }, wantErr: "redis.addrs: must list at least one host:port when certs.store uses redis, got []"},
		{name: "redis addr no port", mutate: func(c *Config) { c.Certs.Store, c.Redis.Addrs = StoreRedis, []string{"10.0.0.1:6379", "redis"} }, wantErr: `redis.addrs: must be host:port, such as "127.0.0.1:8080" or ":8080", got "redis"`},
		{name: "redis addr port 0", mutate: func(c *Config) { c.Certs.Store, c.Redis.Addrs = StoreRedis, []string{"redis:0"} }, wantErr: `redis.addrs: port must be a number in 1..65535, got "redis:0"`},
		{name: "redis addr no host", mutate: func(c *Config) { c.Certs.Store, c.Redis.Addrs = StoreRedis, []string{":6379"} }, wantErr: `redis.addrs: must name a host, got ":6379"`},
		{name: "sentinel and cluster", mutate: func(c *Config) { c.Certs.Store, c.Redis.MasterName, c.Redis.Cluster = StoreRedis, "mymaster", true }, wantErr: "redis.cluster: cannot be combined with redis.master_name (Sentinel), got true"},
		{name: "cluster db", mutate: func(c *Config) { c.Certs.Store, c.Redis.Cluster, c.Redis.DB = StoreRedis, true, 3 }, wantErr: "redis.db: must be 0 with redis.cluster, got 3"},
		{name: "sentinel ok", mutate: func(c *Config) { c.Certs.Store, c.Redis.MasterName, c.Redis.DB = StoreRedisFiles, "mymaster", 2 }},
		{name: "redis timeout", mutate: func(c *Config) { c.Redis.ReadTimeout = 0 }, wantErr: "redis.read_timeout: must be a positive duration, got 0s"},

		// CGI.
		{name: "extension without dot", mutate: func(c *Config) { c.CGI.Extensions = []string{".cgi", "pl"} }, wantErr: `cgi.extensions: must start with "." and be a file name suffix, such as ".cgi", got "pl"`},
		{name: "extension only dot", mutate: func(c *Config) { c.CGI.Extensions = []string{"."} }, wantErr: "cgi.extensions: must start with"},
		{name: "min uid root", mutate: func(c *Config) { c.CGI.MinUID = 0 }, wantErr: "cgi.min_uid: must be in 1..4294967294 (0 would allow root), got 0"},
		{name: "min gid root", mutate: func(c *Config) { c.CGI.MinGID = 0 }, wantErr: "cgi.min_gid: must be in 1..4294967294 (0 would allow root), got 0"},
		{name: "min gid too big", mutate: func(c *Config) { c.CGI.MinGID = 1 << 32 }, wantErr: "cgi.min_gid: must be in 1.."},
		{name: "anonymous user off", mutate: func(c *Config) { c.CGI.AnonymousUser = "" }},
		{name: "anonymous user by uid", mutate: func(c *Config) { c.CGI.AnonymousUser = "65534" }},
		{name: "anonymous user with dash", mutate: func(c *Config) { c.CGI.AnonymousUser = "cgi-anon" }},
		{name: "absolute launcher", mutate: func(c *Config) { c.CGI.Launcher = "/usr/local/bin/massvhost-cgi-launch" }},
		{name: "anonymous user root", mutate: func(c *Config) { c.CGI.AnonymousUser = "root" }, wantErr: `cgi.anonymous_user: must not be root ("" refuses root-owned sites instead), got "root"`},
		{name: "anonymous user uid 0", mutate: func(c *Config) { c.CGI.AnonymousUser = "00" }, wantErr: "cgi.anonymous_user: must not be root"},
		{name: "anonymous user with colon", mutate: func(c *Config) { c.CGI.AnonymousUser = "www:data" }, wantErr: `cgi.anonymous_user: must be a user name or a numeric uid, got "www:data"`},
		{name: "anonymous user option-like", mutate: func(c *Config) { c.CGI.AnonymousUser = "-x" }, wantErr: "cgi.anonymous_user: must be a user name"},
		{name: "unknown cgroups mode", mutate: func(c *Config) { c.CGI.Cgroups = "yes" }, wantErr: `cgi.cgroups: must be one of auto, on, off, got "yes"`},
		{name: "cpu weight zero", mutate: func(c *Config) { c.CGI.CPUWeight = 0 }, wantErr: `cgi.cpu_weight: must be in 1..10000, got 0`},
		{name: "cpu weight too large", mutate: func(c *Config) { c.CGI.CPUWeight = 10001 }, wantErr: `cgi.cpu_weight: must be in 1..10000, got 10001`},
		{name: "tenant cpu max too small", mutate: func(c *Config) { c.CGI.TenantCPUMax = 0.001 }, wantErr: `cgi.tenant_cpu_max: must be 0 (no cap) or in 0.01..1024 CPUs, got 0.001`},
		{name: "tenant memory max tiny", mutate: func(c *Config) { c.CGI.TenantMemoryMax = 4096 }, wantErr: `cgi.tenant_memory_max: must be 0 (no cap) or at least 16777216 bytes (16 MiB), got 4096`},
		{name: "tenant cpu demote negative", mutate: func(c *Config) { c.CGI.TenantCPUDemote = -1 }, wantErr: `cgi.tenant_cpu_demote: must be 0 (never demote) or in 0.01..1024 CPUs, got -1`},
		{name: "tenant cpu demote for too short", mutate: func(c *Config) { c.CGI.TenantCPUDemoteFor = time.Millisecond }, wantErr: `cgi.tenant_cpu_demote_for: must be in 1s..1h, got 1ms`},
		{name: "negative tenant processes", mutate: func(c *Config) { c.CGI.TenantProcesses = -1 }, wantErr: `cgi.tenant_processes: must be at least 0, got -1`},
		{name: "relative launcher", mutate: func(c *Config) { c.CGI.Launcher = "bin/massvhost-cgi-launch" }, wantErr: `cgi.launcher: must be an absolute path, or "" to find massvhost-cgi-launch beside massvhost, got "bin/massvhost-cgi-launch"`},
		{name: "per tenant above total", mutate: func(c *Config) { c.CGI.MaxPerTenant, c.CGI.MaxTotal = 20, 10 }, wantErr: "cgi.max_per_tenant: must not exceed cgi.max_total (10), got 20"},
		{name: "no total", mutate: func(c *Config) { c.CGI.MaxTotal = 0 }, wantErr: "cgi.max_total: must be at least 1, got 0"},
		{name: "output zero", mutate: func(c *Config) { c.CGI.MaxOutputBytes = 0 }, wantErr: "cgi.max_output_bytes: must be at least 1, got 0"},
		{name: "no body allowed", mutate: func(c *Config) { c.CGI.MaxBodyBytes = 0 }},
		{name: "relative PATH entry", mutate: func(c *Config) { c.CGI.Path = "/usr/bin:." }, wantErr: `cgi.path: must be a colon-separated list of absolute directories, got "/usr/bin:."`},
		{name: "empty PATH entry", mutate: func(c *Config) { c.CGI.Path = "/usr/bin::/bin" }, wantErr: "cgi.path: must be a colon-separated list"},
		{name: "pass_env with =", mutate: func(c *Config) { c.CGI.PassEnv = []string{"A=B"} }, wantErr: `cgi.pass_env: must be an environment variable name, got "A=B"`},
		{name: "limits cpu", mutate: func(c *Config) { c.CGI.Limits.CPU = 0 }, wantErr: "cgi.limits.cpu: must be a positive duration, got 0s"},
		{name: "limits nproc", mutate: func(c *Config) { c.CGI.Limits.Processes = 0 }, wantErr: "cgi.limits.processes: must be at least 1, got 0"},
		{name: "limits fsize zero allowed", mutate: func(c *Config) { c.CGI.Limits.FileSize = 0 }},
		{name: "cgi disabled still checked", mutate: func(c *Config) { c.CGI.Enabled, c.CGI.MinUID = false, 0 }, wantErr: "cgi.min_uid"},

		// Log.
		{name: "access off", mutate: func(c *Config) { c.Log.Access = AccessOff }},
		{name: "access file", mutate: func(c *Config) { c.Log.Access = filepath.Join(c.Sites.Root, "access.log") }},
		{name: "access file dir missing", mutate: func(c *Config) { c.Log.Access = "/nonexistent/access.log" }, wantErr: `log.access: directory /nonexistent does not exist, got "/nonexistent/access.log"`},
		{name: "access is a directory", mutate: func(c *Config) { c.Log.Access = c.Sites.Root }, wantErr: "log.access: is a directory"},
		{name: "access empty", mutate: func(c *Config) { c.Log.Access = "" }, wantErr: `log.access: must be stdout, stderr, off or a file path, got ""`},
		{name: "access format", mutate: func(c *Config) { c.Log.AccessFormat = "combined" }, wantErr: `log.access_format: must be one of vhost_combined, json, got "combined"`},
		{name: "level", mutate: func(c *Config) { c.Log.Level = "INFO" }, wantErr: `log.level: must be one of debug, info, warn, error, got "INFO"`},
		{name: "format", mutate: func(c *Config) { c.Log.Format = "logfmt" }, wantErr: `log.format: must be one of text, json, got "logfmt"`},
		{name: "error log file", mutate: func(c *Config) { c.Log.Error = filepath.Join(c.Sites.Root, "error.log") }},
		{name: "error log dir missing", mutate: func(c *Config) { c.Log.Error = "/nonexistent/error.log" }, wantErr: `log.error: directory /nonexistent does not exist`},
		{name: "error log empty", mutate: func(c *Config) { c.Log.Error = "" }, wantErr: `log.error: must be stderr or a file path, got ""`},
		{name: "per-tenant log", mutate: func(c *Config) { c.Log.AccessPerTenant = "%0/logs/access.log" }},
		{name: "per-tenant log escapes", mutate: func(c *Config) { c.Log.AccessPerTenant = "%0/../access.log" }, wantErr: `log.access_per_tenant: component ".." is not allowed`},
		{name: "per-tenant log is a dir", mutate: func(c *Config) { c.Log.AccessPerTenant = "%0/logs/" }, wantErr: `log.access_per_tenant: component "" is not allowed`},
		{name: "max open files zero", mutate: func(c *Config) { c.Log.MaxOpenFiles = 0 }, wantErr: "log.max_open_files: must be at least 1, got 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			tc.mutate(c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error:\n%v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("no error, want %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error does not mention %q:\n%v", tc.wantErr, err)
			case tc.wantErr != "" && len(flatten(err)) != 1:
				t.Errorf("want one problem, got:\n%v", err)
			}
		})
	}
}

// fileIn creates a regular file in dir and returns its path.
func fileIn(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "a-file")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestValidateAllAtOnce checks that Validate reports every problem in one
// error rather than stopping at the first.
func TestValidateAllAtOnce(t *testing.T) {
	c := validConfig(t)
	c.Certs.CacheSize = -3
	c.Log.Level = "loud"
	c.CGI.MinUID = 0
	c.Listen.HTTP = "nope"
	c.Sites.Index = []string{"../x"}
	err := c.Validate()
	msgs := flatten(err)
	if len(msgs) != 5 {
		t.Fatalf("got %d problems, want 5:\n%v", len(msgs), err)
	}
	for _, m := range msgs {
		if !strings.HasPrefix(m.Error(), "conf: ") || !strings.Contains(m.Error(), ", got ") {
			t.Errorf("message not of the form \"conf: key: problem, got value\": %q", m)
		}
	}
}

// TestValidateDefaultRelative checks that Validate works on Default's
// relative paths, against the working directory.
func TestValidateDefaultRelative(t *testing.T) {
	t.Chdir(newTree(t))
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() in a tree with examples/: %v", err)
	}
	t.Chdir(t.TempDir())
	err := Default().Validate()
	if err == nil || !strings.Contains(err.Error(), `sites.root: directory does not exist, got "./examples/sites"`) {
		t.Errorf("Default().Validate() in an empty dir = %v", err)
	}
}
