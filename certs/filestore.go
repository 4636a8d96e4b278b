package certs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// FileStore keeps certificates as files in one directory: <Dir>/<name>.crt
// holds the PEM chain (leaf first) and <Dir>/<name>.key the PEM private key.
// A wildcard certificate for *.example.com lives under the name
// "*.example.com". The zero value is not usable; set Dir.
//
// Every access goes through os.OpenRoot(Dir), so no name and no symbolic link
// can make it open a file outside Dir; a link that points out of Dir (the way
// certbot's live/ links point into archive/) is refused, so import such trees
// rather than pointing Dir at them. Names are checked before any file is
// opened: a name that is not canonical (see vhost.Normalize) or "*." plus a
// canonical name is reported as not found, without I/O. Files larger than
// [MaxPEMSize] are refused with [ErrInvalidCert].
//
// A FileStore is safe for concurrent use, also by several processes.
type FileStore struct {
	Dir string
}

const (
	certSuffix = ".crt"
	keySuffix  = ".key"
	// tempPrefix starts the names of files being written; List skips them.
	tempPrefix = ".tmp-"
)

// Get implements [Store].
func (s FileStore) Get(ctx context.Context, name string) (certPEM, keyPEM []byte, err error) {
	if err := checkStoreName(name); err != nil {
		return nil, nil, fmt.Errorf("certs: file store: %w: %w", ErrNotFound, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("certs: file store %q: %w: %w", name, ErrUnavailable, err)
	}
	root, err := s.openRoot()
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	certPEM, err = readCapped(root, name+certSuffix)
	if err != nil {
		return nil, nil, s.fileError(name, name+certSuffix, err)
	}
	keyPEM, err = readCapped(root, name+keySuffix)
	if err != nil {
		return nil, nil, s.fileError(name, name+keySuffix, err)
	}
	return certPEM, keyPEM, nil
}

// openRoot opens Dir. A missing or unreadable directory is a fault of the
// deployment, not an absent certificate, so it is reported as unavailable and
// never negative-cached.
func (s FileStore) openRoot() (*os.Root, error) {
	if s.Dir == "" {
		return nil, fmt.Errorf("certs: file store: %w: Dir is empty", ErrUnavailable)
	}
	root, err := os.OpenRoot(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("certs: file store: %w: %w", ErrUnavailable, err)
	}
	return root, nil
}

// fileError classifies a failure to read file for name.
func (s FileStore) fileError(name, file string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("certs: file store %q: %w: %w", name, ErrNotFound, err)
	case errors.Is(err, ErrInvalidCert):
		return err
	default:
		return fmt.Errorf("certs: file store %q: read %s: %w: %w", name, file, ErrUnavailable, err)
	}
}

// readCapped reads a regular file of at most MaxPEMSize bytes.
func readCapped(root *os.Root, file string) ([]byte, error) {
	f, err := root.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, invalid(file, "not a regular file", nil)
	}
	if fi.Size() > MaxPEMSize {
		return nil, invalid(file, fmt.Sprintf("file of %d bytes exceeds %d", fi.Size(), MaxPEMSize), nil)
	}
	// The file may grow between Stat and Read: read one byte more than
	// allowed to notice.
	data, err := io.ReadAll(io.LimitReader(f, MaxPEMSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxPEMSize {
		return nil, invalid(file, fmt.Sprintf("file exceeds %d bytes", MaxPEMSize), nil)
	}
	return data, nil
}

// Put implements [Writer]. It creates Dir (0700) if needed, then writes the
// key (mode 0600) and the chain (0644) to temporary files, syncs them, and
// renames the key into place first and the chain second, then syncs the
// directory. Each file is replaced atomically, but the pair is not: a reader
// between the two renames sees the new key with the old chain. Such a reader
// gets a key mismatch, which the Manager reports as [ErrInvalidCert] and
// retries after its NegativeTTL; it never serves a mismatched pair. Renaming
// the key first means a reader never sees a new chain with an old key for
// longer than one rename.
func (s FileStore) Put(ctx context.Context, name string, certPEM, keyPEM []byte) error {
	if err := checkStoreName(name); err != nil {
		return fmt.Errorf("certs: file store put: %w", err)
	}
	if len(certPEM) > MaxPEMSize || len(keyPEM) > MaxPEMSize {
		return fmt.Errorf("certs: file store put %q: %w: PEM exceeds %d bytes", name, ErrInvalidCert, MaxPEMSize)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("certs: file store put %q: %w", name, err)
	}
	if s.Dir == "" {
		return errors.New("certs: file store put: Dir is empty")
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("certs: file store put %q: %w", name, err)
	}
	root, err := os.OpenRoot(s.Dir)
	if err != nil {
		return fmt.Errorf("certs: file store put %q: %w", name, err)
	}
	defer root.Close()

	keyTemp, err := writeTemp(root, keyPEM, 0o600)
	if err != nil {
		return fmt.Errorf("certs: file store put %q: key: %w", name, err)
	}
	certTemp, err := writeTemp(root, certPEM, 0o644)
	if err != nil {
		root.Remove(keyTemp)
		return fmt.Errorf("certs: file store put %q: certificate: %w", name, err)
	}
	if err := root.Rename(keyTemp, name+keySuffix); err != nil {
		root.Remove(keyTemp)
		root.Remove(certTemp)
		return fmt.Errorf("certs: file store put %q: %w", name, err)
	}
	if err := root.Rename(certTemp, name+certSuffix); err != nil {
		root.Remove(certTemp)
		return fmt.Errorf("certs: file store put %q: %w", name, err)
	}
	return syncDir(root)
}

// writeTemp writes data to a new, exclusively created temporary file in root
// and syncs it. It returns the file's name.
func writeTemp(root *os.Root, data []byte, perm os.FileMode) (string, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	name := tempPrefix + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return "", err
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		root.Remove(name)
		return "", werr
	}
	return name, nil
}

// syncDir makes renames in root durable.
func syncDir(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("certs: file store: sync directory: %w", err)
	}
	return nil
}

// Delete implements [Writer]. It removes the chain first, so that a reader
// sees either the whole pair or no certificate. An absent name is no error.
func (s FileStore) Delete(ctx context.Context, name string) error {
	if err := checkStoreName(name); err != nil {
		return fmt.Errorf("certs: file store delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("certs: file store delete %q: %w", name, err)
	}
	root, err := os.OpenRoot(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("certs: file store delete %q: %w", name, err)
	}
	defer root.Close()
	for _, file := range []string{name + certSuffix, name + keySuffix} {
		if err := root.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("certs: file store delete %q: %w", name, err)
		}
	}
	return nil
}

// List implements [Lister]. It calls fn, in lexical order, for every name
// that has both a .crt and a .key file in Dir. Files whose names are not
// canonical store names (for example "Example.COM.crt") are skipped, because
// Get would never read them.
func (s FileStore) List(ctx context.Context, fn func(name string) error) error {
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return fmt.Errorf("certs: file store list: %w: %w", ErrUnavailable, err)
	}
	keys := make(map[string]bool)
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), keySuffix); ok {
			keys[n] = true
		}
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), certSuffix)
		if !ok || !keys[name] || strings.HasPrefix(name, tempPrefix) || checkStoreName(name) != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("certs: file store list: %w", err)
		}
		if err := fn(name); err != nil {
			return err
		}
	}
	return nil
}

// Interface guards.
var (
	_ Store  = FileStore{}
	_ Writer = FileStore{}
	_ Lister = FileStore{}
)
