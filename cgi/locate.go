package cgi

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"massvhost/cgi/cgroup"
)

// scriptAliasPrefix is the URL prefix that maps onto a site's cgi-bin.
const scriptAliasPrefix = "/cgi-bin/"

// maxWalkDirs bounds how many directories a script lookup descends.
const maxWalkDirs = 32

// script is a CGI script found by [locate]: where it is, how the URL splits
// around it, and the fstat of every directory on the way and of the file,
// taken from descriptors opened one component at a time.
type script struct {
	dirPath    string        // directory holding the script (absolute)
	name       string        // file name of the script
	filename   string        // SCRIPT_FILENAME
	scriptName string        // SCRIPT_NAME: URL path of the script
	pathInfo   string        // PATH_INFO: the URL path after the script, or ""
	dirs       []unix.Stat_t // fstat of base, then of each directory below it
	dirNames   []string      // absolute paths of dirs, for the log
	file       unix.Stat_t
	dirFD      int          // O_PATH descriptor of dirPath; closed by close
	runAs      Identity     // set by the checks: who runs it when the server is root
	cgroup     *cgroup.Slot // where the run goes; nil: placed in no cgroup
	// cgroupLost is set by the run when the slot's cgroup was found gone
	// (cgroup.Manager.Lost).
	cgroupLost bool
}

func (s *script) close() {
	if s.dirFD >= 0 {
		unix.Close(s.dirFD)
		s.dirFD = -1
	}
}

// refusal is a request that is answered without running anything: the
// status for the client and the reason for the log.
type refusal struct {
	status int
	reason string
	err    error
}

func (r *refusal) Error() string {
	if r.err != nil {
		return fmt.Sprintf("%s: %v", r.reason, r.err)
	}
	return r.reason
}

func (r *refusal) Unwrap() error { return r.err }

func refuse(status int, reason string, err error) *refusal {
	return &refusal{status: status, reason: reason, err: err}
}

// splitURLPath validates a decoded URL path and returns the segments to look
// up below the mode's base directory and the URL prefix they hang from.
//
// net/http hands a handler the decoded path without cleaning it, so "%2e%2e"
// arrives as ".." and "%00" as NUL (the cgi-bin traversal of Apache
// CVE-2021-41773/42013). Dot segments, NUL and backslashes are refused
// outright instead of being cleaned: a well-formed client never sends them.
func splitURLPath(urlPath string, mode Mode) (segs []string, prefix string, rf *refusal) {
	if !strings.HasPrefix(urlPath, "/") || strings.ContainsAny(urlPath, "\x00\\") {
		return nil, "", refuse(http.StatusBadRequest, "malformed path", nil)
	}
	for seg := range strings.SplitSeq(urlPath, "/") {
		if seg == "." || seg == ".." {
			return nil, "", refuse(http.StatusBadRequest, "dot segment in path", nil)
		}
	}
	switch mode {
	case ScriptAlias:
		rest, ok := strings.CutPrefix(urlPath, scriptAliasPrefix)
		if !ok || rest == "" {
			return nil, "", refuse(http.StatusNotFound, "not below "+scriptAliasPrefix, nil)
		}
		return strings.Split(rest, "/"), scriptAliasPrefix, nil
	case Docroot:
		return strings.Split(urlPath[1:], "/"), "/", nil
	}
	return nil, "", refuse(http.StatusInternalServerError, fmt.Sprintf("unknown mode %d", mode), nil)
}

// locate finds the script that segs name below base, walking one component
// at a time with openat(O_PATH|O_NOFOLLOW) from a descriptor of base: the
// first regular file ends the walk and the remaining segments become
// PATH_INFO. Symbolic links are refused at every step (suEXEC refuses
// symlinked programs, and no link can then lead out of the tenant's tree),
// as are empty and hidden (dot) names. base itself must not be a symlink.
//
// The walk runs on descriptors, so a directory renamed or replaced while we
// walk cannot redirect it; the descriptor of the script's directory is kept
// for the launcher, which runs the script relative to it. os.Root would
// confine the walk as well, but it follows symlinks that stay inside the
// tree, and the checks need every directory's fstat anyway.
func locate(base string, segs []string, prefix string) (*script, *refusal) {
	if !filepath.IsAbs(base) {
		return nil, refuse(http.StatusInternalServerError, "site directory is not absolute", nil)
	}
	base = filepath.Clean(base)
	dirFD, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		var st unix.Stat_t
		if unix.Lstat(base, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil, refuse(http.StatusForbidden, "script directory is a symlink", nil)
		}
		return nil, walkRefusal(err, "open script directory")
	}
	s := &script{dirFD: dirFD}
	var st unix.Stat_t
	if err := unix.Fstat(dirFD, &st); err != nil {
		s.close()
		return nil, walkRefusal(err, "stat script directory")
	}
	s.dirs = append(s.dirs, st)
	s.dirNames = append(s.dirNames, base)
	for i, seg := range segs {
		switch {
		case seg == "":
			s.close()
			return nil, refuse(http.StatusNotFound, "empty path segment", nil)
		case seg[0] == '.':
			s.close()
			return nil, refuse(http.StatusNotFound, "hidden path segment", nil)
		case len(s.dirs) > maxWalkDirs:
			s.close()
			return nil, refuse(http.StatusNotFound, "path too deep", nil)
		}
		fd, err := unix.Openat(s.dirFD, seg, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			s.close()
			return nil, walkRefusal(err, "open "+seg)
		}
		err = unix.Fstat(fd, &st)
		if err != nil {
			unix.Close(fd)
			s.close()
			return nil, walkRefusal(err, "stat "+seg)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			unix.Close(s.dirFD)
			s.dirFD = fd
			s.dirs = append(s.dirs, st)
			s.dirNames = append(s.dirNames, filepath.Join(append([]string{base}, segs[:i+1]...)...))
			continue
		case unix.S_IFREG:
			unix.Close(fd)
			s.file = st
			s.name = seg
			s.dirPath = filepath.Join(append([]string{base}, segs[:i]...)...)
			s.filename = filepath.Join(s.dirPath, seg)
			s.scriptName = prefix + strings.Join(segs[:i+1], "/")
			if rest := segs[i+1:]; len(rest) > 0 {
				s.pathInfo = "/" + strings.Join(rest, "/")
			}
			return s, nil
		case unix.S_IFLNK:
			unix.Close(fd)
			s.close()
			return nil, refuse(http.StatusForbidden, "symlink in script path", nil)
		default:
			unix.Close(fd)
			s.close()
			return nil, refuse(http.StatusForbidden, "not a regular file", nil)
		}
	}
	s.close()
	return nil, refuse(http.StatusNotFound, "path names a directory", nil)
}

// walkRefusal maps a lookup error to the status the client sees.
func walkRefusal(err error, op string) *refusal {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ENAMETOOLONG):
		return refuse(http.StatusNotFound, "no such script", nil)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return refuse(http.StatusForbidden, op, err)
	}
	return refuse(http.StatusInternalServerError, op, err)
}
