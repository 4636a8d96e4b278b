package cgi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
)

// spillBytes is how much of a body of unknown length is buffered in memory
// before the rest goes to an unlinked temporary file.
const spillBytes = 1 << 20

// body is a request body ready to become a script's stdin.
type body struct {
	length int64     // CONTENT_LENGTH; 0 means no body (stdin is /dev/null)
	file   *os.File  // a buffered body spilled to disk, at offset 0
	mem    []byte    // a buffered body kept in memory
	stream io.Reader // a body of known length, read from the client as the script reads
}

func (b *body) close() {
	if b.file != nil {
		b.file.Close()
	}
}

// prepareBody decides how the request body reaches the script.
//
// A declared Content-Length over MaxBodyBytes is refused with 413 before
// anything runs; within the limit the body is streamed, since net/http
// already stops reading at the declared length. A body of unknown length
// (HTTP/1.1 chunked, or HTTP/2 without content-length) is buffered up to
// MaxBodyBytes (413 beyond) so that the script still gets CONTENT_LENGTH:
// a script must never see a body without one (net/http/cgi passes such
// bodies with no CONTENT_LENGTH, and PHP-style scripts read nothing).
func (h *Handler) prepareBody(r *http.Request) (*body, *refusal) {
	max := h.opts.MaxBodyBytes
	switch {
	case r.ContentLength > max:
		return nil, refuse(http.StatusRequestEntityTooLarge, "request body over the limit", nil)
	case r.ContentLength > 0:
		return &body{length: r.ContentLength, stream: io.LimitReader(r.Body, r.ContentLength)}, nil
	case r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody:
		return &body{}, nil
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r.Body, min(max, spillBytes)+1))
	if err != nil {
		return nil, bodyReadRefusal(err)
	}
	if n <= spillBytes && n <= max {
		return &body{length: n, mem: buf.Bytes()}, nil
	}
	if n > max {
		return nil, refuse(http.StatusRequestEntityTooLarge, "request body over the limit", nil)
	}
	f, err := os.CreateTemp(h.opts.TempDir, "massvhost-cgi-body-")
	if err != nil {
		return nil, refuse(http.StatusInternalServerError, "spill request body", err)
	}
	// Unlinked at once: the open descriptor is all that remains, so
	// nothing is left behind whatever happens to the request or process.
	os.Remove(f.Name())
	b := &body{file: f}
	if _, err := f.Write(buf.Bytes()); err != nil {
		b.close()
		return nil, refuse(http.StatusInternalServerError, "spill request body", err)
	}
	m, err := io.Copy(f, io.LimitReader(r.Body, max-n+1))
	if err != nil {
		b.close()
		var we *os.PathError
		if errors.As(err, &we) {
			return nil, refuse(http.StatusInternalServerError, "spill request body", err)
		}
		return nil, bodyReadRefusal(err)
	}
	if n+m > max {
		b.close()
		return nil, refuse(http.StatusRequestEntityTooLarge, "request body over the limit", nil)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		b.close()
		return nil, refuse(http.StatusInternalServerError, "spill request body", err)
	}
	b.length = n + m
	return b, nil
}

// bodyReadRefusal maps an error reading the client's body.
func bodyReadRefusal(err error) *refusal {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return refuse(http.StatusRequestEntityTooLarge, "request body over the server limit", err)
	}
	return refuse(http.StatusBadRequest, "read request body", err)
}
