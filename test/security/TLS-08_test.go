// TLS-08: protocol versions and cipher suites.
//
// Exploit: a client offering only TLS 1.0/1.1, only the CBC-SHA suites Go
// still enables by default (LUCKY13 class), only RSA key exchange, or only
// 3DES.
//
// Expectation: each handshake fails; TLS 1.2 negotiates an ECDHE AEAD
// suite (Mozilla "intermediate"), TLS 1.3 works.
package security

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

func TestTLS08Profile(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	p := start(t, w.config(cfg{}))
	refuse := map[string]*tls.Config{
		"TLS 1.1": {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
		"ECDHE CBC-SHA": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}},
		"RSA key exchange": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}},
		"3DES": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA}},
	}
	for name, cfg := range refuse {
		cfg.InsecureSkipVerify = true
		c, err := p.dialTLS("a.test", cfg)
		if err == nil {
			t.Errorf("%s: handshake succeeded (%s)", name, tls.CipherSuiteName(c.ConnectionState().CipherSuite))
			c.Close()
			continue
		}
		// The refusal must come from the server (an alert), not from the
		// client declining to offer what the test asked for.
		if !strings.Contains(err.Error(), "remote error") {
			t.Errorf("%s: %v, want the server's alert", name, err)
		}
	}
	aead := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
	c, err := p.dialTLS("a.test", &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	if cs := c.ConnectionState().CipherSuite; !slices.Contains(aead, cs) {
		t.Errorf("TLS 1.2 negotiated %s", tls.CipherSuiteName(cs))
	}
	c.Close()
	c, err = p.dialTLS("a.test", &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatalf("TLS 1.3: %v", err)
	}
	c.Close()
}
