package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is a real TLS server on 127.0.0.1:0 with one certificate for
// *.bench.test; it counts the SNI names it saw and the Host headers served.
type testServer struct {
	*httptest.Server
	mu    sync.Mutex
	snis  map[string]int
	hosts map[string]int
}

func newTestServer(t *testing.T, h2 bool) *testServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "*.bench.test"},
		DNSNames:     []string{"*.bench.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	ts := &testServer{snis: map[string]int{}, hosts: map[string]int{}}
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.hosts[r.Host]++
		ts.mu.Unlock()
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "hello %s", r.Host)
	}))
	ts.TLS = &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		ts.mu.Lock()
		ts.snis[hello.ServerName]++
		ts.mu.Unlock()
		if strings.HasPrefix(hello.ServerName, "unknown") {
			return nil, errors.New("no certificate")
		}
		return &cert, nil
	}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	ts.EnableHTTP2 = h2
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) addr() string { return strings.TrimPrefix(ts.URL, "https://") }

func hosts(n int) []string {
	h := make([]string, n)
	for i := range h {
		h[i] = fmt.Sprintf("h%06d.bench.test", i+1)
	}
	return h
}

func TestRunRotatesHosts(t *testing.T) {
	tests := []struct {
		name           string
		mode, proto    string
		perConn        int
		wantHandshakes uint64
	}{
		{"newconn h1", ModeNewConn, ProtoH1, 0, 40},
		{"newconn h2", ModeNewConn, ProtoH2, 0, 40},
		{"keepalive h1 per-conn 10", ModeKeepAlive, ProtoH1, 10, 4},
		{"keepalive h2 per-conn 10", ModeKeepAlive, ProtoH2, 10, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.proto == ProtoH2)
			res, err := Run(context.Background(), Config{
				Addr: ts.addr(), Hosts: hosts(4), Mode: tc.mode, Proto: tc.proto,
				Concurrency: 1, Requests: 40, PerConn: tc.perConn,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != 40 || res.Errors != 0 {
				t.Fatalf("ok=%d errors=%v (%v)", res.OK, res.ErrorKinds, res.ErrorSamples)
			}
			if res.Handshakes != tc.wantHandshakes {
				t.Errorf("handshakes = %d, want %d", res.Handshakes, tc.wantHandshakes)
			}
			ts.mu.Lock()
			defer ts.mu.Unlock()
			for _, h := range hosts(4) {
				if ts.hosts[h] != 10 {
					t.Errorf("host %s served %d times, want 10 (all: %v)", h, ts.hosts[h], ts.hosts)
				}
			}
			if int(res.Latency.N) != 40 || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
				t.Errorf("latency summary inconsistent: %+v", res.Latency)
			}
			if want := "h2"; tc.proto == ProtoH2 && !strings.HasSuffix(res.Negotiated, want) {
				t.Errorf("negotiated %q, want ALPN %s", res.Negotiated, want)
			}
		})
	}
}

func TestRunConcurrentBoundedByRequests(t *testing.T) {
	ts := newTestServer(t, false)
	res, err := Run(context.Background(), Config{Addr: ts.addr(), Hosts: hosts(7), Mode: ModeNewConn, Concurrency: 8, Requests: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 100 || res.Handshakes != 100 {
		t.Fatalf("ok=%d handshakes=%d, want 100 each (errors %v)", res.OK, res.Handshakes, res.ErrorSamples)
	}
}

func TestRunBoundedByDuration(t *testing.T) {
	ts := newTestServer(t, false)
	res, err := Run(context.Background(), Config{Addr: ts.addr(), Hosts: hosts(3), Concurrency: 2, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK == 0 || res.Errors != 0 {
		t.Fatalf("ok=%d errors=%v", res.OK, res.ErrorSamples)
	}
}

func TestRunClassifiesErrors(t *testing.T) {
	tests := []struct {
		name     string
		host     string
		path     string
		wantKind string
	}{
		{"unexpected status", "h1.bench.test", "/missing", "status 404"},
		{"handshake refused", "unknown.bench.test", "/", "handshake: alert internal error"},
		{"certificate for another name", "other.example", "/", "handshake: wrong certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, false)
			res, err := Run(context.Background(), Config{Addr: ts.addr(), Hosts: []string{tc.host}, Mode: ModeNewConn, Requests: 3, Path: tc.path})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != 0 || res.ErrorKinds[tc.wantKind] != 3 {
				t.Fatalf("ok=%d kinds=%v samples=%v, want 3 × %q", res.OK, res.ErrorKinds, res.ErrorSamples, tc.wantKind)
			}
		})
	}
}

func TestRunDialRefused(t *testing.T) {
	ts := newTestServer(t, false)
	addr := ts.addr()
	ts.Close()
	res, err := Run(context.Background(), Config{Addr: addr, Hosts: hosts(1), Requests: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorKinds["dial: connection refused"] != 2 {
		t.Fatalf("kinds = %v", res.ErrorKinds)
	}
}

func TestConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"non-loopback target", Config{Addr: "192.0.2.1:443", Hosts: hosts(1)}},
		{"no hosts", Config{Addr: "127.0.0.1:443"}},
		{"bad mode", Config{Addr: "127.0.0.1:443", Hosts: hosts(1), Mode: "burst"}},
		{"tls13 cipher pin", Config{Addr: "127.0.0.1:443", Hosts: hosts(1), TLSVersion: "1.3", Ciphers: []string{"TLS_AES_128_GCM_SHA256"}}},
		{"unknown cipher", Config{Addr: "127.0.0.1:443", Hosts: hosts(1), TLSVersion: "1.2", Ciphers: []string{"NOPE"}}},
		{"relative path", Config{Addr: "127.0.0.1:443", Hosts: hosts(1), Path: "index.html"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tc.cfg); err == nil {
				t.Fatal("Run accepted an invalid configuration")
			}
		})
	}
}

func TestCipherPinning(t *testing.T) {
	ts := newTestServer(t, false)
	res, err := Run(context.Background(), Config{Addr: ts.addr(), Hosts: hosts(1), Requests: 1, TLSVersion: "1.2",
		Ciphers: []string{"ECDHE-ECDSA-CHACHA20-POLY1305"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 1 || !strings.Contains(res.Negotiated, "TLS 1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 X25519") {
		t.Fatalf("ok=%d negotiated %q", res.OK, res.Negotiated)
	}
}
