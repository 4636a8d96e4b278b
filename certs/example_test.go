package certs_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"massvhost/certs"
	"massvhost/vhost"
)

// A Manager serving certificates from a directory, minting missing ones
// with a local CA for the hosts a policy allows.
func ExampleManager() {
	tmp, err := os.MkdirTemp("", "certs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()

	// A certificate already in the store: <dir>/www.example.com.crt|.key.
	ca, err := certs.OpenLocalCA(filepath.Join(tmp, "data"))
	if err != nil {
		log.Fatal(err)
	}
	store := certs.FileStore{Dir: filepath.Join(tmp, "certs")}
	certPEM, keyPEM, err := ca.Issue(ctx, "www.example.com")
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Put(ctx, "www.example.com", certPEM, keyPEM); err != nil {
		log.Fatal(err)
	}

	m, err := certs.NewManager(certs.Options{
		Store:  store,
		Issuer: ca,
		Logger: slog.New(slog.DiscardHandler),
		HostPolicy: func(ctx context.Context, host string) error {
			if host != "new.example.com" { // in a server: does the tenant exist?
				return fmt.Errorf("%s: no such tenant", host)
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// In a server: &tls.Config{GetCertificate: m.GetCertificate}.
	_ = &tls.Config{GetCertificate: m.GetCertificate}

	cert, err := m.Lookup(ctx, "WWW.Example.COM")
	fmt.Println(cert.Leaf.DNSNames, err)

	cert, err = m.Lookup(ctx, "new.example.com") // minted and stored
	fmt.Println(cert.Leaf.DNSNames, err)
	_, _, err = store.Get(ctx, "new.example.com")
	fmt.Println("stored:", err == nil)

	_, err = m.Lookup(ctx, "unknown.example.com")
	fmt.Println(errors.Is(err, certs.ErrNotFound))

	_, err = m.Lookup(ctx, "../../etc/passwd") // refused before any I/O
	fmt.Println(errors.Is(err, vhost.ErrInvalidName))
	// Output:
	// [www.example.com] <nil>
	// [new.example.com] <nil>
	// stored: true
	// true
	// true
}
