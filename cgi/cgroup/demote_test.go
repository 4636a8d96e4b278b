package cgroup

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestDemoteHog: a tenant that spins a CPU is demoted to idle priority
// within a few sampling windows while a quiet tenant is not; once the hog
// stops and its demotion is over it is restored, and a second demotion
// counts as a repeat. It runs with cpu.idle and with the weight fallback
// of kernels before 5.15.
func TestDemoteHog(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		name := "cpu.idle"
		if fallback {
			name = "weight"
		}
		t.Run(name, func(t *testing.T) {
			eachLayout(t, Options{DemoteAbove: 0.3, DemoteFor: time.Second}, func(t *testing.T, m *Manager) {
				if !m.cpu {
					// Said at start-up, and the watcher stays off.
					if m.cannotDemote() == "" || m.opts.DemoteAbove != 0 {
						t.Errorf("no cpu controller, yet demotion is on (DemoteAbove %v)", m.opts.DemoteAbove)
					}
					t.Skip("no cpu controller on this hierarchy: nothing to demote with")
				}
				if fallback {
					m.cpuIdle = false
				} else if !m.cpuIdle {
					t.Skip("no cpu.idle on this kernel")
				}
				testDemoteHog(t, m)
			})
		})
	}
}

func testDemoteHog(t *testing.T, m *Manager) {
	hogSlot, err := m.Enter(context.Background(), "hog.test")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Leave("hog.test")
	calmSlot, err := m.Enter(context.Background(), "calm.test")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Leave("calm.test")
	startCmdIn(t, calmSlot, "sleep", "300")
	hog, _ := startCmdIn(t, hogSlot, "sh", "-c", "while :; do :; done")

	demoted := func(slot Slot) bool {
		dir := slot.Dirs[0]
		switch {
		case m.cpuIdle:
			return readTrim(t, filepath.Join(dir, "cpu.idle")) == "1"
		case m.layout.Version == V2:
			return readTrim(t, filepath.Join(dir, "cpu.weight")) == "1"
		default:
			return readTrim(t, filepath.Join(dir, "cpu.shares")) == "2"
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(8 * DemoteWindow)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, 8*DemoteWindow)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("hog demoted", func() bool { return demoted(hogSlot) })
	if total, now := m.Demotions(); total != 1 || now != 1 {
		t.Errorf("Demotions() = %d, %d; want 1, 1", total, now)
	}
	if demoted(calmSlot) {
		t.Error("the quiet tenant was demoted too")
	}

	hog.Process.Kill()
	waitFor("hog restored", func() bool { return !demoted(hogSlot) })
	if _, now := m.Demotions(); now != 0 {
		t.Errorf("%d tenants demoted after the restore, want 0", now)
	}

	startCmdIn(t, hogSlot, "sh", "-c", "while :; do :; done")
	waitFor("hog demoted again", func() bool { return demoted(hogSlot) })
	m.mu.Lock()
	tn := m.tenants["hog.test"]
	m.mu.Unlock()
	tn.setupMu.Lock()
	strikes, left := tn.strikes, time.Until(tn.demotedUntil)
	tn.setupMu.Unlock()
	if total, _ := m.Demotions(); total != 2 || strikes != 2 || left <= time.Second {
		t.Errorf("after a repeat: %d demotions, %d strikes, %v left; want 2, 2 and more than the first %v",
			total, strikes, left.Round(time.Millisecond), time.Second)
	}
}
