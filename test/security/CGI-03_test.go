// CGI-03: the script's environment (httpoxy, underscore headers, reserved
// names, credentials, server secrets).
//
// Exploit: env.cgi is requested with "Proxy: http://evil:1" (httpoxy,
// CVE-2016-5386), both "X-Forwarded-For: 1.1.1.1" and
// "X_Forwarded_For: 6.6.6.6" (the same HTTP_X_FORWARDED_FOR; which one won
// depended on map order, so 50 runs), "Session: forged" (Apache
// CVE-2018-1283), "Authorization: Basic …", "Proxy-Authorization" and two
// Cookie headers, while the server runs with secrets in its
// own environment (REDIS_PASSWORD, AWS_SECRET_ACCESS_KEY, GODEBUG,
// MASSVHOST_REDIS_PASSWORD).
//
// Expectation: no HTTP_PROXY; HTTP_X_FORWARDED_FOR is 1.1.1.1 in every
// run; HTTP_SESSION is only ever the request header's own value, and no
// variable the server sets lives in HTTP_*; no HTTP_AUTHORIZATION;
// HTTP_COOKIE is "a=1; b=2"; PATH is cgi.path; nothing of the server's
// environment reaches the script.
package security

import (
	"strings"
	"testing"
)

func TestCGI03Environment(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "a.test")
	w.tenant("a.test").script("env.cgi", "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv\n")
	secrets := []string{"REDIS_PASSWORD=hunter2-redis", "AWS_SECRET_ACCESS_KEY=hunter2-aws", "GODEBUG=hunter2=1",
		"MASSVHOST_REDIS_PASSWORD=hunter2-own", "SERVER_ONLY=hunter2-misc"}
	p := start(t, w.config(cfg{}), startOpts{Env: secrets})
	req := "GET /cgi-bin/env.cgi HTTP/1.1\r\nHost: a.test\r\n" +
		"Proxy: http://evil:1\r\n" +
		"X-Forwarded-For: 1.1.1.1\r\n" +
		"X_Forwarded_For: 6.6.6.6\r\n" +
		"Session: forged\r\n" +
		"Authorization: Basic Zm9vOmJhcg==\r\n" +
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n" +
		"Cookie: a=1\r\nCookie: b=2\r\n" +
		"Connection: close\r\n\r\n"
	for run := range 50 {
		r := p.raw(req)
		if r.Status != 200 {
			t.Fatalf("run %d: %d %q", run, r.Status, r.Body)
		}
		env := map[string]string{}
		for line := range strings.SplitSeq(r.Body, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
		check := func(ok bool, format string, args ...any) {
			if !ok {
				t.Errorf("run %d: "+format, append([]any{run}, args...)...)
			}
		}
		_, proxy := env["HTTP_PROXY"]
		check(!proxy, "HTTP_PROXY=%q reached the script (httpoxy)", env["HTTP_PROXY"])
		check(env["HTTP_X_FORWARDED_FOR"] == "1.1.1.1", "HTTP_X_FORWARDED_FOR=%q, want 1.1.1.1", env["HTTP_X_FORWARDED_FOR"])
		_, auth := env["HTTP_AUTHORIZATION"]
		check(!auth, "HTTP_AUTHORIZATION reached the script")
		_, pauth := env["HTTP_PROXY_AUTHORIZATION"]
		check(!pauth, "HTTP_PROXY_AUTHORIZATION reached the script")
		check(env["HTTP_COOKIE"] == "a=1; b=2", "HTTP_COOKIE=%q, want \"a=1; b=2\"", env["HTTP_COOKIE"])
		check(env["PATH"] == "/usr/local/bin:/usr/bin:/bin", "PATH=%q, want cgi.path", env["PATH"])
		if s, ok := env["HTTP_SESSION"]; ok {
			check(s == "forged", "HTTP_SESSION=%q", s)
		}
		for k, v := range env {
			check(!strings.Contains(v, "hunter2") && !strings.Contains(k, "hunter2"), "server secret leaked: %s=%s", k, v)
			check(k != "GODEBUG" && !strings.HasPrefix(k, "MASSVHOST_"), "server variable %s reached the script", k)
		}
		if t.Failed() {
			t.Fatalf("environment:\n%s", r.Body)
		}
	}
}
