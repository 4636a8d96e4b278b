package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"massvhost/conf"
	"massvhost/server"
	"massvhost/vhost"
)

// logSet is the log destinations of one configuration: the server (error)
// log, the access log and the per-tenant access logs. Files among them are
// reopened by reopen (SIGUSR1), so logrotate can move them away and the
// server continues in fresh files without a restart.
type logSet struct {
	cfg    conf.Log
	logger *slog.Logger

	errFile    *reopenFile // nil: stderr
	accessFile *reopenFile // nil: stdout, stderr or off
	access     io.Writer   // nil: off
	tenants    *tenantLogs // nil: no per-tenant logs
}

// openLogSet opens the destinations cfg names. Files that prev already has
// open under the same path are shared rather than opened twice, so a
// reload that keeps a path keeps writing to the same file.
func openLogSet(cfg *conf.Config, stderr io.Writer, prev *logSet) (ls *logSet, err error) {
	ls = &logSet{cfg: cfg.Log}
	defer func() {
		if err != nil {
			ls.closeUnshared(prev)
		}
	}()
	errOut := stderr
	if cfg.Log.ErrorIsFile() {
		if prev != nil && prev.errFile != nil && prev.errFile.path == cfg.Log.Error {
			ls.errFile = prev.errFile
		} else if ls.errFile, err = openReopenFile(cfg.Log.Error); err != nil {
			return nil, fmt.Errorf("log.error: %w", err)
		}
		errOut = ls.errFile
	}
	if ls.logger, err = newLogger(cfg.Log, errOut); err != nil {
		return nil, err
	}
	switch cfg.Log.Access {
	case conf.AccessOff, "":
	case conf.AccessStdout:
		ls.access = os.Stdout
	case conf.AccessStderr:
		ls.access = os.Stderr
	default:
		if prev != nil && prev.accessFile != nil && prev.accessFile.path == cfg.Log.Access {
			ls.accessFile = prev.accessFile
		} else if ls.accessFile, err = openReopenFile(cfg.Log.Access); err != nil {
			return nil, fmt.Errorf("log.access: %w", err)
		}
		ls.access = ls.accessFile
	}
	if cfg.Log.AccessPerTenant != "" {
		if pt := prevTenants(prev); pt != nil && pt.sitesRoot == cfg.Sites.Root && pt.pattern == cfg.Log.AccessPerTenant && pt.max == cfg.Log.MaxOpenFiles {
			ls.tenants = pt
		} else {
			ls.tenants = newTenantLogs(cfg.Sites.Root, cfg.Log.AccessPerTenant, cfg.Log.MaxOpenFiles, ls.logger)
		}
	}
	return ls, nil
}

func prevTenants(prev *logSet) *tenantLogs {
	if prev == nil {
		return nil
	}
	return prev.tenants
}

// newLogger builds the server logger: text or JSON at the configured level,
// with request IDs added to records logged with a request's context.
func newLogger(cfg conf.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, hopts)
	if cfg.Format == "json" {
		h = slog.NewJSONHandler(w, hopts)
	}
	return slog.New(server.LogHandler(h)), nil
}

// tenantWriter returns the per-tenant writer for server.Options, nil when
// off (a typed nil would not compare equal to nil in the server).
func (ls *logSet) tenantWriter() server.TenantLogWriter {
	if ls.tenants == nil {
		return nil
	}
	return ls.tenants
}

// reopen reopens every file: the paths are opened anew (after logrotate
// moved the old files away), and per-tenant files are closed to be
// reopened on their next line.
func (ls *logSet) reopen() error {
	var errs []error
	for _, f := range []*reopenFile{ls.errFile, ls.accessFile} {
		if f != nil {
			if err := f.Reopen(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if ls.tenants != nil {
		ls.tenants.closeAll()
	}
	return errors.Join(errs...)
}

// closeUnshared closes what ls opened that other does not also use.
func (ls *logSet) closeUnshared(other *logSet) {
	if ls == nil {
		return
	}
	if ls.errFile != nil && (other == nil || other.errFile != ls.errFile) {
		ls.errFile.Close()
	}
	if ls.accessFile != nil && (other == nil || other.accessFile != ls.accessFile) {
		ls.accessFile.Close()
	}
	if ls.tenants != nil && (other == nil || other.tenants != ls.tenants) {
		ls.tenants.closeAll()
	}
}

// reopenFile is a log file that can be reopened under the same path. A
// Write holds the lock for the whole call, and Reopen swaps the file under
// the same lock, so every Write lands whole in one file or the other. The
// server's access log writer hands over only whole lines per Write (slog
// handlers write one record per call too), so no line is torn or lost
// across a rotation.
type reopenFile struct {
	path string

	mu sync.Mutex
	f  *os.File // nil after Close
}

func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
}

func openReopenFile(path string) (*reopenFile, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &reopenFile{path: path, f: f}, nil
}

func (r *reopenFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	return r.f.Write(p)
}

// Reopen opens the path again and switches to it; on failure the current
// file stays in use.
func (r *reopenFile) Reopen() error {
	nf, err := openAppend(r.path)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", r.path, err)
	}
	r.mu.Lock()
	old := r.f
	if old == nil { // closed meanwhile
		r.mu.Unlock()
		return nf.Close()
	}
	r.f = nf
	r.mu.Unlock()
	return old.Close()
}

func (r *reopenFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// tenantLogErrorInterval spaces the error-log reports of failing per-tenant
// log writes.
const tenantLogErrorInterval = time.Minute

// tenantLogs writes each tenant's access log lines to the file its pattern
// names, keeping at most max files open (least recently written closed
// first). The server calls it from its access log writer goroutine only,
// so opening and closing files never delays a request.
//
// The file lives in a directory the tenant controls, so it is opened
// through os.Root at the tenant's directory: a symlink the tenant plants
// cannot make the server append to a file outside it (another tenant's,
// /etc/passwd). A path that is not a regular file (a FIFO that would block
// the writer) is refused.
type tenantLogs struct {
	sitesRoot string
	pattern   vhost.Pattern
	max       int
	logger    *slog.Logger

	mu         sync.Mutex // guards the fields below; held across writes
	files      *simplelru.LRU[string, *os.File]
	evicted    []*os.File
	lastReport time.Time
}

func newTenantLogs(sitesRoot string, pattern vhost.Pattern, max int, logger *slog.Logger) *tenantLogs {
	t := &tenantLogs{sitesRoot: sitesRoot, pattern: pattern, max: max, logger: logger}
	// The eviction callback only collects; files are closed after the LRU
	// call returns.
	t.files, _ = simplelru.NewLRU(max, func(_ string, f *os.File) { t.evicted = append(t.evicted, f) })
	return t
}

// WriteTenant implements server.TenantLogWriter.
func (t *tenantLogs) WriteTenant(site vhost.Site, lines []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := t.fileLocked(site)
	if err == nil {
		_, err = f.Write(lines)
	}
	if err != nil {
		if now := time.Now(); now.Sub(t.lastReport) >= tenantLogErrorInterval {
			t.lastReport = now
			t.logger.Warn("tenant access log write failed", "host", site.Name, "tenant", site.Tenant, "err", err)
		}
	}
	return err
}

// fileLocked returns the open log file of site's tenant, opening it on
// first use.
func (t *tenantLogs) fileLocked(site vhost.Site) (*os.File, error) {
	rel, err := t.pattern.Expand(site.Tenant)
	if err != nil {
		return nil, err
	}
	abs := filepath.Join(t.sitesRoot, rel)
	if f, ok := t.files.Get(abs); ok {
		return f, nil
	}
	root := site.Root
	if root == "" {
		root = t.sitesRoot
	}
	inRoot, err := filepath.Rel(root, abs)
	if err != nil || inRoot == ".." || strings.HasPrefix(inRoot, "../") {
		return nil, fmt.Errorf("tenant log %s is outside the tenant directory %s", abs, root)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// O_NONBLOCK: opening a FIFO without a reader fails instead of
	// blocking the writer goroutine; it has no effect on regular files.
	f, err := r.OpenFile(inRoot, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NONBLOCK, 0o640)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("tenant log %s is not a regular file", abs)
	}
	t.giveToTenant(f, fi, site)
	t.files.Add(abs, f)
	t.closeEvictedLocked()
	return f, nil
}

// giveToTenant hands a log file the server (as root) just created to the
// tenant's owner and group, so the tenant can read its own log.
func (t *tenantLogs) giveToTenant(f *os.File, fi os.FileInfo, site vhost.Site) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 || st.Uid != 0 || fi.Size() != 0 || site.Owner == 0 {
		return
	}
	_ = f.Chown(int(site.Owner), int(site.Group))
}

func (t *tenantLogs) closeEvictedLocked() {
	for _, f := range t.evicted {
		f.Close()
	}
	clear(t.evicted)
	t.evicted = t.evicted[:0]
}

// closeAll closes every open file; they are reopened on their next line.
func (t *tenantLogs) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.files.Purge()
	t.closeEvictedLocked()
}
