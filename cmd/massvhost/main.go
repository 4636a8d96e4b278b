// Command massvhost is a web server for mass virtual hosting: one process
// serves thousands to millions of tenant directories over HTTP and HTTPS,
// loading each tenant's certificate lazily by the SNI name in the TLS
// ClientHello.
//
// Usage:
//
//	massvhost serve    [--config FILE] [flags]   run the server
//	massvhost check    [--config FILE]           validate a configuration
//	massvhost certs    put|get|rm|ls|import|expiring …
//	massvhost sites    alias|unalias|ls …
//	massvhost version
//
// Without --config the embedded default configuration is used: it serves the
// example tenants shipped in examples/ on unprivileged loopback ports.
//
// This file holds flag parsing and dispatch only; the work is done by the
// packages conf, vhost, certs, cgi and server.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"

	"massvhost/cgi"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module's build info is used.
var version = ""

// errUsage marks errors caused by how the command was invoked; they exit 2.
var errUsage = errors.New("usage")

// errSilent fails a command whose message was already printed.
var errSilent = errors.New("failed")

// usageError formats a one-line usage problem that exits with status 2.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{name: "serve", summary: "run the server", run: runServe},
		{name: "check", summary: "validate a configuration and print every problem", run: runCheck},
		{name: "certs", summary: "manage certificates in the configured store", run: runCerts},
		{name: "sites", summary: "manage host aliases kept in Redis", run: runSites},
		{name: "version", summary: "print the version", run: runVersion},
	}
}

func main() {
	// The CGI launcher runs between fork and the script's exec: dispatch to
	// it before anything else (no flags, no configuration, no logging).
	if len(os.Args) > 1 && os.Args[1] == cgi.LaunchCommand {
		os.Exit(runLaunch(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args and maps errors to exit codes: 0 success, 1 failure,
// 2 usage error (with a one-line hint).
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		printUsage(stdout)
		return 0
	case "-v", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, pflag.ErrHelp):
			return 0
		case errors.Is(err, errSilent):
			return 1
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "massvhost %s: %s\n", name, strings.TrimPrefix(err.Error(), "usage: "))
			fmt.Fprintf(stderr, "Run 'massvhost %s --help' for usage.\n", name)
			return 2
		default:
			fmt.Fprintf(stderr, "massvhost %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "massvhost: unknown command %q\nRun 'massvhost --help' for usage.\n", name)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "massvhost — mass virtual hosting with lazily loaded certificates")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: massvhost <command> [arguments] [--config FILE]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'massvhost <command> --help' for a command's flags.")
}

// newFlagSet returns a flag set that reports parse problems as usage errors
// and accepts flags after positional arguments.
func newFlagSet(name, synopsis string, stdout io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("massvhost "+name, pflag.ContinueOnError)
	fs.SetInterspersed(true)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: massvhost %s\n\nFlags:\n%s", synopsis, fs.FlagUsages())
	}
	return fs
}

// parseFlags parses args, printing help for --help and wrapping other
// problems as usage errors.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fs.Usage()
			return err
		}
		return usageError("%v", err)
	}
	return nil
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "version", stdout)
	fs.String("config", "", "ignored; accepted like every subcommand")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	fmt.Fprintln(stdout, "massvhost", versionString())
	return nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return v + " " + bi.GoVersion
	}
	return "(devel)"
}
