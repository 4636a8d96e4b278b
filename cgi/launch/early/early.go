// Package early makes the binary that imports it start as the CGI launcher
// when its first argument is the launcher's Command word ("cgi-launch"),
// from package initialization rather than from main.
//
// The launcher runs once per CGI request, and in a large binary most of its
// start-up cost is the initialization of packages it never uses: metrics
// registries, Redis and YAML codecs, TLS and HTTP tables. The Go
// specification initializes packages in import-path order as soon as their
// own imports are initialized, so this package, which needs little beyond
// package launch, runs its init before the packages that depend on net,
// net/http or crypto/tls, and exits (through the script's execve) before
// they initialize. In the massvhost binary that skips about a third of the
// package initializers and of the launcher's CPU time; a binary built from
// package launch alone (cmd/massvhost-cgi-launch) is still cheaper, because
// the runtime's own start-up grows with the binary.
//
// Import it for its side effect, from the main package only:
//
//	import _ "massvhost/cgi/launch/early"
//
// A binary that imports it must not use "cgi-launch" as an argument for
// anything else.
package early

import (
	"os"

	"massvhost/cgi/launch"
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == launch.Command {
		os.Exit(launch.Main(os.Args[2:]))
	}
}
