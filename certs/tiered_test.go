package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"massvhost/test/certtest"
)

func TestTieredGet(t *testing.T) {
	ca := certtest.NewCA(t)
	primaryPEM, primaryKey := ca.Leaf(t, "a.test")
	fallbackPEM, fallbackKey := ca.Leaf(t, "a.test")

	// Real file stores in each state Tiered distinguishes.
	has := func(certPEM, keyPEM []byte) Store {
		dir := t.TempDir()
		certtest.WritePair(t, dir, "a.test", certPEM, keyPEM)
		return FileStore{Dir: dir}
	}
	empty := func() Store { return FileStore{Dir: t.TempDir()} }
	down := func() Store { return FileStore{Dir: filepath.Join(t.TempDir(), "unmounted")} }
	broken := func() Store { return has(bytes.Repeat([]byte("x"), MaxPEMSize+1), primaryKey) }

	for _, tc := range []struct {
		name              string
		primary, fallback Store
		want              []byte // the certificate PEM expected, or nil
		wantErr           error
		notErr            error // a sentinel the error must not wrap
	}{
		{"primary has it", has(primaryPEM, primaryKey), has(fallbackPEM, fallbackKey), primaryPEM, nil, nil},
		{"primary misses", empty(), has(fallbackPEM, fallbackKey), fallbackPEM, nil, nil},
		{"primary down", down(), has(fallbackPEM, fallbackKey), fallbackPEM, nil, nil},
		{"both miss", empty(), empty(), nil, ErrNotFound, ErrUnavailable},
		{"primary down, fallback misses", down(), empty(), nil, ErrUnavailable, ErrNotFound},
		{"primary misses, fallback down", empty(), down(), nil, ErrUnavailable, ErrNotFound},
		{"both down", down(), down(), nil, ErrUnavailable, ErrNotFound},
		{"primary broken is not hidden", broken(), has(fallbackPEM, fallbackKey), nil, ErrInvalidCert, nil},
		{"fallback broken", empty(), broken(), nil, ErrInvalidCert, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := Tiered{Primary: tc.primary, Fallback: tc.fallback}.Get(context.Background(), "a.test")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
				if tc.notErr != nil && errors.Is(err, tc.notErr) {
					t.Errorf("error %v also wraps %v", err, tc.notErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Error("served the wrong tier's certificate")
			}
		})
	}
}

func TestTieredWriteAndList(t *testing.T) {
	ca := certtest.NewCA(t)
	ctx := context.Background()
	pdir, fdir := t.TempDir(), t.TempDir()
	for _, n := range []string{"a.test", "b.test"} {
		certPEM, keyPEM := ca.Leaf(t, n)
		certtest.WritePair(t, fdir, n, certPEM, keyPEM)
	}
	tiered := Tiered{Primary: FileStore{Dir: pdir}, Fallback: FileStore{Dir: fdir}}
	certPEM, keyPEM := ca.Leaf(t, "c.test")
	if err := tiered.Put(ctx, "b.test", certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (FileStore{Dir: pdir}).Get(ctx, "b.test"); err != nil {
		t.Errorf("Put did not write to Primary: %v", err)
	}
	var names []string
	if err := tiered.List(ctx, func(n string) error { names = append(names, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"b.test", "a.test"}; !slices.Equal(names, want) {
		t.Errorf("List = %q, want %q (Primary first, each once)", names, want)
	}
	if err := tiered.Delete(ctx, "b.test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (FileStore{Dir: pdir}).Get(ctx, "b.test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete did not remove from Primary: %v", err)
	}

	readOnly := Tiered{Primary: storeOnly{}, Fallback: FileStore{Dir: fdir}}
	if err := readOnly.Put(ctx, "a.test", certPEM, keyPEM); err == nil || !strings.Contains(err.Error(), "does not implement Writer") {
		t.Errorf("Put to a read-only Primary: %v, want an error naming Writer", err)
	}
}

// hangingStore stands for a primary that never answers (a frozen Redis): it
// waits for the caller's deadline, as a blocked socket read would.
type hangingStore struct{}

func (hangingStore) Get(ctx context.Context, name string) ([]byte, []byte, error) {
	<-ctx.Done()
	return nil, nil, fmt.Errorf("hanging store %q: %w: %v", name, ErrUnavailable, ctx.Err())
}

func TestTieredFallbackWhenPrimaryHangs(t *testing.T) {
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Leaf(t, "a.test")
	dir := t.TempDir()
	certtest.WritePair(t, dir, "a.test", certPEM, keyPEM)
	tiered := Tiered{Primary: hangingStore{}, Fallback: FileStore{Dir: dir}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got, _, err := tiered.Get(ctx, "a.test")
	if err != nil {
		t.Fatalf("fallback not reached while the primary hangs: %v", err)
	}
	if !bytes.Equal(got, certPEM) {
		t.Fatal("fallback returned another certificate")
	}
}
