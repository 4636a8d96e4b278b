package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"

	"massvhost/vhost"
)

// HTTPChallengePrefix is the URL path under which HTTP-01 challenge
// responses are served (RFC 8555 section 8.3).
const HTTPChallengePrefix = "/.well-known/acme-challenge/"

// challengeLookupTimeout bounds the shared-state read that answers one
// challenge request.
const challengeLookupTimeout = 2 * time.Second

// maxTokenLen bounds an ACME token taken from a URL; real ones are 43
// characters of base64url.
const maxTokenLen = 128

// HTTPChallenge answers the CA's HTTP-01 validation request and reports
// whether it did. It answers GET and HEAD of HTTPChallengePrefix+token, for
// any Host, when token belongs to an order in progress on any node (the
// response is kept in Redis). For every other request, including unknown
// tokens, it writes nothing and returns false, so the caller serves the
// request as usual (a tenant running its own ACME client in webroot mode
// keeps working). Call it first on the HTTP listener, before any redirect
// to HTTPS.
func (a *ACME) HTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	token, ok := strings.CutPrefix(r.URL.Path, HTTPChallengePrefix)
	if !ok || !validToken(token) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), challengeLookupTimeout)
	defer cancel()
	v, err := a.state.getChallenge(ctx, httpChallengeKey(token))
	if err != nil {
		if !errors.Is(err, ErrNotFound) && r.Context().Err() == nil && a.logs.allow("http-01", time.Now()) {
			a.log.Warn("certs: acme: http-01 challenge lookup failed", "host", r.Host, "err", err)
		}
		return false
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(v)
	}
	return true
}

// validToken reports whether token is plausible base64url, so that no
// other string becomes a state key.
func validToken(token string) bool {
	if token == "" || len(token) > maxTokenLen {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// IsTLSALPNHello reports whether hello is a TLS-ALPN-01 validation
// handshake: its only useful protocol is "acme-tls/1" (RFC 8737). Such a
// handshake must get [ACME.TLSALPNConfig], never a tenant certificate.
func IsTLSALPNHello(hello *tls.ClientHelloInfo) bool {
	return slices.Contains(hello.SupportedProtos, acme.ALPNProto)
}

// TLSALPNCertificate returns the TLS-ALPN-01 validation certificate for
// hello's SNI while an order for that name is in progress on any node. The
// error wraps [ErrNotFound] when there is none, vhost.ErrInvalidName for a
// bad SNI, and [ErrUnavailable] when the shared state cannot be read.
func (a *ACME) TLSALPNCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !IsTLSALPNHello(hello) {
		return nil, fmt.Errorf("certs: acme: %w: not an %s handshake", ErrNotFound, acme.ALPNProto)
	}
	name, err := vhost.Normalize(hello.ServerName)
	if err != nil {
		return nil, fmt.Errorf("certs: acme: tls-alpn-01: %w", err)
	}
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, challengeLookupTimeout)
	defer cancel()
	v, err := a.state.getChallenge(ctx, alpnChallengeKey(name))
	if err != nil {
		return nil, fmt.Errorf("certs: acme: tls-alpn-01 %q: %w", name, err)
	}
	cert, err := tls.X509KeyPair(v, v)
	if err != nil {
		return nil, fmt.Errorf("certs: acme: tls-alpn-01 %q: %w", name, invalid(name, "stored validation certificate", err))
	}
	return &cert, nil
}

// TLSALPNConfig is TLSALPNCertificate shaped for
// tls.Config.GetConfigForClient: a config that presents the validation
// certificate and negotiates only "acme-tls/1". The connection carries no
// application data; the CA closes it after the handshake.
func (a *ACME) TLSALPNConfig(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	cert, err := a.TLSALPNCertificate(hello)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{*cert},
		NextProtos:   []string{acme.ALPNProto},
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// provision publishes the response to chal for name in the shared state,
// so that whichever node the CA reaches answers it, and returns the
// function that withdraws it.
func (a *ACME) provision(ctx context.Context, client *acme.Client, name string, chal *acme.Challenge) (func(), error) {
	var key string
	var value []byte
	switch chal.Type {
	case ChallengeHTTP01:
		if !validToken(chal.Token) {
			return nil, fmt.Errorf("certs: acme: CA sent an unusable token %q", chal.Token)
		}
		resp, err := client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return nil, err
		}
		key, value = httpChallengeKey(chal.Token), []byte(resp)
	case ChallengeTLSALPN01:
		cert, err := client.TLSALPN01ChallengeCert(chal.Token, name)
		if err != nil {
			return nil, err
		}
		if value, err = encodeTLSCertificate(cert); err != nil {
			return nil, err
		}
		key = alpnChallengeKey(name)
	default:
		return nil, fmt.Errorf("certs: acme: unsupported challenge %q", chal.Type)
	}
	// The response outlives the order by a little, never by much.
	if err := a.state.putChallenge(ctx, key, value, a.orderTimeout+time.Minute); err != nil {
		return nil, failure(reasonState, err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), challengeLookupTimeout)
		defer cancel()
		if err := a.state.deleteChallenge(ctx, key); err != nil {
			a.log.Warn("certs: acme: could not withdraw challenge response", "host", name, "err", err)
		}
	}, nil
}

// encodeTLSCertificate turns a certificate and its key into PEM: the chain,
// then the PKCS#8 key.
func encodeTLSCertificate(cert tls.Certificate) ([]byte, error) {
	var b bytes.Buffer
	for _, der := range cert.Certificate {
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
			return nil, err
		}
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, err
	}
	if err := pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
