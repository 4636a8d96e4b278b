package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func renewConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"sites", "certs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := "data_dir: data\nsites:\n  root: sites\ncerts:\n  dir: certs\n  local_ca: false\n" + extra
	path := filepath.Join(dir, "massvhost.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCertsRenewRefused(t *testing.T) {
	err := runCerts([]string{"renew", "a.test", "--config", renewConfig(t, "")}, io.Discard, io.Discard)
	if !errors.Is(err, errACMEDisabled) {
		t.Fatalf("renew with acme disabled: %v", err)
	}
	err = runCerts([]string{"renew", "a.test", "--config", renewConfig(t, "acme:\n  enabled: true\n  accept_terms: true\n")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "needs certs.store redis") {
		t.Fatalf("renew with the files store: %v", err)
	}
}
