// Package redisbench measures the Redis certificate path of massvhost, for
// docs/BENCHMARKS.md. It holds only tests and benchmarks:
//
//   - BenchmarkManagerRedis: the certs.Manager over a real redis-server, for
//     a warm hit, a cold load of a stored name, and a never-seen name.
//   - TestHandshakeLatency: p50/p99 of full TLS handshakes (new connection,
//     no resumption) against the real binary for a cold name, which costs a
//     Redis round trip, and a warm one, interleaved, over several runs.
//   - TestNewNameFlood: 100,000 never-seen SNI names as fast as one client
//     can send them; Redis commands (INFO commandstats) and the server's
//     RSS (/proc/PID/status) before and after.
//
// The two tests start redis-server and the massvhost binary on loopback and
// run only with the -redisbench flag:
//
//	go test ./test/bench/redisbench -run . -v -redisbench
//	go test ./test/bench/redisbench -run '^$' -bench . -benchtime 2s
package redisbench
