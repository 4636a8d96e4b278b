package cgi

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ScrubInheritedFDs marks every descriptor from 3 up close-on-exec, so that
// none of what the server inherited (a shell's "exec 9</etc/shadow", a
// supervisor's leaked socket) can reach a child process. Go opens its own
// descriptors close-on-exec, but it does not touch inherited ones. The
// descriptors stay open and usable in the server itself, so socket
// activation (LISTEN_FDS) keeps working.
//
// Call it once at the start of main, before any child is started. The
// launcher does the same for every script, so this is defence in depth for
// other children. It uses close_range(2) (Linux 5.11+) and falls back to
// walking /proc/self/fd.
func ScrubInheritedFDs() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil || !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return scrubProcFDs()
}

// scrubProcFDs marks the descriptors listed in /proc/self/fd, from 3 up,
// close-on-exec.
func scrubProcFDs() error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd < 3 || uintptr(fd) == d.Fd() {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return err
		}
	}
	return nil
}
