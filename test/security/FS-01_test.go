// FS-01: path traversal battery against static files.
//
// Exploit: Apache CVE-2021-41773/42013-style targets, as raw bytes so no
// client normalizes them: "..", %2e, double encoding (%252e), encoded
// slashes and backslashes, raw backslashes, overlong UTF-8 dots
// (%c0%ae), NUL, "//etc/passwd", ".%2e", aiming at /etc/passwd and at
// tenant b's secret.
//
// Expectation: 400 or 404, never a byte of /etc/passwd or of b's file.
package security

import (
	"strings"
	"testing"
)

func TestFS01Traversal(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test", "b.test")
	w.tenant("b.test").file("secret.txt", secretB+"\n", 0o644)
	p := start(t, w.config(cfg{}))
	for _, path := range []string{
		"/../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/%252e%252e/%252e%252e/etc/passwd",
		"/..%2f..%2f..%2fetc/passwd", "/..%5c..%5c..%5cetc/passwd", `/..\..\..\etc\passwd`,
		"/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "/index.html%00.txt", "/./././../b.test/htdocs/secret.txt",
		"/../../b.test/htdocs/secret.txt", "//etc/passwd", "/.%2e/.%2e/.%2e/etc/passwd", "/%2e%2e%2f%2e%2e%2fb.test/htdocs/secret.txt",
		"/..;/..;/etc/passwd", "/%u002e%u002e/etc/passwd", "/....//....//etc/passwd",
	} {
		r := p.get("a.test", path)
		if r.Status != 400 && r.Status != 404 {
			t.Errorf("GET %s: %d, want 400 or 404", path, r.Status)
		}
		if strings.Contains(r.Body, "root:") || strings.Contains(r.Body, secretB) {
			t.Errorf("GET %s: leaked %q", path, r.Body)
		}
	}
}
