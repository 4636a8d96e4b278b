package server

import (
	"context"
	"log/slog"
)

// requestKey is the context key under which a request's *responseWriter
// travels, for its ID.
type requestKey struct{}

// RequestID returns the ID of the request ctx belongs to, as shown in 500
// answers ("request id: …"), in the JSON access log and in error log
// lines; "" when ctx is not a request's context from a [Server].
func RequestID(ctx context.Context) string {
	if rw, ok := ctx.Value(requestKey{}).(*responseWriter); ok {
		return rw.id()
	}
	return ""
}

// LogHandler wraps h so that every record logged with a request's context
// (Logger.ErrorContext(r.Context(), …), as the CGI runner does) carries the
// request's ID as the "id" attribute, which ties an error log line to the
// client's error page and the access log. The server's own error lines
// name the ID explicitly and are logged without the request context, so
// they do not get it twice.
func LogHandler(h slog.Handler) slog.Handler {
	return idHandler{h}
}

type idHandler struct{ slog.Handler }

func (h idHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h idHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return idHandler{h.Handler.WithAttrs(attrs)}
}

func (h idHandler) WithGroup(name string) slog.Handler {
	return idHandler{h.Handler.WithGroup(name)}
}
