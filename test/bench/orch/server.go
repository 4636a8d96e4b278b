package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// waitPortFree waits until nothing accepts connections on addr, so the next
// peer's start-up is not measured against the previous one's listener.
func waitPortFree(ctx context.Context, addr string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return nil
		}
		c.Close()
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s still accepting connections after %s", addr, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback address with a port the kernel just handed
// out and released; every peer then listens there in turn.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// runChecked runs a short command (a config test, a build) with a bound.
func runChecked(ctx context.Context, bound time.Duration, dir string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
