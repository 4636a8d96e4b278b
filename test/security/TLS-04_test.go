// TLS-04: corrupt, mismatched, foreign, expired or oversized certificate
// data in the store.
//
// Exploit: for names that have a tenant, the store holds in turn a
// truncated PEM, a certificate with another certificate's key, tenant b's
// own valid pair filed under another name (a store mix-up, or a hostile
// write), an expired certificate, a DER file instead of PEM, an encrypted
// key and a 100 MB file; in Redis, a 64 MiB legacy value and a 4 MiB
// hash field (the cap is 1 MiB).
//
// Expectation: a handshake for such a name either fails or presents a
// certificate valid for that name — never b's certificate; the server
// stays up and keeps serving the good names (the oversized Redis value
// must not take the store down for everyone); an expired certificate for
// the right name is served and counted (documented policy: a client with
// a skewed clock is better served than refused).
package security

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"massvhost/test/certtest"
	"massvhost/test/redistest"
)

func TestTLS04BadCertificateData(t *testing.T) {
	t.Parallel()
	names := []string{"trunc.test", "mismatch.test", "foreign.test", "expired.test", "der.test", "enc.test", "huge.test"}
	w := newWorld(t, append([]string{"a.test", "b.test"}, names...)...)
	dir := w.CertDir
	write := func(name string, crt, key []byte) {
		must(t, os.WriteFile(filepath.Join(dir, name+".crt"), crt, 0o644))
		must(t, os.WriteFile(filepath.Join(dir, name+".key"), key, 0o600))
	}
	bCrt, bKey := must2(os.ReadFile(filepath.Join(dir, "b.test.crt")))(t), must2(os.ReadFile(filepath.Join(dir, "b.test.key")))(t)
	c, k := w.CA.Leaf(t, "trunc.test")
	write("trunc.test", c[:len(c)/2], k)
	c, _ = w.CA.Leaf(t, "mismatch.test")
	_, otherKey := w.CA.Leaf(t, "mismatch.test")
	write("mismatch.test", c, otherKey)
	write("foreign.test", bCrt, bKey)
	c, k = w.CA.LeafWith(t, certtest.LeafOptions{Names: []string{"expired.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	write("expired.test", c, k)
	c, k = w.CA.Leaf(t, "der.test")
	blk, _ := pem.Decode(c)
	write("der.test", blk.Bytes, k)
	c, _ = w.CA.Leaf(t, "enc.test")
	write("enc.test", c, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("garbage")}))
	c, k = w.CA.Leaf(t, "huge.test")
	write("huge.test", c, k)
	must(t, os.Truncate(filepath.Join(dir, "huge.test.crt"), 100<<20)) // sparse: no disk used
	p := start(t, w.config(cfg{}))

	for _, name := range names {
		checkCertFor(t, p, name, bCrt, name == "expired.test")
	}
	checkKnown(t, p, "a.test", "b.test")
	if n := p.metric("massvhost_cert_expired_loaded_total"); n < 1 {
		t.Errorf("expired certificate served without being counted (%v)", n)
	}
}

func TestTLS04BadCertificateDataRedis(t *testing.T) {
	t.Parallel()
	rs := redistest.StartServer(t)
	w := newWorld(t, "a.test", "b.test", "hugelegacy.test", "hugehash.test", "foreign.test")
	bCrt, bKey := w.CA.Leaf(t, "b.test")
	for _, name := range []string{"a.test"} {
		c, k := w.CA.Leaf(t, name)
		rs.Do(t, "HSET", "cert:"+name, "crt", string(c), "key", string(k))
	}
	rs.Do(t, "HSET", "cert:b.test", "crt", string(bCrt), "key", string(bKey))
	rs.Do(t, "HSET", "cert:foreign.test", "crt", string(bCrt), "key", string(bKey))
	// The oversized values are built inside Redis (SETRANGE, a Lua
	// string.rep), so that writing them costs no transfer.
	const huge, hugeHash = 64 << 20, 4 << 20
	c, k := w.CA.Leaf(t, "hugelegacy.test")
	rs.Do(t, "SET", "hugelegacy.test.crt", string(c))
	rs.Do(t, "SETRANGE", "hugelegacy.test.crt", fmt.Sprint(huge), "x")
	rs.Do(t, "SET", "hugelegacy.test.key", string(k))
	c, k = w.CA.Leaf(t, "hugehash.test")
	rs.Do(t, "EVAL", "redis.call('HSET', KEYS[1], 'crt', ARGV[1] .. string.rep('A', tonumber(ARGV[3])), 'key', ARGV[2]) return 1",
		"1", "cert:hugehash.test", string(c), string(k), fmt.Sprint(hugeHash))
	config := strings.Replace(w.config(cfg{}), "  store: files\n", "  store: redis\n", 1)
	config += fmt.Sprintf("redis:\n  addrs: [%q]\n", rs.Addr)
	p := start(t, config)

	checkKnown(t, p, "a.test")
	for _, name := range []string{"foreign.test", "hugelegacy.test", "hugehash.test"} {
		checkCertFor(t, p, name, bCrt, false)
		// The good names keep working right after each bad load: one
		// tenant's oversized value must not trip the store for all.
		checkKnown(t, p, "b.test")
	}
	checkKnown(t, p, "a.test", "b.test")
}

// checkCertFor dials name and fails if the handshake succeeds with a
// certificate that is not valid for name, or that is b's; an expired
// certificate is accepted only when allowExpired.
func checkCertFor(t *testing.T, p *proc, name string, bCrt []byte, allowExpired bool) {
	t.Helper()
	conn, err := p.dialTLS(name, nil)
	if err != nil {
		if allowExpired {
			t.Errorf("%s: %v, want the expired certificate served", name, err)
		}
		return
	}
	defer conn.Close()
	leaf := leafOf(conn)
	blk, _ := pem.Decode(bCrt)
	if b, err := x509.ParseCertificate(blk.Bytes); err == nil && b.Equal(leaf) {
		t.Errorf("%s: served tenant b's certificate", name)
	}
	if leaf.VerifyHostname(name) != nil {
		t.Errorf("%s: served a certificate for %v", name, leaf.DNSNames)
	}
	if time.Now().After(leaf.NotAfter) && !allowExpired {
		t.Errorf("%s: served an expired certificate", name)
	}
}

func must2[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		must(t, err)
		return v
	}
}
