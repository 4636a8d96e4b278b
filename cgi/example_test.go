package cgi_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"massvhost/cgi"
	"massvhost/vhost"
)

// A Handler runs the script a request names for the site the server
// resolved. Refusals are bare statuses; their reasons go to the log.
func ExampleHandler() {
	root, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(root)
	site := vhost.Site{
		Name:    "a.test",
		Tenant:  "a.test",
		Root:    root,
		DocRoot: filepath.Join(root, "htdocs"),
		CGIBin:  filepath.Join(root, "cgi-bin"),
	}
	os.Mkdir(site.CGIBin, 0o755)

	// Every zero field means its documented default.
	h, err := cgi.New(cgi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	for _, target := range []string{"/cgi-bin/missing.cgi", "/cgi-bin/../../bin/sh", "/index.html"} {
		w := httptest.NewRecorder()
		h.ServeCGI(w, httptest.NewRequest(http.MethodGet, target, nil), site, cgi.ScriptAlias)
		fmt.Println(target, w.Code)
	}
	fmt.Println(h.IsScriptPath("/shop/cart.cgi/add"), h.Stats().Spawned)
	// Output:
	// /cgi-bin/missing.cgi 404
	// /cgi-bin/../../bin/sh 400
	// /index.html 404
	// true 0
}
