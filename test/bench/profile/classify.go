package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A sample is one stack of a CPU profile with its time; Stack[0] is the
// leaf.
type sample struct {
	Value time.Duration
	Stack []string
}

// parseTraces reads the output of `go tool pprof -traces`: blocks
// separated by "-----------+---…" lines, the first line of each carrying
// the value ("10ms", "1.20s") before the leaf function.
func parseTraces(r io.Reader) ([]sample, error) {
	var out []sample
	var cur *sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			cur = nil
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || strings.Contains(f[0], ":") && cur == nil {
			continue // header lines ("File:", "Type:") and labels
		}
		if cur == nil {
			if len(f) < 2 {
				continue
			}
			d, err := time.ParseDuration(f[0])
			if err != nil {
				continue
			}
			out = append(out, sample{Value: d})
			cur = &out[len(out)-1]
			f = f[1:]
		}
		if strings.HasSuffix(f[0], ":") {
			continue // a label line inside a block
		}
		cur.Stack = append(cur.Stack, f[0])
	}
	return out, sc.Err()
}

// Components, in the order the summary lists them.
const (
	cPubKey      = "crypto: handshake public key (ECDSA sign, X25519/ML-KEM, verify)"
	cSymmetric   = "crypto: record cipher (AES-GCM, ChaCha20-Poly1305)"
	cHash        = "crypto: hashes, HKDF, HMAC (handshake transcript, key schedule)"
	cRandom      = "crypto: random numbers"
	cCryptoOther = "crypto: other"
	cTLSHS       = "TLS handshake logic (messages, state machine, certificate selection glue)"
	cTLSRecord   = "TLS record layer (framing, buffers, Conn.Read/Write)"
	cSockRead    = "syscalls: socket read"
	cSockWrite   = "syscalls: socket write"
	cSockOther   = "syscalls: accept, close, setsockopt, other socket"
	cFileOpen    = "file open/stat/close (os.Root or openat2, openat, fstat)"
	cFileRead    = "file read"
	cHTTPParse   = "net/http: reading and parsing requests"
	cHTTPResp    = "net/http: response (headers, ServeContent, framing)"
	cHTTPConn    = "net/http: connection loop and other"
	cOurs        = "massvhost code (routing, resolver, headers, metrics)"
	cAccess      = "access logging"
	cCerts       = "massvhost certs (GetCertificate, cache)"
	cAlloc       = "runtime: allocation (mallocgc)"
	cGC          = "runtime: garbage collection (mark, sweep, assists)"
	cSched       = "runtime: scheduler, netpoll, goroutine switches"
	cRuntime     = "runtime: other"
	cProfiler    = "the profiler itself (writing profiles)"
	cOther       = "other"
)

var componentOrder = []string{cPubKey, cSymmetric, cHash, cRandom, cCryptoOther, cTLSHS, cTLSRecord,
	cSockRead, cSockWrite, cSockOther, cFileOpen, cFileRead, cHTTPParse, cHTTPResp, cHTTPConn,
	cOurs, cCerts, cAccess, cAlloc, cGC, cSched, cRuntime, cProfiler, cOther}

func hasAny(stack []string, subs ...string) bool {
	for _, fn := range stack {
		for _, s := range subs {
			if strings.Contains(fn, s) {
				return true
			}
		}
	}
	return false
}

func hasPrefix(fn string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

// neutral frames are charged to their caller: generic helpers whose cost
// belongs to whoever called them.
func neutral(fn string) bool {
	return hasPrefix(fn, "runtime.", "internal/bytealg.", "internal/runtime/", "internal/abi.", "internal/sync.",
		"internal/godebug.", "internal/itoa", "internal/stringslite.", "strings.", "bytes.", "bufio.", "strconv.",
		"unicode", "sync.", "sync/atomic.", "fmt.", "sort.", "slices.", "maps.", "io.", "errors.", "time.",
		"context.", "math", "reflect.", "encoding/binary.", "hash/", "log/slog.", "unique.", "iter.", "weak.",
		"container/", "path.", "path/filepath.", "internal/strconv.", "internal/filepathlite.", "internal/chacha8rand.",
		"internal/sync.", "net/netip.", "github.com/hashicorp/golang-lru/", "golang.org/x/sync/",
		// Host matching of the 421 check, charged to its caller.
		"crypto/x509.(*Certificate).VerifyHostname", "crypto/x509.matchHostnames", "crypto/x509.validHostname",
		"crypto/x509.toLowerCaseASCII", "crypto/x509.matchExactly") ||
		// Assembly helpers without a package (memeqbody, aeshashbody,
		// cmpbody…), except the crypto ones.
		!strings.ContainsAny(fn, "./") && !asmCrypto(fn)
}

// asmCrypto reports whether a package-less assembly symbol is crypto code.
func asmCrypto(fn string) bool {
	return hasPrefix(strings.ToLower(fn), "p256", "gcm", "aes", "sha", "chacha", "poly1305", "xor", "mul", "sqr")
}

// classify names the component one stack's time belongs to. A few
// components own everything below them (access logging, GC, allocation,
// the scheduler); otherwise the first frame from the leaf that is not a
// generic helper decides.
func classify(stack []string) string {
	// Leading runtime frames: what the runtime was doing at the leaf.
	lead := 0
	for lead < len(stack) && hasPrefix(stack[lead], "runtime.", "internal/runtime/", "internal/bytealg.", "internal/abi.") {
		lead++
	}
	leadFrames := stack[:lead]
	switch {
	case hasAny(stack, "massvhost/server.(*accessLog", "massvhost/server.(*tenantLog", "massvhost/server.accessLine",
		"massvhost/server.appendCombined", "massvhost/server.appendJSON", "massvhost/server.(*batch)"):
		return cAccess
	case hasAny(stack, "runtime.gcBgMarkWorker", "runtime.gcDrain", "runtime.bgsweep", "runtime.bgscavenge",
		"runtime.gcAssistAlloc", "runtime.markroot", "runtime.scanobject", "runtime.sweepone", "runtime.gcStart",
		"runtime.gcMarkDone", "runtime.wbBufFlush", "runtime.gcMarkTermination", "runtime.(*gcWork)"):
		return cGC
	case hasAny(leadFrames, "runtime.mallocgc", "runtime.newobject", "runtime.makeslice", "runtime.growslice",
		"runtime.makemap", "runtime.rawstring", "runtime.rawbyteslice", "runtime.(*mcache)", "runtime.(*mcentral)",
		"runtime.(*mheap)", "runtime.memclrNoHeapPointers", "runtime.newproc"):
		if lead > 0 && !hasAny(leadFrames, "runtime.schedule", "runtime.findRunnable") {
			return cAlloc
		}
	}
	if lead == len(stack) || hasAny(leadFrames, "runtime.schedule", "runtime.findRunnable", "runtime.park_m",
		"runtime.netpoll", "runtime.gopark", "runtime.goready", "runtime.ready", "runtime.wakep", "runtime.startm",
		"runtime.stopm", "runtime.mcall", "runtime.goexit0", "runtime.futex", "runtime.notewakeup", "runtime.selectgo",
		"runtime.chansend", "runtime.chanrecv", "runtime.lock2", "runtime.unlock2", "runtime.exitsyscall", "runtime.entersyscall") {
		if lead == len(stack) || !hasAny(leadFrames, "runtime.exitsyscall", "runtime.entersyscall") {
			return cSched
		}
	}
	for i, fn := range stack {
		if neutral(fn) {
			continue
		}
		rest := stack[i:]
		switch {
		case hasPrefix(fn, "syscall.", "golang.org/x/sys/unix.", "internal/syscall/unix.", "internal/poll.", "net.",
			"os.", "internal/runtime/syscall"):
			return syscallKind(rest)
		case hasPrefix(fn, "crypto/tls."):
			if hasAny(rest, "crypto/tls.(*Conn).Handshake", "crypto/tls.(*Conn).handshakeContext",
				"crypto/tls.(*Conn).serverHandshake") {
				return cTLSHS
			}
			return cTLSRecord
		case hasPrefix(fn, "crypto/", "vendor/golang.org/x/crypto/", "golang.org/x/crypto/"):
			return cryptoKind(fn)
		case asmCrypto(fn):
			return cryptoKind(strings.ToLower(fn))
		case hasPrefix(fn, "vendor/golang.org/x/net/http/httpguts."):
			return httpKind(rest)
		case hasPrefix(fn, "runtime/pprof.", "compress/", "net/http/pprof."):
			return cProfiler
		case hasPrefix(fn, "net/textproto.", "net/url.", "mime."):
			return cHTTPParse
		case hasPrefix(fn, "net/http."):
			return httpKind(rest)
		case hasPrefix(fn, "massvhost/certs."):
			return cCerts
		case hasPrefix(fn, "massvhost/"):
			return cOurs
		}
		return cOther
	}
	return cRuntime
}

// syscallKind names the system call (or the os/net layer around one) at
// the top of rest: a file operation when an os.File or os.Root frame comes
// before any network frame, a socket operation otherwise.
func syscallKind(rest []string) string {
	for _, fn := range rest {
		switch {
		case hasPrefix(fn, "os.(*File).Read", "os.(*File).read", "os.(*File).ReadAt", "os.(*File).pread",
			"os.(*File).WriteTo", "os.genericWriteTo", "massvhost/server.fdReader.ReadAt"):
			return cFileRead
		case hasPrefix(fn, "os.", "massvhost/server.(*Server).serveRegularFast", "massvhost/server.othersMayRead"):
			// The openat2 fast path's open, fstat and close, called from
			// the server with no os frame in between.
			return cFileOpen
		case hasPrefix(fn, "net.", "crypto/", "net/http."):
			return socketKind(rest)
		}
	}
	return socketKind(rest)
}

func socketKind(rest []string) string {
	for _, fn := range rest {
		switch {
		case hasPrefix(fn, "syscall.openat", "syscall.Fstat", "syscall.fstat", "syscall.fstatat", "internal/syscall/unix.Openat",
			"internal/syscall/unix.Fstatat"):
			return cFileOpen
		case hasPrefix(fn, "internal/poll.(*FD).Read", "syscall.read", "syscall.Read", "net.(*conn).Read", "net.(*netFD).Read"):
			return cSockRead
		case hasPrefix(fn, "internal/poll.(*FD).Write", "syscall.write", "syscall.Write", "syscall.writev",
			"net.(*conn).Write", "net.(*netFD).Write", "net.(*Buffers)", "net.(*netFD).writeBuffers"):
			return cSockWrite
		}
	}
	return cSockOther
}

func cryptoKind(fn string) string {
	switch {
	case hasAny([]string{fn}, "nistec", "ecdsa", "p256", "ecdh", "bigmod", "edwards25519", "curve25519", "mlkem", "rsa", "x509", "elliptic", "p256", "fiat"):
		return cPubKey
	case hasAny([]string{fn}, "aes", "gcm", "chacha20", "poly1305", "cipher", "subtle"):
		return cSymmetric
	case hasAny([]string{fn}, "sha256", "sha512", "sha3", "hmac", "hkdf", "tls13", "tls12", "md5", "sha1", "fips140/hash"):
		return cHash
	case hasAny([]string{fn}, "rand", "drbg", "entropy"):
		return cRandom
	}
	return cCryptoOther
}

func httpKind(rest []string) string {
	for _, fn := range rest {
		switch {
		case hasPrefix(fn, "net/http.ServeContent", "net/http.serveContent", "net/http.(*response)", "net/http.(*chunkWriter)",
			"net/http.checkPreconditions", "net/http.checkIf", "net/http.setLastModified", "net/http.writeStatusLine",
			"net/http.extraHeader", "net/http.Header.write", "net/http.Header.sortedKeyValues", "net/http.(*conn).finalFlush",
			"net/http.appendTime", "net/http.(*ResponseController)", "net/http.(*http2", "net/http.http2"):
			return cHTTPResp
		case hasPrefix(fn, "net/http.readRequest", "net/http.(*conn).readRequest", "net/http.ReadRequest",
			"net/http.parseRequestLine", "net/http.(*connReader)", "net/http.Header.", "net/http.CanonicalHeaderKey",
			"net/http.readTransfer", "net/http.(*transferReader)", "net/http.validMethod", "net/http.parseHTTPVersion"):
			return cHTTPParse
		}
	}
	return cHTTPConn
}

// summarize classifies the CPU profile of w and lists the top functions
// and allocation sites, appending to report and writing <name>.top.txt and
// <name>.components.txt next to the profiles.
func (p *prof) summarize(w workload, cpuFile, allocFile string, m measurement, report *strings.Builder) error {
	traces, err := pprofOut(p.ctx, "-traces", cpuFile)
	if err != nil {
		return err
	}
	samples, err := parseTraces(strings.NewReader(traces))
	if err != nil {
		return err
	}
	byComp := map[string]time.Duration{}
	var total time.Duration
	for _, s := range samples {
		byComp[classify(s.Stack)] += s.Value
		total += s.Value
	}
	if total == 0 {
		return fmt.Errorf("%s: empty profile", cpuFile)
	}
	comps := slices.Clone(componentOrder)
	slices.SortStableFunc(comps, func(a, b string) int { return cmp.Compare(byComp[b], byComp[a]) })
	var t strings.Builder
	fmt.Fprintf(&t, "| component | CPU share | ≈ µs per %s |\n|---|---:|---:|\n", w.unit)
	for _, c := range comps {
		if byComp[c] == 0 {
			continue
		}
		share := float64(byComp[c]) / float64(total)
		fmt.Fprintf(&t, "| %s | %.1f%% | %.1f |\n", c, 100*share, share*m.USPerReq)
	}
	fmt.Fprintf(&t, "| **total** (%s of samples) | 100%% | %.1f |\n\n", total, m.USPerReq)
	report.WriteString(t.String())
	if err := os.WriteFile(strings.TrimSuffix(cpuFile, ".cpu.pb.gz")+".components.md", []byte(t.String()), 0o644); err != nil {
		return err
	}
	top, err := pprofOut(p.ctx, "-top", "-nodecount=40", cpuFile)
	if err != nil {
		return err
	}
	cum, err := pprofOut(p.ctx, "-top", "-cum", "-nodecount=60", cpuFile)
	if err != nil {
		return err
	}
	allocs, err := pprofOut(p.ctx, "-top", "-sample_index=alloc_objects", "-nodecount=25", allocFile)
	if err != nil {
		return err
	}
	topFile := filepath.Join(p.out, w.name+".top.txt")
	body := "# flat\n" + top + "\n# cumulative\n" + cum + "\n# allocations (objects)\n" + allocs
	if err := os.WriteFile(topFile, []byte(body), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(report, "Profiles: `%s`, `%s`; top functions and allocation sites: `%s`.\n\n", cpuFile, allocFile, topFile)
	return nil
}

// pprofOut runs `go tool pprof args…` and returns its standard output.
func pprofOut(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}
