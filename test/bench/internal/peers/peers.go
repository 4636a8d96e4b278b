// Package peers writes the configuration of every server the benchmarks
// compare — massvhost in its modes, nginx and Apache httpd — for one data
// set, and describes how to start each.
//
// Every configuration serves the same tenants from the same files on the
// same loopback address: the tenants' htdocs and cgi-bin, and one
// certificate and key per host from the file store (or Redis for massvhost).
// Access logs are off everywhere, so no server pays for logging the others
// skip.
package peers

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// Data is a generated data set (see package tenants).
type Data struct {
	Sites string   // <sites.root>/<host>/htdocs, /cgi-bin
	Certs string   // <certs.dir>/<host>.crt, .key
	Hosts []string // the tenants to configure, in order
}

// Env is where and how one server instance runs.
type Env struct {
	Work string // scratch directory for config, pid file, logs; created
	Addr string // loopback host:port of the HTTPS listener
	Data Data
	// CPUs is a taskset CPU list the server and all its children are
	// confined to ("" = no pinning). Affinity is inherited across fork, so
	// it bounds nginx's workers, Apache's children and CGI scripts alike.
	CPUs string
}

// Spec says how to start a configured server.
type Spec struct {
	Name  string   // peer name as reported, e.g. "nginx-preload"
	Argv  []string // command; Argv[0] is looked up in PATH
	Env   []string // extra environment (KEY=value)
	Check []string // a configuration test command, or nil
	// Stop is the signal for a clean, fast shutdown (TERM for all three).
	Stop syscall.Signal
	// Pinning describes how the worker count was made comparable.
	Pinning string
	Config  string // path of the written configuration file
}

func (e Env) argv(cmd ...string) []string {
	if e.CPUs == "" {
		return cmd
	}
	return append([]string{"taskset", "-c", e.CPUs}, cmd...)
}

func (e Env) prepare() error {
	if err := os.MkdirAll(e.Work, 0o755); err != nil {
		return err
	}
	// Apache's children and nginx's workers run unprivileged and must be
	// able to reach their runtime files.
	return os.Chmod(e.Work, 0o755)
}

func (e Env) host(i int) string { return e.Data.Hosts[i] }

func (e Env) docRoot(host string) string { return filepath.Join(e.Data.Sites, host, "htdocs") }
func (e Env) cgiBin(host string) string  { return filepath.Join(e.Data.Sites, host, "cgi-bin") }
func (e Env) certFile(host string) string {
	return filepath.Join(e.Data.Certs, host+".crt")
}
func (e Env) keyFile(host string) string { return filepath.Join(e.Data.Certs, host+".key") }

// writeFile streams a generated configuration (which can be hundreds of
// megabytes for 100,000 virtual hosts) to path.
func writeFile(path string, gen func(w *bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	gen(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// MozillaIntermediate12 is the TLS 1.2 cipher list of Mozilla's
// "intermediate" profile, in OpenSSL spelling; massvhost offers the same
// suites, so all peers negotiate alike.
const MozillaIntermediate12 = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" +
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" +
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

// Names of every peer, in report order.
const (
	MassvhostLazy      = "massvhost-lazy"       // files store, warm cache
	MassvhostLazyCold  = "massvhost-lazy-cold"  // files store, cache of 1: every handshake loads
	MassvhostLazyRedis = "massvhost-lazy-redis" // Redis store
	MassvhostPreload   = "massvhost-preload"
	NginxPreload       = "nginx-preload"
	NginxLazy          = "nginx-lazy"
	ApacheEvent        = "apache-event-cgid"
	ApachePrefork      = "apache-prefork-cgi"
)

// All lists every peer name.
var All = []string{MassvhostLazy, MassvhostLazyCold, MassvhostLazyRedis, MassvhostPreload, NginxPreload, NginxLazy, ApacheEvent, ApachePrefork}

// IsMassvhost reports whether name is one of massvhost's modes.
func IsMassvhost(name string) bool {
	return slices.Contains([]string{MassvhostLazy, MassvhostLazyCold, MassvhostLazyRedis, MassvhostPreload}, name)
}

// Known reports whether name is a peer this package can configure.
func Known(name string) bool { return slices.Contains(All, name) }

func errf(format string, a ...any) error { return fmt.Errorf("peers: "+format, a...) }
