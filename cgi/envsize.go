package cgi

import "net/http"

// Limits execve(2) puts on a new process's environment on Linux. One
// string longer than maxEnvString (MAX_ARG_STRLEN, 32 pages, counting its
// NUL) or an argument and environment block larger than a quarter of the
// stack limit makes the exec fail with E2BIG. maxEnvTotal stays well
// below the quarter of the usual 8 MiB stack limit.
const (
	maxEnvString = 32*4096 - 1
	maxEnvTotal  = 1 << 20
)

// checkEnvSize refuses, with 431 Request Header Fields Too Large, an
// environment the kernel would not exec. Request headers become HTTP_*
// variables, so with server.max_header_bytes raised past 128 KiB one large
// header would otherwise end as a 500 from a failed spawn, and the client
// would never learn that its request, not the server, was at fault
// (THREATS HTTP-03).
func checkEnvSize(env []string) *refusal {
	total := 0
	for _, kv := range env {
		if len(kv) > maxEnvString {
			return refuse(http.StatusRequestHeaderFieldsTooLarge, "environment string over MAX_ARG_STRLEN", nil)
		}
		total += len(kv) + 1 + 8 // the string, its NUL and its pointer
	}
	if total > maxEnvTotal {
		return refuse(http.StatusRequestHeaderFieldsTooLarge, "environment too large to exec", nil)
	}
	return nil
}
