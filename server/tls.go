package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"

	"massvhost/certs"
	"massvhost/vhost"
)

// cipherSuites are the TLS 1.2 suites of Mozilla's "intermediate" profile:
// ECDHE key exchange with an AEAD cipher only. Go's default list still has
// the ECDHE-*-AES-CBC-SHA suites (LUCKY13-class, flagged by testssl.sh).
// TLS 1.3 suites are not configurable and are all AEAD.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// sessionTag prefixes the entry this package appends to
// tls.SessionState.Extra: the canonical SNI the session was established for.
const sessionTag = "massvhost/sni/1:"

// newTLSConfig returns the one tls.Config of the HTTPS listener. It lives as
// long as the listener, so session ticket keys survive Swap; everything that
// can change is read from the current state at handshake time.
//
// Certificate selection happens in two steps because crypto/tls maps errors
// to alerts in a fixed way (go1.26 handshake_server.go): any error returned
// by GetConfigForClient or GetCertificate is sent as internal_error (80),
// and only "GetCertificate returned (nil, nil) and Config.Certificates is
// empty" is sent as unrecognized_name (112). So GetConfigForClient, which
// runs for every ClientHello including resumptions, asks the CertSource and
// records the outcome on the connection; GetCertificate, which runs only for
// full handshakes, turns the recorded outcome into a certificate, (nil, nil)
// for an unknown or invalid name, or an error for an unavailable store.
func (s *Server) newTLSConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: cipherSuites,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	cfg.GetConfigForClient = s.recordHello
	cfg.GetCertificate = s.certificateForHello
	// VerifyConnection runs on the server near the end of every handshake,
	// full or resumed, once a certificate was chosen: the count of
	// handshakes that got past certificate selection.
	cfg.VerifyConnection = func(tls.ConnectionState) error {
		s.metrics.handshake.Add(1)
		return nil
	}
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, []byte(sessionTag+canonicalSNI(cs.ServerName)))
		return cfg.EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := cfg.DecryptTicket(identity, cs)
		if err != nil || ss == nil || !sessionBoundTo(ss, cs.ServerName) {
			return nil, nil // ignore the ticket: full handshake
		}
		return ss, nil
	}
	s.noResumeConfig = cfg.Clone()
	s.noResumeConfig.SessionTicketsDisabled = true
	return cfg
}

// canonicalSNI returns the normalized server name, or "" for no SNI and for
// names Normalize rejects (those never get a certificate anyway).
func canonicalSNI(sni string) string {
	name, err := vhost.Normalize(sni)
	if err != nil {
		return ""
	}
	return name
}

// sessionBoundTo reports whether ss was established for the same canonical
// SNI as the resuming ClientHello. All tenants share one ticket key, so
// without this a session authenticated with a.test's certificate resumes on
// a connection that names b.test (THREATS TLS-10; the CVE-2018-21246 class
// once per-tenant client authentication exists). A mismatch, or a ticket
// without our entry, falls back to a full handshake.
func sessionBoundTo(ss *tls.SessionState, sni string) bool {
	want := []byte(sessionTag + canonicalSNI(sni))
	for _, e := range ss.Extra {
		if bytes.HasPrefix(e, []byte(sessionTag)) {
			return bytes.Equal(e, want)
		}
	}
	return false
}

// recordHello is the GetConfigForClient hook: it looks up the certificate
// for the ClientHello and records the outcome on the connection. It never
// returns an error, since any error here would be sent as internal_error.
// When the lookup failed it returns a copy of the config with session
// tickets disabled: a ticket issued while the name still had a certificate
// must not resume a session for it now, and the full handshake then fails
// with the right alert in certificateForHello.
func (s *Server) recordHello(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	st := s.acquire()
	if alpn := st.opts.ACMETLSALPN; alpn != nil && certs.IsTLSALPNHello(hello) {
		// A CA's validation handshake: it gets the challenge certificate or
		// fails, never a tenant certificate (RFC 8737 §3).
		st.release()
		return alpn(hello)
	}
	c, ok := hello.Conn.(*conn)
	if !ok {
		st.release()
		return nil, nil
	}
	cert, err := st.certs.Lookup(helloContext(hello), hello.ServerName)
	st.release()
	if err == nil && cert == nil {
		err = certs.ErrNotFound
	}
	s.metrics.countHello(hello.ServerName, err)
	c.hello.Store(&helloResult{cert: cert, err: err})
	if err != nil {
		return s.noResumeConfig, nil
	}
	return nil, nil
}

// certificateForHello is the GetCertificate hook; see newTLSConfig.
func (s *Server) certificateForHello(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	var res *helloResult
	if c, ok := hello.Conn.(*conn); ok {
		res = c.hello.Load()
	}
	if res == nil {
		st := s.acquire()
		cert, err := st.certs.Lookup(helloContext(hello), hello.ServerName)
		st.release()
		s.metrics.countHello(hello.ServerName, err)
		res = &helloResult{cert: cert, err: err}
	}
	switch {
	case res.err == nil && res.cert != nil:
		return res.cert, nil
	case res.err == nil, unrecognizedName(res.err):
		// (nil, nil) with no Config.Certificates: alert unrecognized_name.
		if log := s.logger(); log.Enabled(hello.Context(), slog.LevelDebug) {
			log.Debug("tls: no certificate", "sni", hello.ServerName, "remote", remoteString(hello.Conn), "err", res.err)
		}
		return nil, nil
	default:
		s.logger().Warn("tls: certificate lookup failed", "sni", hello.ServerName, "remote", remoteString(hello.Conn), "err", res.err)
		return nil, res.err
	}
}

// helloContext is the handshake's context carrying the client's address,
// which the CertSource may use to charge the client for lookups of new
// names (certs.WithClient).
func helloContext(hello *tls.ClientHelloInfo) context.Context {
	ctx := hello.Context()
	if hello.Conn != nil {
		ctx = certs.WithClient(ctx, hello.Conn.RemoteAddr())
	}
	return ctx
}

// unrecognizedName reports whether a CertSource error means "no certificate
// for this name" (alert 112) rather than "could not find out" (alert 80).
func unrecognizedName(err error) bool {
	if errors.Is(err, certs.ErrUnavailable) {
		return false
	}
	return errors.Is(err, certs.ErrNotFound) || errors.Is(err, vhost.ErrInvalidName)
}

// leafOf returns the parsed leaf of cert, parsing it when the source did not
// set Leaf.
func leafOf(cert *tls.Certificate) (*x509.Certificate, error) {
	if cert.Leaf != nil {
		return cert.Leaf, nil
	}
	if len(cert.Certificate) == 0 {
		return nil, errors.New("server: certificate has no leaf")
	}
	return x509.ParseCertificate(cert.Certificate[0])
}
