package conf

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// newTree returns a directory laid out so that the default relative paths
// (examples/sites, examples/certs) exist under it.
func newTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"examples/sites", "examples/certs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantErrors checks that err mentions every substring in want (or is nil
// when want is empty).
func wantErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error:\n%v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
}

// TestLoad feeds config snippets, environments and flags through Load and
// checks the typed result or the error, in the manner of CoreDNS
// setup_test.go tables.
func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string // written as c.yaml unless noFile
		noFile  bool
		env     []string
		args    []string // parsed by a flag set with BindFlags
		wantErr []string
		check   func(t *testing.T, c *Config)
	}{
		{
			name:   "embedded default",
			noFile: true,
			check: func(t *testing.T, c *Config) {
				if c.Certs.CacheSize != 10000 || c.Source() != "embedded default" {
					t.Errorf("got %+v from %s", c.Certs, c.Source())
				}
			},
		},
		{
			name: "one key set, the rest default",
			yaml: "certs:\n  cache_size: 5\n",
			check: func(t *testing.T, c *Config) {
				if c.Certs.CacheSize != 5 || c.Certs.TTL != time.Hour || c.Listen.HTTP != "127.0.0.1:8080" {
					t.Errorf("got %+v %+v", c.Certs, c.Listen)
				}
			},
		},
		{
			name: "every type from the file",
			yaml: `
listen: {http: ":0", https: ""}
sites: {index: [a.html, index.cgi], listing: true, cache_ttl: 1m30s}
certs: {new_name_rate: 2.5, ttl: 0.5h}
cgi: {max_body_bytes: 1048576, limits: {cpu: 1s}}
`,
			check: func(t *testing.T, c *Config) {
				if c.Listen.HTTPS != "" || !c.Sites.Listing || c.Sites.CacheTTL != 90*time.Second ||
					!slices.Equal(c.Sites.Index, []string{"a.html", "index.cgi"}) ||
					c.Certs.NewNameRate != 2.5 || c.Certs.TTL != 30*time.Minute ||
					c.CGI.MaxBodyBytes != 1<<20 || c.CGI.Limits.CPU != time.Second {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name: "a single string where a list goes is a comma list",
			yaml: "sites:\n  index: index.htm, index.html\n",
			check: func(t *testing.T, c *Config) {
				if !slices.Equal(c.Sites.Index, []string{"index.htm", "index.html"}) {
					t.Errorf("index = %q", c.Sites.Index)
				}
			},
		},
		{
			name: "empty list",
			yaml: "cgi:\n  pass_env: []\n",
			check: func(t *testing.T, c *Config) {
				if len(c.CGI.PassEnv) != 0 {
					t.Errorf("pass_env = %q", c.CGI.PassEnv)
				}
			},
		},
		{
			name: "anchors and aliases",
			yaml: "sites:\n  index: &names [a.html]\ncgi:\n  pass_env: *names\n",
			check: func(t *testing.T, c *Config) {
				if !slices.Equal(c.CGI.PassEnv, []string{"a.html"}) {
					t.Errorf("pass_env = %q", c.CGI.PassEnv)
				}
			},
		},
		{
			name: "section with every key commented out",
			yaml: "cgi:\n  # timeout: 5s\nlog:\n  level: warn\n",
			check: func(t *testing.T, c *Config) {
				if c.CGI.Timeout != 30*time.Second || c.Log.Level != "warn" {
					t.Errorf("got %+v %+v", c.CGI.Timeout, c.Log)
				}
			},
		},
		{
			name: "host names are canonicalized",
			yaml: "sites:\n  default: Example.TEST.\ncerts:\n  default: '*.Example.COM'\n",
			check: func(t *testing.T, c *Config) {
				if c.Sites.Default != "example.test" || c.Certs.Default != "*.example.com" {
					t.Errorf("defaults %q %q", c.Sites.Default, c.Certs.Default)
				}
			},
		},

		// Keys that do not exist.
		{name: "unknown top-level key", yaml: "foo: 1\n", wantErr: []string{"c.yaml:1: foo: unknown key"}},
		{
			name:    "misspelled nested key",
			yaml:    "log:\n  level: info\ncerts:\n  cahce_size: 5\n",
			wantErr: []string{"c.yaml:4: certs.cahce_size: unknown key (did you mean certs.cache_size?)"},
		},
		{name: "misspelled section", yaml: "cert:\n  ttl: 1h\n", wantErr: []string{"cert: unknown key (did you mean certs?)"}},
		{name: "keys are case-sensitive", yaml: "Certs:\n  ttl: 1h\n", wantErr: []string{"Certs: unknown key (did you mean certs?)"}},
		{name: "dotted key", yaml: "certs.ttl: 1h\n", wantErr: []string{"certs.ttl: unknown key (keys are not dotted"}},
		{name: "YAML merge key", yaml: "certs:\n  <<: {ttl: 1h}\n", wantErr: []string{`"certs.<<": unknown key`}},
		{
			name:    "unknown key and bad value reported together",
			yaml:    "certs:\n  cache_sise: 5\n  cache_size: -3\n",
			wantErr: []string{"certs.cache_sise: unknown key", "c.yaml:3: certs.cache_size: must be at least 1, got -3"},
		},

		// Values of the wrong shape or type.
		{name: "scalar where a section goes", yaml: "certs: 5\n", wantErr: []string{`c.yaml:1: certs: must be a section of keys, got "5"`}},
		{name: "section where a value goes", yaml: "listen:\n  http: {host: x}\n", wantErr: []string{"listen.http: must be a string, got a mapping"}},
		{name: "list where a value goes", yaml: "certs:\n  store: [files]\n", wantErr: []string{"certs.store: must be a string, got a list"}},
		{name: "nested list item", yaml: "sites:\n  index: [[a]]\n", wantErr: []string{"sites.index: must be a list of strings, got an item that is a list"}},
		{name: "key without value", yaml: "listen:\n  https:\n", wantErr: []string{`c.yaml:2: listen.https: has no value; write "" for an empty string`}},
		{name: "list key without value", yaml: "sites:\n  index:\n", wantErr: []string{"sites.index: has no value; write [] for an empty list"}},
		{
			name:    "not a number (reported once)",
			yaml:    "certs:\n  cache_size: many\n",
			wantErr: []string{`c.yaml:2: certs.cache_size: must be a whole number, got "many"`},
		},
		{name: "number too large", yaml: "certs:\n  cache_size: 99999999999999999999999\n", wantErr: []string{"certs.cache_size: must be a whole number, got 1e+23"}},
		{name: "number above int64", yaml: "cgi:\n  max_body_bytes: 18446744073709551615\n", wantErr: []string{"cgi.max_body_bytes: must be a whole number, got 18446744073709551615"}},
		{name: "fraction", yaml: "certs:\n  cache_size: 1.5\n", wantErr: []string{"certs.cache_size: must be a whole number, got 1.5"}},
		{name: "not a bool", yaml: "sites:\n  listing: yes\n", wantErr: []string{`sites.listing: must be true or false, got "yes"`}},
		{name: "duration without unit", yaml: "cgi:\n  timeout: 30\n", wantErr: []string{`cgi.timeout: must be a duration with a unit, such as "30s" or "500ms", got 30`}},
		{name: "zero duration decodes, then fails validation", yaml: "cgi:\n  timeout: 0\n", wantErr: []string{"cgi.timeout: must be a positive duration, got 0s"}},
		{name: "bad duration", yaml: "certs:\n  ttl: 1 hour\n", wantErr: []string{`certs.ttl: must be a duration with a unit, such as "30s" or "500ms", got "1 hour"`}},

		// Files that are not a config.
		{name: "empty file", yaml: "", wantErr: []string{"c.yaml: empty config file"}},
		{name: "whitespace only", yaml: "\n\n   \n", wantErr: []string{"c.yaml: empty config file"}},
		{name: "comments only", yaml: "# listen:\n#   http: :80\n", wantErr: []string{"c.yaml: empty config file"}},
		{name: "document marker only", yaml: "---\n", wantErr: []string{"c.yaml: empty config file"}},
		{name: "null document", yaml: "~\n", wantErr: []string{"c.yaml: empty config file"}},
		{name: "top level is a list", yaml: "- listen\n", wantErr: []string{"c.yaml:1: the top level must be a mapping"}},
		{name: "syntax error names the line", yaml: "listen:\n  http: ok\n  https: [unclosed\ncerts:\n  store: files\n", wantErr: []string{"c.yaml:3: did not find expected ',' or ']'"}},
		{name: "tab indentation", yaml: "listen:\n\thttp: x\n", wantErr: []string{"c.yaml:2: found character that cannot start any token"}},
		{name: "duplicate key", yaml: "certs:\n  ttl: 1h\n  ttl: 2h\n", wantErr: []string{"c.yaml:3: certs.ttl: duplicate key (first set at line 2)"}},
		{name: "duplicate section", yaml: "certs: {ttl: 1h}\ncerts: {ttl: 2h}\n", wantErr: []string{"c.yaml:2: certs: duplicate key (first set at line 1)"}},
		{name: "two documents", yaml: "log: {level: info}\n---\nlog: {level: warn}\n", wantErr: []string{"c.yaml:2: more than one YAML document"}},

		// Environment.
		{
			name: "env overrides default",
			env:  []string{"MASSVHOST_CERTS_CACHE_SIZE=5", "MASSVHOST_DATA_DIR=/var/lib/mv", "MASSVHOST_CGI_LIMITS_CPU=2s"},
			yaml: "log:\n  level: info\n",
			check: func(t *testing.T, c *Config) {
				if c.Certs.CacheSize != 5 || c.DataDir != "/var/lib/mv" || c.CGI.Limits.CPU != 2*time.Second {
					t.Errorf("got %d %q %v", c.Certs.CacheSize, c.DataDir, c.CGI.Limits.CPU)
				}
			},
		},
		{
			name: "env overrides file",
			yaml: "certs:\n  cache_size: 7\n  ttl: 5m\n",
			env:  []string{"MASSVHOST_CERTS_CACHE_SIZE=5"},
			check: func(t *testing.T, c *Config) {
				if c.Certs.CacheSize != 5 || c.Certs.TTL != 5*time.Minute {
					t.Errorf("got %+v", c.Certs)
				}
			},
		},
		{
			name: "env list replaces the file's list",
			yaml: "redis:\n  addrs: [a:1]\nsites:\n  index: [a.html]\n",
			env:  []string{"MASSVHOST_REDIS_ADDRS=b:2,c:3"},
			check: func(t *testing.T, c *Config) {
				if !slices.Equal(c.Redis.Addrs, []string{"b:2", "c:3"}) || !slices.Equal(c.Sites.Index, []string{"a.html"}) {
					t.Errorf("addrs %q index %q", c.Redis.Addrs, c.Sites.Index)
				}
			},
		},
		{
			name: "empty section keeps defaults",
			yaml: "certs: {}\nlog:\n  level: warn\n",
			check: func(t *testing.T, c *Config) {
				if c.Certs.CacheSize != 10000 || c.Certs.Store != "files" {
					t.Errorf("certs %+v", c.Certs)
				}
			},
		},
		{
			name:   "env list is comma-separated",
			noFile: true,
			env:    []string{"MASSVHOST_CGI_PASS_ENV=LANG, TZ ,,HOME", "MASSVHOST_REDIS_ADDRS=10.0.0.1:6379,10.0.0.2:6379"},
			check: func(t *testing.T, c *Config) {
				if !slices.Equal(c.CGI.PassEnv, []string{"LANG", "TZ", "HOME"}) || len(c.Redis.Addrs) != 2 {
					t.Errorf("pass_env %q addrs %q", c.CGI.PassEnv, c.Redis.Addrs)
				}
			},
		},
		{
			name:   "env empty string disables a listener; empty list clears",
			noFile: true,
			env:    []string{"MASSVHOST_LISTEN_HTTPS=", "MASSVHOST_CGI_EXTENSIONS="},
			check: func(t *testing.T, c *Config) {
				if c.Listen.HTTPS != "" || len(c.CGI.Extensions) != 0 {
					t.Errorf("https %q extensions %q", c.Listen.HTTPS, c.CGI.Extensions)
				}
			},
		},
		{
			name:   "env bools and floats",
			noFile: true,
			env:    []string{"MASSVHOST_SITES_LISTING=true", "MASSVHOST_CERTS_NEW_NAME_RATE=0.5", "MASSVHOST_CERTS_LOCAL_CA=0"},
			check: func(t *testing.T, c *Config) {
				if !c.Sites.Listing || c.Certs.NewNameRate != 0.5 || c.Certs.LocalCA {
					t.Errorf("listing %v rate %v local_ca %v", c.Sites.Listing, c.Certs.NewNameRate, c.Certs.LocalCA)
				}
			},
		},
		{
			name:   "env duplicates: the last wins",
			noFile: true,
			env:    []string{"MASSVHOST_LOG_LEVEL=error", "MASSVHOST_LOG_LEVEL=warn"},
			check: func(t *testing.T, c *Config) {
				if c.Log.Level != "warn" {
					t.Errorf("level %q", c.Log.Level)
				}
			},
		},
		{name: "env config path is reserved, not a key", noFile: true, env: []string{"MASSVHOST_CONFIG=/etc/massvhost.yaml", "PATH=/bin"}},
		{
			name:    "env unknown variable",
			noFile:  true,
			env:     []string{"MASSVHOST_CERTS_CAHCE_SIZE=5"},
			wantErr: []string{"conf: env MASSVHOST_CERTS_CAHCE_SIZE: names no configuration key (did you mean MASSVHOST_CERTS_CACHE_SIZE?)"},
		},
		{name: "env names a section", noFile: true, env: []string{"MASSVHOST_LISTEN=:80"}, wantErr: []string{"env MASSVHOST_LISTEN: names no configuration key"}},
		{name: "env lower case", noFile: true, env: []string{"MASSVHOST_log_level=debug"}, wantErr: []string{"env MASSVHOST_log_level: names no configuration key (did you mean MASSVHOST_LOG_LEVEL?)"}},
		{
			name:    "env bad number",
			noFile:  true,
			env:     []string{"MASSVHOST_CERTS_CACHE_SIZE=lots"},
			wantErr: []string{`conf: env MASSVHOST_CERTS_CACHE_SIZE: certs.cache_size: must be a whole number, got "lots"`},
		},
		{
			name:    "env empty number",
			noFile:  true,
			env:     []string{"MASSVHOST_CERTS_CACHE_SIZE="},
			wantErr: []string{`env MASSVHOST_CERTS_CACHE_SIZE: certs.cache_size: must be a whole number, got ""`},
		},
		{
			name:    "env value failing validation names the variable",
			noFile:  true,
			env:     []string{"MASSVHOST_CERTS_CACHE_SIZE=-3"},
			wantErr: []string{"conf: env MASSVHOST_CERTS_CACHE_SIZE: certs.cache_size: must be at least 1, got -3"},
		},

		// Flags.
		{
			name: "flag overrides env and file",
			yaml: "log:\n  level: error\n",
			env:  []string{"MASSVHOST_LOG_LEVEL=warn"},
			args: []string{"--log-level", "debug"},
			check: func(t *testing.T, c *Config) {
				if c.Log.Level != "debug" {
					t.Errorf("level %q", c.Log.Level)
				}
			},
		},
		{
			name: "unchanged flag leaves file value",
			yaml: "log:\n  level: error\nlisten:\n  http: ':0'\n",
			args: []string{},
			check: func(t *testing.T, c *Config) {
				if c.Log.Level != "error" || c.Listen.HTTP != ":0" {
					t.Errorf("level %q http %q", c.Log.Level, c.Listen.HTTP)
				}
			},
		},
		{
			name:   "flag sets empty string",
			noFile: true,
			args:   []string{"--listen-https="},
			check: func(t *testing.T, c *Config) {
				if c.Listen.HTTPS != "" {
					t.Errorf("https %q", c.Listen.HTTPS)
				}
			},
		},
		{
			name:    "flag bad value names the flag",
			noFile:  true,
			args:    []string{"--log-level=loud"},
			wantErr: []string{`conf: flag --log-level: log.level: must be one of debug, info, warn, error, got "loud"`},
		},

		// Validation through Load.
		{
			name: "bad values all reported",
			yaml: "certs:\n  cache_size: -3\n  store: s3\nlog:\n  level: verbose\ncgi:\n  min_uid: 0\n",
			wantErr: []string{
				"c.yaml:2: certs.cache_size: must be at least 1, got -3",
				`c.yaml:3: certs.store: must be one of files, redis, redis+files, got "s3"`,
				`c.yaml:5: log.level: must be one of debug, info, warn, error, got "verbose"`,
				"c.yaml:7: cgi.min_uid: must be in 1..4294967294 (0 would allow root), got 0",
			},
		},
		{name: "sites.default with a port", yaml: "sites:\n  default: a.test:80\n", wantErr: []string{`sites.default: must be a host name (a port is not part of a host name), got "a.test:80"`}},
		{name: "sites.root missing", yaml: "sites:\n  root: nowhere\n", wantErr: []string{"sites.root: directory does not exist, got "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := newTree(t)
			opts := LoadOptions{BaseDir: dir, Env: tc.env}
			if opts.Env == nil {
				opts.Env = []string{}
			}
			if !tc.noFile {
				opts.Path = writeFile(t, filepath.Join(dir, "c.yaml"), tc.yaml)
			}
			if tc.args != nil {
				fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
				BindFlags(fs)
				if err := fs.Parse(tc.args); err != nil {
					t.Fatal(err)
				}
				opts.Flags = fs
			}
			c, err := Load(opts)
			wantErrors(t, err, tc.wantErr)
			if err != nil {
				if c != nil {
					t.Error("Load returned a Config with an error")
				}
				return
			}
			if tc.check != nil {
				tc.check(t, c)
			}
			if verr := c.Validate(); verr != nil {
				t.Errorf("Load returned a Config that does not validate: %v", verr)
			}
		})
	}
}

// TestLoadDecodeErrorReportedOnce checks that a value that cannot be decoded
// is not reported a second time by validation (as its zero value).
func TestLoadDecodeErrorReportedOnce(t *testing.T) {
	dir := newTree(t)
	path := writeFile(t, filepath.Join(dir, "c.yaml"), "certs:\n  cache_size: many\n")
	_, err := Load(LoadOptions{Path: path, BaseDir: dir, Env: []string{}})
	if n := strings.Count(err.Error(), "certs.cache_size"); n != 1 {
		t.Errorf("certs.cache_size reported %d times:\n%v", n, err)
	}
}

func TestLoadManyProblemsAtOnce(t *testing.T) {
	_, err := Load(LoadOptions{Path: "testdata/bad_values.yaml", Env: []string{}})
	if err == nil {
		t.Fatal("no error")
	}
	msgs := flatten(err)
	if len(msgs) < 10 {
		t.Errorf("got %d problems, want every one of the file's at least 10:\n%v", len(msgs), err)
	}
	for _, want := range []string{
		"bad_values.yaml:3: listen.http: must be host:port",
		"bad_values.yaml:4: listen.https: port must be a number in 0..65535",
		"sites.root: directory does not exist",
		`sites.docroot: component ".." is not allowed, got "../%0"`,
		`sites.index: must be a plain file name`,
		"sites.cache_ttl: must be a positive duration, got -5s",
		`certs.store: must be one of files, redis, redis+files, got "s3"`,
		"certs.cache_size: must be at least 1, got -3",
		`cgi.extensions: must start with "."`,
		"cgi.min_uid: must be in 1..",
		`log.level: must be one of debug, info, warn, error, got "verbose"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	for _, m := range msgs {
		if !strings.HasPrefix(m.Error(), "conf: ") {
			t.Errorf("message without conf: prefix: %q", m)
		}
	}
}

func TestLoadFixtures(t *testing.T) {
	tests := []struct {
		path    string
		wantErr string
	}{
		{"testdata/example.yaml", ""},
		{"testdata/empty.yaml", "conf: testdata/empty.yaml: empty config file"},
		{"testdata/comments.yaml", "conf: testdata/comments.yaml: empty config file"},
		{"testdata/syntax.yaml", "conf: testdata/syntax.yaml:3: "},
		{"testdata/duplicate.yaml", "conf: testdata/duplicate.yaml:4: certs.ttl: duplicate key (first set at line 2)"},
		{"testdata/misspelled.yaml", "conf: testdata/misspelled.yaml:3: certs.cahce_size: unknown key (did you mean certs.cache_size?)"},
		{"testdata/misspelled.yaml", "conf: testdata/misspelled.yaml:6: listen.htps: unknown key (did you mean listen.https?)"},
		{"testdata/missing.yaml", "testdata/missing.yaml: no such file or directory"},
		{"testdata", "testdata: not a regular file"},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			_, err := Load(LoadOptions{Path: tc.path, Env: []string{}})
			var want []string
			if tc.wantErr != "" {
				want = []string{tc.wantErr}
			}
			wantErrors(t, err, want)
		})
	}
}

func TestLoadExampleFixture(t *testing.T) {
	before := time.Now()
	c, err := Load(LoadOptions{Path: "testdata/example.yaml", Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if c.Source() != filepath.Join(td, "example.yaml") {
		t.Errorf("Source = %q", c.Source())
	}
	if c.LoadedAt.Before(before) {
		t.Errorf("LoadedAt = %v, before the call at %v", c.LoadedAt, before)
	}
	want := map[string][2]string{
		"sites.root": {c.Sites.Root, filepath.Join(td, "tree/sites")},
		"certs.dir":  {c.Certs.Dir, filepath.Join(td, "tree/certs")},
		"data_dir":   {c.DataDir, filepath.Join(td, "tree/data")},
		"log.access": {c.Log.Access, filepath.Join(td, "tree/access.log")},
		"sites.def":  {c.Sites.Default, "example.test"},
		"admin":      {c.Admin.Listen, ""},
	}
	for k, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", k, v[0], v[1])
		}
	}
}

// TestLoadRelativePaths checks where relative paths resolve when BaseDir is
// not set: file values against the file's directory, defaults, environment
// and flags against the working directory.
func TestLoadRelativePaths(t *testing.T) {
	confDir := t.TempDir()
	work := newTree(t)
	for _, d := range []string{filepath.Join(confDir, "sites"), filepath.Join(work, "flagcerts")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := writeFile(t, filepath.Join(confDir, "c.yaml"), "sites:\n  root: sites\ncerts:\n  dir: certs\nlog:\n  access: access.log\n")
	t.Chdir(work)

	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	BindFlags(fs)
	if err := fs.Parse([]string{"--certs-dir", "flagcerts"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(LoadOptions{Path: path, Env: []string{"MASSVHOST_DATA_DIR=state"}, Flags: fs})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, got, want string }{
		{"sites.root (file)", c.Sites.Root, filepath.Join(confDir, "sites")},
		{"log.access (file)", c.Log.Access, filepath.Join(confDir, "access.log")},
		{"data_dir (env)", c.DataDir, filepath.Join(work, "state")},
		{"certs.dir (flag)", c.Certs.Dir, filepath.Join(work, "flagcerts")},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, tc.got, tc.want)
		}
	}

	// The embedded default resolves against the working directory, and
	// absolute paths are cleaned.
	c, err = Load(LoadOptions{Env: []string{"MASSVHOST_CERTS_DIR=" + work + "/x/../examples/certs"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Sites.Root != filepath.Join(work, "examples/sites") || c.DataDir != filepath.Join(work, "data") || c.Certs.Dir != filepath.Join(work, "examples/certs") {
		t.Errorf("default paths: root %q data %q certs %q", c.Sites.Root, c.DataDir, c.Certs.Dir)
	}
}

// TestLoadFlagsByName checks that a command's own flag named after a key
// (FlagName) or annotated with one sets it, and that other flags are
// ignored.
func TestLoadFlagsByName(t *testing.T) {
	dir := newTree(t)
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.Duration("cgi-timeout", 0, "")
	fs.Int("cache", 0, "")
	if err := fs.SetAnnotation("cache", FlagKeyAnnotation, []string{"certs.cache_size"}); err != nil {
		t.Fatal(err)
	}
	fs.StringSlice("index", nil, "")
	if err := fs.SetAnnotation("index", FlagKeyAnnotation, []string{"sites.index"}); err != nil {
		t.Fatal(err)
	}
	fs.Bool("sites-listing", false, "")
	fs.String("config", "", "")
	fs.Bool("bogus", false, "")
	if err := fs.SetAnnotation("bogus", FlagKeyAnnotation, []string{"no.such_key"}); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--cgi-timeout=7s", "--cache=3", "--index=a.html,b.html", "--sites-listing", "--config=x.yaml"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(LoadOptions{BaseDir: dir, Env: []string{}, Flags: fs})
	if err != nil {
		t.Fatal(err)
	}
	if c.CGI.Timeout != 7*time.Second || c.Certs.CacheSize != 3 || !c.Sites.Listing || !slices.Equal(c.Sites.Index, []string{"a.html", "b.html"}) {
		t.Errorf("timeout %v cache %d listing %v index %q", c.CGI.Timeout, c.Certs.CacheSize, c.Sites.Listing, c.Sites.Index)
	}

	if err := fs.Set("bogus", "true"); err != nil {
		t.Fatal(err)
	}
	_, err = Load(LoadOptions{BaseDir: dir, Env: []string{}, Flags: fs})
	wantErrors(t, err, []string{`flag --bogus: annotated with unknown key "no.such_key"`})
}

func TestBindFlags(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	BindFlags(fs)
	for _, name := range []string{"listen-http", "listen-https", "sites-root", "certs-dir", "certs-store", "data-dir", "log-level", "admin-listen"} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("--%s not defined", name)
			continue
		}
		key := f.Annotations[FlagKeyAnnotation]
		if len(key) != 1 || keys().leaves[key[0]] == nil {
			t.Errorf("--%s annotated with %q", name, key)
		}
	}
	if got := fs.Lookup("listen-http").DefValue; got != Default().Listen.HTTP {
		t.Errorf("--listen-http default %q", got)
	}
}

func TestCheck(t *testing.T) {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, EnvPrefix) {
			t.Skipf("environment sets %s", kv)
		}
	}
	if err := Check("testdata/example.yaml"); err != nil {
		t.Errorf("Check(example) = %v", err)
	}
	err := Check("testdata/bad_values.yaml")
	if len(flatten(err)) < 10 {
		t.Errorf("Check(bad_values) = %v", err)
	}
	if err := Check("testdata/empty.yaml"); err == nil || !strings.Contains(err.Error(), "empty config file") {
		t.Errorf("Check(empty) = %v", err)
	}
}

// TestLoadErrorsAreKeyErrors checks that every problem can be told apart
// and that each names its key.
func TestLoadErrorsAreKeyErrors(t *testing.T) {
	_, err := Load(LoadOptions{Path: "testdata/bad_values.yaml", Env: []string{"MASSVHOST_NOPE=1"}})
	for _, e := range flatten(err) {
		var ke *keyError
		if !errors.As(e, &ke) {
			t.Errorf("%T %q is not a keyError", e, e)
			continue
		}
		if ke.key == "" && !strings.HasPrefix(ke.origin, "env ") {
			t.Errorf("problem without a key: %q", e)
		}
	}
}

// TestLoadFIFO checks that a FIFO named as the config file is refused
// without opening it (opening would block until a writer appears).
func TestLoadFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo.yaml")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := Load(LoadOptions{Path: p, Env: []string{}})
	wantErrors(t, err, []string{"fifo.yaml: not a regular file"})
}

func TestLoadTooLarge(t *testing.T) {
	p := writeFile(t, filepath.Join(t.TempDir(), "big.yaml"), "# "+strings.Repeat("x", maxFileSize)+"\n")
	_, err := Load(LoadOptions{Path: p, Env: []string{}})
	wantErrors(t, err, []string{"big.yaml: file larger than 1048576 bytes"})
}
