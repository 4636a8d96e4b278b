package main

import (
	"fmt"
	"io"

	"massvhost/conf"
)

// runCheck validates a configuration the way serve would load it and prints
// "ok" or every problem, one per line.
func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "check [--config FILE] [flags]", stdout)
	configPath := fs.String("config", "", "configuration file (YAML); default: the embedded example configuration")
	conf.BindFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := conf.Load(conf.LoadOptions{Path: *configPath, Flags: fs})
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errSilent
	}
	fmt.Fprintf(stdout, "ok (%s)\n", cfg.Source())
	return nil
}
