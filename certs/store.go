package certs

import (
	"context"
	"errors"
)

// Errors that classify a store lookup. The Manager treats them differently:
// ErrNotFound is remembered in the negative cache; ErrUnavailable keeps serving
// a stale cached certificate (stale-if-error) and is never negative-cached.
var (
	ErrNotFound    = errors.New("certs: not found")
	ErrUnavailable = errors.New("certs: store unavailable")
)

// Store loads the certificate chain and key for an exact name (a canonical
// host or "*.example.com"). Get returns an error wrapping ErrNotFound when the
// store has no pair for name, and one wrapping ErrUnavailable when the store
// could not be asked (timeout, I/O, connection refused). Implementations are
// safe for concurrent use and honor ctx. Callers pass only names that passed
// vhost.Normalize (or "*." plus such a name).
type Store interface {
	Get(ctx context.Context, name string) (certPEM, keyPEM []byte, err error)
}

// Writer is implemented by stores that can be written ("certs put", issuers).
// Put replaces the pair atomically: a reader sees the old pair or the new one,
// never a mix. Delete returns no error if name is absent.
type Writer interface {
	Put(ctx context.Context, name string, certPEM, keyPEM []byte) error
	Delete(ctx context.Context, name string) error
}

// Lister is implemented by stores that can enumerate their names (preload
// mode, "certs ls"). fn is called once per name; returning an error stops the
// walk and is returned.
type Lister interface {
	List(ctx context.Context, fn func(name string) error) error
}
