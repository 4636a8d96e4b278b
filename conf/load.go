package conf

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// LoadOptions say where [Load] reads the configuration from.
type LoadOptions struct {
	// Path is the YAML config file (--config). "" means the embedded
	// defaults alone.
	Path string
	// Flags, when set, is a parsed flag set. Each flag the user changed sets
	// the key named by its annotation (see [BindFlags]) or, failing that,
	// the key whose [FlagName] is the flag's name; other flags are ignored.
	Flags *pflag.FlagSet
	// Env is the environment in os.Environ form; nil means os.Environ().
	Env []string
	// BaseDir, when set, is the directory every relative path resolves
	// against. When empty, relative paths written in the config file resolve
	// against the file's directory, and those from defaults, environment and
	// flags against the working directory.
	BaseDir string
}

// Load builds a Config from, lowest precedence first: the embedded
// defaults, the file at opts.Path, MASSVHOST_* environment variables, and
// changed flags. It then makes relative paths absolute and validates the
// result.
//
// The error, if any, is an errors.Join of every problem found, each naming
// the key, where the value came from when known (file:line, env variable,
// flag) and what is wrong. Unknown keys, empty files and keys without a
// value are errors. On error the returned Config is nil: a reload that fails
// must keep the running configuration.
func Load(opts LoadOptions) (*Config, error) {
	if opts.Path == "" {
		return load(opts, "", nil)
	}
	source, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("conf: %s: %w", opts.Path, err)
	}
	data, err := readFile(source)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	return load(opts, source, data)
}

// load is Load once the file (if any) has been read: source is its absolute
// path ("" for none) and data its contents.
func load(opts LoadOptions, source string, data []byte) (*Config, error) {
	v, err := newViper()
	if err != nil {
		return nil, err
	}
	var errs []error
	origins := map[string]string{} // key → where its value came from
	fromFile := map[string]bool{}

	if source != "" {
		fv, ferrs := parseFile(opts.Path, data)
		if fv == nil {
			return nil, errors.Join(ferrs...)
		}
		errs = append(errs, ferrs...)
		if err := v.MergeConfigMap(fv.tree); err != nil {
			return nil, fmt.Errorf("conf: %s: %w", opts.Path, err)
		}
		for k, line := range fv.lines {
			origins[k] = opts.Path + ":" + strconv.Itoa(line)
			fromFile[k] = true
		}
	}

	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	envTree, envVars, eerrs := parseEnv(env)
	errs = append(errs, eerrs...)
	if err := v.MergeConfigMap(envTree); err != nil {
		return nil, fmt.Errorf("conf: environment: %w", err)
	}
	for k, name := range envVars {
		origins[k] = "env " + name
	}

	flagNames, ferrs := bindFlagSet(v, opts.Flags)
	errs = append(errs, ferrs...)
	for k, name := range flagNames {
		origins[k] = "flag --" + name
	}

	cfg := &Config{}
	derrs := decode(v, cfg)
	failed := map[string]bool{}
	for _, e := range derrs {
		failed[e.key] = true
		errs = append(errs, e)
	}

	cwd := opts.BaseDir
	if cwd == "" {
		if cwd, err = os.Getwd(); err != nil {
			return nil, fmt.Errorf("conf: %w", err)
		}
	}
	fileDir := opts.BaseDir
	if fileDir == "" {
		fileDir = filepath.Dir(source)
	}
	cfg.resolvePaths(func(key string) string {
		if fromFile[key] && envVars[key] == "" && flagNames[key] == "" {
			return fileDir
		}
		return cwd
	})
	cfg.normalizeNames()

	for _, p := range cfg.problems() {
		if !failed[p.key] {
			errs = append(errs, p)
		}
	}
	if len(errs) == 0 {
		cfg.source = source
		cfg.LoadedAt = time.Now()
		return cfg, nil
	}
	for _, e := range errs {
		var ke *keyError
		if errors.As(e, &ke) && ke.origin == "" {
			ke.origin = origins[ke.key]
		}
	}
	return nil, errors.Join(errs...)
}

// Check loads the config file at path (with the process environment) and
// returns every problem, for "massvhost check".
func Check(path string) error {
	_, err := Load(LoadOptions{Path: path})
	return err
}

// readFile reads a config file, refusing anything but a regular file of
// reasonable size: opening a FIFO would block, and /dev/zero would never
// end. The file is checked before it is opened for that reason.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: file larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}

// newViper returns a viper instance holding every key's default.
func newViper() (*viper.Viper, error) {
	def, errs := parseFile("default.yaml", defaultYAML)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	v := viper.New()
	var set func(prefix string, m map[string]any)
	set = func(prefix string, m map[string]any) {
		for k, val := range m {
			if sub, ok := val.(map[string]any); ok {
				set(prefix+k+".", sub)
				continue
			}
			v.SetDefault(prefix+k, val)
		}
	}
	set("", def.tree)
	return v, nil
}

func decodeDefault() (*Config, error) {
	v, err := newViper()
	if err != nil {
		return nil, err
	}
	c := &Config{}
	if errs := decode(v, c); len(errs) > 0 {
		return nil, errs[0]
	}
	return c, nil
}

// decode unmarshals v into c, strictly: a key with no field is an error.
// Each problem is reported once with the key it concerns.
func decode(v *viper.Viper, c *Config) []*keyError {
	err := v.UnmarshalExact(c, viper.DecodeHook(mapstructure.DecodeHookFuncType(decodeHook)))
	if err == nil {
		return nil
	}
	var out []*keyError
	for _, e := range flatten(err) {
		var de *mapstructure.DecodeError
		if !errors.As(e, &de) {
			out = append(out, &keyError{msg: e.Error()})
			continue
		}
		key := de.Name()
		if t := keys().leaves[key]; t != nil {
			out = append(out, &keyError{key: key, msg: describe(t) + ", got " + show(v.Get(key))})
			continue
		}
		out = append(out, &keyError{key: key, msg: de.Unwrap().Error()})
	}
	return out
}

// flatten lists the leaves of a tree of joined errors.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// errDurationUnit rejects a bare number for a duration: viper would read
// "timeout: 30" as 30 nanoseconds.
var errDurationUnit = errors.New("duration without a unit")

// errNotInt rejects a number that does not fit a whole-number key.
var errNotInt = errors.New("not a whole number in range")

// decodeHook converts the text forms users write (file, environment, flags)
// to durations and lists.
func decodeHook(from, to reflect.Type, data any) (any, error) {
	switch {
	case to == durationType:
		switch d := data.(type) {
		case string:
			return time.ParseDuration(strings.TrimSpace(d))
		case time.Duration:
			return d, nil
		case int, int64, uint64, float64:
			if reflect.ValueOf(d).IsZero() {
				return time.Duration(0), nil
			}
			return nil, errDurationUnit
		}
	case to.Kind() == reflect.Int || to.Kind() == reflect.Int64:
		// mapstructure converts 1e30 or 2^64-1 to an int by wrapping
		// around; a limit that silently became negative is worse than an
		// error.
		switch n := data.(type) {
		case float64:
			if n != math.Trunc(n) || n < math.MinInt64 || n >= math.MaxInt64 {
				return nil, errNotInt
			}
		case uint64:
			if n > math.MaxInt64 {
				return nil, errNotInt
			}
		}
	case to.Kind() == reflect.Slice && from.Kind() == reflect.String:
		var items []string
		for item := range strings.SplitSeq(data.(string), ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		return items, nil
	}
	return data, nil
}

// parseEnv maps MASSVHOST_* variables to keys. It returns them as a nested
// map for viper, which variable set each key, and an error for each
// variable that names no key.
func parseEnv(env []string) (tree map[string]any, vars map[string]string, errs []error) {
	s := keys()
	values := map[string]string{}
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || name == EnvConfig {
			continue
		}
		values[name] = value // the last of duplicates wins, as in os/exec
	}
	tree, vars = map[string]any{}, map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		value := values[name]
		key, ok := s.env[name]
		if !ok {
			errs = append(errs, &keyError{origin: "env " + showKey(name), msg: "names no configuration key" + suggest(name, slices.Collect(maps.Keys(s.env)))})
			continue
		}
		t := s.leaves[key]
		if value == "" && t.Kind() != reflect.String && t.Kind() != reflect.Slice {
			errs = append(errs, &keyError{key: key, origin: "env " + name, msg: describe(t) + `, got ""`})
			continue
		}
		setPath(tree, key, value)
		vars[key] = name
	}
	return tree, vars, errs
}

// setPath stores value at a dotted key in a nested map.
func setPath(tree map[string]any, key string, value any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := tree[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			tree[p] = sub
		}
		tree = sub
	}
	tree[parts[len(parts)-1]] = value
}

// resolvePaths makes the path-valued keys absolute, each against the
// directory base returns for it.
func (c *Config) resolvePaths(base func(key string) string) {
	abs := func(key string, p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base(key), *p)
		} else if *p != "" {
			*p = filepath.Clean(*p)
		}
	}
	abs("data_dir", &c.DataDir)
	abs("sites.root", &c.Sites.Root)
	abs("certs.dir", &c.Certs.Dir)
	abs("acme.ca_roots", &c.ACME.CARoots)
	if c.Log.AccessIsFile() {
		abs("log.access", &c.Log.Access)
	}
	if c.Log.ErrorIsFile() {
		abs("log.error", &c.Log.Error)
	}
}

// normalizeNames puts host-name keys in canonical form (lower case, no
// trailing dot) when they are valid; invalid ones are left for problems to
// report.
func (c *Config) normalizeNames() {
	if n, err := normalizeHost(c.Sites.Default); err == nil {
		c.Sites.Default = n
	}
	if n, err := normalizeCertName(c.Certs.Default); err == nil {
		c.Certs.Default = n
	}
}
