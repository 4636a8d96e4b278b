package cgi

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// parseEnv parses env.cgi's output.
func parseEnv(body string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestEnvironment(t *testing.T) {
	requireInterpreter(t, "/usr/bin/perl")
	t.Setenv("MASSVHOST_SECRET", "hunter2")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("HTTP_PROXY", "http://server-proxy:3128")
	tn := newTenant(t, "a.test")
	tn.install("env.cgi", "env.cgi")
	h, _ := newTestHandler(t, Options{})

	r := httptest.NewRequest(http.MethodGet, "/cgi-bin/env.cgi/extra/path?q=1&x=%20y", nil)
	r.Host = "a.test:8443"
	r.RemoteAddr = "192.0.2.7:5555"
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Proxy", "http://evil:1")
	r.Header.Set("Authorization", "Basic Zm9vOmJhcg==")
	r.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	r.Header.Set("Session", "forged")
	r.Header.Set("Foo-Bar", "baz")
	r.Header.Add("Cookie", "a=1")
	r.Header.Add("Cookie", "b=2")
	r.Header.Add("Accept", "text/html")
	r.Header.Add("Accept", "text/plain")
	r.Header.Set("User-Agent", "() { :;}; /bin/touch /tmp/pwned")
	w := serve(h, tn.site, ScriptAlias, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, body %q", w.Code, w.Body)
	}
	env := parseEnv(w.Body.String())

	want := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_SOFTWARE":   DefaultServerSoftware,
		"SERVER_NAME":       "a.test",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"SERVER_PORT":       "443",
		"HTTPS":             "on",
		"REQUEST_SCHEME":    "https",
		"REQUEST_METHOD":    "GET",
		"REQUEST_URI":       "/cgi-bin/env.cgi/extra/path?q=1&x=%20y",
		"QUERY_STRING":      "q=1&x=%20y",
		"SCRIPT_NAME":       "/cgi-bin/env.cgi",
		"SCRIPT_FILENAME":   filepath.Join(tn.site.CGIBin, "env.cgi"),
		"PATH_INFO":         "/extra/path",
		"PATH_TRANSLATED":   filepath.Join(tn.site.DocRoot, "extra/path"),
		"DOCUMENT_ROOT":     tn.site.DocRoot,
		"REMOTE_ADDR":       "192.0.2.7",
		"REMOTE_PORT":       "5555",
		"HTTP_HOST":         "a.test:8443",
		"HTTP_SESSION":      "forged",
		"HTTP_FOO_BAR":      "baz",
		"HTTP_COOKIE":       "a=1; b=2",
		"HTTP_ACCEPT":       "text/html, text/plain",
		"HTTP_USER_AGENT":   "() { :;}; /bin/touch /tmp/pwned",
		"PATH":              DefaultPath,
		"LANG":              "C.UTF-8",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"HTTP_PROXY", "HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION",
		"MASSVHOST_SECRET", "CONTENT_LENGTH", "CONTENT_TYPE", "LC_ALL"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s present (%q), want absent", k, v)
		}
	}
	for k := range env {
		if k == "PWD" || k == "SHLVL" || k == "_" {
			continue // none expected from perl, but harmless if an interpreter adds them
		}
		if _, ok := want[k]; !ok && k != "SERVER_ADDR" {
			t.Errorf("unexpected variable %s=%q", k, env[k])
		}
	}
}

// The underscore header must never reach the script, whatever the order in
// which the header map is walked (the net/http/cgi collision was
// map-order dependent, so repeat).
func TestEnvironmentUnderscoreHeaderDropped(t *testing.T) {
	requireInterpreter(t, "/usr/bin/perl")
	tn := newTenant(t, "a.test")
	tn.install("env.cgi", "env.cgi")
	h, _ := newTestHandler(t, Options{})
	for i := range 50 {
		r := httptest.NewRequest(http.MethodGet, "/cgi-bin/env.cgi", nil)
		r.Header["X-Forwarded-For"] = []string{"1.1.1.1"}
		r.Header["X_forwarded_for"] = []string{"6.6.6.6"}
		r.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
		r.Header["Foo=bar"] = []string{"x"}
		w := serve(h, tn.site, ScriptAlias, r)
		env := parseEnv(w.Body.String())
		if got := env["HTTP_X_FORWARDED_FOR"]; got != "1.1.1.1" {
			t.Fatalf("run %d: HTTP_X_FORWARDED_FOR = %q, want 1.1.1.1", i, got)
		}
		for k := range env {
			if strings.Contains(k, "FOO") {
				t.Fatalf("run %d: %s passed", i, k)
			}
		}
	}
}

func TestEnvironmentPassAuthorization(t *testing.T) {
	requireInterpreter(t, "/usr/bin/perl")
	tn := newTenant(t, "a.test")
	tn.install("env.cgi", "env.cgi")
	h, _ := newTestHandler(t, Options{PassAuthorization: true, PassEnv: []string{}})
	t.Setenv("LANG", "C.UTF-8")
	r := httptest.NewRequest(http.MethodGet, "/cgi-bin/env.cgi", nil)
	r.Header.Set("Authorization", "Bearer t")
	r.Header.Set("Proxy-Authorization", "Basic x")
	env := parseEnv(serve(h, tn.site, ScriptAlias, r).Body.String())
	if env["HTTP_AUTHORIZATION"] != "Bearer t" {
		t.Errorf("HTTP_AUTHORIZATION = %q", env["HTTP_AUTHORIZATION"])
	}
	if _, ok := env["HTTP_PROXY_AUTHORIZATION"]; ok {
		t.Error("HTTP_PROXY_AUTHORIZATION passed")
	}
	if _, ok := env["LANG"]; ok {
		t.Error("LANG passed with an empty PassEnv")
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // substring of the error; "" = valid
	}{
		{"zero value", Options{}, ""},
		{"negative timeout", Options{Timeout: -1}, "Timeout"},
		{"negative body", Options{MaxBodyBytes: -1}, "MaxBodyBytes"},
		{"negative cap", Options{MaxPerTenant: -2}, "MaxPerTenant"},
		{"extension without dot", Options{Extensions: []string{"cgi"}}, "Extensions"},
		{"extension with slash", Options{Extensions: []string{".c/gi"}}, "Extensions"},
		{"pass env reserved", Options{PassEnv: []string{"PATH"}}, "PassEnv"},
		{"pass env http", Options{PassEnv: []string{"HTTP_PROXY"}}, "PassEnv"},
		{"pass env script name", Options{PassEnv: []string{"SCRIPT_NAME"}}, "PassEnv"},
		{"pass env bad name", Options{PassEnv: []string{"A=B"}}, "PassEnv"},
		{"missing launcher", Options{Launcher: "/nonexistent/massvhost"}, "Launcher"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				h.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
