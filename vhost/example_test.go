package vhost_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"massvhost/vhost"
)

func ExampleNormalize() {
	for _, host := range []string{"WWW.Example.COM.:443", "xn--bcher-kva.example", "../../etc/passwd", "bücher.example", "192.0.2.1"} {
		name, err := vhost.Normalize(host)
		fmt.Printf("%q %v\n", name, errors.Is(err, vhost.ErrInvalidName))
	}
	// Output:
	// "www.example.com" false
	// "xn--bcher-kva.example" false
	// "" true
	// "" true
	// "" true
}

func ExamplePattern_Expand() {
	for _, s := range []string{"%0/htdocs", "%1.1/%1.2/%0", "%-1/%-2/%0", "%2+", "%-2+", "%2.0.%3", "%4"} {
		p, err := vhost.ParsePattern(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		dir, err := p.Expand("www.example.com")
		fmt.Printf("%-12s %s %v\n", s, dir, err)
	}
	// Output:
	// %0/htdocs    www.example.com/htdocs <nil>
	// %1.1/%1.2/%0 w/w/www.example.com <nil>
	// %-1/%-2/%0   com/example/www.example.com <nil>
	// %2+          example.com <nil>
	// %-2+         www.example <nil>
	// %2.0.%3      example.com <nil>
	// %4           _ <nil>
}

func ExampleResolver() {
	root, err := os.MkdirTemp("", "sites")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	if err := os.MkdirAll(filepath.Join(root, "example.com", "htdocs"), 0o755); err != nil {
		panic(err)
	}

	r, err := vhost.NewResolver(vhost.Options{Root: root, WWWAlias: true})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	site, err := r.Resolve(ctx, "WWW.example.com:443")
	if err != nil {
		panic(err)
	}
	rel, _ := filepath.Rel(root, site.DocRoot)
	fmt.Println(site.Name, site.Tenant, rel)

	_, err = r.Resolve(ctx, "unknown.example")
	fmt.Println(errors.Is(err, vhost.ErrNoSuchHost), r.Exists(ctx, "unknown.example"))
	// Output:
	// www.example.com example.com example.com/htdocs
	// true false
}
