package server

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"massvhost/vhost"
)

// allowedMethods is the Allow header of static resources.
const allowedMethods = "GET, HEAD, OPTIONS"

// serveStatic serves name (from cleanPath) out of site.DocRoot.
//
// A regular file is served by serveRegularFast where the kernel has
// openat2 (RESOLVE_BENEATH gives the same confinement with fewer system
// calls); directories, everything else, and kernels without it come here.
// Every open here goes through an os.Root opened on the docroot for this
// request.
// os.Root resolves each path component with openat and refuses any step,
// including a symlink target, that would leave the root, so a tenant's
// symlink to another tenant's file or to "/" fails (THREATS FS-04), without
// the check-then-use race of realpath-style checks; symlinks that stay
// inside the docroot work. http.Dir, by contrast, follows symlinks anywhere.
//
// The Root is opened per request rather than cached: it costs one openat,
// and an os.Root keeps pointing at its directory after a rename, so a cache
// would go on serving a docroot that was moved away or replaced
// (THREATS FLT-05) until evicted.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request, site vhost.Site, st *state, urlPath, name string) {
	if s.serveRegularFast(w, r, site, st, urlPath, name) {
		return
	}
	root, err := os.OpenRoot(site.DocRoot)
	if err != nil {
		s.fsError(w, r, err)
		return
	}
	defer root.Close()
	f, fi, err := openInRoot(root, name)
	if err != nil {
		s.fsError(w, r, err)
		return
	}
	defer f.Close()
	switch {
	case fi.IsDir():
		if !strings.HasSuffix(urlPath, "/") {
			redirectToDir(w, r, urlPath)
			return
		}
		s.serveDir(w, r, site, st, root, f, urlPath, name)
	case fi.Mode().IsRegular() && !strings.HasSuffix(urlPath, "/"):
		serveFile(w, r, st, f, fi, name)
	default:
		// "/file/" (a file is no directory), and devices, FIFOs and
		// sockets a tenant may have created.
		writeError(w, http.StatusNotFound)
	}
}

// openInRoot opens name read-only and stats it. O_NONBLOCK keeps a FIFO
// planted in a docroot from blocking the open; it has no effect on regular
// files and directories.
func openInRoot(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkOthersAccess(root, name, fi)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// redirectToDir answers 301 with a relative Location naming the directory
// with a trailing slash ("./sub/"). A relative reference cannot be turned
// into an open redirect by the request's Host or by a path such as
// "//evil.example" (THREATS FS-08); the "./" keeps a segment containing
// ":" from reading as a URL scheme.
func redirectToDir(w http.ResponseWriter, r *http.Request, urlPath string) {
	last := urlPath[strings.LastIndexByte(urlPath, '/')+1:]
	loc := "./" + (&url.URL{Path: last}).EscapedPath() + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	writeError(w, http.StatusMovedPermanently)
}

// serveDir answers a directory request: the first index file that exists
// (an index with a CGI extension runs as a script), else a listing if
// enabled, else 403.
func (s *Server) serveDir(w http.ResponseWriter, r *http.Request, site vhost.Site, st *state, root *os.Root, dir *os.File, urlPath, name string) {
	for _, idx := range st.opts.Index {
		iname := idx
		if name != "." {
			iname = name + "/" + idx
		}
		if st.cgi != nil && st.cgi.IsScriptPath(idx) {
			fi, err := root.Stat(iname)
			switch {
			case err == nil && fi.Mode().IsRegular():
				st.cgi.ServeCGI(w, withPath(r, urlPath+idx), site, CGIDocroot)
				return
			case err != nil && fsStatus(err) != http.StatusNotFound:
				s.fsError(w, r, err)
				return
			}
			continue
		}
		f, fi, err := openInRoot(root, iname)
		if err != nil {
			if fsStatus(err) == http.StatusNotFound {
				continue
			}
			s.fsError(w, r, err)
			return
		}
		defer f.Close()
		if fi.Mode().IsRegular() {
			serveFile(w, r, st, f, fi, idx)
			return
		}
	}
	if !allowMethod(w, r) {
		return
	}
	if !st.opts.Listing {
		writeError(w, http.StatusForbidden)
		return
	}
	if err := listDir(w, dir, urlPath, &st.opts.deny); err != nil {
		s.fsError(w, r, err)
	}
}

// serveFile sends a regular file with http.ServeContent, which implements
// Last-Modified, the If-* preconditions, HEAD and Range, after setting the
// headers ServeContent would otherwise guess: Content-Type from a fixed
// table (never sniffed) and an ETag.
//
// f is an *os.File or, from the fast path, an fdReader. On plain HTTP an
// *os.File goes to ServeContent as is, for sendfile.
func serveFile(w http.ResponseWriter, r *http.Request, st *state, f io.ReaderAt, fi fs.FileInfo, name string) {
	if !allowMethod(w, r) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType(name))
	h.Set("ETag", etag(fi))
	limitRanges(r.Header, fi.Size(), st.opts.MaxRanges)
	var content io.ReadSeeker = &sizedFile{f: f, size: fi.Size()}
	if of, ok := f.(*os.File); ok && r.TLS == nil {
		content = of
	}
	http.ServeContent(w, r, "", fi.ModTime(), content)
}

// statInfo is the fs.FileInfo of a file the fast path stat'ed itself.
type statInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (s *statInfo) Name() string       { return path.Base(s.name) }
func (s *statInfo) Size() int64        { return s.size }
func (s *statInfo) Mode() fs.FileMode  { return s.mode }
func (s *statInfo) ModTime() time.Time { return s.mtime }
func (s *statInfo) IsDir() bool        { return false }
func (s *statInfo) Sys() any           { return nil }

// sizedFile reads an open file whose size is known from its fstat, for
// http.ServeContent: ServeContent finds the size by seeking to the end and
// back, two lseek(2) calls per request that this answers from memory, and
// each Read is one pread(2) at the tracked offset. It is used over TLS
// only: on plain HTTP the *os.File itself must reach the connection so
// that net/http can send it with sendfile(2). A file that changes size
// while it is served is cut or padded by net/http's Content-Length check,
// as it is when the size comes from lseek.
type sizedFile struct {
	f    io.ReaderAt
	size int64
	off  int64
}

func (s *sizedFile) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	if rem := s.size - s.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := s.f.ReadAt(p, s.off)
	s.off += int64(n)
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

func (s *sizedFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += s.off
	case io.SeekEnd:
		offset += s.size
	default:
		return 0, errors.New("server: seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("server: seek: negative position")
	}
	s.off = offset
	return offset, nil
}

// etag is a strong validator built from size and modification time only,
// Apache's "FileETag MTime Size": unlike an inode-based tag it is the same
// on every node serving the same files (THREATS FS-10).
func etag(fi fs.FileInfo) string {
	b := make([]byte, 0, 36)
	b = append(b, '"')
	b = strconv.AppendInt(b, fi.Size(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 16)
	b = append(b, '"')
	return string(b)
}

// allowMethod reports whether r may read a static resource. Otherwise it
// has answered: 204 with Allow for OPTIONS, 405 with Allow for the rest.
func allowMethod(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodOptions:
		w.Header().Set("Allow", allowedMethods)
		w.WriteHeader(http.StatusNoContent)
		return false
	default:
		w.Header().Set("Allow", allowedMethods)
		writeError(w, http.StatusMethodNotAllowed)
		return false
	}
}

// fsError answers a filesystem error with fsStatus, logging the 500s.
func (s *Server) fsError(w http.ResponseWriter, r *http.Request, err error) {
	code := fsStatus(err)
	if code == http.StatusInternalServerError {
		s.internalError(w, r, "static file", err)
		return
	}
	writeError(w, code)
}

// fsStatus maps a filesystem error to a status. Whatever a tenant's tree
// does (missing files, symlinks out of the root, loops, a file where a
// directory was expected) is "not found", so no error class reveals more
// than absence; unreadable is 403; an over-long name is 414 (FS-05).
func fsStatus(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR),
		errors.Is(err, syscall.ELOOP), isPathEscape(err):
		return http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	case errors.Is(err, syscall.ENAMETOOLONG):
		return http.StatusRequestURITooLong
	default:
		return http.StatusInternalServerError
	}
}

// isPathEscape reports whether err is os.Root refusing a path that leaves
// the root. Package os does not export that error (errPathEscapes in
// os/file.go), so it is recognized by its text; the symlink-escape tests
// fail with 500 if a toolchain ever changes it.
func isPathEscape(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent"
}

// pathExt returns the lowercased extension of the last segment of p.
func pathExt(p string) string {
	return strings.ToLower(path.Ext(p))
}
