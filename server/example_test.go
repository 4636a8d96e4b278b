package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"massvhost/server"
	"massvhost/vhost"
)

// Example serves one tenant directory over plain HTTP on a free port.
func Example() {
	sites, err := os.MkdirTemp("", "sites")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(sites)
	docroot := filepath.Join(sites, "example.test", "htdocs")
	os.MkdirAll(docroot, 0o755)
	os.WriteFile(filepath.Join(docroot, "index.html"), []byte("hello from example.test\n"), 0o644)

	resolver, err := vhost.NewResolver(vhost.Options{Root: sites})
	if err != nil {
		panic(err)
	}
	srv, err := server.New(server.Options{HTTPAddr: "127.0.0.1:0", Sites: resolver})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())

	addr, _ := srv.Addrs()
	req, _ := http.NewRequest("GET", "http://"+addr.String()+"/", nil)
	req.Host = "example.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.Status, "\n", string(body))
	// Output:
	// 200 OK
	// hello from example.test
}
