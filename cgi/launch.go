package cgi

import "massvhost/cgi/launch"

// LaunchCommand is the hidden subcommand of the massvhost binary that runs
// the CGI launcher ([Launch]).
const LaunchCommand = launch.Command

// Launch is the body of the hidden "massvhost cgi-launch" subcommand, which
// the [Handler] starts for every script to set the tenant's identity and
// resource limits before the script's first instruction. It returns the
// exit status for the process, and returns at all only when the launch
// failed. See package massvhost/cgi/launch for the argv contract. A binary
// built from that package alone (cmd/massvhost-cgi-launch) starts in less
// than half the CPU time of the full server binary (set [Options.Launcher] to
// it); a large binary that is its own launcher should import package
// massvhost/cgi/launch/early, which runs the launcher from package
// initialization, before most other packages initialize.
func Launch(args []string) int { return launch.Main(args) }
