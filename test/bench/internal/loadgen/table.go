package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
)

// WriteTable prints r for a person: throughput, latency quantiles and the
// errors by kind.
func (r *Result) WriteTable(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "target %s  mode %s  proto %s  c=%d  hosts=%d  path %s  tls %s\n",
		c.Addr, c.Mode, c.Proto, c.Concurrency, c.HostCount, c.Path, orDash(c.TLSVersion))
	fmt.Fprintf(w, "negotiated: %s\n", orDash(r.Negotiated))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\telapsed s\tok\terrors\treq/s\thandshakes/s\t\n")
	fmt.Fprintf(tw, "\t%.2f\t%d\t%d\t%.1f\t%.1f\t\n", r.ElapsedS, r.OK, r.Errors, r.RPS, r.HPS)
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "latency ms\tp50\tp90\tp99\tmax\tmean\t\n")
	for _, row := range []struct {
		name string
		s    Summary
	}{{"request", r.Latency}, {"handshake", r.Handshake}} {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", row.name, row.s.P50, row.s.P90, row.s.P99, row.s.Max, row.s.Mean)
	}
	tw.Flush()
	for _, k := range slices.Sorted(maps.Keys(r.ErrorKinds)) {
		fmt.Fprintf(w, "error %-40s %d", k, r.ErrorKinds[k])
		if s := r.ErrorSamples[k]; s != "" {
			fmt.Fprintf(w, "  (e.g. %s)", s)
		}
		fmt.Fprintln(w)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
