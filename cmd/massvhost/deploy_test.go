package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The shipped systemd unit lets the server do what the configuration asks
// of it: per-tenant cgroups need the cgroup subtree delegated and writable,
// the identity switch and the kill of script groups need their
// capabilities. systemd-analyze, when installed, checks the rest of the
// file.
func TestDeployUnit(t *testing.T) {
	const unit = "../../examples/deploy/massvhost.service"
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	last := func(k string) string {
		if vs := settings[k]; len(vs) > 0 {
			return vs[len(vs)-1]
		}
		return ""
	}
	if got := last("Delegate"); got != "yes" {
		t.Errorf("Delegate=%q, want yes: per-tenant cgroups need the subtree", got)
	}
	if got := last("ProtectControlGroups"); got == "yes" || got == "true" {
		t.Errorf("ProtectControlGroups=%s makes /sys/fs/cgroup read-only", got)
	}
	caps := strings.Fields(last("CapabilityBoundingSet"))
	for _, c := range []string{"CAP_SETUID", "CAP_SETGID", "CAP_KILL"} {
		if !slices.Contains(caps, c) {
			t.Errorf("CapabilityBoundingSet lacks %s", c)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: the unit's syntax is not checked")
		return
	}
	// verify wants the binaries to exist: point them at this test binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(unit)
	copyPath := filepath.Join(t.TempDir(), "massvhost.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/massvhost", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The socket units go beside it, so that the commented Sockets= line
	// would find them.
	verify := []string{"verify", copyPath}
	for _, sock := range []string{"massvhost-http.socket", "massvhost-https.socket"} {
		b, err := os.ReadFile(filepath.Join("../../examples/deploy", sock))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(filepath.Dir(copyPath), sock)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		verify = append(verify, p)
	}
	out, err := exec.Command(analyze, verify...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
