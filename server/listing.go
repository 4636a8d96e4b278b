package server

import (
	"bytes"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
)

// maxListing bounds the entries shown in one directory listing, so a
// directory with millions of files costs bounded memory and time.
const maxListing = 10000

// listDir writes an HTML listing of dir, whose URL path is urlPath (ending
// in "/"). Dot entries and names deny hides are never listed, matching
// what is served. Names are
// HTML-escaped in text and percent-encoded in links, which start with "./"
// so a name with ":" cannot read as a URL scheme. It returns only errors
// from reading the directory, before anything was written.
func listDir(w http.ResponseWriter, dir *os.File, urlPath string, deny *denyList) error {
	var names []string
	for len(names) < maxListing {
		entries, err := dir.ReadDir(1000)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || deny.matchName(e.Name()) {
				continue
			}
			name := e.Name()
			if e.IsDir() {
				name += "/"
			}
			names = append(names, name)
		}
		if errors.Is(err, io.EOF) || (err == nil && len(entries) == 0) {
			break
		}
		if err != nil {
			return err
		}
	}
	if len(names) > maxListing {
		names = names[:maxListing]
	}
	slices.Sort(names)

	var b bytes.Buffer
	title := html.EscapeString("Index of " + urlPath)
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>")
	b.WriteString(title)
	b.WriteString("</title></head>\n<body><h1>")
	b.WriteString(title)
	b.WriteString("</h1>\n<ul>\n")
	for _, name := range names {
		base, isDir := strings.CutSuffix(name, "/")
		href := "./" + (&url.URL{Path: base}).EscapedPath()
		if isDir {
			href += "/"
		}
		b.WriteString(`<li><a href="`)
		b.WriteString(html.EscapeString(href))
		b.WriteString(`">`)
		b.WriteString(html.EscapeString(name))
		b.WriteString("</a></li>\n")
	}
	b.WriteString("</ul></body></html>\n")

	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.Write(b.Bytes()) // a failed write is the client's to notice
	return nil
}
