package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"massvhost/cgi"
	// The launcher dispatch happens here, during package initialization,
	// before most of this binary's packages initialize; see package early.
	_ "massvhost/cgi/launch/early"
)

// runLaunch is the hidden "cgi-launch" subcommand: the handler starts a
// launcher for every CGI script, and the launcher applies the tenant's
// identity and resource limits before exec'ing the script (see cgi.Launch
// for the argv contract). Package early normally runs it from package
// initialization already; main dispatches to it as well, before parsing
// flags or loading configuration, in case package early is ever dropped:
//
//	if len(os.Args) > 1 && os.Args[1] == cgi.LaunchCommand {
//		os.Exit(runLaunch(os.Args[2:]))
//	}
//
// It returns only when the launch failed.
func runLaunch(args []string) int {
	return cgi.Launch(args)
}

// launcherName is the small launcher binary (cmd/massvhost-cgi-launch)
// looked for next to the massvhost binary when cgi.launcher is "".
const launcherName = "massvhost-cgi-launch"

// autoLauncher is the launcher used when cgi.launcher is "", found once per
// process: a massvhost-cgi-launch next to this binary when there is one, else
// this binary itself. Resolving it once keeps the choice stable across
// reloads and costs nothing per request.
var autoLauncher = sync.OnceValues(func() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return cgi.DefaultLauncher, nil
	}
	side := filepath.Join(filepath.Dir(self), launcherName)
	if _, err := os.Lstat(side); err != nil {
		return cgi.DefaultLauncher, nil
	}
	path, err := checkLauncher(side)
	if err != nil {
		return "", fmt.Errorf("cgi.launcher: auto: %w; fix it, remove it, or set cgi.launcher", err)
	}
	return path, nil
})

// resolveLauncher returns the launcher executable for the cgi.launcher key:
// configured (absolute, checked) or, when "", autoLauncher's choice.
func resolveLauncher(configured string, logger *slog.Logger) (string, error) {
	if configured == "" {
		path, err := autoLauncher()
		if err == nil {
			logger.Info("cgi launcher", "path", path, "auto", true)
		}
		return path, err
	}
	path, err := checkLauncher(configured)
	if err != nil {
		return "", fmt.Errorf("cgi.launcher: %w", err)
	}
	logger.Info("cgi launcher", "path", path, "auto", false)
	return path, nil
}

// anonymousIdentity resolves cgi.anonymous_user and checks it against
// cgi.min_uid and cgi.min_gid. Only a root server switches identities, so
// without root the user is not looked up at all (and need not exist): the
// zero Identity is returned.
func anonymousIdentity(name string, minUID, minGID uint32) (cgi.Identity, error) {
	if name == "" || unix.Geteuid() != 0 {
		return cgi.Identity{}, nil
	}
	id, err := cgi.LookupUser(name)
	if err != nil {
		return cgi.Identity{}, fmt.Errorf("cgi.anonymous_user: %w", err)
	}
	if id.UID < minUID || id.GID < minGID {
		return cgi.Identity{}, fmt.Errorf("cgi.anonymous_user: user %q has uid %d and gid %d, below cgi.min_uid %d or cgi.min_gid %d; choose another user or set \"\"",
			name, id.UID, id.GID, minUID, minGID)
	}
	return id, nil
}

// checkLauncher refuses a launcher that someone other than the server's
// user (or root) could replace, and returns its path with symbolic links
// resolved, so that the file checked is the one run, whatever later happens
// to the links. The launcher runs with the server's privileges, root
// included, until it execs the script. The file must be a regular
// executable file, and neither it nor its directory may be writable by
// others; when the server is root, both must also belong to root and not
// be group-writable, the rules the CGI checks apply to scripts.
func checkLauncher(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	var dir, file unix.Stat_t
	if err := unix.Stat(filepath.Dir(real), &dir); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Dir(real), err)
	}
	if err := unix.Stat(real, &file); err != nil {
		return "", fmt.Errorf("%s: %w", real, err)
	}
	if file.Mode&unix.S_IFMT != unix.S_IFREG || file.Mode&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", real)
	}
	root := unix.Geteuid() == 0
	for _, c := range []struct {
		name string
		st   *unix.Stat_t
	}{{filepath.Dir(real), &dir}, {real, &file}} {
		switch {
		case c.st.Mode&unix.S_IWOTH != 0:
			return "", fmt.Errorf("%s is writable by others", c.name)
		case root && c.st.Mode&unix.S_IWGRP != 0:
			return "", fmt.Errorf("%s is group-writable", c.name)
		case root && c.st.Uid != 0:
			return "", fmt.Errorf("%s is owned by uid %d, not root", c.name, c.st.Uid)
		}
	}
	return real, nil
}
