package cgi

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestScrubInheritedFDs(t *testing.T) {
	for name, scrub := range map[string]func() error{
		"close_range": ScrubInheritedFDs,
		"proc":        scrubProcFDs,
	} {
		t.Run(name, func(t *testing.T) {
			fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0) // inherited-style: no O_CLOEXEC
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
				t.Fatal("test descriptor already close-on-exec")
			}
			if err := scrub(); err != nil {
				t.Fatal(err)
			}
			flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Fatalf("flags %#x, %v: want FD_CLOEXEC", flags, err)
			}
			for std := range 3 {
				if flags, _ := unix.FcntlInt(uintptr(std), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
					t.Errorf("fd %d marked close-on-exec", std)
				}
			}
		})
	}
}
