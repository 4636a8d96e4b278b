package certs

import (
	"context"
	"errors"
	"time"
)

// expiringBatch is how many names Expiring reads per round.
const expiringBatch = 200

// ListStore is a store that can enumerate its names.
type ListStore interface {
	Store
	Lister
}

// Expiry is one entry of an expiry report.
type Expiry struct {
	Name     string
	NotAfter time.Time // zero when Err is set
	// Err is why the stored pair could not be checked (unreadable,
	// invalid); such entries are always reported, since they will not
	// serve either.
	Err error
}

// Expiring is `certs expiring --within D`: it walks every name in s and
// calls fn for each pair whose leaf expires before now+within (expired ones
// included) and for each pair that cannot be read or does not validate.
// Names come from List; pairs are read in pipelined batches from a
// RedisStore. An unavailable store stops the walk with an error wrapping
// ErrUnavailable; an error from fn stops it and is returned.
func Expiring(ctx context.Context, s ListStore, within time.Duration, now time.Time, fn func(Expiry) error) error {
	deadline := now.Add(within)
	var names []string
	flush := func() error {
		if len(names) == 0 {
			return nil
		}
		res, err := readPairs(ctx, s, names)
		if err != nil {
			return err
		}
		for i, r := range res {
			e := Expiry{Name: names[i], Err: r.Err}
			if e.Err == nil {
				pair, err := parsePair(e.Name, r.CertPEM, r.KeyPEM)
				if err != nil {
					e.Err = err
				} else {
					e.NotAfter = pair.Leaf.NotAfter
				}
			}
			if e.Err != nil || e.NotAfter.Before(deadline) {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		names = names[:0]
		return nil
	}
	err := s.List(ctx, func(name string) error {
		names = append(names, name)
		if len(names) < expiringBatch {
			return nil
		}
		return flush()
	})
	if err != nil {
		return err
	}
	return flush()
}

// readPairs reads names from s, in one pipeline for a RedisStore. A read
// that finds the store unavailable fails the whole call (errors wrapping
// ErrUnavailable); other per-name errors are in the results.
func readPairs(ctx context.Context, s Store, names []string) ([]getResult, error) {
	var res []getResult
	if rs, ok := s.(*RedisStore); ok {
		var err error
		if res, err = rs.getBatch(ctx, names); err != nil {
			return nil, err
		}
	} else {
		res = make([]getResult, len(names))
		for i, n := range names {
			res[i].CertPEM, res[i].KeyPEM, res[i].Err = s.Get(ctx, n)
		}
	}
	for _, r := range res {
		if errors.Is(r.Err, ErrUnavailable) {
			return nil, r.Err
		}
	}
	return res, nil
}
