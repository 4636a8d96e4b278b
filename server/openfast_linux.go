package server

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"massvhost/vhost"
)

// openat2Works is cleared the first time openat2(2) turns out to be
// missing (Linux before 5.6, or a seccomp filter that predates it); every
// request then takes the os.Root path.
var openat2Works atomic.Bool

func init() { openat2Works.Store(true) }

// serveRegularFast serves name when it is a regular file, with the same
// confinement as the os.Root path and fewer system calls: the docroot is
// opened O_PATH (no fstat, no os.Root), the file with one openat2 whose
// RESOLVE_BENEATH makes the kernel refuse, atomically, any resolution that
// leaves the docroot (a ".." too many, an absolute symlink, a symlink
// pointing out; THREATS FS-04). Over TLS the file is read by descriptor
// and never offered to Go's netpoller, which refuses regular files anyway
// (epoll_ctl EPERM); plain HTTP wraps it in an os.File so that net/http
// can use sendfile, as the os.Root path does. Like the
// os.Root path it opens the docroot by name on every request, so a docroot
// that was moved away or replaced is never served (FLT-05).
//
// It reports false, having written nothing, when the general path must
// decide: name is not a regular file (a directory and its index, a device),
// the URL path ends in "/", or openat2 is unavailable or raced a rename.
func (s *Server) serveRegularFast(w http.ResponseWriter, r *http.Request, site vhost.Site, st *state, urlPath, name string) bool {
	if !openat2Works.Load() || strings.HasSuffix(urlPath, "/") {
		return false
	}
	dfd, err := unix.Open(site.DocRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false // the general path answers for the docroot
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat2(dfd, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	switch {
	case err == unix.ENOSYS:
		openat2Works.Store(false)
		return false
	case err == unix.EAGAIN || err == unix.EPERM:
		// EAGAIN: a concurrent rename while resolving ".."; EPERM: not an
		// error open(2) gives for reading, so likely a seccomp filter.
		return false
	case err == unix.EXDEV:
		// RESOLVE_BENEATH refused a step out of the docroot.
		writeError(w, http.StatusNotFound)
		return true
	case err != nil:
		s.fsError(w, r, &fs.PathError{Op: "openat2", Path: name, Err: err})
		return true
	}
	var sb unix.Stat_t
	if err := unix.Fstat(fd, &sb); err != nil || sb.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return false
	}
	fi := &statInfo{name: name, size: sb.Size, mode: fs.FileMode(sb.Mode & 0o777), mtime: time.Unix(sb.Mtim.Unix())}
	if err := othersMayRead(dfd, name, fi.mode); err != nil {
		unix.Close(fd)
		s.fsError(w, r, err)
		return true
	}
	if r.TLS == nil {
		// Plain HTTP: an *os.File lets net/http use sendfile(2).
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		serveFile(w, r, st, f, fi, name)
		return true
	}
	defer unix.Close(fd)
	serveFile(w, r, st, fdReader(fd), fi, name)
	return true
}

// othersMayRead is checkOthersAccess for the fast path (FS-05): the
// directories are looked at with fstatat on the docroot handle. The file
// itself is already open beneath the docroot, so what this decides is only
// whether it is served, never which file.
func othersMayRead(dfd int, name string, perm fs.FileMode) error {
	return othersCanReach(name, perm, false, func(dir string) (fs.FileMode, error) {
		var sb unix.Stat_t
		var err error
		if dir == "." {
			err = unix.Fstat(dfd, &sb)
		} else {
			err = unix.Fstatat(dfd, dir, &sb, 0)
		}
		if err != nil {
			return 0, &fs.PathError{Op: "stat", Path: dir, Err: err}
		}
		return fs.FileMode(sb.Mode & 0o777), nil
	})
}

// fdReader reads a regular file by descriptor with pread(2), for
// sizedFile; the descriptor stays owned by the caller.
type fdReader int

func (fd fdReader) ReadAt(p []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(int(fd), p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &fs.PathError{Op: "pread", Err: err}
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}
