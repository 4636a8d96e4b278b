package cgi

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"syscall"

	"massvhost/vhost"
)

// copyBufferBytes is the stdout buffer of one run, and the largest write
// to the client.
const copyBufferBytes = 32 << 10

// outcome is what ServeCGI still has to do once a run has been reaped.
type outcome struct {
	sent     bool          // the response header was written
	abort    bool          // headers were sent and the body is incomplete
	redirect *http.Request // a local redirect to serve for the same site
}

// run spawns the script, relays its response, and reaps it. Nothing it
// started is left running when it returns.
func (h *Handler) run(w http.ResponseWriter, r *http.Request, site vhost.Site, s *script, b *body) outcome {
	env := h.buildEnv(r, site, s, b.length)
	rf := checkEnvSize(env)
	var c *child
	if rf == nil {
		c, rf = h.start(w, r, site, s, b, env)
	}
	if rf != nil {
		h.answer(w, r, site, rf)
		return outcome{}
	}
	var out outcome
	fail := c.launchFailure()
	s.cgroupLost = s.cgroupLost || c.cgroupLost
	if fail == nil && c.endReason() == endNone {
		br := bufio.NewReaderSize(c, copyBufferBytes)
		resp, err := parseHeader(br)
		switch {
		case c.endReason() != endNone:
		case err != nil:
			fail = refuse(http.StatusBadGateway, "bad response header", err)
			select {
			case <-c.exited:
			default:
				c.end(endAborted)
			}
		default:
			out, fail = h.respond(w, r, c, br, resp)
		}
	}
	why := c.endReason()
	if fail == nil && !out.sent && out.redirect == nil {
		switch why {
		case endTimeout:
			fail = refuse(http.StatusGatewayTimeout, "timeout before the response header", nil)
		case endShutdown:
			fail = refuse(http.StatusServiceUnavailable, "shutting down", nil)
		}
	}
	grace := h.opts.WaitDelay
	if why != endNone {
		grace = h.opts.KillGrace
	}
	state := c.finish(grace)
	exit := slog.String("exit", state.String())
	if (why == endNone || why == endAborted) && s.cgroup != nil && killedBySIGKILL(state) && s.cgroup.OOMKilled() {
		// The kernel's kill, not a timeout's or a shutdown's: the tenant's
		// memory cap was reached (its output then ended without a valid
		// header, which may have aborted the run first).
		h.oomKills.Add(1)
		exit = slog.String("exit", state.String()+" (out of memory: the tenant's cgi.tenant_memory_max)")
	}
	switch why {
	case endNone:
	case endTimeout:
		h.timeouts.Add(1)
		h.killed.Add(1)
	default:
		h.killed.Add(1)
	}
	switch {
	case fail != nil:
		if fail.status == http.StatusBadGateway {
			h.badResponses.Add(1)
		}
		h.log(r, site, slog.LevelWarn, "cgi failed", fail, exit)
		if why != endCanceled {
			if fail.status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
			}
			http.Error(w, http.StatusText(fail.status), fail.status)
		}
	case out.abort:
		h.log(r, site, slog.LevelWarn, "cgi response cut", nil, exit, slog.String("reason", abortReason(why)))
	case why == endCanceled:
		h.log(r, site, slog.LevelDebug, "cgi client gone", nil, exit)
	case !state.Success():
		h.log(r, site, slog.LevelDebug, "cgi script exited", nil, exit)
	}
	return out
}

// killedBySIGKILL reports whether the process died of SIGKILL.
func killedBySIGKILL(state *os.ProcessState) bool {
	ws, ok := state.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func abortReason(why endReason) string {
	switch why {
	case endTimeout:
		return "timeout"
	case endShutdown:
		return "shutting down"
	}
	return "output over max_output_bytes"
}

// respond relays a parsed response: a local redirect becomes a new request
// for the caller to serve; anything else is written to w, body included.
// It returns a refusal only when nothing has been written yet.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, c *child, br *bufio.Reader, resp *cgiResponse) (outcome, *refusal) {
	if resp.location != "" && isLocalPath(resp.location) &&
		(resp.status == 0 || resp.status == http.StatusOK) && h.opts.LocalRedirect != nil {
		if redirectDepth(r.Context()) >= MaxRedirects {
			return outcome{}, refuse(http.StatusInternalServerError, "too many internal redirects", nil)
		}
		next, err := localRedirectRequest(r, resp.location)
		if err != nil {
			return outcome{}, refuse(http.StatusBadGateway, "bad local Location", err)
		}
		// A local redirect has no body; whatever the script still writes
		// is read and dropped so that it can exit normally.
		io.Copy(io.Discard, io.LimitReader(br, h.opts.MaxOutputBytes))
		return outcome{redirect: next}, nil
	}
	status := writeHeader(w, resp)
	out := outcome{sent: true}
	sendBody := r.Method != http.MethodHead && status != http.StatusNoContent && status != http.StatusNotModified
	buf := make([]byte, copyBufferBytes)
	var total int64
	for {
		n, err := br.Read(buf)
		if n > 0 {
			total += int64(n)
			over := total > h.opts.MaxOutputBytes
			if over {
				n -= int(total - h.opts.MaxOutputBytes)
			}
			if sendBody && n > 0 {
				if _, err := w.Write(buf[:n]); err != nil {
					c.end(endAborted) // the client is gone
					return out, nil
				}
				if br.Buffered() == 0 {
					c.rc.Flush()
				}
			}
			if over {
				c.end(endAborted)
				out.abort = true
				return out, nil
			}
		}
		if err != nil {
			switch c.endReason() {
			case endTimeout, endShutdown:
				out.abort = true
			}
			return out, nil
		}
	}
}

// writeHeader sends the script's status and header fields. A missing
// Status is 200, or 302 with a Location. A missing Content-Type becomes
// application/octet-stream, and every response carries
// X-Content-Type-Options: nosniff, so that tenant output without a type is
// never sniffed into HTML by a browser (compare CVE-2020-24553).
func writeHeader(w http.ResponseWriter, resp *cgiResponse) int {
	hdr := w.Header()
	for k, v := range resp.header {
		hdr[k] = v
	}
	status := resp.status
	if resp.location != "" {
		hdr.Set("Location", resp.location)
		if status == 0 {
			status = http.StatusFound
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	if hdr.Get("Content-Type") == "" && status != http.StatusNoContent && status != http.StatusNotModified {
		hdr.Set("Content-Type", "application/octet-stream")
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	return status
}

// localRedirectRequest is the request a local redirect to loc turns r into
// (RFC 3875 §6.2.2): same site and connection, the new path and query, GET
// (HEAD stays HEAD) without a body, one more redirect counted in the
// context.
func localRedirectRequest(r *http.Request, loc string) (*http.Request, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	ctx := context.WithValue(r.Context(), redirectDepthKey{}, redirectDepth(r.Context())+1)
	next := r.Clone(ctx)
	if next.Method != http.MethodHead {
		next.Method = http.MethodGet
	}
	next.Body, next.GetBody, next.ContentLength = http.NoBody, nil, 0
	next.TransferEncoding, next.Trailer = nil, nil
	next.Form, next.PostForm, next.MultipartForm = nil, nil, nil
	next.Header.Del("Content-Type")
	next.Header.Del("Content-Length")
	next.URL = &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	next.RequestURI = next.URL.RequestURI()
	return next, nil
}
