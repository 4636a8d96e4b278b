package abuse

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAccessLogDiskFull is FLT-03: with the access log on a small tmpfs
// that is then filled up, every request is still answered, the failure is
// reported in the error log and the metrics, and logging resumes once
// space is freed.
func TestAccessLogDiskFull(t *testing.T) {
	requireRoot(t) // mount(2)
	w := newWorld(t)
	w.addTenant(t, "b.test", -1)
	logDir := filepath.Join(w.Dir, "logs")
	must(t, os.MkdirAll(logDir, 0o755))
	if err := syscall.Mount("tmpfs", logDir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(logDir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", logDir, err)
		}
	})
	accessLog := filepath.Join(logDir, "access.log")
	p := start(t, w.config(settings{"log": {"access": strconv.Quote(accessLog)}}))
	c := httpClient(p.HTTPAddr, 10*time.Second)

	serve := func(n int) (failed int) {
		for range n {
			if code, _ := get(c, "http://b.test/"); code != http.StatusOK {
				failed++
			}
		}
		return failed
	}
	logSize := func() int64 {
		fi, err := os.Stat(accessLog)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	if f := serve(10); f > 0 {
		t.Fatalf("%d requests failed before the disk filled", f)
	}
	if !eventually(5*time.Second, func() bool { return logSize() > 0 }) {
		t.Fatal("nothing logged before the disk filled")
	}

	// Fill the file system.
	fill := filepath.Join(logDir, "fill")
	f, err := os.Create(fill)
	must(t, err)
	chunk := bytes.Repeat([]byte{'x'}, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the log disk: %v", err)
			}
			break
		}
	}
	f.Close()

	const n = 3000 // lines of about 100 bytes: far more than the space left
	if failed := serve(n); failed > 0 {
		t.Errorf("%d of %d requests failed while the log disk was full", failed, n)
	}
	if !eventually(10*time.Second, func() bool { return strings.Contains(p.Output(), "access log write failed") }) {
		t.Error("the full log disk was not reported in the error log")
	}
	if v := p.metric("massvhost_access_log_write_errors_total"); v <= 0 {
		t.Errorf("massvhost_access_log_write_errors_total = %v, want > 0", v)
	}
	full := logSize()

	// Free the space: lines are written again.
	must(t, os.Remove(fill))
	if failed := serve(50); failed > 0 {
		t.Errorf("%d requests failed after space was freed", failed)
	}
	if !eventually(10*time.Second, func() bool { serve(1); return logSize() > full }) {
		t.Errorf("access log did not grow after space was freed (%d bytes)", full)
	}
	t.Logf("%d requests served with the log disk full; log %d bytes when full, %d after space was freed; errors reported: %v",
		n, full, logSize(), p.metric("massvhost_access_log_write_errors_total"))
}
