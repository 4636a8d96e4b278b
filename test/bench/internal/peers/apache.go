package peers

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
)

// Apache locations (Debian layout).
var (
	ApacheBin     = "apache2"
	ApacheModules = "/usr/lib/apache2/modules"
	ApacheUser    = "www-data"
)

// Apache writes an httpd configuration with one SSL VirtualHost per tenant
// and a ScriptAlias for its cgi-bin. event selects the event MPM with
// mod_cgid (CGI forked by a separate daemon); otherwise the prefork MPM with
// mod_cgi (CGI forked by the serving child). In both, the process that
// forks the CGI child was itself forked from the parent that loaded every
// certificate, which is the cost the benchmarks measure.
func Apache(e Env, event bool) (Spec, error) {
	if err := e.prepare(); err != nil {
		return Spec{}, err
	}
	run := filepath.Join(e.Work, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		return Spec{}, err
	}
	name, mpm, cgiMod, pinning := ApachePrefork, "prefork", "cgi", "prefork: 24–64 single-threaded children"
	if event {
		name, mpm, cgiMod, pinning = ApacheEvent, "event", "cgid", "event: ServerLimit 1 × 64 threads, plus the cgid daemon"
	}
	conf := filepath.Join(e.Work, "httpd.conf")
	err := writeFile(conf, func(w *bufio.Writer) {
		fmt.Fprintf(w, "ServerRoot %q\nDefaultRuntimeDir %q\nPidFile %q\nMutex file:%s default\n", e.Work, run, filepath.Join(run, "httpd.pid"), run)
		fmt.Fprintf(w, "ErrorLog %q\nLogLevel warn\nServerName localhost\nHostnameLookups Off\n", filepath.Join(e.Work, "error.log"))
		if os.Geteuid() == 0 {
			fmt.Fprintf(w, "User %s\nGroup %s\n", ApacheUser, ApacheUser)
		}
		for _, m := range []string{"mpm_" + mpm, "authz_core", "mime", "dir", "alias", "ssl", "socache_shmcb", cgiMod} {
			fmt.Fprintf(w, "LoadModule %s_module %s\n", m, filepath.Join(ApacheModules, "mod_"+m+".so"))
		}
		if event {
			fmt.Fprintf(w, "ServerLimit 1\nStartServers 1\nThreadLimit 64\nThreadsPerChild 64\nMaxRequestWorkers 64\nMinSpareThreads 1\nMaxSpareThreads 64\n")
			fmt.Fprintf(w, "ScriptSock %q\n", filepath.Join(run, "cgid.sock"))
		} else {
			fmt.Fprintf(w, "ServerLimit 64\nStartServers 24\nMinSpareServers 24\nMaxSpareServers 64\nMaxRequestWorkers 64\n")
		}
		fmt.Fprintf(w, "MaxConnectionsPerChild 0\nKeepAlive On\nMaxKeepAliveRequests 0\nKeepAliveTimeout 120\n")
		fmt.Fprintf(w, "TypesConfig /etc/mime.types\nDirectoryIndex index.html\n")
		fmt.Fprintf(w, "Listen %s https\n", e.Addr)
		fmt.Fprintf(w, "SSLProtocol -all +TLSv1.2 +TLSv1.3\nSSLCipherSuite %s\nSSLHonorCipherOrder off\nSSLSessionCache none\n", MozillaIntermediate12)
		fmt.Fprintf(w, "<Directory />\n  AllowOverride None\n  Require all denied\n</Directory>\n")
		fmt.Fprintf(w, "<Directory %q>\n  Options None\n  AllowOverride None\n  Require all granted\n</Directory>\n", e.Data.Sites)
		for _, h := range e.Data.Hosts {
			fmt.Fprintf(w, "<VirtualHost %s>\n  ServerName %s\n  DocumentRoot %q\n  ScriptAlias /cgi-bin/ %q\n", e.Addr, h, e.docRoot(h), e.cgiBin(h)+"/")
			fmt.Fprintf(w, "  SSLEngine on\n  SSLCertificateFile %q\n  SSLCertificateKeyFile %q\n</VirtualHost>\n", e.certFile(h), e.keyFile(h))
		}
	})
	if err != nil {
		return Spec{}, err
	}
	return Spec{
		Name:    name,
		Argv:    e.argv(ApacheBin, "-f", conf, "-D", "FOREGROUND"),
		Check:   []string{ApacheBin, "-t", "-f", conf},
		Stop:    15,
		Pinning: pinning + "; all processes confined to the server CPU",
		Config:  conf,
	}, nil
}
