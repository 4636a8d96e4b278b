package conf

import (
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"massvhost/server"
	"massvhost/vhost"
)

// leafKeys lists the dotted keys of a parsed file tree.
func leafKeys(prefix string, tree map[string]any) []string {
	var out []string
	for k, v := range tree {
		if sub, ok := v.(map[string]any); ok {
			out = append(out, leafKeys(prefix+k+".", sub)...)
			continue
		}
		out = append(out, prefix+k)
	}
	slices.Sort(out)
	return out
}

// TestDefaultMatchesKeys checks that the three descriptions of the keys
// agree: the Config struct, the embedded default.yaml, and the contract's
// key list (testdata/keys.yaml), keys and values both.
func TestDefaultMatchesKeys(t *testing.T) {
	contract, err := os.ReadFile("testdata/keys.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kv, errs := parseFile("keys.yaml", contract)
	if len(errs) > 0 {
		t.Fatalf("keys.yaml does not parse against Config: %v", errs)
	}
	dv, errs := parseFile("default.yaml", defaultYAML)
	if len(errs) > 0 {
		t.Fatalf("default.yaml does not parse against Config: %v", errs)
	}
	structKeys := slices.Sorted(slices.Values(Keys()))
	if got := leafKeys("", kv.tree); !slices.Equal(got, structKeys) {
		t.Errorf("keys.yaml keys differ from Config:\n keys.yaml %v\n Config    %v", got, structKeys)
	}
	if got := leafKeys("", dv.tree); !slices.Equal(got, structKeys) {
		t.Errorf("default.yaml keys differ from Config:\n default.yaml %v\n Config       %v", got, structKeys)
	}

	// Decode the contract list the way Load decodes a file and compare the
	// values with Default.
	v, err := newViper()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.MergeConfigMap(kv.tree); err != nil {
		t.Fatal(err)
	}
	fromContract := &Config{}
	if errs := decode(v, fromContract); len(errs) > 0 {
		t.Fatalf("decode keys.yaml: %v", errs)
	}
	if def := Default(); !reflect.DeepEqual(def, fromContract) {
		t.Errorf("Default() differs from keys.yaml:\n got  %+v\n want %+v", def, fromContract)
	}
}

// TestDefaultEveryField checks that Default sets every field that has a
// non-zero default, so no key silently decodes to its zero value.
func TestDefaultEveryField(t *testing.T) {
	d := Default()
	if d.Certs.CacheSize != 10000 || d.Certs.TTL != time.Hour || d.CGI.Limits.CPU != 30*time.Second ||
		!slices.Equal(d.CGI.PassEnv, []string{"LANG", "LC_ALL", "TZ"}) || d.Certs.NewNameRate != 200 {
		t.Errorf("Default() = %+v", d)
	}
	if d.Source() != "embedded default" || !d.LoadedAt.IsZero() {
		t.Errorf("Default(): Source %q LoadedAt %v", d.Source(), d.LoadedAt)
	}
	if Default() == d || &Default().Sites.Index[0] == &d.Sites.Index[0] {
		t.Error("Default returns shared values; each call must return a new Config")
	}
}

func TestKeyNamesUnique(t *testing.T) {
	s := keys()
	if len(s.env) != len(s.order) {
		t.Errorf("%d keys map to %d environment names", len(s.order), len(s.env))
	}
	if len(s.flags) != len(s.order) {
		t.Errorf("%d keys map to %d flag names", len(s.order), len(s.flags))
	}
	for name, key := range s.env {
		if envName(key) != name || !strings.HasPrefix(name, EnvPrefix) {
			t.Errorf("env %s → %s", name, key)
		}
	}
	if _, ok := s.env[EnvConfig]; ok {
		t.Errorf("%s is reserved but names a key", EnvConfig)
	}
	if got := envName("certs.cache_size"); got != "MASSVHOST_CERTS_CACHE_SIZE" {
		t.Errorf("envName = %s", got)
	}
	if got := FlagName("cgi.limits.open_files"); got != "cgi-limits-open-files" {
		t.Errorf("FlagName = %s", got)
	}
}

func TestDefaultYAMLIsACopy(t *testing.T) {
	b := DefaultYAML()
	b[0] = 'X'
	if DefaultYAML()[0] == 'X' {
		t.Error("DefaultYAML returned the embedded slice itself")
	}
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.Redis.Password = "hunter2"
	r := c.Redacted()
	if r.Redis.Password != "REDACTED" || c.Redis.Password != "hunter2" {
		t.Errorf("Redacted: copy %q, original %q", r.Redis.Password, c.Redis.Password)
	}
	r.Redis.Addrs[0] = "changed:1"
	if c.Redis.Addrs[0] == "changed:1" {
		t.Error("Redacted shares slices with the original")
	}
	if Default().Redacted().Redis.Password != "" {
		t.Error("an empty password must stay empty")
	}
	c.ACME.EABHMACKey = "c2VjcmV0"
	if r := c.Redacted(); r.ACME.EABHMACKey != "REDACTED" || c.ACME.EABHMACKey != "c2VjcmV0" {
		t.Errorf("Redacted: EAB key copy %q, original %q", r.ACME.EABHMACKey, c.ACME.EABHMACKey)
	}
}

func TestSuggest(t *testing.T) {
	cands := slices.Collect(maps.Keys(keys().leaves))
	for _, tc := range []struct{ in, want string }{
		{"certs.cahce_size", "certs.cache_size"},
		{"cert.cache_size", "certs.cache_size"},
		{"listen.htps", "listen.https"},
		{"Sites.Root", "sites.root"},
		{"zzzzzz", ""},
		{"x", ""},
	} {
		got := suggest(tc.in, cands)
		if tc.want == "" && got != "" || tc.want != "" && got != " (did you mean "+tc.want+"?)" {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance = %d", d)
	}
}

// TestDefaultsMatchVhost checks that the operator-facing defaults agree with
// the defaults vhost applies to zero Options fields.
func TestDefaultsMatchVhost(t *testing.T) {
	d := Default().Sites
	if d.DocRoot != vhost.DefaultDocRoot || d.CGIBin != vhost.DefaultCGIBin ||
		d.CacheSize != vhost.DefaultCacheSize || d.CacheTTL != vhost.DefaultCacheTTL {
		t.Errorf("sites defaults %+v differ from vhost's", d)
	}
}

// TestDefaultsMatchServer checks that the operator-facing defaults agree
// with the defaults server applies to zero Options fields.
func TestDefaultsMatchServer(t *testing.T) {
	d := Default()
	if d.Server.MaxHeaderFields != server.DefaultMaxHeaderFields || d.Server.MaxRanges != server.DefaultMaxRanges ||
		!slices.Equal(d.Sites.DenyNames, server.DefaultDenyNames()) {
		t.Errorf("defaults max_header_fields %d, max_ranges %d, deny_names %q differ from server's",
			d.Server.MaxHeaderFields, d.Server.MaxRanges, d.Sites.DenyNames)
	}
}
