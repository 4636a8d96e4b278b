// Command massvhost-cgi-launch is the CGI launcher of massvhost on its own:
// the program the server starts for every CGI script, which sets the
// script's identity and resource limits and then execs it (package
// massvhost/cgi/launch has the contract). It does the same as the hidden
// "massvhost cgi-launch" subcommand in less than half the CPU time, because
// it links nothing else (docs/CGI.md has the figures).
//
// Install it next to the massvhost binary (go install ./cmd/... does), or
// name it with the cgi.launcher key; with cgi.launcher "" the server uses it
// when it finds it beside itself. It is not meant to be run by hand:
//
//	massvhost-cgi-launch cgi-launch [flags] -- SCRIPT
package main

import (
	"fmt"
	"os"

	"massvhost/cgi/launch"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == launch.Command {
		os.Exit(launch.Main(os.Args[2:]))
	}
	fmt.Fprintf(os.Stderr, "usage: %s %s [flags] -- SCRIPT\n"+
		"This is the massvhost CGI launcher; the server starts it, see docs/CGI.md.\n", os.Args[0], launch.Command)
	os.Exit(2)
}
