package main

import (
	"strings"
	"testing"
	"time"
)

const tracesOut = `File: massvhost
Type: cpu
Duration: 4s, Total samples = 30ms ( 0.75%)
-----------+-------------------------------------------------------
      10ms   internal/runtime/syscall/linux.Syscall6
             syscall.Syscall
             syscall.write
             internal/poll.(*FD).Write
             net.(*conn).Write
             crypto/tls.(*Conn).Write
-----------+-------------------------------------------------------
    1.20s   crypto/internal/fips140/nistec.p256OrdMul
             crypto/ecdsa.SignASN1
             crypto/tls.(*serverHandshakeStateTLS13).sendServerCertificate
             crypto/tls.(*Conn).serverHandshake
             crypto/tls.(*Conn).handshakeContext
-----------+-------------------------------------------------------
`

func TestParseTraces(t *testing.T) {
	s, err := parseTraces(strings.NewReader(tracesOut))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0].Value != 10*time.Millisecond || s[1].Value != 1200*time.Millisecond {
		t.Fatalf("parsed %+v", s)
	}
	if len(s[0].Stack) != 6 || s[0].Stack[0] != "internal/runtime/syscall/linux.Syscall6" {
		t.Errorf("stack %q", s[0].Stack)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name  string
		stack string // leaf first, space separated
		want  string
	}{
		{"socket write", "internal/runtime/syscall/linux.Syscall6 syscall.Syscall syscall.write internal/poll.(*FD).Write net.(*conn).Write crypto/tls.(*Conn).Write", cSockWrite},
		{"socket read", "internal/runtime/syscall/linux.Syscall6 syscall.Syscall syscall.read internal/poll.(*FD).Read net.(*conn).Read crypto/tls.(*Conn).readFromUntil", cSockRead},
		{"ecdsa sign", "crypto/internal/fips140/nistec.p256OrdMul crypto/ecdsa.SignASN1 crypto/tls.(*Conn).serverHandshake", cPubKey},
		{"gcm seal", "crypto/internal/fips140/aes/gcm.gcmAesEnc crypto/internal/fips140/aes/gcm.seal crypto/tls.(*halfConn).encrypt crypto/tls.(*Conn).writeRecordLocked", cSymmetric},
		{"record layer", "runtime.memmove crypto/tls.(*Conn).writeRecordLocked crypto/tls.(*Conn).Write net/http.(*conn).serve", cTLSRecord},
		{"handshake logic", "crypto/tls.(*serverHelloMsg).marshal crypto/tls.(*serverHandshakeStateTLS13).sendServerParameters crypto/tls.(*Conn).serverHandshake crypto/tls.(*Conn).handshakeContext crypto/tls.(*Conn).HandshakeContext", cTLSHS},
		{"openat in root", "internal/runtime/syscall/linux.Syscall6 syscall.Syscall6 internal/syscall/unix.Openat os.rootOpenFileNolog os.(*Root).OpenFile massvhost/server.openInRoot", cFileOpen},
		{"file read", "internal/runtime/syscall/linux.Syscall6 syscall.Syscall syscall.read internal/poll.(*FD).Read os.(*File).read os.(*File).Read io.copyBuffer net/http.serveContent", cFileRead},
		{"request parsing", "net/textproto.(*Reader).readContinuedLineSlice net/textproto.(*Reader).ReadMIMEHeader net/http.readRequest net/http.(*conn).readRequest", cHTTPParse},
		{"header write", "strings.(*Builder).WriteString net/http.Header.writeSubset net/http.(*chunkWriter).writeHeader net/http.(*chunkWriter).Write", cHTTPResp},
		{"our code", "runtime.mapaccess2_faststr massvhost/vhost.(*Resolver).Resolve massvhost/server.(*Server).handle", cOurs},
		{"allocation", "runtime.mallocgc runtime.newobject massvhost/server.newResponseWriter massvhost/server.(*Server).handle", cAlloc},
		{"gc", "runtime.scanobject runtime.gcDrain runtime.gcBgMarkWorker", cGC},
		{"scheduler", "runtime.futex runtime.futexsleep runtime.notesleep runtime.stopm runtime.findRunnable runtime.schedule runtime.park_m runtime.mcall", cSched},
		{"access log", "strconv.AppendInt massvhost/server.appendCombined massvhost/server.(*accessLog).run", cAccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(strings.Fields(tc.stack)); got != tc.want {
				t.Errorf("classify = %q, want %q", got, tc.want)
			}
		})
	}
}
