package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// hostSettings are kernel settings that a server holding many tenants'
// trees relies on and cannot enforce itself: os.Root keeps a request inside
// its document root, but a hard link made by the tenant points at another
// tenant's inode from inside it (THREATS FS-04), and a symlink planted in a
// shared sticky directory (/tmp) is followed by whoever opens the name.
var hostSettings = []struct {
	file, want, why string
}{
	{"fs/protected_hardlinks", "1", "a tenant can hard-link files it does not own (another tenant's config, say) into its own tree and have them served"},
	{"fs/protected_symlinks", "1", "a tenant's symlink in a shared sticky directory such as /tmp is followed by other tenants' scripts"},
}

// hostWarnings returns one line per kernel setting under procSys (normally
// /proc/sys) that is not what a shared host needs. They matter only when
// the server switches to the tenants' uids (root); otherwise none.
func hostWarnings(procSys string, root bool) []string {
	if !root {
		return nil
	}
	var out []string
	for _, s := range hostSettings {
		b, err := os.ReadFile(filepath.Join(procSys, s.file))
		if err != nil {
			continue // not Linux, or /proc/sys not mounted: nothing to say
		}
		if got := strings.TrimSpace(string(b)); got != s.want {
			key := strings.ReplaceAll(s.file, "/", ".")
			out = append(out, fmt.Sprintf("sysctl %s is %s, want %s: %s", key, got, s.want, s.why))
		}
	}
	return out
}
