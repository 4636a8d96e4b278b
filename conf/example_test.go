package conf_test

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"massvhost/conf"
)

func ExampleLoad() {
	cfg, err := conf.Load(conf.LoadOptions{
		Path: "testdata/example.yaml",
		Env:  []string{"MASSVHOST_CERTS_CACHE_SIZE=5"}, // nil would use os.Environ()
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Certs.CacheSize, cfg.Certs.TTL, cfg.Sites.Default, filepath.Base(cfg.Sites.Root))
	// Output: 5 10m0s example.test sites
}

func ExampleLoad_errors() {
	_, err := conf.Load(conf.LoadOptions{Path: "testdata/misspelled.yaml", Env: []string{}})
	fmt.Println(err)
	// Output:
	// conf: testdata/misspelled.yaml:3: certs.cahce_size: unknown key (did you mean certs.cache_size?)
	// conf: testdata/misspelled.yaml:6: listen.htps: unknown key (did you mean listen.https?)
}

func ExampleBindFlags() {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.String("config", "", "config file")
	conf.BindFlags(fs)
	if err := fs.Parse([]string{"--sites-root=testdata/tree/sites", "--certs-dir=testdata/tree/certs", "--log-level=debug"}); err != nil {
		fmt.Println(err)
		return
	}
	config, _ := fs.GetString("config")
	cfg, err := conf.Load(conf.LoadOptions{Path: config, Flags: fs, Env: []string{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Source(), cfg.Log.Level, filepath.Base(cfg.Sites.Root))
	// Output: embedded default debug sites
}

func ExampleConfig_Validate() {
	cfg := conf.Default()
	cfg.Sites.Root = "testdata/tree/sites"
	cfg.Certs.Dir = "testdata/tree/certs"
	cfg.Certs.CacheSize = -3
	cfg.Log.Level = "loud"
	fmt.Println(cfg.Validate())
	// Output:
	// conf: certs.cache_size: must be at least 1, got -3
	// conf: log.level: must be one of debug, info, warn, error, got "loud"
}
