package vhost

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mkTenant creates <root>/<rel>/htdocs and <root>/<rel>/cgi-bin.
func mkTenant(t testing.TB, root, rel string) {
	t.Helper()
	for _, d := range []string{"htdocs", "cgi-bin"} {
		if err := os.MkdirAll(filepath.Join(root, rel, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// mapAliases is an AliasSource backed by a map. lookup, if set, runs first
// and can block, count or fail a lookup.
type mapAliases struct {
	m      map[string]string
	lookup func(ctx context.Context, host string) error
}

func (a *mapAliases) LookupAlias(ctx context.Context, host string) (string, error) {
	if a.lookup != nil {
		if err := a.lookup(ctx, host); err != nil {
			return "", err
		}
	}
	if t, ok := a.m[host]; ok {
		return t, nil
	}
	return "", ErrNoSuchHost
}

// fakeClock is the Resolver's now seam, advanced by tests instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestResolver(t testing.TB, opts Options) (*Resolver, *fakeClock) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r, err := NewResolver(opts)
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	r.now = clock.now
	return r, clock
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	for _, h := range []string{"a.test", "www.b.test", "b.test", "default.test", "xn--bcher-kva.example"} {
		mkTenant(t, root, h)
	}
	mkTenant(t, root, "e/x/example.test")
	if err := os.MkdirAll(filepath.Join(root, "file.test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "file.test", "htdocs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "loop.test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("htdocs", filepath.Join(root, "loop.test", "htdocs")); err != nil {
		t.Fatal(err)
	}
	errRedisDown := errors.New("connection refused")
	aliases := &mapAliases{
		m: map[string]string{
			"alias.test":    "A.test",
			"dangling.test": "missing.test",
			"bad.test":      "../../etc",
		},
		lookup: func(_ context.Context, host string) error {
			if host == "down.test" {
				return errRedisDown
			}
			return nil
		},
	}
	site := func(name, tenant string) Site {
		dir := filepath.Join(root, tenant)
		return Site{
			Name: name, Tenant: tenant, Root: dir,
			DocRoot: filepath.Join(dir, "htdocs"), CGIBin: filepath.Join(dir, "cgi-bin"),
			Owner: uint32(os.Getuid()), Group: uint32(os.Getgid()),
		}
	}
	withDefault := func(o *Options) { o.Default = "Default.test" }
	tests := []struct {
		name    string
		opts    func(*Options)
		host    string
		want    Site
		wantErr error // checked with errors.Is; nil means want is expected
	}{
		{name: "own directory", host: "a.test", want: site("a.test", "a.test")},
		{name: "raw host", host: "A.TEST.:8443", want: site("a.test", "a.test")},
		{name: "punycode tenant", host: "xn--bcher-kva.example", want: site("xn--bcher-kva.example", "xn--bcher-kva.example")},
		{name: "www with own directory", host: "www.b.test", opts: func(o *Options) { o.WWWAlias = true }, want: site("www.b.test", "www.b.test")},
		{name: "www alias", host: "www.a.test", opts: func(o *Options) { o.WWWAlias = true }, want: site("www.a.test", "a.test")},
		{name: "www alias off", host: "www.a.test", wantErr: ErrNoSuchHost},
		{name: "www alias of nothing", host: "www.nope.test", opts: func(o *Options) { o.WWWAlias = true }, wantErr: ErrNoSuchHost},
		{name: "unknown", host: "nope.test", wantErr: ErrNoSuchHost},
		{name: "unknown with default", host: "nope.test", opts: withDefault, want: site("default.test", "default.test")},
		{name: "default itself", host: "default.test", opts: withDefault, want: site("default.test", "default.test")},
		{name: "missing default", host: "nope.test", opts: func(o *Options) { o.Default = "gone.test" }, wantErr: ErrNoSuchHost},
		{name: "invalid", host: "../../etc/passwd", wantErr: ErrInvalidName},
		{name: "invalid with default", host: "a..test", opts: withDefault, wantErr: ErrInvalidName},
		{name: "IP literal", host: "127.0.0.1:443", wantErr: ErrInvalidName},
		{name: "IP literal with default", host: "127.0.0.1:443", opts: withDefault, want: site("default.test", "default.test")},
		{name: "IPv6 literal with default", host: "[::1]:443", opts: withDefault, want: site("default.test", "default.test")},
		{name: "bracketed garbage with default", host: "[a]", opts: withDefault, wantErr: ErrInvalidName},
		{name: "no host with default", host: "", opts: withDefault, want: site("default.test", "default.test")},
		{name: "docroot is a file", host: "file.test", wantErr: ErrNoSuchHost},
		{name: "docroot is a symlink loop", host: "loop.test", wantErr: errUnexpected},
		{name: "tenant dir without docroot", host: "e", wantErr: ErrNoSuchHost},
		{
			name: "hashed layout", host: "example.test",
			opts: func(o *Options) { o.DocRoot = "%1.1/%1.2/%0/htdocs"; o.CGIBin = "%1.1/%1.2/%0/cgi-bin" },
			want: func() Site {
				s := site("example.test", "e/x/example.test")
				s.Tenant = "example.test"
				return s
			}(),
		},
		{name: "alias", host: "alias.test", opts: func(o *Options) { o.Aliases = aliases }, want: site("alias.test", "a.test")},
		{name: "alias to missing tenant", host: "dangling.test", opts: func(o *Options) { o.Aliases = aliases }, wantErr: ErrNoSuchHost},
		{name: "alias to invalid name", host: "bad.test", opts: func(o *Options) { o.Aliases = aliases }, wantErr: ErrNoSuchHost},
		{name: "alias source down", host: "down.test", opts: func(o *Options) { o.Aliases = aliases; o.Default = "default.test" }, wantErr: errRedisDown},
		{name: "not an alias", host: "nope.test", opts: func(o *Options) { o.Aliases = aliases }, wantErr: ErrNoSuchHost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Root: root}
			if tc.opts != nil {
				tc.opts(&opts)
			}
			r, _ := newTestResolver(t, opts)
			got, err := r.Resolve(t.Context(), tc.host)
			switch {
			case tc.wantErr == errUnexpected:
				if err == nil || errors.Is(err, ErrNoSuchHost) || errors.Is(err, ErrInvalidName) {
					t.Fatalf("Resolve(%q) = %+v, %v; want a server-side error", tc.host, got, err)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Resolve(%q) = %+v, %v; want %v", tc.host, got, err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("Resolve(%q): %v", tc.host, err)
			case got != tc.want:
				t.Fatalf("Resolve(%q) =\n %+v, want\n %+v", tc.host, got, tc.want)
			}
		})
	}
}

// errUnexpected marks table cases that expect an error that is neither
// ErrNoSuchHost nor ErrInvalidName.
var errUnexpected = errors.New("unexpected error")

func TestExists(t *testing.T) {
	root := t.TempDir()
	mkTenant(t, root, "a.test")
	mkTenant(t, root, "default.test")
	r, _ := newTestResolver(t, Options{
		Root: root, WWWAlias: true, Default: "default.test",
		Aliases: &mapAliases{m: map[string]string{"alias.test": "a.test"}},
	})
	for host, want := range map[string]bool{
		"a.test":           true,
		"A.test:443":       true,
		"www.a.test":       true,
		"alias.test":       true,
		"default.test":     true,
		"nope.test":        false, // served by the default site, but no tenant
		"www.nope.test":    false,
		"127.0.0.1":        false,
		"../../etc/passwd": false,
		"":                 false,
	} {
		if got := r.Exists(t.Context(), host); got != want {
			t.Errorf("Exists(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestResolveTTL(t *testing.T) {
	root := t.TempDir()
	r, clock := newTestResolver(t, Options{Root: root, CacheTTL: 5 * time.Second})
	ctx := t.Context()

	if _, err := r.Resolve(ctx, "new.test"); !errors.Is(err, ErrNoSuchHost) {
		t.Fatalf("before creation: %v, want ErrNoSuchHost", err)
	}
	mkTenant(t, root, "new.test")
	if _, err := r.Resolve(ctx, "new.test"); !errors.Is(err, ErrNoSuchHost) {
		t.Fatalf("miss within TTL: %v, want the cached ErrNoSuchHost", err)
	}
	if r.Exists(ctx, "new.test") {
		t.Fatal("Exists within TTL of the miss = true")
	}
	clock.advance(5 * time.Second)
	site, err := r.Resolve(ctx, "new.test")
	if err != nil || site.Tenant != "new.test" {
		t.Fatalf("after TTL: %+v, %v; want new.test served", site, err)
	}

	if err := os.RemoveAll(filepath.Join(root, "new.test")); err != nil {
		t.Fatal(err)
	}
	clock.advance(4 * time.Second)
	if _, err := r.Resolve(ctx, "new.test"); err != nil {
		t.Fatalf("removed, within TTL: %v, want the cached site", err)
	}
	clock.advance(time.Second)
	if _, err := r.Resolve(ctx, "new.test"); !errors.Is(err, ErrNoSuchHost) {
		t.Fatalf("removed, after TTL: %v, want ErrNoSuchHost", err)
	}
}

func TestForget(t *testing.T) {
	root := t.TempDir()
	r, _ := newTestResolver(t, Options{Root: root, WWWAlias: true})
	ctx := t.Context()
	for _, h := range []string{"a.test", "www.a.test"} {
		if _, err := r.Resolve(ctx, h); !errors.Is(err, ErrNoSuchHost) {
			t.Fatalf("Resolve(%q) = %v, want ErrNoSuchHost", h, err)
		}
	}
	mkTenant(t, root, "a.test")
	r.Forget("A.TEST.")
	for _, h := range []string{"a.test", "www.a.test"} {
		if site, err := r.Resolve(ctx, h); err != nil || site.Tenant != "a.test" {
			t.Fatalf("after Forget, Resolve(%q) = %+v, %v", h, site, err)
		}
	}
	r.Forget("../../etc/passwd") // ignored, no panic
}

func TestResolveCacheBound(t *testing.T) {
	root := t.TempDir()
	r, _ := newTestResolver(t, Options{Root: root, CacheSize: 3})
	for i := range 10 {
		host := string(rune('a'+i)) + ".test"
		mkTenant(t, root, host)
		if _, err := r.Resolve(t.Context(), host); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Resolve(t.Context(), "no-"+host); !errors.Is(err, ErrNoSuchHost) {
			t.Fatal(err)
		}
	}
	if n := r.sites.Len(); n != 3 {
		t.Errorf("found-site cache holds %d entries, want 3", n)
	}
	if n := r.misses.Len(); n != 3 {
		t.Errorf("miss cache holds %d entries, want 3", n)
	}
	if _, ok := r.sites.Peek("j.test"); !ok {
		t.Error("most recent site was evicted")
	}
}

// blocker is an AliasSource for "alias.test" → "a.test" whose lookups
// count themselves, announce themselves on entered and wait for release to
// close (or their context to end).
type blocker struct {
	calls    atomic.Int32
	entered  chan struct{}
	release  chan struct{}
	resolver *Resolver
}

func newBlocker(t *testing.T) *blocker {
	t.Helper()
	root := t.TempDir()
	mkTenant(t, root, "a.test")
	b := &blocker{entered: make(chan struct{}, 100), release: make(chan struct{})}
	aliases := &mapAliases{
		m: map[string]string{"alias.test": "a.test"},
		lookup: func(ctx context.Context, _ string) error {
			b.calls.Add(1)
			b.entered <- struct{}{}
			select {
			case <-b.release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}
	b.resolver, _ = newTestResolver(t, Options{Root: root, Aliases: aliases, LookupTimeout: time.Hour})
	return b
}

func TestResolveConcurrentMissesShareOneLookup(t *testing.T) {
	b := newBlocker(t)
	r := b.resolver

	const n = 50
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			site, err := r.Resolve(t.Context(), "alias.test")
			if err == nil && site.Tenant != "a.test" {
				err = errors.New("wrong tenant " + site.Tenant)
			}
			errs <- err
		})
	}
	close(start)
	<-b.entered
	close(b.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if c := b.calls.Load(); c != 1 {
		t.Errorf("alias lookups = %d, want 1", c)
	}
}

func TestResolveCallerCancelDoesNotFailOthers(t *testing.T) {
	b := newBlocker(t)
	r := b.resolver

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Resolve(ctx, "alias.test")
		done <- err
	}()
	<-b.entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	close(b.release) // the shared lookup was not cancelled with its first caller
	if site, err := r.Resolve(t.Context(), "alias.test"); err != nil || site.Tenant != "a.test" {
		t.Fatalf("Resolve after release = %+v, %v", site, err)
	}
	if c := b.calls.Load(); c != 1 {
		t.Errorf("alias lookups = %d, want 1", c)
	}
}

func TestForgetDuringLoadIsNotCached(t *testing.T) {
	b := newBlocker(t)
	r := b.resolver

	done := make(chan error, 1)
	go func() {
		_, err := r.Resolve(t.Context(), "alias.test")
		done <- err
	}()
	<-b.entered
	r.Forget("alias.test")
	close(b.release)
	if err := <-done; err != nil {
		t.Fatalf("in-flight Resolve: %v", err)
	}
	if _, err := r.Resolve(t.Context(), "alias.test"); err != nil {
		t.Fatal(err)
	}
	if c := b.calls.Load(); c != 2 {
		t.Errorf("alias lookups = %d, want 2 (the result loaded across Forget is not cached)", c)
	}
}

func TestNewResolver(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		opts Options
	}{
		{"no root", Options{}},
		{"missing root", Options{Root: filepath.Join(root, "missing")}},
		{"root is a file", Options{Root: file}},
		{"bad docroot", Options{Root: root, DocRoot: "/abs/%0"}},
		{"bad cgi-bin", Options{Root: root, CGIBin: "cgi-bin"}},
		{"bad default", Options{Root: root, Default: "a..test"}},
		{"negative cache size", Options{Root: root, CacheSize: -1}},
		{"negative TTL", Options{Root: root, CacheTTL: -time.Second}},
		{"negative timeout", Options{Root: root, LookupTimeout: -time.Second}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewResolver(tc.opts); err == nil {
				t.Fatal("NewResolver succeeded, want error")
			}
		})
	}
	t.Run("relative root", func(t *testing.T) {
		mkTenant(t, root, "a.test")
		t.Chdir(root)
		r, err := NewResolver(Options{Root: "."})
		if err != nil {
			t.Fatal(err)
		}
		site, err := r.Resolve(t.Context(), "a.test")
		if err != nil || site.DocRoot != filepath.Join(root, "a.test", "htdocs") {
			t.Fatalf("Resolve = %+v, %v; want an absolute DocRoot", site, err)
		}
	})
}

func TestResolveHitAllocs(t *testing.T) {
	root := t.TempDir()
	mkTenant(t, root, "a.test")
	r, _ := newTestResolver(t, Options{Root: root})
	ctx := t.Context()
	if _, err := r.Resolve(ctx, "a.test"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = r.Resolve(ctx, "a.test") }); n != 0 {
		t.Errorf("a cached Resolve allocates %v times, want 0", n)
	}
}

func BenchmarkResolve(b *testing.B) {
	root := b.TempDir()
	mkTenant(b, root, "www.example.com")
	r, err := NewResolver(Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "www.example.com"); err != nil {
		b.Fatal(err)
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Resolve(ctx, "www.example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Resolve(ctx, "WWW.Example.com:443"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func TestWithin(t *testing.T) {
	tests := []struct {
		root, path string
		want       bool
	}{
		{"/srv/sites", "/srv/sites/a.test/htdocs", true},
		{"/srv/sites", "/srv/sites/a", true},
		{"/srv/sites", "/srv/sites", false},
		{"/srv/sites", "/srv/sites-b/a", false},
		{"/srv/sites", "/srv/sitesa", false},
		{"/srv/sites", "/srv", false},
		{"/srv/sites", "/etc/passwd", false},
		{"/", "/a", true},
		{"/", "/", false},
	}
	for _, tc := range tests {
		t.Run(tc.root+" "+tc.path, func(t *testing.T) {
			r := &Resolver{root: tc.root}
			if got := r.within(tc.path); got != tc.want {
				t.Fatalf("within(%q) under %q = %v, want %v", tc.path, tc.root, got, tc.want)
			}
		})
	}
}
