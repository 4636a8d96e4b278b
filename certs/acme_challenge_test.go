package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"massvhost/vhost"
)

func TestACMEHTTPChallenge(t *testing.T) {
	a, _, _ := newOfflineACME(t, func(context.Context, string) bool { return true })
	ctx := context.Background()
	if err := a.state.putChallenge(ctx, httpChallengeKey("tok_EN-1"), []byte("tok_EN-1.thumbprint"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, target string
		handled              bool
		body                 string
	}{
		{"known token, any host", http.MethodGet, "http://tenant.test/.well-known/acme-challenge/tok_EN-1", true, "tok_EN-1.thumbprint"},
		{"HEAD", http.MethodHead, "http://other.test/.well-known/acme-challenge/tok_EN-1", true, ""},
		{"unknown token falls through", http.MethodGet, "http://tenant.test/.well-known/acme-challenge/nope", false, ""},
		{"POST falls through", http.MethodPost, "http://tenant.test/.well-known/acme-challenge/tok_EN-1", false, ""},
		{"not base64url", http.MethodGet, "http://tenant.test/.well-known/acme-challenge/tok.EN", false, ""},
		{"traversal", http.MethodGet, "http://tenant.test/.well-known/acme-challenge/..%2Fetc", false, ""},
		{"sub-path", http.MethodGet, "http://tenant.test/.well-known/acme-challenge/a/b", false, ""},
		{"empty token", http.MethodGet, "http://tenant.test/.well-known/acme-challenge/", false, ""},
		{"other path", http.MethodGet, "http://tenant.test/index.html", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tc.method, tc.target, nil)
			handled := a.HTTPChallenge(w, r)
			if handled != tc.handled {
				t.Fatalf("handled = %v, want %v", handled, tc.handled)
			}
			if !handled {
				if w.Body.Len() != 0 || len(w.Header()) != 0 {
					t.Errorf("wrote a response while declining: %d %q", w.Code, w.Body)
				}
				return
			}
			if w.Code != http.StatusOK || w.Body.String() != tc.body {
				t.Errorf("response %d %q, want 200 %q", w.Code, w.Body, tc.body)
			}
		})
	}
}

func TestACMETLSALPNCertificate(t *testing.T) {
	a, _, _ := newOfflineACME(t, func(context.Context, string) bool { return true })
	hello := func(sni string, protos ...string) *tls.ClientHelloInfo {
		return &tls.ClientHelloInfo{ServerName: sni, SupportedProtos: protos}
	}
	if IsTLSALPNHello(hello("a.test", "h2", "http/1.1")) {
		t.Error("ordinary hello taken for a validation")
	}
	if _, err := a.TLSALPNCertificate(hello("a.test", "h2")); !errors.Is(err, ErrNotFound) {
		t.Errorf("ordinary hello: %v", err)
	}
	if _, err := a.TLSALPNCertificate(hello("a.test", acme.ALPNProto)); !errors.Is(err, ErrNotFound) {
		t.Errorf("no order in progress: %v", err)
	}
	if _, err := a.TLSALPNCertificate(hello("../x", acme.ALPNProto)); !errors.Is(err, vhost.ErrInvalidName) {
		t.Errorf("bad SNI: %v", err)
	}

	// With a response provisioned, the validation handshake gets it and
	// negotiates acme-tls/1 only.
	client, err := a.registeredOffline()
	if err != nil {
		t.Fatal(err)
	}
	cleanup, err := a.provision(context.Background(), client, "a.test", &acme.Challenge{Type: ChallengeTLSALPN01, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := a.TLSALPNConfig(hello("A.test", acme.ALPNProto))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != acme.ALPNProto || len(cfg.Certificates) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil || leaf.VerifyHostname("a.test") != nil {
		t.Fatalf("validation certificate: %v", err)
	}
	cleanup()
	if _, err := a.TLSALPNCertificate(hello("a.test", acme.ALPNProto)); !errors.Is(err, ErrNotFound) {
		t.Errorf("after cleanup: %v", err)
	}
}

// registeredOffline returns a client with the account key, without
// registering: enough to compute challenge responses.
func (a *ACME) registeredOffline() (*acme.Client, error) {
	keyPEM, err := a.state.accountKey(context.Background(), newAccountKey)
	if err != nil {
		return nil, err
	}
	key, err := parseECKey(keyPEM)
	if err != nil {
		return nil, err
	}
	return &acme.Client{Key: key}, nil
}
