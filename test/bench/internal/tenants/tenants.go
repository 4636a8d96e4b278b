// Package tenants writes the benchmark data set: N tenant directories, one
// certificate per tenant signed by a throwaway CA, a file certificate store
// and a host list, in the layout massvhost, nginx and Apache all read.
//
// Layout under Options.Dir:
//
//	sites/<host>/htdocs/index.html   612 bytes, hard link to shared/index.html
//	sites/<host>/cgi-bin/hello.cgi   mode 0755, hard link to shared/hello.cgi
//	certs/<host>.crt                 leaf + CA certificate (PEM)
//	certs/<host>.key                 hard link to shared/keys/kNNNN.key
//	ca/ca.crt, ca/ca.key             the CA (ECDSA P-256, whatever the leaf type)
//	hosts.txt                        one host per line, in generation order
//	manifest.json                    what was generated, see [Manifest]
//
// Identical files are hard links so that 100,000 tenants cost directory
// entries rather than 100,000 copies; every server still opens and parses
// one file per host, which is what the benchmarks measure. Key pairs are
// shared round-robin across certificates (Options.SharedKeys) because
// generating 100,000 RSA-2048 keys would take longer than every benchmark
// together; a server cannot tell, since it loads and parses every key file.
package tenants

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Key types accepted by Options.Key.
const (
	KeyRSA2048 = "rsa2048"
	KeyECDSA   = "ecdsa"
)

// IndexSize is the size of every tenant's index.html: the size of nginx's
// default welcome page, the file the published comparisons served.
const IndexSize = 612

// HelloCGI is the tenant CGI script: the cheapest script a shell can run,
// so that its latency is dominated by the server's fork/exec path.
const HelloCGI = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello from %s\\n' \"$SERVER_NAME\"\n"

// Options describe a data set.
type Options struct {
	Dir        string // output directory; created if missing
	N          int    // tenants
	Key        string // KeyRSA2048 or KeyECDSA
	SharedKeys int    // distinct key pairs reused round-robin; 0 = one per certificate
	Domain     string // hosts are h000001.<Domain>; default "bench.test"
	// Owner and Group own the tenant trees (CGI servers running as root
	// refuse scripts owned by root); -1 leaves the creating user.
	Owner, Group int
	Workers      int // parallel workers; default GOMAXPROCS
	// KeyPool, if set, is a directory of key pairs kept across data sets:
	// keys found there are reused and missing ones are generated into it,
	// so data sets of every size share one pool and RSA keys are generated
	// once per machine rather than once per data set.
	KeyPool  string
	Validity time.Duration // leaf lifetime; default 400 days
	Log      io.Writer     // progress lines; nil = silent
}

// Manifest records what a data set holds; it is written last, so a data set
// without one is incomplete.
type Manifest struct {
	N          int       `json:"n"`
	Key        string    `json:"key"`
	SharedKeys int       `json:"shared_keys"`
	Domain     string    `json:"domain"`
	Owner      int       `json:"owner"`
	Group      int       `json:"group"`
	NotAfter   time.Time `json:"not_after"`
	Created    time.Time `json:"created"`
	ElapsedS   float64   `json:"elapsed_s"`
}

// Paths of the parts of a data set rooted at dir.
func SitesDir(dir string) string  { return filepath.Join(dir, "sites") }
func CertsDir(dir string) string  { return filepath.Join(dir, "certs") }
func HostsFile(dir string) string { return filepath.Join(dir, "hosts.txt") }
func CAFile(dir string) string    { return filepath.Join(dir, "ca", "ca.crt") }

// HostName returns the name of tenant i (1-based).
func HostName(i int, domain string) string { return fmt.Sprintf("h%06d.%s", i, domain) }

func (o *Options) defaults() error {
	if o.N < 1 {
		return fmt.Errorf("tenants: N must be at least 1, got %d", o.N)
	}
	if o.Key != KeyRSA2048 && o.Key != KeyECDSA {
		return fmt.Errorf("tenants: key type %q: want %s or %s", o.Key, KeyRSA2048, KeyECDSA)
	}
	if o.SharedKeys < 0 {
		return fmt.Errorf("tenants: shared keys must be ≥ 0, got %d", o.SharedKeys)
	}
	if o.SharedKeys == 0 || o.SharedKeys > o.N {
		o.SharedKeys = o.N
	}
	if o.Domain == "" {
		o.Domain = "bench.test"
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Validity <= 0 {
		o.Validity = 400 * 24 * time.Hour
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// ReadManifest returns the manifest of the data set in dir.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("tenants: %s/manifest.json: %w", dir, err)
	}
	return &m, nil
}

// Reusable reports whether the data set in dir was generated with the same
// options and its certificates stay valid for at least another week.
func Reusable(o Options) bool {
	if o.defaults() != nil {
		return false
	}
	m, err := ReadManifest(o.Dir)
	if err != nil {
		return false
	}
	return m.N == o.N && m.Key == o.Key && m.SharedKeys == o.SharedKeys && m.Domain == o.Domain &&
		m.Owner == o.Owner && m.Group == o.Group && time.Until(m.NotAfter) > 7*24*time.Hour
}

// Generate writes a fresh data set, replacing whatever dir held.
func Generate(ctx context.Context, o Options) (*Manifest, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := os.RemoveAll(o.Dir); err != nil {
		return nil, err
	}
	for _, d := range []string{"sites", "certs", "ca", "shared/keys"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// The data set is read by server workers running as unprivileged users.
	if err := os.Chmod(o.Dir, 0o755); err != nil {
		return nil, err
	}
	ca, err := newCA(filepath.Join(o.Dir, "ca"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "generating %d tenants, %s leaf keys: %d key pair(s) shared round-robin across the %d certificates (keeps 100,000 tenants feasible; every server still loads one key file per host)\n",
		o.N, o.Key, o.SharedKeys, o.N)
	keys, keyFiles, err := sharedKeys(ctx, o)
	if err != nil {
		return nil, err
	}
	index, cgi, err := sharedFiles(o)
	if err != nil {
		return nil, err
	}
	notAfter := time.Now().Add(o.Validity).Truncate(time.Second)

	var done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan int, 1024)
	g.Go(func() error {
		defer close(next)
		for i := 1; i <= o.N; i++ {
			select {
			case next <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range o.Workers {
		g.Go(func() error {
			for i := range next {
				k := (i - 1) % len(keys)
				if err := writeTenant(o, ca, HostName(i, o.Domain), keys[k], keyFiles[k], index, cgi, notAfter); err != nil {
					return err
				}
				if n := done.Add(1); n%20000 == 0 {
					fmt.Fprintf(o.Log, "  %d/%d tenants (%.1fs)\n", n, o.N, time.Since(start).Seconds())
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := writeHosts(o); err != nil {
		return nil, err
	}
	m := &Manifest{N: o.N, Key: o.Key, SharedKeys: o.SharedKeys, Domain: o.Domain, Owner: o.Owner, Group: o.Group,
		NotAfter: notAfter, Created: time.Now().UTC().Truncate(time.Second), ElapsedS: time.Since(start).Seconds()}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(o.Dir, "manifest.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "wrote %d tenants to %s in %.1fs\n", o.N, o.Dir, m.ElapsedS)
	return m, nil
}

func writeHosts(o Options) error {
	f, err := os.Create(HostsFile(o.Dir))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := 1; i <= o.N; i++ {
		w.WriteString(HostName(i, o.Domain))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadHosts reads a host list: one name per line, blank lines and #
// comments ignored.
func ReadHosts(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hosts = append(hosts, line)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("tenants: %s: no hosts", path)
	}
	return hosts, nil
}

type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// newCA creates the signing CA. It is ECDSA P-256 whatever the leaf type:
// the chain's signature algorithm costs the client, not the server, and an
// ECDSA CA signs 100,000 leaves in seconds where RSA needs minutes.
func newCA(dir string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "massvhost bench CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), certPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), keyPEM, 0o600); err != nil {
		return nil, err
	}
	return &authority{cert: cert, certPEM: certPEM, key: key}, nil
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// sharedKeys generates the key pairs in parallel and writes each once.
func sharedKeys(ctx context.Context, o Options) ([]crypto.Signer, []string, error) {
	keys := make([]crypto.Signer, o.SharedKeys)
	files := make([]string, o.SharedKeys)
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(o.Workers)
	if o.KeyPool != "" {
		if err := os.MkdirAll(o.KeyPool, 0o700); err != nil {
			return nil, nil, err
		}
	}
	for i := range keys {
		g.Go(func() error {
			name := fmt.Sprintf("k%06d.key", i)
			files[i] = filepath.Join(o.Dir, "shared", "keys", name)
			if o.KeyPool != "" {
				pooled := filepath.Join(o.KeyPool, o.Key+"-"+name)
				if k, err := readKey(pooled); err == nil {
					keys[i] = k
					return os.Link(pooled, files[i])
				}
			}
			var k crypto.Signer
			var err error
			if o.Key == KeyRSA2048 {
				k, err = rsa.GenerateKey(rand.Reader, 2048)
			} else {
				k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			}
			if err != nil {
				return err
			}
			p, err := encodeKey(k)
			if err != nil {
				return err
			}
			keys[i] = k
			// Keys stay private to root: servers read them in their
			// privileged parent (nginx, Apache) or as root (massvhost).
			if err := os.WriteFile(files[i], p, 0o600); err != nil {
				return err
			}
			if o.KeyPool != "" {
				os.Link(files[i], filepath.Join(o.KeyPool, o.Key+"-"+name)) // best effort; a race loser just regenerates next time
			}
			return nil
		})
	}
	return keys, files, g.Wait()
}

// readKey loads a PKCS #8 private key written by encodeKey.
func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("tenants: %s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("tenants: %s: %T is not a signer", path, k)
	}
	return s, nil
}

func sharedFiles(o Options) (index, cgi string, err error) {
	index = filepath.Join(o.Dir, "shared", "index.html")
	cgi = filepath.Join(o.Dir, "shared", "hello.cgi")
	if err := os.WriteFile(index, IndexHTML(), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(cgi, []byte(HelloCGI), 0o755); err != nil {
		return "", "", err
	}
	if err := os.Chmod(cgi, 0o755); err != nil { // umask-proof
		return "", "", err
	}
	if o.Owner >= 0 {
		for _, f := range []string{index, cgi} {
			if err := os.Lchown(f, o.Owner, o.Group); err != nil {
				return "", "", err
			}
		}
	}
	return index, cgi, nil
}

// IndexHTML returns the IndexSize-byte page every tenant serves.
func IndexHTML() []byte {
	head := "<!DOCTYPE html>\n<html>\n<head>\n<title>massvhost benchmark tenant</title>\n</head>\n<body>\n<h1>It works.</h1>\n<p>"
	tail := "</p>\n</body>\n</html>\n"
	var b bytes.Buffer
	b.WriteString(head)
	filler := "This page is served to measure static HTTPS throughput. "
	for b.Len()+len(tail) < IndexSize {
		b.WriteString(filler)
	}
	b.Truncate(IndexSize - len(tail))
	b.WriteString(tail)
	return b.Bytes()
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func writeTenant(o Options, ca *authority, host string, key crypto.Signer, keyFile, index, cgi string, notAfter time.Time) error {
	site := filepath.Join(SitesDir(o.Dir), host)
	for _, d := range []string{site, filepath.Join(site, "htdocs"), filepath.Join(site, "cgi-bin")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		if o.Owner >= 0 {
			if err := os.Lchown(d, o.Owner, o.Group); err != nil {
				return err
			}
		}
	}
	if err := linkOrCopy(index, filepath.Join(site, "htdocs", "index.html")); err != nil {
		return err
	}
	if err := linkOrCopy(cgi, filepath.Join(site, "cgi-bin", "hello.cgi")); err != nil {
		return err
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := key.(*rsa.PrivateKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     usage,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("tenants: sign %s: %w", host, err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.certPEM...)
	base := filepath.Join(CertsDir(o.Dir), host)
	if err := os.WriteFile(base+".crt", chain, 0o644); err != nil {
		return err
	}
	return linkOrCopy(keyFile, base+".key")
}

// linkOrCopy hard-links src to dst, or copies it (with its mode) once src
// has as many links as the filesystem allows (ext4: 65,000), which a
// 100,000-tenant data set reaches.
func linkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if !errors.Is(err, syscall.EMLINK) {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, fi.Mode().Perm())
}
