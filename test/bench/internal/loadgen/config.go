// Package loadgen drives HTTPS load at a server on this machine, rotating
// the SNI name and Host header over a list of tenant hosts, and reports
// throughput, latency quantiles and errors by kind.
//
// Two modes mirror the two costs a mass-hosting server pays:
//
//   - ModeNewConn opens a new TCP connection and performs a full TLS
//     handshake for every request; the client offers no session ticket or
//     cached session, so every handshake runs the server's certificate
//     selection and signature. This is the handshakes/s figure.
//   - ModeKeepAlive reuses each connection for Config.PerConn requests before
//     moving on to the next host, which measures request handling with the
//     handshake amortized.
//
// Each worker keeps its own histogram; they are merged at the end, so no lock
// is taken per request.
package loadgen

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"massvhost/test/bench/internal/loopback"
)

// Modes.
const (
	ModeNewConn   = "newconn"
	ModeKeepAlive = "keepalive"
)

// Protocols.
const (
	ProtoH1 = "h1"
	ProtoH2 = "h2"
)

// Config describes one load run. Either Duration or Requests bounds it; when
// both are set the first reached ends the run, and MaxDuration always does.
type Config struct {
	Addr        string        `json:"addr"`  // loopback host:port
	Hosts       []string      `json:"-"`     // SNI and Host names, rotated in order
	HostCount   int           `json:"hosts"` // len(Hosts), for the report
	Mode        string        `json:"mode"`
	Proto       string        `json:"proto"`
	Concurrency int           `json:"concurrency"`
	Duration    time.Duration `json:"duration_ns"`
	Requests    int           `json:"requests"`     // 0 = bounded by Duration
	MaxDuration time.Duration `json:"-"`            // hard bound; default 10m
	PerConn     int           `json:"per_conn"`     // keep-alive requests per connection; 0 = the whole run
	TLSVersion  string        `json:"tls"`          // "1.2", "1.3" or "" (negotiate)
	Ciphers     []string      `json:"ciphers"`      // TLS 1.2 suite names (Go or IANA names)
	Curve       string        `json:"curve"`        // key exchange group; default x25519
	Path        string        `json:"path"`         // request path; default "/"
	CAFile      string        `json:"ca,omitempty"` // verify the chain against this CA; default: only check the name
	Timeout     time.Duration `json:"timeout_ns"`   // per request; default 10s
	Status      int           `json:"status"`       // expected status; default 200
	Offset      int           `json:"offset"`       // start rotating at Hosts[Offset]
}

func (c *Config) normalize() error {
	if err := loopback.Check(c.Addr); err != nil {
		return err
	}
	if len(c.Hosts) == 0 {
		return fmt.Errorf("loadgen: no hosts")
	}
	c.HostCount = len(c.Hosts)
	switch c.Mode {
	case "":
		c.Mode = ModeKeepAlive
	case ModeNewConn, ModeKeepAlive:
	default:
		return fmt.Errorf("loadgen: mode %q: want %s or %s", c.Mode, ModeNewConn, ModeKeepAlive)
	}
	switch c.Proto {
	case "":
		c.Proto = ProtoH1
	case ProtoH1, ProtoH2:
	default:
		return fmt.Errorf("loadgen: proto %q: want %s or %s", c.Proto, ProtoH1, ProtoH2)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 10 * time.Minute
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Duration <= 0 || c.Duration > c.MaxDuration {
		c.Duration = c.MaxDuration
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if !strings.HasPrefix(c.Path, "/") {
		return fmt.Errorf("loadgen: path %q must start with /", c.Path)
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Status == 0 {
		c.Status = 200
	}
	if c.Curve == "" {
		c.Curve = "x25519"
	}
	if c.TLSVersion == "1.3" && len(c.Ciphers) > 0 {
		return fmt.Errorf("loadgen: TLS 1.3 cipher suites cannot be pinned in Go's crypto/tls; use -tls 1.2 with -cipher")
	}
	return nil
}

// tlsConfig builds the per-run template; each connection clones it and sets
// ServerName.
func (c *Config) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		// Verification is done in VerifyConnection, per name.
		InsecureSkipVerify:     true,
		SessionTicketsDisabled: true, // a full handshake every time
		MinVersion:             tls.VersionTLS12,
		MaxVersion:             tls.VersionTLS13,
	}
	switch c.TLSVersion {
	case "":
	case "1.2":
		cfg.MaxVersion = tls.VersionTLS12
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("loadgen: tls version %q: want 1.2 or 1.3", c.TLSVersion)
	}
	for _, name := range c.Ciphers {
		id, ok := cipherID(name)
		if !ok {
			return nil, fmt.Errorf("loadgen: unknown cipher suite %q", name)
		}
		cfg.CipherSuites = append(cfg.CipherSuites, id)
	}
	switch strings.ToLower(c.Curve) {
	case "x25519":
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	case "p256", "p-256", "secp256r1":
		cfg.CurvePreferences = []tls.CurveID{tls.CurveP256}
	case "x25519mlkem768":
		cfg.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768}
	case "default":
	default:
		return nil, fmt.Errorf("loadgen: curve %q: want x25519, p256, x25519mlkem768 or default", c.Curve)
	}
	if c.Proto == ProtoH2 {
		cfg.NextProtos = []string{"h2"}
	} else {
		cfg.NextProtos = []string{"http/1.1"}
	}
	var roots *x509.CertPool
	if c.CAFile != "" {
		pemBytes, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("loadgen: %s: no certificates", c.CAFile)
		}
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errWrongCert
		}
		leaf := cs.PeerCertificates[0]
		if roots == nil {
			if leaf.VerifyHostname(cs.ServerName) != nil {
				return errWrongCert
			}
			return nil
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: roots, Intermediates: inter}); err != nil {
			return errWrongCert
		}
		return nil
	}
	return cfg, nil
}

func cipherID(name string) (uint16, bool) {
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if strings.EqualFold(s.Name, name) {
			return s.ID, true
		}
	}
	// OpenSSL spellings, as nginx and Apache configurations use them.
	openssl := map[string]uint16{
		"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	id, ok := openssl[strings.ToUpper(name)]
	return id, ok
}
