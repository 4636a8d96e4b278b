package conf

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"massvhost/vhost"
)

// keyError is one problem with one key: "conf: <origin>: <key>: <msg>".
// origin (file:line, env NAME, flag --name) is empty for defaults; key is
// empty for problems with no key (an environment variable naming none).
type keyError struct {
	key    string
	origin string
	msg    string
}

func (e *keyError) Error() string {
	var b strings.Builder
	b.WriteString("conf: ")
	if e.origin != "" {
		b.WriteString(e.origin)
		b.WriteString(": ")
	}
	if e.key != "" {
		b.WriteString(e.key)
		b.WriteString(": ")
	}
	b.WriteString(e.msg)
	return b.String()
}

// Validate checks every key and returns an errors.Join of all problems,
// each of the form "conf: <key>: <what is wrong>, got <value>", so that
// "massvhost check" can list them all in one run. Checks that look at the
// file system (sites.root exists, certs.dir exists when the store uses
// files) see relative paths against the working directory; [Load] makes them
// absolute first.
func (c *Config) Validate() error {
	var errs []error
	for _, p := range c.problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// checker collects problems in key order.
type checker struct{ list []*keyError }

// bad records that key's value is wrong: "<what>, got <value>".
func (ck *checker) bad(key string, value any, what string, args ...any) {
	ck.list = append(ck.list, &keyError{key: key, msg: fmt.Sprintf(what, args...) + ", got " + show(value)})
}

// show formats a value for "got …": strings quoted so that "" and spaces
// are visible.
func show(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []string, []any:
		return fmt.Sprintf("%q", v)
	case time.Duration:
		return v.String()
	case nil:
		return "nothing"
	}
	return fmt.Sprint(v)
}

func (ck *checker) atLeast(key string, v, lo int64) {
	if v < lo {
		ck.bad(key, v, "must be at least %d", lo)
	}
}

func (ck *checker) positive(key string, d time.Duration) {
	if d <= 0 {
		ck.bad(key, d, "must be a positive duration")
	}
}

func (ck *checker) oneOf(key, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	ck.bad(key, v, "must be one of %s", strings.Join(allowed, ", "))
}

// addr checks a listen address: host:port, or "systemd:NAME" for a socket
// passed by systemd socket activation (server.SystemdPrefix); "" is
// allowed when optional.
func (ck *checker) addr(key, v string, optional bool) {
	if v == "" {
		if !optional {
			ck.bad(key, v, "must be host:port")
		}
		return
	}
	if name, ok := strings.CutPrefix(v, "systemd:"); ok {
		if !validFDName(name) {
			ck.bad(key, v, `must be "systemd:" and the socket's FileDescriptorName (1 to 255 printable ASCII characters, no ":")`)
		}
		return
	}
	if err := checkHostPort(v, 0); err != nil {
		ck.bad(key, v, "%s", err)
	}
}

// validFDName reports whether name can be a systemd FileDescriptorName=.
func validFDName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// checkHostPort reports why v is not host:port with a numeric port of at
// least minPort (0 lets the kernel pick one).
func checkHostPort(v string, minPort int) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New(`must be host:port, such as "127.0.0.1:8080" or ":8080"`)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < minPort || n > 65535 {
		return fmt.Errorf("port must be a number in %d..65535", minPort)
	}
	if host == "" || net.ParseIP(strings.SplitN(host, "%", 2)[0]) != nil {
		return nil
	}
	if _, err := vhost.Normalize(host); err != nil || strings.ContainsRune(host, ':') {
		return errors.New("host must be an IP address or a host name")
	}
	return nil
}

// dir checks that v names an existing directory.
func (ck *checker) dir(key, v string) {
	if v == "" {
		ck.bad(key, v, "must name a directory")
		return
	}
	fi, err := os.Stat(v)
	switch {
	case errors.Is(err, os.ErrNotExist):
		ck.bad(key, v, "directory does not exist")
	case err != nil:
		ck.bad(key, v, "cannot be read (%v)", reason(err))
	case !fi.IsDir():
		ck.bad(key, v, "is not a directory")
	}
}

// reason strips the subject from a library error ("op path: reason" or
// "prefix \"input\": reason") so the message does not repeat the value.
func reason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	msg := err.Error()
	for i := 1; i+2 < len(msg); i++ {
		if msg[i] == '"' && msg[i-1] != '\\' && msg[i+1] == ':' && msg[i+2] == ' ' {
			return msg[i+3:]
		}
	}
	return msg
}

// hostName checks a host-name key; "" means unset.
func (ck *checker) hostName(key, v string, wildcardOK bool) {
	if v == "" {
		return
	}
	normalize := normalizeHost
	if wildcardOK {
		normalize = normalizeCertName
	}
	if _, err := normalize(v); err != nil {
		ck.bad(key, v, "must be a host name (%s)", reason(err))
	}
}

// normalizeHost is vhost.Normalize without the port a Host header may
// carry: a configured name is a name, not an address.
func normalizeHost(v string) (string, error) {
	if strings.ContainsRune(v, ':') {
		return "", errors.New("a port is not part of a host name")
	}
	return vhost.Normalize(v)
}

// normalizeCertName accepts a host name or a wildcard certificate name
// ("*.example.com").
func normalizeCertName(v string) (string, error) {
	if strings.HasPrefix(v, "*.") {
		return vhost.NormalizeWildcard(v)
	}
	return normalizeHost(v)
}

// rate checks a token-bucket rate key and its burst key: the rate a finite
// number at least 0 (0 = unlimited), the burst at least 1 when the rate is
// set.
func (ck *checker) rate(rateKey string, rate float64, burstKey string, burst int) {
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		ck.bad(rateKey, rate, "must be a number at least 0 (0 = unlimited)")
	}
	if rate > 0 {
		ck.atLeast(burstKey, int64(burst), 1)
	} else {
		ck.atLeast(burstKey, int64(burst), 0)
	}
}

// namePattern checks a path.Match pattern that must match single path
// components (file or directory names).
func (ck *checker) namePattern(key, p string) {
	if p == "" || strings.Contains(p, "/") {
		ck.bad(key, p, "must be a pattern for one file name (not empty, no '/')")
		return
	}
	if _, err := path.Match(p, ""); err != nil {
		ck.bad(key, p, "must be a path.Match pattern (%v)", err)
	}
}

// fileName checks a list entry that must be a plain file name.
func (ck *checker) fileName(key, v string) {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\\\x00") {
		ck.bad(key, v, "must be a plain file name (no '/', not '.' or '..')")
	}
}

func (c *Config) problems() []*keyError {
	ck := &checker{}

	ck.addr("listen.http", c.Listen.HTTP, true)
	ck.addr("listen.https", c.Listen.HTTPS, true)
	if c.Listen.HTTP == "" && c.Listen.HTTPS == "" {
		ck.list = append(ck.list, &keyError{key: "listen", msg: "at least one of listen.http and listen.https must be set"})
	}
	ck.addr("admin.listen", c.Admin.Listen, true)
	ck.distinctAddrs(map[string]string{"listen.http": c.Listen.HTTP, "listen.https": c.Listen.HTTPS, "admin.listen": c.Admin.Listen})

	if c.DataDir == "" {
		ck.bad("data_dir", c.DataDir, "must name a directory")
	} else if fi, err := os.Stat(c.DataDir); err == nil && !fi.IsDir() {
		ck.bad("data_dir", c.DataDir, "is not a directory")
	}

	c.Sites.check(ck)
	c.Server.check(ck)
	c.Certs.check(ck)
	c.ACME.check(ck)
	if c.ACME.Enabled && c.Certs.LocalCA {
		ck.bad("acme.enabled", c.ACME.Enabled, "cannot be combined with certs.local_ca: both would issue for names without a certificate; set certs.local_ca to false")
	}
	if c.Certs.UsesRedis() {
		c.Redis.check(ck)
	}
	ck.positive("redis.dial_timeout", c.Redis.DialTimeout)
	ck.positive("redis.read_timeout", c.Redis.ReadTimeout)
	ck.positive("redis.write_timeout", c.Redis.WriteTimeout)
	c.CGI.check(ck)
	c.Log.check(ck)
	return ck.list
}

// distinctAddrs reports two listeners configured on the same fixed address.
func (ck *checker) distinctAddrs(addrs map[string]string) {
	order := []string{"listen.http", "listen.https", "admin.listen"}
	for i, a := range order {
		for _, b := range order[i+1:] {
			va, vb := addrs[a], addrs[b]
			if va == "" || va != vb {
				continue
			}
			if _, port, err := net.SplitHostPort(va); err == nil && port != "0" || strings.HasPrefix(va, "systemd:") {
				ck.bad(b, vb, "must differ from %s", a)
			}
		}
	}
}

func (s Sites) check(ck *checker) {
	ck.dir("sites.root", s.Root)
	if _, err := vhost.ParsePattern(string(s.DocRoot)); err != nil {
		ck.bad("sites.docroot", string(s.DocRoot), "%s", reason(err))
	}
	if _, err := vhost.ParsePattern(string(s.CGIBin)); err != nil {
		ck.bad("sites.cgi_bin", string(s.CGIBin), "%s", reason(err))
	}
	for _, name := range s.Index {
		ck.fileName("sites.index", name)
	}
	for _, p := range s.DenyNames {
		ck.namePattern("sites.deny_names", p)
	}
	ck.hostName("sites.default", s.Default, false)
	ck.atLeast("sites.cache_size", int64(s.CacheSize), 1)
	ck.positive("sites.cache_ttl", s.CacheTTL)
}

func (s Server) check(ck *checker) {
	ck.positive("server.read_header_timeout", s.ReadHeaderTimeout)
	ck.positive("server.read_timeout", s.ReadTimeout)
	ck.positive("server.write_timeout", s.WriteTimeout)
	ck.positive("server.idle_timeout", s.IdleTimeout)
	ck.atLeast("server.max_header_bytes", s.MaxHeaderBytes, 1)
	if s.MaxHeaderBytes > math.MaxInt32 {
		ck.bad("server.max_header_bytes", s.MaxHeaderBytes, "must be at most %d", math.MaxInt32)
	}
	ck.atLeast("server.max_header_fields", int64(s.MaxHeaderFields), 1)
	ck.positive("server.shutdown_timeout", s.ShutdownTimeout)
	ck.atLeast("server.max_conns_per_ip", int64(s.MaxConnsPerIP), 0)
	ck.atLeast("server.max_concurrent_streams", int64(s.MaxConcurrentStreams), 1)
	ck.atLeast("server.max_ranges", int64(s.MaxRanges), 1)
}

func (c Certs) check(ck *checker) {
	ck.oneOf("certs.store", c.Store, StoreFiles, StoreRedis, StoreRedisFiles)
	if c.UsesFiles() {
		ck.dir("certs.dir", c.Dir)
	}
	ck.atLeast("certs.cache_size", int64(c.CacheSize), 1)
	ck.positive("certs.ttl", c.TTL)
	ck.positive("certs.negative_ttl", c.NegativeTTL)
	ck.atLeast("certs.negative_cache_size", int64(c.NegativeCacheSize), 1)
	ck.positive("certs.lookup_timeout", c.LookupTimeout)
	if c.NewNameRate < 0 || math.IsNaN(c.NewNameRate) || math.IsInf(c.NewNameRate, 0) {
		ck.bad("certs.new_name_rate", c.NewNameRate, "must be a number at least 0 (0 = unlimited)")
	}
	if c.NewNameRate > 0 {
		ck.atLeast("certs.new_name_burst", int64(c.NewNameBurst), 1)
	} else {
		ck.atLeast("certs.new_name_burst", int64(c.NewNameBurst), 0)
	}
	ck.rate("certs.new_name_rate_per_ip", c.NewNameRatePerIP, "certs.new_name_burst_per_ip", c.NewNameBurstPerIP)
	ck.hostName("certs.default", c.Default, true)
}

// check validates the acme section. Only enabled requires accept_terms;
// every other key is checked either way, so a mistake shows before the
// section is switched on.
func (a ACME) check(ck *checker) {
	if a.Enabled && !a.AcceptTerms {
		ck.bad("acme.accept_terms", a.AcceptTerms, "must be true when acme.enabled is true: every account registration accepts the CA's terms of service")
	}
	if err := checkURL(a.Directory, true); err != nil {
		ck.bad("acme.directory", a.Directory, "%s", err)
	}
	if (a.EABKID == "") != (a.EABHMACKey == "") {
		ck.bad("acme.eab_kid", a.EABKID, "must be set together with acme.eab_hmac_key (both or neither)")
	} else if a.EABHMACKey != "" {
		if k, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(a.EABHMACKey, "=")); err != nil || len(k) == 0 {
			// The key itself is a secret: not echoed.
			ck.list = append(ck.list, &keyError{key: "acme.eab_hmac_key", msg: "must be base64url, as the CA hands it out"})
		}
	}
	if len(a.Challenges) == 0 {
		ck.bad("acme.challenges", a.Challenges, "must list at least one of tls-alpn-01, http-01")
	}
	for _, c := range a.Challenges {
		ck.oneOf("acme.challenges", c, "tls-alpn-01", "http-01")
	}
	if a.Ask != "" {
		if err := checkURL(a.Ask, false); err != nil {
			ck.bad("acme.ask", a.Ask, "%s", err)
		}
	}
	ck.positive("acme.ask_timeout", a.AskTimeout)
	ck.positive("acme.handshake_wait", a.HandshakeWait)
	ck.positive("acme.order_timeout", a.OrderTimeout)
	ck.positive("acme.lock_lease", a.LockLease)
	ck.positive("acme.retry_backoff", a.RetryBackoff)
	ck.positive("acme.max_retry_backoff", a.MaxRetryBackoff)
	if a.MaxRetryBackoff > 0 && a.MaxRetryBackoff < a.RetryBackoff {
		ck.bad("acme.max_retry_backoff", a.MaxRetryBackoff, "must be at least acme.retry_backoff (%v)", a.RetryBackoff)
	}
	ck.positive("acme.renew_interval", a.RenewInterval)
	for _, r := range []struct {
		key string
		v   float64
	}{{"acme.per_domain_rate", a.PerDomainRate}, {"acme.global_rate", a.GlobalRate}} {
		if !(r.v > 0) || math.IsInf(r.v, 0) {
			ck.bad(r.key, r.v, "must be a positive number of orders per hour")
		}
	}
	ck.atLeast("acme.per_domain_burst", int64(a.PerDomainBurst), 1)
	ck.atLeast("acme.global_burst", int64(a.GlobalBurst), 1)
	ck.atLeast("acme.max_concurrent_orders", int64(a.MaxConcurrentOrders), 1)
}

// checkURL reports why v is not an absolute http(s) URL with a host. With
// httpsOnly, plain http is allowed only on a loopback host (a test CA).
func checkURL(v string, httpsOnly bool) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return errors.New("must be an http or https URL with a host")
	}
	if httpsOnly && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return errors.New("must be an https URL (http only on a loopback host)")
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (r Redis) check(ck *checker) {
	if len(r.Addrs) == 0 {
		ck.bad("redis.addrs", r.Addrs, "must list at least one host:port when certs.store uses redis")
	}
	for _, a := range r.Addrs {
		if err := checkHostPort(a, 1); err != nil {
			ck.bad("redis.addrs", a, "%s", err)
		} else if h, _, _ := net.SplitHostPort(a); h == "" {
			ck.bad("redis.addrs", a, "must name a host")
		}
	}
	if r.MasterName != "" && r.Cluster {
		ck.bad("redis.cluster", r.Cluster, "cannot be combined with redis.master_name (Sentinel)")
	}
	if r.Cluster && r.DB != 0 {
		ck.bad("redis.db", r.DB, "must be 0 with redis.cluster")
	}
	ck.atLeast("redis.db", int64(r.DB), 0)
	ck.atLeast("redis.pool_size", int64(r.PoolSize), 0)
}

func (c CGI) check(ck *checker) {
	ck.positive("cgi.timeout", c.Timeout)
	for _, ext := range c.Extensions {
		if len(ext) < 2 || ext[0] != '.' || strings.ContainsAny(ext, "/\\\x00") {
			ck.bad("cgi.extensions", ext, `must start with "." and be a file name suffix, such as ".cgi"`)
		}
	}
	// uid/gid 0 would let a root-owned script run as root; ids are 32-bit
	// and 2^32-1 means "no id" to the kernel.
	for _, id := range []struct {
		key string
		v   int
	}{{"cgi.min_uid", c.MinUID}, {"cgi.min_gid", c.MinGID}} {
		if id.v < 1 || id.v >= math.MaxUint32 {
			ck.bad(id.key, id.v, "must be in 1..%d (0 would allow root)", uint32(math.MaxUint32-1))
		}
	}
	switch u := c.AnonymousUser; {
	case u == "":
	case u == "root" || strings.Trim(u, "0") == "":
		ck.bad("cgi.anonymous_user", u, `must not be root ("" refuses root-owned sites instead)`)
	case !validUserName(u):
		ck.bad("cgi.anonymous_user", u, "must be a user name or a numeric uid")
	}
	if c.Launcher != "" && (!filepath.IsAbs(c.Launcher) || strings.ContainsRune(c.Launcher, 0)) {
		ck.bad("cgi.launcher", c.Launcher, `must be an absolute path, or "" to find massvhost-cgi-launch beside massvhost`)
	}
	ck.atLeast("cgi.max_body_bytes", c.MaxBodyBytes, 0)
	ck.atLeast("cgi.max_output_bytes", c.MaxOutputBytes, 1)
	ck.atLeast("cgi.max_stderr_bytes", c.MaxStderrBytes, 0)
	ck.atLeast("cgi.max_per_tenant", int64(c.MaxPerTenant), 1)
	ck.atLeast("cgi.max_total", int64(c.MaxTotal), 1)
	if c.MaxPerTenant > c.MaxTotal && c.MaxTotal >= 1 {
		ck.bad("cgi.max_per_tenant", c.MaxPerTenant, "must not exceed cgi.max_total (%d)", c.MaxTotal)
	}
	for dir := range strings.SplitSeq(c.Path, ":") {
		if !filepath.IsAbs(dir) || strings.ContainsRune(dir, 0) {
			ck.bad("cgi.path", c.Path, "must be a colon-separated list of absolute directories")
			break
		}
	}
	for _, name := range c.PassEnv {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			ck.bad("cgi.pass_env", name, "must be an environment variable name")
		}
	}
	ck.oneOf("cgi.cgroups", c.Cgroups, "auto", "on", "off")
	if c.CPUWeight < 1 || c.CPUWeight > 10000 {
		ck.bad("cgi.cpu_weight", c.CPUWeight, "must be in 1..10000")
	}
	ck.atLeast("cgi.tenant_processes", int64(c.TenantProcesses), 0)
	if c.TenantCPUMax != 0 && (c.TenantCPUMax < 0.01 || c.TenantCPUMax > 1024) {
		ck.bad("cgi.tenant_cpu_max", c.TenantCPUMax, "must be 0 (no cap) or in 0.01..1024 CPUs")
	}
	if c.TenantCPUDemote != 0 && (c.TenantCPUDemote < 0.01 || c.TenantCPUDemote > 1024) {
		ck.bad("cgi.tenant_cpu_demote", c.TenantCPUDemote, "must be 0 (never demote) or in 0.01..1024 CPUs")
	}
	if c.TenantMemoryMax != 0 && c.TenantMemoryMax < 16<<20 {
		ck.bad("cgi.tenant_memory_max", c.TenantMemoryMax, "must be 0 (no cap) or at least 16777216 bytes (16 MiB)")
	}
	if c.TenantCPUDemoteFor < time.Second || c.TenantCPUDemoteFor > time.Hour {
		ck.bad("cgi.tenant_cpu_demote_for", c.TenantCPUDemoteFor, "must be in 1s..1h")
	}
	ck.positive("cgi.limits.cpu", c.Limits.CPU)
	ck.atLeast("cgi.limits.address_space", c.Limits.AddressSpace, 1)
	ck.atLeast("cgi.limits.processes", int64(c.Limits.Processes), 1)
	ck.atLeast("cgi.limits.open_files", int64(c.Limits.OpenFiles), 1)
	ck.atLeast("cgi.limits.file_size", c.Limits.FileSize, 0)
}

// validUserName reports whether s can name a user: letters, digits, '.',
// '_' and '-', not starting with '-', at most 64 bytes (or a numeric uid).
func validUserName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (l Log) check(ck *checker) {
	if l.Access == "" {
		ck.bad("log.access", l.Access, "must be stdout, stderr, off or a file path")
	} else if l.AccessIsFile() {
		dir := filepath.Dir(l.Access)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			ck.bad("log.access", l.Access, "directory %s does not exist", dir)
		} else if fi, err := os.Stat(l.Access); err == nil && fi.IsDir() {
			ck.bad("log.access", l.Access, "is a directory")
		}
	}
	ck.oneOf("log.access_format", l.AccessFormat, "vhost_combined", "json")
	ck.oneOf("log.level", l.Level, "debug", "info", "warn", "error")
	ck.oneOf("log.format", l.Format, "text", "json")
	if l.Error == "" {
		ck.bad("log.error", l.Error, "must be stderr or a file path")
	} else if l.ErrorIsFile() {
		dir := filepath.Dir(l.Error)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			ck.bad("log.error", l.Error, "directory %s does not exist", dir)
		} else if fi, err := os.Stat(l.Error); err == nil && fi.IsDir() {
			ck.bad("log.error", l.Error, "is a directory")
		}
	}
	if p := string(l.AccessPerTenant); p != "" {
		if _, err := vhost.ParsePattern(p); err != nil {
			ck.bad("log.access_per_tenant", p, "%s", reason(err))
		}
	}
	ck.atLeast("log.max_open_files", int64(l.MaxOpenFiles), 1)
}
