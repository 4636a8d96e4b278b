package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds the config file read; a real one is a few kilobytes.
const maxFileSize = 1 << 20

// fileValues is what a config file sets: a nested map ready for viper, and
// where each key was written, for error messages.
type fileValues struct {
	tree  map[string]any
	lines map[string]int // dotted key → line
}

// errEmpty marks a file with no settings at all.
var errEmpty = errors.New("empty config file")

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseFile checks a config file's structure against the schema and
// returns its values. name is used in messages only.
//
// The file is walked as a YAML node tree rather than handed to viper
// directly, because viper accepts silently what operators get wrong:
// unknown keys are dropped, keys are matched case-insensitively, a scalar
// where a section belongs shadows every default under it, and an empty file
// is a valid config that resets every setting (what a truncate-then-write
// editor produces mid-save). Here each of those is an error naming the key
// and line.
//
// A fatal problem (syntax, empty file) returns a single error; problems
// with individual keys are all returned, and the keys concerned are left
// out of the values so that defaults stand in for them.
func parseFile(name string, data []byte) (*fileValues, []error) {
	if len(data) > maxFileSize {
		return nil, []error{fmt.Errorf("conf: %s: file larger than %d bytes", name, maxFileSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []error{fmt.Errorf("conf: %s: %w", name, errEmpty)}
		}
		return nil, []error{syntaxError(name, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, []error{syntaxError(name, err)}
		}
		return nil, []error{fmt.Errorf("conf: %s:%d: more than one YAML document; a config file holds one", name, extra.Line)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, []error{fmt.Errorf("conf: %s: %w", name, errEmpty)}
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return nil, []error{fmt.Errorf("conf: %s: %w", name, errEmpty)}
	}
	if root.Kind != yaml.MappingNode {
		return nil, []error{fmt.Errorf("conf: %s:%d: the top level must be a mapping of keys (listen:, sites:, …), got %s", name, root.Line, kindName(root))}
	}
	w := &walker{file: name, s: keys(), out: &fileValues{tree: map[string]any{}, lines: map[string]int{}}}
	w.mapping(root, "", w.out.tree, 0)
	return w.out, w.errs
}

// parserProblems are the messages of yaml's parser (as opposed to its
// scanner). For these, yaml.v3 reports the 0-based line of the construct
// being parsed, and omits the line when it is 0; syntaxError adds one so
// every message carries the 1-based line editors show.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// syntaxError rewrites yaml's "yaml: line N: msg" as "conf: file:N: msg",
// with N 1-based.
func syntaxError(name string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, convErr := strconv.Atoi(m[1])
		if convErr != nil {
			return fmt.Errorf("conf: %s: %w", name, err)
		}
		if parserProblems[m[2]] {
			line++
		}
		return fmt.Errorf("conf: %s:%d: %s", name, line, m[2])
	}
	if p, ok := strings.CutPrefix(msg, "yaml: "); ok && parserProblems[p] {
		return fmt.Errorf("conf: %s:1: %s", name, p)
	}
	return fmt.Errorf("conf: %s: %w", name, err)
}

type walker struct {
	file string
	s    *schema
	out  *fileValues
	errs []error
}

func (w *walker) errorf(line int, key, format string, args ...any) {
	w.errs = append(w.errs, &keyError{key: key, origin: w.file + ":" + strconv.Itoa(line), msg: fmt.Sprintf(format, args...)})
}

// maxDepth bounds alias-following recursion; the schema is three deep.
const maxDepth = 8

// mapping walks the keys of node, a section at prefix ("" for the top).
func (w *walker) mapping(node *yaml.Node, prefix string, into map[string]any, depth int) {
	first := map[string]int{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, val := node.Content[i], deref(node.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			w.errorf(k.Line, prefix, "keys must be plain names, got %s", kindName(k))
			continue
		}
		key := k.Value
		if prefix != "" {
			key = prefix + "." + k.Value
		}
		if line, dup := first[k.Value]; dup {
			w.errorf(k.Line, showKey(key), "duplicate key (first set at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		switch {
		case strings.Contains(k.Value, "."):
			w.errorf(k.Line, showKey(key), "unknown key (keys are not dotted: nest %s under its section)", showKey(k.Value))
		case w.s.sections[key]:
			if val == nil || isNull(val) {
				continue // a section whose keys are all commented out
			}
			if val.Kind != yaml.MappingNode || depth >= maxDepth {
				w.errorf(k.Line, key, "must be a section of keys, got %s", kindName(val))
				continue
			}
			sub := map[string]any{}
			w.mapping(val, key, sub, depth+1)
			into[k.Value] = sub
		case w.s.leaves[key] != nil:
			if v, ok := w.leaf(k.Line, key, val); ok {
				into[k.Value] = v
				w.out.lines[key] = k.Line
			}
		default:
			w.errorf(k.Line, showKey(key), "unknown key%s", suggest(key, w.candidates()))
		}
	}
}

func (w *walker) candidates() []string {
	c := make([]string, 0, len(w.s.order)+len(w.s.sections))
	c = append(c, w.s.order...)
	for s := range w.s.sections {
		c = append(c, s)
	}
	return c
}

// leaf decodes the value of a non-section key.
func (w *walker) leaf(line int, key string, val *yaml.Node) (any, bool) {
	t := w.s.leaves[key]
	switch {
	case val == nil || isNull(val):
		if t.Kind() == reflect.Slice {
			w.errorf(line, key, "has no value; write [] for an empty list")
		} else {
			w.errorf(line, key, `has no value; write "" for an empty string or remove the key`)
		}
		return nil, false
	case val.Kind == yaml.MappingNode:
		w.errorf(line, key, "%s, got a mapping", describe(t))
		return nil, false
	case val.Kind == yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			w.errorf(line, key, "%s, got a list", describe(t))
			return nil, false
		}
		items := make([]any, 0, len(val.Content))
		for _, item := range val.Content {
			item = deref(item)
			if item == nil || item.Kind != yaml.ScalarNode || isNull(item) {
				w.errorf(line, key, "%s, got an item that is %s", describe(t), kindName(item))
				return nil, false
			}
			items = append(items, item.Value)
		}
		return items, true
	}
	if t.Kind() == reflect.String || t.Kind() == reflect.Slice {
		return val.Value, true // as written: 0123 or 1.0 stay text
	}
	var v any
	if err := val.Decode(&v); err != nil {
		w.errorf(line, key, "%s, got %s", describe(t), strconv.Quote(val.Value))
		return nil, false
	}
	return v, true
}

// deref follows YAML aliases (*name) to the node they stand for.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return strconv.Quote(n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}
