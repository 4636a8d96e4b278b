package main

import "massvhost/cgi"

// runLaunch is the hidden "cgi-launch" subcommand: the handler re-executes
// this binary to start every CGI script, and the launcher applies the
// tenant's identity and resource limits before exec'ing the script (see
// cgi.Launch for the argv contract). main must dispatch to it before
// parsing flags or loading configuration:
//
//	if len(os.Args) > 1 && os.Args[1] == cgi.LaunchCommand {
//		os.Exit(runLaunch(os.Args[2:]))
//	}
//
// It returns only when the launch failed.
func runLaunch(args []string) int {
	return cgi.Launch(args)
}
