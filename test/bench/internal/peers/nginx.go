package peers

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
)

// NginxBin is the nginx executable.
var NginxBin = "nginx"

// Nginx writes an nginx configuration for e. With preload, every host gets
// its own server block whose certificate nginx loads at start-up (the
// classic configuration); otherwise one catch-all server names the
// certificate by $ssl_server_name, which nginx (since 1.15.9) reads from
// disk on every handshake, with no cache.
//
// One worker process serves, matching massvhost's GOMAXPROCS=1.
func Nginx(e Env, preload bool) (Spec, error) {
	if err := e.prepare(); err != nil {
		return Spec{}, err
	}
	for _, d := range []string{"tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(e.Work, d), 0o755); err != nil {
			return Spec{}, err
		}
	}
	name := NginxLazy
	if preload {
		name = NginxPreload
	}
	conf := filepath.Join(e.Work, "nginx.conf")
	err := writeFile(conf, func(w *bufio.Writer) {
		fmt.Fprintf(w, "daemon off;\nmaster_process on;\nworker_processes 1;\n")
		if os.Geteuid() == 0 {
			// Lazy mode opens root-only key files in the worker.
			fmt.Fprintf(w, "user root root;\n")
		}
		fmt.Fprintf(w, "pid %s;\nerror_log %s warn;\nworker_rlimit_nofile 65536;\n",
			filepath.Join(e.Work, "nginx.pid"), filepath.Join(e.Work, "logs", "error.log"))
		fmt.Fprintf(w, "events {\n  worker_connections 4096;\n}\n")
		fmt.Fprintf(w, "http {\n")
		fmt.Fprintf(w, "  access_log off;\n  sendfile on;\n  keepalive_timeout 120s;\n  keepalive_requests 1000000;\n")
		fmt.Fprintf(w, "  default_type application/octet-stream;\n  types {\n    text/html html;\n    text/plain txt;\n  }\n")
		for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
			fmt.Fprintf(w, "  %s_temp_path %s;\n", d, filepath.Join(e.Work, "tmp", d))
		}
		fmt.Fprintf(w, "  server_names_hash_max_size 262144;\n  server_names_hash_bucket_size 128;\n")
		fmt.Fprintf(w, "  ssl_protocols TLSv1.2 TLSv1.3;\n  ssl_ciphers %s;\n  ssl_prefer_server_ciphers off;\n", MozillaIntermediate12)
		fmt.Fprintf(w, "  index index.html;\n")
		if preload {
			for i, h := range e.Data.Hosts {
				def := ""
				if i == 0 {
					def = " default_server"
				}
				fmt.Fprintf(w, "  server {\n    listen %s ssl http2%s;\n    server_name %s;\n", e.Addr, def, h)
				fmt.Fprintf(w, "    ssl_certificate %s;\n    ssl_certificate_key %s;\n    root %s;\n  }\n",
					e.certFile(h), e.keyFile(h), e.docRoot(h))
			}
		} else {
			fmt.Fprintf(w, "  server {\n    listen %s ssl http2 default_server;\n    server_name _;\n", e.Addr)
			fmt.Fprintf(w, "    ssl_certificate %s;\n    ssl_certificate_key %s;\n",
				filepath.Join(e.Data.Certs, "$ssl_server_name.crt"), filepath.Join(e.Data.Certs, "$ssl_server_name.key"))
			fmt.Fprintf(w, "    root %s;\n  }\n", filepath.Join(e.Data.Sites, "$host", "htdocs"))
		}
		fmt.Fprintf(w, "}\n")
	})
	if err != nil {
		return Spec{}, err
	}
	errLog := filepath.Join(e.Work, "logs", "error.log")
	return Spec{
		Name:    name,
		Argv:    e.argv(NginxBin, "-p", e.Work, "-e", errLog, "-c", conf),
		Check:   []string{NginxBin, "-t", "-q", "-p", e.Work, "-e", errLog, "-c", conf},
		Stop:    15,
		Pinning: "worker_processes 1 (master + 1 worker)",
		Config:  conf,
	}, nil
}
