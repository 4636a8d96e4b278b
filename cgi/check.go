package cgi

import (
	"fmt"
	"net/http"

	"golang.org/x/sys/unix"

	"massvhost/vhost"
)

// policy is what the suEXEC-style checks compare a script against.
type policy struct {
	// privileged is true when the server runs as root: scripts then run as
	// the tenant (site.Owner, site.Group), and everything on the way must
	// belong to that identity.
	privileged     bool
	minUID, minGID uint32
}

// check applies the suEXEC checks (httpd support/suexec.c) to a located
// script, on the fstat data of the descriptors the lookup opened, so that
// what is checked is what the launcher will verify and run:
//
//   - always: every directory from the base down to the script and the script
//     itself are not writable by others; the script is a regular file (the
//     lookup refused symlinks), executable, and neither setuid nor setgid;
//   - when privileged, also: the tenant uid and gid are not 0 and not below
//     the minimums, every directory and the script are owned by exactly that
//     uid and gid, nothing is group-writable, and the owner may execute.
//
// Without root the identity checks are skipped: every script runs as the
// server's own user, there is no one to switch to, and a group-writable
// tree is the norm under user-private-group umasks (002). World-writable
// paths and setuid/setgid scripts are still refused.
func (p policy) check(s *script, site vhost.Site) *refusal {
	deny := func(format string, args ...any) *refusal {
		return refuse(http.StatusForbidden, fmt.Sprintf(format, args...), nil)
	}
	if p.privileged {
		switch {
		case site.Owner == 0:
			return deny("tenant uid is 0")
		case site.Group == 0:
			return deny("tenant gid is 0")
		case site.Owner < p.minUID:
			return deny("tenant uid %d is below min_uid %d", site.Owner, p.minUID)
		case site.Group < p.minGID:
			return deny("tenant gid %d is below min_gid %d", site.Group, p.minGID)
		}
	}
	for i := range s.dirs {
		if r := p.checkOwner(&s.dirs[i], site, "directory "+s.dirNames[i]); r != nil {
			return r
		}
	}
	if r := p.checkOwner(&s.file, site, "script "+s.filename); r != nil {
		return r
	}
	mode := s.file.Mode
	switch {
	case mode&(unix.S_ISUID|unix.S_ISGID) != 0:
		return deny("script %s is setuid or setgid", s.filename)
	case p.privileged && mode&unix.S_IXUSR == 0:
		return deny("script %s is not executable by its owner", s.filename)
	case mode&(unix.S_IXUSR|unix.S_IXGRP|unix.S_IXOTH) == 0:
		return deny("script %s is not executable", s.filename)
	}
	return nil
}

// checkOwner applies the ownership and writability rules to one inode.
func (p policy) checkOwner(st *unix.Stat_t, site vhost.Site, what string) *refusal {
	deny := func(format string, args ...any) *refusal {
		return refuse(http.StatusForbidden, fmt.Sprintf(format, args...), nil)
	}
	switch {
	case st.Mode&unix.S_IWOTH != 0:
		return deny("%s is writable by others", what)
	case !p.privileged:
		return nil
	case st.Mode&unix.S_IWGRP != 0:
		return deny("%s is group-writable", what)
	case st.Uid != site.Owner:
		return deny("%s is owned by uid %d, not the tenant's %d", what, st.Uid, site.Owner)
	case st.Gid != site.Group:
		return deny("%s has gid %d, not the tenant's %d", what, st.Gid, site.Group)
	}
	return nil
}
