package server

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAccessLogVhostCombined(t *testing.T) {
	var buf syncBuffer
	f := newFixture(t, func(o *Options) { o.AccessLog = &buf })
	c := f.client(false)
	f.get(c, "GET", "http://a.test/file.txt?q=1", "Referer", "http://ref.example/", "User-Agent", `ua "quoted"`)
	f.raw("", "GET /x HTTP/1.1\r\nHost: bad_host\r\n\r\n")
	f.get(c, "GET", "https://a.test/file.txt", "Host", "b.test")
	f.srv.Shutdown(context.Background()) // flushes the log

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	port := func(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }
	want := []*regexp.Regexp{
		regexp.MustCompile(`^a\.test:` + port(f.httpAddr) + ` 127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /file\.txt\?q=1 HTTP/1\.1" 200 6 "http://ref\.example/" "ua \\"quoted\\""$`),
		regexp.MustCompile(`^-:\d+ 127\.0\.0\.1 - - \[[^]]+\] "GET /x HTTP/1\.1" 400 \d+ "-" "-"$`),
		regexp.MustCompile(`^b\.test:` + port(f.httpsAddr) + ` 127\.0\.0\.1 - - \[[^]]+\] "GET /file\.txt HTTP/1\.1" 421 \d+ "-" "Go-http-client/1\.1"$`),
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d:\n%s\ndoes not match\n%s", i, lines[i], re)
		}
	}
}

func TestAccessLogJSON(t *testing.T) {
	var buf syncBuffer
	f := newFixture(t, func(o *Options) { o.AccessLog = &buf; o.AccessFormat = FormatJSON })
	f.get(f.client(true), "GET", "https://a.test/sub/x.txt")
	f.srv.Shutdown(context.Background())
	var line jsonLine
	if err := json.Unmarshal([]byte(buf.String()), &line); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	if line.Host != "a.test" || line.Status != 200 || line.Bytes != 7 || line.Proto != "HTTP/2.0" || line.URI != "/sub/x.txt" || line.ID == "" || line.Remote != "127.0.0.1" {
		t.Fatalf("unexpected record %+v", line)
	}
}

func TestAppendEscaped(t *testing.T) {
	got := string(appendEscaped(nil, "a\"b\\c\nd\x01é"))
	if want := `a\"b\\c\x0ad\x01\xc3\xa9`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// blockingWriter never returns from Write until released, like a log on a
// stalled NFS mount or a pipe nobody reads.
type blockingWriter struct {
	release chan struct{}
	once    sync.Once
	entered chan struct{}
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}

func TestAccessLogNeverBlocksRequests(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{}), entered: make(chan struct{})}
	f := newFixture(t, func(o *Options) { o.AccessLog = w; o.AccessLogBuffer = 2 })
	t.Cleanup(func() { close(w.release) }) // runs before the fixture's Shutdown
	c := f.client(false)
	f.get(c, "GET", "http://a.test/file.txt")
	<-w.entered // the writer is now stuck
	for i := 0; i < 20; i++ {
		if resp, _ := f.get(c, "GET", "http://a.test/file.txt"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if n := f.srv.Stats().AccessLogDropped; n == 0 {
		t.Fatal("AccessLogDropped = 0 with a stuck writer and a 2-line buffer")
	}
	// Shutdown does not hang on the stuck writer either.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	f.srv.Shutdown(ctx)
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errDiskFull }

var errDiskFull = &diskFullError{}

type diskFullError struct{}

func (*diskFullError) Error() string { return "no space left on device" }

func TestAccessLogWriteErrorsReportedOnce(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.AccessLog = failingWriter{} })
	c := f.client(false)
	for i := 0; i < 5; i++ {
		f.get(c, "GET", "http://a.test/file.txt")
	}
	f.srv.Shutdown(context.Background())
	if n := f.srv.Stats().AccessLogWriteErrors; n == 0 {
		t.Fatal("no write errors counted")
	}
	if n := strings.Count(f.logs.String(), "access log write failed"); n != 1 {
		t.Fatalf("write failure reported %d times, want once per interval", n)
	}
}
