package conf

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EnvPrefix starts every environment variable that sets a key:
// MASSVHOST_ + the key upper-cased with dots as underscores
// (certs.cache_size → MASSVHOST_CERTS_CACHE_SIZE).
const EnvPrefix = "MASSVHOST_"

// EnvConfig is reserved for naming the config file (the environment form of
// --config). Load ignores it; every other MASSVHOST_ variable must name a
// key.
const EnvConfig = EnvPrefix + "CONFIG"

var durationType = reflect.TypeFor[time.Duration]()

// schema is the set of keys, derived once from Config's mapstructure tags so
// the struct is the one list of keys that file, environment and flags are
// checked against.
type schema struct {
	leaves   map[string]reflect.Type // dotted key → Go type of its field
	sections map[string]bool         // dotted section names ("cgi", "cgi.limits")
	order    []string                // leaves in declaration order
	env      map[string]string       // MASSVHOST_… name → key
	flags    map[string]string       // derived flag name → key
}

// keys returns the schema, built on first use. It is immutable.
var keys = sync.OnceValue(func() *schema {
	s := &schema{
		leaves:   map[string]reflect.Type{},
		sections: map[string]bool{},
		env:      map[string]string{},
		flags:    map[string]string{},
	}
	s.add("", reflect.TypeFor[Config]())
	for _, k := range s.order {
		s.env[envName(k)] = k
		s.flags[FlagName(k)] = k
	}
	return s
})

func (s *schema) add(prefix string, t reflect.Type) {
	for f := range t.Fields() {
		tag := f.Tag.Get("mapstructure")
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			s.sections[key] = true
			s.add(key, f.Type)
			continue
		}
		s.leaves[key] = f.Type
		s.order = append(s.order, key)
	}
}

// Keys returns every configuration key in dotted form ("certs.cache_size"),
// in the order of the Config struct.
func Keys() []string { return slices.Clone(keys().order) }

// envName is the environment variable that sets key.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// FlagName is the command-line flag name that Load maps to key when no
// annotation says otherwise: dots and underscores become dashes
// (certs.cache_size → certs-cache-size).
func FlagName(key string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(key)
}

// describe says what kind of value key takes, for error messages.
func describe(t reflect.Type) string {
	switch {
	case t == durationType:
		return `must be a duration with a unit, such as "30s" or "500ms"`
	case t.Kind() == reflect.Slice:
		return "must be a list of strings"
	case t.Kind() == reflect.Bool:
		return "must be true or false"
	case t.Kind() == reflect.Float64:
		return "must be a number"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "must be a whole number"
	}
	return "must be a string"
}

// suggest returns " (did you mean X?)" for the candidate closest to name, or
// "" when nothing is close enough to be a plausible typo.
func suggest(name string, candidates []string) string {
	if len(name) > 80 {
		return ""
	}
	best, bestDist := "", 0
	for _, c := range candidates {
		if strings.EqualFold(c, name) {
			best, bestDist = c, 0
			break
		}
		d := editDistance(name, c)
		if best == "" || d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	limit := min(3, max(1, len(name)/4))
	if best == "" || bestDist > limit {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// showKey prints a user-written key as is when it looks like a key, quoted
// otherwise, so odd bytes cannot garble the message.
func showKey(k string) string {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}
