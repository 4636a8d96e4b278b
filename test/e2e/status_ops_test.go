package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// chromiumPath finds a Chromium to drive headless. Without one the test is
// skipped, unless CI is set: there a missing browser is a failure, so a
// broken CI image cannot pass by skipping.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found (CI is set, so this fails instead of skipping); apt-get install chromium")
	}
	t.Skip("chromium not found; apt-get install chromium to run the browser test")
	return ""
}

// chromium runs one headless Chromium command against url and returns its
// standard output. Each run has its own profile directory and is bounded.
func chromium(t *testing.T, bin, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	cmd.WaitDelay = 5 * time.Second
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

var requestsTotalRE = regexp.MustCompile(`id="requests-total">(\d+)<`)

// TestOpsServerStatusInBrowser loads /server-status in a real headless
// browser twice while traffic runs, checks that the rendered request count
// moved and the page shows the busiest tenants, and takes a screenshot
// (copied to $E2E_STATUS_SCREENSHOT when set, for the README).
func TestOpsServerStatusInBrowser(t *testing.T) {
	bin := chromiumPath(t)
	w := newWorld(t, []string{"a.test", "b.test"}, "a.test")
	p := start(t, withAdmin(w.config("")))
	admin := p.admin()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	c := httpClient(p.HTTPAddr, 4)
	for i := range 4 {
		host := []string{"a.test", "a.test", "a.test", "b.test"}[i]
		wg.Go(func() {
			for range 100_000 {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				if resp, err := c.Get("http://" + host + "/"); err == nil {
					resp.Body.Close()
				}
			}
		})
	}

	url := "http://" + admin + "/server-status"
	read := func() (int, string) {
		dom := chromium(t, bin, url, "--dump-dom")
		m := requestsTotalRE.FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("rendered page has no request total:\n%s", dom)
		}
		n, _ := strconv.Atoi(m[1])
		return n, dom
	}
	first, _ := read()
	time.Sleep(1500 * time.Millisecond)
	second, dom := read()
	if second <= first {
		t.Fatalf("requests total did not move between loads: %d then %d", first, second)
	}
	for _, want := range []string{`<td>a.test</td>`, `<td>b.test</td>`, `id="ready" class="ok"`} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(dom) {
			t.Errorf("rendered page lacks %s", want)
		}
	}
	t.Logf("requests total rendered: %d then %d", first, second)

	shot := filepath.Join(t.TempDir(), "server-status.png")
	chromium(t, bin, url, "--hide-scrollbars", "--window-size=1280,820", "--screenshot="+shot)
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, err %v", len(png), err)
	}
	if dst := os.Getenv("E2E_STATUS_SCREENSHOT"); dst != "" {
		must(t, os.WriteFile(dst, png, 0o644))
		fmt.Fprintf(os.Stderr, "screenshot written to %s\n", dst)
	}
}
