package certs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Tiered reads from Primary and falls back to Fallback when Primary has no
// pair for the name or cannot be asked; the usual shape is Redis in front of
// a file directory ("redis+files"), so that the files keep serving while
// Redis is down. Writes go to Primary only. Both stores must be set.
//
// When both fail, the error wraps [ErrNotFound] only if both reported not
// found; if either could not be asked it wraps [ErrUnavailable] instead, so
// that the Manager keeps serving cached certificates rather than remembering
// a miss that may be false. A Fallback answer of [ErrInvalidCert] (or any
// unclassified error) is returned as is. An ErrInvalidCert from Primary is
// returned without asking Fallback: a broken pair is to be fixed, not hidden.
//
// When ctx has a deadline, Primary gets at most PrimaryShare of the time
// left, so that a Primary that hangs until the deadline (a frozen Redis)
// still leaves Fallback time to answer from local files.
//
// A Tiered is safe for concurrent use if both stores are.
type Tiered struct {
	Primary, Fallback Store
}

// PrimaryShare is the fraction of a lookup's remaining time that Tiered
// gives to its Primary store; the rest is kept for Fallback.
const PrimaryShare = 0.75

// Get implements [Store].
func (t Tiered) Get(ctx context.Context, name string) (certPEM, keyPEM []byte, err error) {
	pctx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, time.Duration(float64(time.Until(deadline))*PrimaryShare))
		defer cancel()
	}
	certPEM, keyPEM, perr := t.Primary.Get(pctx, name)
	if perr == nil {
		return certPEM, keyPEM, nil
	}
	if !errors.Is(perr, ErrNotFound) && !errors.Is(perr, ErrUnavailable) {
		return nil, nil, perr
	}
	certPEM, keyPEM, ferr := t.Fallback.Get(ctx, name)
	switch {
	case ferr == nil:
		return certPEM, keyPEM, nil
	case errors.Is(ferr, ErrNotFound) && errors.Is(perr, ErrNotFound):
		return nil, nil, fmt.Errorf("certs: tiered %q: primary: %w; fallback: %w", name, perr, ferr)
	case errors.Is(ferr, ErrNotFound) || errors.Is(ferr, ErrUnavailable):
		return nil, nil, fmt.Errorf("certs: tiered %q: %w (primary: %v; fallback: %v)", name, ErrUnavailable, perr, ferr)
	default:
		return nil, nil, fmt.Errorf("certs: tiered %q: fallback: %w (primary: %v)", name, ferr, perr)
	}
}

// Put implements [Writer] by writing to Primary.
func (t Tiered) Put(ctx context.Context, name string, certPEM, keyPEM []byte) error {
	w, ok := t.Primary.(Writer)
	if !ok {
		return fmt.Errorf("certs: tiered put: %T does not implement Writer", t.Primary)
	}
	return w.Put(ctx, name, certPEM, keyPEM)
}

// Delete implements [Writer] by deleting from Primary. A pair still in
// Fallback is served again after the deletion.
func (t Tiered) Delete(ctx context.Context, name string) error {
	w, ok := t.Primary.(Writer)
	if !ok {
		return fmt.Errorf("certs: tiered delete: %T does not implement Writer", t.Primary)
	}
	return w.Delete(ctx, name)
}

// List implements [Lister]: the names of Primary, then those of Fallback not
// already listed, each once. A store that is not a Lister is skipped; if
// neither is, List returns an error. The set of names seen is kept in
// memory for the duration of the walk.
func (t Tiered) List(ctx context.Context, fn func(name string) error) error {
	seen := make(map[string]bool)
	listed := false
	for _, s := range []Store{t.Primary, t.Fallback} {
		l, ok := s.(Lister)
		if !ok {
			continue
		}
		listed = true
		err := l.List(ctx, func(name string) error {
			if seen[name] {
				return nil
			}
			seen[name] = true
			return fn(name)
		})
		if err != nil {
			return err
		}
	}
	if !listed {
		return fmt.Errorf("certs: tiered list: neither %T nor %T implements Lister", t.Primary, t.Fallback)
	}
	return nil
}

// Interface guards.
var (
	_ Store  = Tiered{}
	_ Writer = Tiered{}
	_ Lister = Tiered{}
)
