package cgi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Bounds on a script's header block. net/http/cgi bounds the line length
// but not the number of lines, so a script printing headers forever grows
// the server's memory until it dies; these make it a 502 instead.
const (
	maxHeaderLines = 100
	maxHeaderBytes = 64 << 10
	maxHeaderLine  = 8 << 10
)

// errMalformed is wrapped by every header parsing error: the script's
// response is unusable and the client gets 502.
var errMalformed = errors.New("malformed CGI response header")

// cgiResponse is a script's parsed header block.
type cgiResponse struct {
	status   int    // from Status: 200..599, or 0 when absent
	location string // from Location, or "" when absent
	// header holds the remaining fields, without framing and hop-by-hop
	// fields, which the server decides itself.
	header http.Header
}

// parseHeader reads a CGI header block (RFC 3875 §6.3) up to and including
// the blank line that ends it. It is strict: a line without a colon, an
// invalid field name or value, a continuation line, an invalid or repeated
// Status or Location, EOF before the blank line, or a block over the size
// bounds is an error wrapping errMalformed. Status must be a three-digit
// code in 200..599: 1xx (101 would switch protocols on the client's
// connection) and anything net/http's WriteHeader would panic on are refused.
func parseHeader(br *bufio.Reader) (*cgiResponse, error) {
	resp := &cgiResponse{header: make(http.Header)}
	var lines, size int
	for {
		line, err := br.ReadSlice('\n')
		size += len(line)
		switch {
		case errors.Is(err, bufio.ErrBufferFull) || len(line) > maxHeaderLine:
			return nil, fmt.Errorf("%w: header line over %d bytes", errMalformed, maxHeaderLine)
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w: end of output before the end of the header", errMalformed)
		case err != nil:
			return nil, err
		case size > maxHeaderBytes:
			return nil, fmt.Errorf("%w: header over %d bytes", errMalformed, maxHeaderBytes)
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			if lines == 0 {
				return nil, fmt.Errorf("%w: empty header", errMalformed)
			}
			return resp, nil
		}
		if lines++; lines > maxHeaderLines {
			return nil, fmt.Errorf("%w: more than %d header lines", errMalformed, maxHeaderLines)
		}
		if err := resp.addLine(string(line)); err != nil {
			return nil, err
		}
	}
}

// addLine records one header line (without its line ending).
func (resp *cgiResponse) addLine(line string) error {
	name, value, ok := strings.Cut(line, ":")
	if !ok {
		return fmt.Errorf("%w: line without a colon", errMalformed)
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("%w: invalid field name %q", errMalformed, name)
	}
	value = textproto.TrimString(value)
	if !httpguts.ValidHeaderFieldValue(value) {
		return fmt.Errorf("%w: invalid value for %s", errMalformed, name)
	}
	key := textproto.CanonicalMIMEHeaderKey(name)
	switch {
	case key == "Status":
		if resp.status != 0 {
			return fmt.Errorf("%w: repeated Status", errMalformed)
		}
		code, ok := parseStatus(value)
		if !ok {
			return fmt.Errorf("%w: invalid Status %q", errMalformed, value)
		}
		resp.status = code
	case key == "Location":
		if resp.location != "" || value == "" {
			return fmt.Errorf("%w: repeated or empty Location", errMalformed)
		}
		resp.location = value
	case key == "Content-Type" && resp.header.Get(key) != "":
		return fmt.Errorf("%w: repeated Content-Type", errMalformed)
	case isHopByHop(key):
		// The server frames the response; a script's Content-Length or
		// Transfer-Encoding is not trusted and connection-level fields
		// are not the script's to set.
	default:
		resp.header[key] = append(resp.header[key], value)
	}
	return nil
}

// parseStatus parses a Status value, "NNN" or "NNN reason", and reports
// whether NNN is a final status in 200..599.
func parseStatus(v string) (int, bool) {
	if len(v) < 3 || len(v) > 3 && v[3] != ' ' && v[3] != '\t' {
		return 0, false
	}
	code := 0
	for i := range 3 {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, code >= 200 && code <= 599
}

// isHopByHop reports whether a script's field is dropped: framing and
// connection-level fields (RFC 9110 §7.6.1) and anything Proxy-*.
func isHopByHop(key string) bool {
	switch key {
	case "Connection", "Content-Length", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return strings.HasPrefix(key, "Proxy-")
}

// isLocalPath reports whether a Location value is a local path that may be
// served as an internal redirect. "//host/x" and "/\host" are not: browsers
// read both as a reference to another host, and net/http/cgi used to
// re-dispatch "//victim/x" as a request for the victim's site.
func isLocalPath(loc string) bool {
	return strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, "/\\")
}
