package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"massvhost/conf"
)

// openLogs builds the error logger (to stderr, text or JSON at the
// configured level) and opens the access log destination. The returned func
// closes what was opened.
func openLogs(cfg *conf.Config, stderr io.Writer) (*slog.Logger, func(), error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, hopts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(stderr, hopts)
	}
	return slog.New(h), func() {}, nil
}

// accessWriter opens the access log destination named by log.access.
func accessWriter(cfg *conf.Config) (io.WriteCloser, error) {
	switch cfg.Log.Access {
	case conf.AccessOff, "":
		return nil, nil
	case conf.AccessStdout:
		return nopCloser{os.Stdout}, nil
	case conf.AccessStderr:
		return nopCloser{os.Stderr}, nil
	}
	f, err := os.OpenFile(cfg.Log.Access, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("log.access: %w", err)
	}
	return f, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
