// Command load drives HTTPS load at a server on this machine, rotating SNI
// and Host over a host list, and reports requests/s, handshakes/s, latency
// quantiles and errors by kind as a table and, with -json, as JSON.
//
//	go run ./test/bench/load -addr 127.0.0.1:8443 -hosts DIR/hosts.txt -mode newconn -c 4 -d 10s
//
// Only loopback targets are accepted. Every run is bounded by -d or -n (and
// by -max-d whatever else is given), so it always stops by itself.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"massvhost/test/bench/internal/loadgen"
	"massvhost/test/bench/internal/tenants"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		c         loadgen.Config
		hostsFile string
		limit     int
		ciphers   string
		jsonOut   string
		quiet     bool
	)
	flag.StringVar(&c.Addr, "addr", "127.0.0.1:8443", "target host:port (loopback only)")
	flag.StringVar(&hostsFile, "hosts", "", "host list file, one name per line (required)")
	flag.IntVar(&limit, "limit", 0, "use only the first N hosts of the list (0 = all)")
	flag.IntVar(&c.Offset, "offset", 0, "start rotating at this index of the host list")
	flag.StringVar(&c.Mode, "mode", loadgen.ModeKeepAlive, "newconn (full handshake per request) or keepalive")
	flag.StringVar(&c.Proto, "proto", loadgen.ProtoH1, "h1 or h2")
	flag.IntVar(&c.Concurrency, "c", 1, "concurrent connections")
	flag.DurationVar(&c.Duration, "d", 0, "run duration (default 10s unless -n is given)")
	flag.IntVar(&c.Requests, "n", 0, "total requests (0 = bounded by -d)")
	flag.DurationVar(&c.MaxDuration, "max-d", 10*time.Minute, "hard bound on the run")
	flag.IntVar(&c.PerConn, "per-conn", 100, "keepalive: requests per connection before moving to the next host (0 = whole run)")
	flag.StringVar(&c.TLSVersion, "tls", "", "pin TLS version: 1.2 or 1.3 (default: negotiate)")
	flag.StringVar(&ciphers, "cipher", "", "pin TLS 1.2 cipher suites, comma separated (Go, IANA or OpenSSL names)")
	flag.StringVar(&c.Curve, "curve", "x25519", "key exchange group: x25519, p256, x25519mlkem768, default")
	flag.StringVar(&c.Path, "path", "/", "request path")
	flag.StringVar(&c.CAFile, "ca", "", "verify the chain against this CA (default: check only that the certificate covers the name)")
	flag.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&c.Status, "status", 200, "expected response status")
	flag.StringVar(&jsonOut, "json", "", "write the result as JSON to this file (- = stdout)")
	flag.BoolVar(&quiet, "q", false, "no table on stdout")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "load: unexpected argument %q\n", flag.Arg(0))
		return 2
	}
	if hostsFile == "" {
		fmt.Fprintln(os.Stderr, "load: -hosts is required")
		return 2
	}
	hosts, err := tenants.ReadHosts(hostsFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 2
	}
	if limit > 0 && limit < len(hosts) {
		hosts = hosts[:limit]
	}
	c.Hosts = hosts
	if ciphers != "" {
		c.Ciphers = strings.Split(ciphers, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.Run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 2
	}
	if !quiet {
		res.WriteTable(os.Stdout)
	}
	if jsonOut != "" {
		b, err := json.Marshal(res)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			return 1
		}
		b = append(b, '\n')
		if jsonOut == "-" {
			_, err = os.Stdout.Write(b)
		} else {
			err = os.WriteFile(jsonOut, b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			return 1
		}
	}
	return 0
}
