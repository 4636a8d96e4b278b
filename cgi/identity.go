package cgi

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
)

// Identity is a uid and primary gid a script runs as. The zero value means
// no identity.
type Identity struct {
	UID, GID uint32
}

// IsZero reports whether id is the zero Identity.
func (id Identity) IsZero() bool { return id == Identity{} }

// LookupUser resolves a user name, or a numeric uid, to the user's uid and
// primary gid through the system's user database (os/user). It is meant to
// run once when a configuration is loaded, never per request: the answer may
// come from NSS (LDAP, say) and take its time. It refuses root and ids that
// do not fit 32 bits; whether an identity is acceptable for scripts (the
// minimum uid and gid) is [New]'s call.
func LookupUser(name string) (Identity, error) {
	if name == "" {
		return Identity{}, errors.New("cgi: empty user name")
	}
	var u *user.User
	var err error
	if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
		u, err = user.LookupId(name)
	} else {
		u, err = user.Lookup(name)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("cgi: user %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	switch {
	case err1 != nil || err2 != nil:
		return Identity{}, fmt.Errorf("cgi: user %q: uid %q, gid %q are not 32-bit ids", name, u.Uid, u.Gid)
	case uid == 0 || gid == 0:
		return Identity{}, fmt.Errorf("cgi: user %q has uid %d, gid %d: scripts never run as root", name, uid, gid)
	}
	return Identity{UID: uint32(uid), GID: uint32(gid)}, nil
}
