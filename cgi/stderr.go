package cgi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"massvhost/vhost"
)

// Rate of script stderr lines the default error log (Options.Logger) takes
// from all scripts together, so that a tenant printing to stderr in a loop
// cannot flood the server's own log. Lines over the budget are dropped and
// counted in Stats.StderrDropped.
const (
	stderrLinesPerSecond = 100
	stderrBurst          = 1000
	stderrMaxLine        = 4 << 10
)

// lineBudget is a token bucket of log lines.
type lineBudget struct {
	rate, burst float64

	mu     sync.Mutex
	tokens float64   // guarded by mu
	last   time.Time // guarded by mu
}

func newLineBudget(rate, burst float64) *lineBudget {
	return &lineBudget{rate: rate, burst: burst, tokens: burst}
}

// allow reports whether one more line may be logged at now.
func (b *lineBudget) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// copyStderr reads a script's stderr until EOF or a read error and hands it
// to the site's error log line by line: at most MaxStderrBytes per run
// (Apache's ScriptLogLength), the rest read and dropped so that the script
// never blocks on a full pipe. Lines longer than stderrMaxLine are split.
func (h *Handler) copyStderr(r io.Reader, site vhost.Site, scriptName string) {
	var sink io.Writer
	if h.opts.ErrorLog != nil {
		sink = h.opts.ErrorLog(site)
	}
	br := bufio.NewReaderSize(r, stderrMaxLine)
	var written, dropped int64
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			switch {
			case written+int64(len(line)) > h.opts.MaxStderrBytes:
				dropped += int64(len(line))
			case sink != nil:
				written += int64(len(line))
				sink.Write(line)
			case h.stderrBudget.allow(time.Now()):
				written += int64(len(line))
				h.opts.Logger.LogAttrs(context.Background(), slog.LevelWarn, "cgi stderr",
					slog.String("host", site.Name), slog.String("script", scriptName),
					slog.String("line", string(bytes.TrimRight(line, "\r\n"))))
			default:
				h.stderrDropped.Add(1)
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
	}
	if dropped > 0 {
		h.opts.Logger.LogAttrs(context.Background(), slog.LevelWarn, "cgi stderr truncated",
			slog.String("host", site.Name), slog.String("script", scriptName),
			slog.Int64("dropped_bytes", dropped), slog.Int64("max_stderr_bytes", h.opts.MaxStderrBytes))
	}
}
