package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

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
	if errs := checkResolved(cfg); len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(stdout, err)
		}
		return errSilent
	}
	for _, w := range hostWarnings("/proc/sys", os.Geteuid() == 0) {
		fmt.Fprintln(stdout, "warning:", w)
	}
	fmt.Fprintf(stdout, "ok (%s)\n", cfg.Source())
	return nil
}

// checkResolved checks what serve resolves against this machine rather
// than the file alone: the CGI launcher (present, executable, replaceable
// by nobody else) and, when run as root, the anonymous user. It runs the
// same functions as serve, so check passes exactly when serve would get
// past them.
func checkResolved(cfg *conf.Config) []error {
	c := cfg.CGI
	if !c.Enabled {
		return nil
	}
	var errs []error
	if _, err := resolveLauncher(c.Launcher, slog.New(slog.DiscardHandler)); err != nil {
		errs = append(errs, err)
	}
	if _, err := anonymousIdentity(c.AnonymousUser, uint32(c.MinUID), uint32(c.MinGID)); err != nil {
		errs = append(errs, err)
	}
	return errs
}
