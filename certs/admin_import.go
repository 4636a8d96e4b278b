package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// DefaultImportBatch is how many pairs Import validates, compares and writes
// per round.
const DefaultImportBatch = 100

// ImportOptions configure Import. The zero value imports everything valid
// now, in batches of DefaultImportBatch.
type ImportOptions struct {
	// Now is the time validity is checked against; if zero, time.Now().
	Now time.Time
	// Force stores certificates outside their validity period.
	Force bool
	// DryRun validates and compares but writes nothing.
	DryRun bool
	// BatchSize is pairs per round; if zero, DefaultImportBatch.
	BatchSize int
	// Progress, if set, is called after each round with the pairs
	// handled so far and the total found (the CLI draws a bar from it).
	Progress func(done, total int)
}

// ImportReport says what Import did with each pair it found.
type ImportReport struct {
	Imported  []string // names written (or that would be, with DryRun)
	Unchanged []string // names whose stored pair is byte-identical
	Invalid   []ImportProblem
}

// ImportProblem is a pair Import refused, with the reason.
type ImportProblem struct {
	Name   string // canonical name if known, else the file or directory name
	Source string // the file or directory it came from
	Err    error
}

func (p ImportProblem) String() string {
	return fmt.Sprintf("%s (%s): %v", p.Name, p.Source, p.Err)
}

// importSource is one pair found on disk.
type importSource struct {
	name              string
	certPath, keyPath string
}

// certbotLineage matches the suffix certbot gives a second lineage for the
// same name ("example.com-0001").
var certbotLineage = regexp.MustCompile(`-[0-9]{4}$`)

// Import is `certs import DIR`: it loads every pair in dir into w. It reads
// two layouts: the files layout (dir/<name>.crt with dir/<name>.key) and
// certbot's (dir/live/<name>/fullchain.pem with privkey.pem, or
// dir/<name>/fullchain.pem when dir is the live directory itself; a "-0001"
// lineage suffix is dropped). Each pair is validated with CheckPair; a broken
// pair is reported and the rest are still imported. A pair identical to what
// w already returns for the name (when w is also a Store) is reported
// unchanged and not rewritten, so Import is idempotent and an interrupted
// import can simply be rerun. A RedisStore is written in pipelined batches.
//
// The returned error is for failures that stop the import (dir unreadable,
// the store unavailable, ctx done); the report then covers the batches done.
func Import(ctx context.Context, w Writer, dir string, opts ImportOptions) (ImportReport, error) {
	var rep ImportReport
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	batch := opts.BatchSize
	if batch <= 0 {
		batch = DefaultImportBatch
	}
	sources, problems, err := findImportSources(dir)
	rep.Invalid = problems
	if err != nil {
		return rep, err
	}
	total := len(sources) + len(problems)
	done := len(problems)
	if opts.Progress != nil && len(sources) == 0 {
		opts.Progress(done, total)
	}
	for len(sources) > 0 {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("certs: import: %w", err)
		}
		chunk := sources[:min(batch, len(sources))]
		sources = sources[len(chunk):]
		if err := importBatch(ctx, w, chunk, now, opts, &rep); err != nil {
			return rep, err
		}
		done += len(chunk)
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	return rep, nil
}

// importBatch validates, compares and writes one batch.
func importBatch(ctx context.Context, w Writer, chunk []importSource, now time.Time, opts ImportOptions, rep *ImportReport) error {
	var pairs []Pair
	for _, src := range chunk {
		certPEM, err := readImportFile(src.certPath)
		if err == nil {
			var keyPEM []byte
			keyPEM, err = readImportFile(src.keyPath)
			if err == nil {
				_, err = CheckPair(src.name, certPEM, keyPEM, now, opts.Force)
				if err == nil {
					pairs = append(pairs, Pair{Name: src.name, CertPEM: certPEM, KeyPEM: keyPEM})
					continue
				}
			}
		}
		rep.Invalid = append(rep.Invalid, ImportProblem{Name: src.name, Source: filepath.Dir(src.certPath), Err: err})
	}
	current, err := currentPairs(ctx, w, pairs)
	if err != nil {
		return err
	}
	var changed []Pair
	for i, p := range pairs {
		if c := current[i]; c.Err == nil && bytes.Equal(c.CertPEM, p.CertPEM) && bytes.Equal(c.KeyPEM, p.KeyPEM) {
			rep.Unchanged = append(rep.Unchanged, p.Name)
			continue
		}
		changed = append(changed, p)
	}
	if !opts.DryRun && len(changed) > 0 {
		if err := putPairs(ctx, w, changed); err != nil {
			return err
		}
	}
	for _, p := range changed {
		rep.Imported = append(rep.Imported, p.Name)
	}
	return nil
}

// currentPairs returns what w holds for each pair's name, if w can be read.
// Missing or invalid stored data just means "changed"; an unavailable store
// stops the import, since writing would fail too.
func currentPairs(ctx context.Context, w Writer, pairs []Pair) ([]getResult, error) {
	names := make([]string, len(pairs))
	for i, p := range pairs {
		names[i] = p.Name
	}
	s, ok := w.(Store)
	if !ok {
		out := make([]getResult, len(pairs))
		for i := range out {
			out[i].Err = ErrNotFound
		}
		return out, nil
	}
	out, err := readPairs(ctx, s, names)
	if err != nil {
		return nil, fmt.Errorf("certs: import: %w", err)
	}
	return out, nil
}

// putPairs writes pairs, pipelined when w is a RedisStore.
func putPairs(ctx context.Context, w Writer, pairs []Pair) error {
	if rs, ok := w.(*RedisStore); ok {
		return rs.PutBatch(ctx, pairs)
	}
	for _, p := range pairs {
		if err := w.Put(ctx, p.Name, p.CertPEM, p.KeyPEM); err != nil {
			return err
		}
	}
	return nil
}

// findImportSources lists the pairs under dir, sorted by name, and the
// entries that cannot be pairs (a .crt without its .key, a name that is no
// host, a name found twice).
func findImportSources(dir string) ([]importSource, []ImportProblem, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: import: %w", err)
	}
	var (
		sources  []importSource
		problems []ImportProblem
		seen     = map[string]string{} // name → source
	)
	add := func(raw, certPath, keyPath string) {
		source := filepath.Dir(certPath)
		name, err := CanonicalName(raw)
		if err != nil {
			problems = append(problems, ImportProblem{Name: raw, Source: source, Err: err})
			return
		}
		if prev, dup := seen[name]; dup {
			problems = append(problems, ImportProblem{Name: name, Source: source, Err: fmt.Errorf("duplicate: %s is imported from %s", name, prev)})
			return
		}
		seen[name] = certPath
		sources = append(sources, importSource{name: name, certPath: certPath, keyPath: keyPath})
	}

	// Files layout: <name>.crt + <name>.key.
	files := map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() {
			files[e.Name()] = true
		}
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if base, ok := strings.CutSuffix(n, certSuffix); ok {
			if !files[base+keySuffix] {
				problems = append(problems, ImportProblem{Name: base, Source: filepath.Join(dir, n), Err: fmt.Errorf("no %s beside it", base+keySuffix)})
				continue
			}
			add(base, filepath.Join(dir, n), filepath.Join(dir, base+keySuffix))
		} else if base, ok := strings.CutSuffix(n, keySuffix); ok && !files[base+certSuffix] {
			problems = append(problems, ImportProblem{Name: base, Source: filepath.Join(dir, n), Err: fmt.Errorf("no %s beside it", base+certSuffix)})
		}
	}

	// certbot layout: live/<name>/fullchain.pem + privkey.pem, with dir
	// being either certbot's config dir or its live dir.
	liveDirs := []string{dir, filepath.Join(dir, "live")}
	for _, live := range liveDirs {
		subs, err := os.ReadDir(live)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, nil, fmt.Errorf("certs: import: %w", err)
		}
		for _, e := range subs {
			// certbot's live entries are directories (or symlinks
			// to them, in some backups).
			sub := filepath.Join(live, e.Name())
			if fi, err := os.Stat(sub); err != nil || !fi.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			chain := filepath.Join(sub, "fullchain.pem")
			if _, err := os.Stat(chain); err != nil {
				continue // not a lineage (archive/, renewal/, accounts/…)
			}
			key := filepath.Join(sub, "privkey.pem")
			if _, err := os.Stat(key); err != nil {
				problems = append(problems, ImportProblem{Name: e.Name(), Source: sub, Err: errors.New("fullchain.pem without privkey.pem")})
				continue
			}
			add(certbotLineage.ReplaceAllString(e.Name(), ""), chain, key)
		}
	}
	sort.Slice(sources, func(i, j int) bool { return sources[i].name < sources[j].name })
	return sources, problems, nil
}

// readImportFile reads a PEM file of at most MaxPEMSize bytes, following
// symlinks (certbot's live/ files link into archive/).
func readImportFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPEMSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxPEMSize {
		return nil, invalid(filepath.Base(p), fmt.Sprintf("file exceeds %d bytes", MaxPEMSize), nil)
	}
	return data, nil
}
