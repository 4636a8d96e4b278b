package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"massvhost/test/proctest"
)

// installPair puts a copy of the massvhost binary and a freshly built
// massvhost-cgi-launch side by side in a new directory, as
// `go install ./cmd/...` does, and returns the directory.
func installPair(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, err := os.Open(binary)
	must(t, err)
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(dir, "massvhost"), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	must(t, err)
	_, err = io.Copy(dst, src)
	must(t, err)
	must(t, dst.Close())
	must(t, proctest.InstallLauncher(dst.Name()))
	return dir
}

// serveFails runs `massvhost serve` with cfg, expects it to exit with an
// error before listening, and returns its output.
func serveFails(t *testing.T, bin, cfg string) string {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "massvhost.yaml")
	must(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "serve", "--config", cfgPath).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("massvhost serve: %v (context %v), want a start-up error\n%s", err, ctx.Err(), out)
	}
	return string(out)
}

// TestCGILauncherChoice: with cgi.launcher "" the server uses a
// massvhost-cgi-launch found beside its binary, else itself; a configured
// path is used as given; a launcher others could replace stops the start.
func TestCGILauncherChoice(t *testing.T) {
	pair := installPair(t)
	small := filepath.Join(pair, "massvhost-cgi-launch")
	for _, tc := range []struct {
		name, bin, cfg, want string
	}{
		{"beside the binary", filepath.Join(pair, "massvhost"), "", `path=` + small + ` auto=true`},
		{"self without one", binary, "", `path=/proc/self/exe auto=true`},
		{"configured", binary, "cgi:\n  launcher: " + small + "\n", `path=` + small + ` auto=false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCGIWorld(t)
			cfgPath := filepath.Join(t.TempDir(), "massvhost.yaml")
			must(t, os.WriteFile(cfgPath, []byte(w.config(tc.cfg)), 0o644))
			p := startServe(t, procOptions{bin: tc.bin, args: []string{"--config", cfgPath}})
			checkNoStrays(t, p, w.mark)
			if resp, body := cgiGet(t, w.client(p, "a.test", false), "https://a.test/cgi-bin/hello.cgi"); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			if line, ok := logLineWith(p.Output(), `msg="cgi launcher"`); !ok || !strings.Contains(line, tc.want) {
				t.Errorf("launcher log line %q, want one with %q", line, tc.want)
			}
		})
	}

	t.Run("writable by others", func(t *testing.T) {
		w := newCGIWorld(t)
		bad := installPair(t)
		must(t, os.Chmod(filepath.Join(bad, "massvhost-cgi-launch"), 0o757))
		out := serveFails(t, filepath.Join(bad, "massvhost"), w.config(""))
		if !strings.Contains(out, "cgi.launcher: auto:") || !strings.Contains(out, "writable by others") {
			t.Errorf("auto launcher writable by others: output %q", out)
		}
		out = serveFails(t, binary, w.config("cgi:\n  launcher: "+filepath.Join(bad, "massvhost-cgi-launch")+"\n"))
		if !strings.Contains(out, "cgi.launcher:") || !strings.Contains(out, "writable by others") {
			t.Errorf("configured launcher writable by others: output %q", out)
		}
	})
}

// logLineWith returns the first line of out that contains s.
func logLineWith(out, s string) (string, bool) {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return line, true
		}
	}
	return "", false
}
