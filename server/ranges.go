package server

import (
	"cmp"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// limitRanges deletes the Range header when answering it would amplify the
// response, so that http.ServeContent sends the whole file once with 200:
//
//   - more than maxRanges parts (Apache MaxRanges, default 200);
//   - parts that overlap;
//   - parts whose lengths add up to more than the file.
//
// ServeContent only applies the last rule, so "bytes=0-0,0-0,…" with
// thousands of parts makes a multipart body tens of times larger than the
// header that asked for it (THREATS §0.6; CVE-2011-3192 "Apache Killer"
// abused the same in Apache). The count is checked before parsing, so an
// oversized header costs one pass over its bytes. A header that does not
// parse is left alone for ServeContent to answer (416, or the full body).
func limitRanges(h http.Header, size int64, maxRanges int) {
	v := h.Get("Range")
	const unit = "bytes="
	if !strings.HasPrefix(v, unit) {
		return
	}
	specs := v[len(unit):]
	if strings.Count(specs, ",") >= maxRanges {
		h.Del("Range")
		return
	}
	if !strings.Contains(specs, ",") {
		return // one part: nothing to amplify
	}
	type span struct{ start, end int64 } // [start, end)
	var spans []span
	var sum int64
	for ra := range strings.SplitSeq(specs, ",") {
		ra = textproto.TrimString(ra)
		if ra == "" {
			continue
		}
		first, last, ok := strings.Cut(ra, "-")
		if !ok {
			return
		}
		first, last = textproto.TrimString(first), textproto.TrimString(last)
		var sp span
		if first == "" { // suffix: the last N bytes
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 || last[0] == '-' || last[0] == '+' {
				return
			}
			sp = span{max(size-n, 0), size}
		} else {
			start, err := strconv.ParseInt(first, 10, 64)
			if err != nil || start < 0 || first[0] == '+' {
				return
			}
			if start >= size {
				continue // unsatisfiable part: ServeContent skips it too
			}
			sp = span{start, size}
			if last != "" {
				end, err := strconv.ParseInt(last, 10, 64)
				if err != nil || end < start || last[0] == '+' {
					return
				}
				sp.end = min(end+1, size)
			}
		}
		if sp.end > sp.start {
			spans = append(spans, sp)
			sum += sp.end - sp.start
		}
	}
	if sum > size {
		h.Del("Range")
		return
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			h.Del("Range")
			return
		}
	}
}
