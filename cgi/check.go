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
	// the tenant (site.Owner, site.Group), or as anonymous for sites owned
	// below minUID, and everything on the way must belong to the site's
	// owner.
	privileged     bool
	minUID, minGID uint32
	anonymous      Identity // zero: sites owned below minUID are refused
}

// identity returns who runs a site's scripts when the server is root: the
// owner of the site's document root when that uid is at least minUID (a
// tenant), else the anonymous identity (root- or system-owned sites), if
// there is one. The anonymous user never runs a site it owns: it could then
// rewrite the code of every site that runs as anonymous.
func (p policy) identity(site vhost.Site) (Identity, *refusal) {
	deny := func(format string, args ...any) (Identity, *refusal) {
		return Identity{}, refuse(http.StatusForbidden, fmt.Sprintf(format, args...), nil)
	}
	switch {
	case !p.anonymous.IsZero() && site.Owner == p.anonymous.UID:
		return deny("tenant uid %d is the anonymous user's", site.Owner)
	case site.Owner < p.minUID && !p.anonymous.IsZero():
		return p.anonymous, nil
	case site.Owner == 0:
		return deny("tenant uid is 0")
	case site.Group == 0:
		return deny("tenant gid is 0")
	case site.Owner < p.minUID:
		return deny("tenant uid %d is below min_uid %d", site.Owner, p.minUID)
	case site.Group < p.minGID:
		return deny("tenant gid %d is below min_gid %d", site.Group, p.minGID)
	}
	return Identity{UID: site.Owner, GID: site.Group}, nil
}

// check applies the suEXEC checks (httpd support/suexec.c) to a located
// script, on the fstat data of the descriptors the lookup opened, so that
// what is checked is what the launcher will verify and run:
//
//   - always: every directory from the base down to the script and the script
//     itself are not writable by others; the script is a regular file (the
//     lookup refused symlinks), executable, and neither setuid nor setgid;
//   - when privileged, also: the identity to run as is acceptable (see
//     identity), every directory and the script are owned by exactly the
//     site's owner uid and gid, nothing is group-writable, and that identity
//     may search the script's directory and execute the script.
//
// It returns the identity the script runs as; the zero Identity when not
// privileged. Without root the identity checks are skipped: every script
// runs as the server's own user, there is no one to switch to, and a
// group-writable tree is the norm under user-private-group umasks (002).
// World-writable paths and setuid/setgid scripts are still refused.
func (p policy) check(s *script, site vhost.Site) (Identity, *refusal) {
	deny := func(format string, args ...any) (Identity, *refusal) {
		return Identity{}, refuse(http.StatusForbidden, fmt.Sprintf(format, args...), nil)
	}
	var id Identity
	if p.privileged {
		var rf *refusal
		if id, rf = p.identity(site); rf != nil {
			return Identity{}, rf
		}
	}
	for i := range s.dirs {
		if r := p.checkOwner(&s.dirs[i], site, "directory "+s.dirNames[i]); r != nil {
			return Identity{}, r
		}
	}
	if r := p.checkOwner(&s.file, site, "script "+s.filename); r != nil {
		return Identity{}, r
	}
	mode := s.file.Mode
	switch {
	case mode&(unix.S_ISUID|unix.S_ISGID) != 0:
		return deny("script %s is setuid or setgid", s.filename)
	case mode&(unix.S_IXUSR|unix.S_IXGRP|unix.S_IXOTH) == 0:
		return deny("script %s is not executable", s.filename)
	case !p.privileged:
		return id, nil
	case !permits(&s.file, id, unix.S_IXUSR) && id.UID == site.Owner:
		return deny("script %s is not executable by its owner", s.filename)
	case !permits(&s.file, id, unix.S_IXUSR):
		return deny("script %s is not executable by the anonymous uid %d", s.filename, id.UID)
	case !permits(&s.dirs[len(s.dirs)-1], id, unix.S_IXUSR):
		return deny("directory %s is not searchable by uid %d", s.dirNames[len(s.dirNames)-1], id.UID)
	}
	return id, nil
}

// permits reports whether the owner, group or other permission bit that
// applies to id in st (chosen as the kernel does, by uid, then gid) includes
// userBit (S_IRUSR, S_IWUSR or S_IXUSR). Supplementary groups are not
// considered: scripts run with none.
func permits(st *unix.Stat_t, id Identity, userBit uint32) bool {
	switch {
	case st.Uid == id.UID:
		return st.Mode&userBit != 0
	case st.Gid == id.GID:
		return st.Mode&(userBit>>3) != 0
	}
	return st.Mode&(userBit>>6) != 0
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
