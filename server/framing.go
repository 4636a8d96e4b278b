package server

import "net/http"

// closeAfterChunked makes the connection close once r's response is sent
// when r is an HTTP/1.x request with a chunked body.
//
// A request with both Content-Length and Transfer-Encoding is the classic
// request-smuggling shape (CL.TE, TE.CL): a front-end proxy that frames by
// Content-Length forwards as one request what the server, framing by the
// chunked encoding as RFC 9112 requires, reads as two, and the second is
// an attacker's request answered on someone else's connection. RFC 9112
// §6.3 therefore says the server MUST close the connection after
// responding to such a message. net/http frames it correctly but keeps the
// connection open, and deletes Content-Length before the handler runs, so
// the combination cannot be told from a plain chunked upload here: every
// chunked HTTP/1.x request closes its connection. Browsers never send
// chunked request bodies, so keep-alive is lost only for the odd chunked
// upload (THREATS HTTP-04).
func closeAfterChunked(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
}
