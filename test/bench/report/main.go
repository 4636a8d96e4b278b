// Command report regenerates the generated section of docs/BENCHMARKS.md
// and the plots in docs/bench/ from an orchestrator results file.
//
//	go run ./test/bench/report -in docs/bench/results.json
//
// Only the text between the markers <!-- bench:begin --> and
// <!-- bench:end --> is replaced; the rest of the document is left as it is.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"massvhost/test/bench/internal/results"
)

const (
	beginMarker = "<!-- bench:begin -->"
	endMarker   = "<!-- bench:end -->"
)

func main() {
	os.Exit(run())
}

func run() int {
	in := flag.String("in", "docs/bench/results.json", "results file written by test/bench/orch")
	doc := flag.String("doc", "docs/BENCHMARKS.md", "document whose generated section is replaced")
	svgDir := flag.String("svg", "docs/bench", "directory for the SVG plots")
	flag.Parse()
	f, err := results.Read(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		return 1
	}
	rel, err := filepath.Rel(filepath.Dir(*doc), *svgDir)
	if err != nil {
		rel = *svgDir
	}
	section, plots := render(f, filepath.ToSlash(*in), filepath.ToSlash(rel))
	if err := os.MkdirAll(*svgDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		return 1
	}
	for name, svg := range plots {
		if err := os.WriteFile(filepath.Join(*svgDir, name), []byte(svg), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			return 1
		}
	}
	old, err := os.ReadFile(*doc)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintln(os.Stderr, "report:", err)
		return 1
	}
	if err := os.MkdirAll(filepath.Dir(*doc), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		return 1
	}
	if err := os.WriteFile(*doc, splice(old, section), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		return 1
	}
	fmt.Printf("wrote %s and %d plots in %s\n", *doc, len(plots), *svgDir)
	return 0
}

// splice replaces the text between the markers in doc with section; a
// document without markers gets the section appended, and an empty one a
// title first.
func splice(doc []byte, section string) []byte {
	block := beginMarker + "\n" + strings.TrimSpace(section) + "\n" + endMarker + "\n"
	i := bytes.Index(doc, []byte(beginMarker))
	j := bytes.Index(doc, []byte(endMarker))
	if i >= 0 && j > i {
		rest := doc[j+len(endMarker):]
		rest = bytes.TrimPrefix(rest, []byte("\n"))
		return append(append(append([]byte{}, doc[:i]...), block...), rest...)
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return []byte("# Benchmarks\n\n" + block)
	}
	out := append([]byte{}, bytes.TrimRight(doc, "\n")...)
	return append(out, "\n\n"+block...)
}
