package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as the config file. Load must
// never panic, must return either a Config or an error, every problem must
// be a "conf: " message, and a Config it returns must validate.
func FuzzLoad(f *testing.F) {
	f.Add(defaultYAML)
	seeds, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	base := f.TempDir()
	for _, d := range []string{"examples/sites", "examples/certs"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := LoadOptions{Path: "fuzz.yaml", BaseDir: base, Env: []string{}}
		c, err := load(opts, filepath.Join(base, "fuzz.yaml"), data)
		if err != nil {
			if c != nil {
				t.Fatal("Config returned with an error")
			}
			for _, e := range flatten(err) {
				if !strings.HasPrefix(e.Error(), "conf: ") {
					t.Fatalf("problem without the conf: prefix: %q", e)
				}
			}
			return
		}
		if c == nil {
			t.Fatal("nil Config without an error")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load accepted a config that does not validate: %v", err)
		}
	})
}
