package abuse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"massvhost/certs"
)

// TestCertFileReplacedMidRead is FLT-04 for the file store: while a
// tenant's certificate files are rewritten in place (truncate, then write
// in pieces), truncated to nothing, and replaced atomically, over and over,
// every handshake for that tenant gets either the old or the new
// certificate, never a torn or mismatched pair, and the server never fails
// a handshake or crashes. A short certs.ttl makes the server re-read the
// files many times during the run.
func TestCertFileReplacedMidRead(t *testing.T) {
	w := newWorld(t)
	const host = "c.test"
	w.addTenant(t, host, -1)
	cert1, key1 := w.CA.Leaf(t, host)
	cert2, key2 := w.CA.Leaf(t, host)
	serial := func(certPEM []byte) string {
		b, _ := pem.Decode(certPEM)
		c, err := x509.ParseCertificate(b.Bytes)
		must(t, err)
		return c.SerialNumber.String()
	}
	pairs := [][2][]byte{{cert1, key1}, {cert2, key2}}
	want := map[string]bool{serial(cert1): true, serial(cert2): true}
	fs := certs.FileStore{Dir: w.CertDir}
	must(t, fs.Put(context.Background(), host, cert1, key1))

	p := start(t, w.config(settings{"certs": {"ttl": "20ms", "negative_ttl": "20ms"}}))
	handshake := func() (string, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", p.HTTPSAddr,
			&tls.Config{ServerName: host, RootCAs: w.CA.Pool, SessionTicketsDisabled: true})
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}
	if _, err := handshake(); err != nil {
		t.Fatalf("first handshake: %v", err)
	}

	crt, key := filepath.Join(w.CertDir, host+".crt"), filepath.Join(w.CertDir, host+".key")
	// inPlace rewrites a file the way a careless deploy script does: the
	// same inode is truncated and written in two halves.
	inPlace := func(path string, data []byte) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Error(err)
			return
		}
		f.Write(data[:len(data)/2])
		time.Sleep(time.Millisecond)
		f.Write(data[len(data)/2:])
		f.Close()
	}
	stop := make(chan struct{})
	var writes atomic.Int64
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pair := pairs[i%2]
			switch i % 3 {
			case 0: // in place, chain first: a reader may see new chain, old key
				inPlace(crt, pair[0])
				inPlace(key, pair[1])
			case 1: // truncated for a moment
				os.Truncate(crt, 0)
				time.Sleep(2 * time.Millisecond)
				inPlace(crt, pair[0])
				inPlace(key, pair[1])
			case 2: // atomic renames, one file after the other
				if err := fs.Put(context.Background(), host, pair[0], pair[1]); err != nil {
					t.Error(err)
				}
			}
			writes.Add(1)
			time.Sleep(3 * time.Millisecond)
		}
	}()

	var mu sync.Mutex
	seen := map[string]int{}
	var failures []string
	var wg sync.WaitGroup
	deadline := time.Now().Add(4 * time.Second)
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				s, err := handshake()
				mu.Lock()
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					seen[s]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	<-writerDone
	// Settle on the second pair, written atomically.
	must(t, fs.Put(context.Background(), host, cert2, key2))

	total := len(failures)
	for s, n := range seen {
		total += n
		if !want[s] {
			t.Errorf("%d handshakes presented certificate serial %s, which is neither the old nor the new one", n, s)
		}
	}
	t.Logf("%d rewrites; %d handshakes: %d with the first certificate, %d with the second, %d failed",
		writes.Load(), total, seen[serial(cert1)], seen[serial(cert2)], len(failures))
	if len(failures) > 0 {
		t.Errorf("%d handshakes failed while the files were rewritten; first: %s", len(failures), failures[0])
	}
	if seen[serial(cert1)] == 0 || seen[serial(cert2)] == 0 {
		t.Errorf("the server never switched certificates (%v): the files were not re-read", seen)
	}
	if !eventually(10*time.Second, func() bool { s, err := handshake(); return err == nil && s == serial(cert2) }) {
		t.Error("the final certificate was never served")
	}
	if !p.alive() || strings.Contains(p.Output(), "panic") {
		t.Fatalf("server crashed or panicked")
	}
}
