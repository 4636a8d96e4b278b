package server

import (
	"io/fs"
	"os"
	"strings"
)

// runsAsRoot reports whether the process runs with euid 0; it does not
// change while the process runs.
var runsAsRoot = os.Geteuid() == 0

// checkOthersAccess refuses, with an error wrapping fs.ErrPermission, a
// static file or directory that an unprivileged user sharing no group with
// the tenant could not reach: name itself must be readable by others (a
// directory: searchable), and so must be searchable every directory from
// the document root down to it.
//
// It matters only when the server runs as root (needed to start scripts as
// their tenants): root reads any file whatever its mode, so without this a
// tenant's "chmod 000 backup.sql", or a 0600 file or 0700 directory kept
// from the web, would be served to anyone (THREATS FS-05). Apache and nginx
// serve as an unprivileged user and the kernel refuses those files; this
// gives tenants the same contract. Without root the kernel's own checks
// apply and this does nothing.
func checkOthersAccess(root *os.Root, name string, fi fs.FileInfo) error {
	return othersCanReach(name, fi.Mode().Perm(), fi.IsDir(), func(dir string) (fs.FileMode, error) {
		st, err := root.Stat(dir)
		if err != nil {
			return 0, err
		}
		return st.Mode().Perm(), nil
	})
}

// othersCanReach is the walk of checkOthersAccess for any way of looking at
// the docroot: perm is the permission bits of name itself, and dirPerm
// returns those of a directory below the docroot ("." is the docroot).
func othersCanReach(name string, perm fs.FileMode, isDir bool, dirPerm func(dir string) (fs.FileMode, error)) error {
	if !runsAsRoot {
		return nil
	}
	deny := &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	need := fs.FileMode(0o004)
	if isDir {
		need = 0o001
	}
	if perm&need == 0 {
		return deny
	}
	if name == "." {
		return nil
	}
	dir := "."
	for i := 0; ; {
		p, err := dirPerm(dir)
		if err != nil {
			return err
		}
		if p&0o001 == 0 {
			return deny
		}
		j := strings.IndexByte(name[i:], '/')
		if j < 0 {
			return nil
		}
		dir, i = name[:i+j], i+j+1
	}
}
