package redisbench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"massvhost/certs"
	"massvhost/test/certtest"
	"massvhost/test/redistest"
)

// helloTemplate captures the first TLS record (the ClientHello) crypto/tls
// sends for sni, so that a flood can send it with other names of the same
// length substituted, at the cost of a write instead of a key generation.
func helloTemplate(t *testing.T, sni string) (hello []byte, at int) {
	t.Helper()
	client, server := net.Pipe()
	go func() {
		tls.Client(client, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake()
		client.Close()
	}()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(server, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(server, body); err != nil {
		t.Fatal(err)
	}
	server.Close()
	hello = append(hdr, body...)
	at = bytes.Index(hello, []byte(sni))
	if at < 0 || bytes.Count(hello, []byte(sni)) != 1 {
		t.Fatalf("SNI not found exactly once in the ClientHello")
	}
	return hello, at
}

// floodResult counts how the server answered.
type floodResult struct {
	alerts   map[byte]int // alert description → count
	other    int          // closed without an alert, or anything else
	errs     int          // dial or write failures
	firstErr error
}

// flood sends one ClientHello per name on a new connection from workers
// goroutines, spreading source addresses over 127.0.0.0/8 so that the
// client never runs out of ephemeral ports, and reads the answer.
func flood(addr string, hello []byte, at int, names []string, workers int) floodResult {
	var (
		mu  sync.Mutex
		res = floodResult{alerts: map[byte]int{}}
		wg  sync.WaitGroup
		idx atomic.Int64
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := bytes.Clone(hello)
			reply := make([]byte, 64)
			local := map[byte]int{}
			other, errs := 0, 0
			var firstErr error
			for n := 0; ; n++ {
				i := int(idx.Add(1)) - 1
				if i >= len(names) {
					break
				}
				copy(buf[at:], names[i])
				d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+w), byte(1+n%250))}}
				conn, err := d.Dial("tcp", addr)
				if err != nil {
					errs++
					firstErr = cmpErr(firstErr, err)
					continue
				}
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := conn.Write(buf); err != nil {
					errs++
					firstErr = cmpErr(firstErr, err)
					conn.Close()
					continue
				}
				k, _ := io.ReadAtLeast(conn, reply, 7)
				if k >= 7 && reply[0] == 0x15 {
					local[reply[6]]++
				} else {
					other++
				}
				conn.Close()
			}
			mu.Lock()
			for k, v := range local {
				res.alerts[k] += v
			}
			res.other += other
			res.errs += errs
			res.firstErr = cmpErr(res.firstErr, firstErr)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

var cmdstatRE = regexp.MustCompile(`(?m)^cmdstat_([a-z|]+):calls=(\d+),`)

// commandCalls returns the calls per command from INFO commandstats.
func commandCalls(t testing.TB, srv *redistest.Server) map[string]int {
	t.Helper()
	calls := map[string]int{}
	for _, m := range cmdstatRE.FindAllStringSubmatch(srv.Do(t, "INFO", "commandstats"), -1) {
		n, _ := strconv.Atoi(m[2])
		calls[m[1]] = n
	}
	return calls
}

// floodNames returns n never-seen names of one length, each under its own
// parent so that the wildcard lookup cannot be shared either.
func floodNames(prefix string, n int) []string {
	nonce := make([]byte, 4)
	rand.Read(nonce)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%06d.b%06d.%x.test", prefix, i, i, nonce)
	}
	return names
}

var floodTotal = flag.Int("flood.names", 100000, "TestNewNameFlood: never-seen names to send")

// TestNewNameFlood sends 100,000 never-seen SNI names as fast as the client
// can and reports the Redis commands the server issued and its RSS growth,
// against certs.new_name_rate × duration + new_name_burst.
func TestNewNameFlood(t *testing.T) {
	skipUnlessEnabled(t)
	total := *floodTotal
	const (
		rate    = 200
		burst   = 400
		workers = 16
	)
	redis := redistest.StartServer(t)
	rs, err := certs.NewRedisStore(certs.RedisOptions{Addrs: []string{redis.Addr}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	crt, key := certtest.NewCA(t).Leaf(t, "warm.test")
	if err := rs.Put(context.Background(), "warm.test", crt, key); err != nil {
		t.Fatal(err)
	}
	rs.Close()
	srv := startServer(t, configFor(t, redis.Addr, fmt.Sprintf("  new_name_rate: %d\n  new_name_burst: %d\n  new_name_rate_per_ip: 0\n", rate, burst)))

	hello, at := helloTemplate(t, floodNames("a", 1)[0])
	// Warm-up: successful handshakes and a few thousand refused names,
	// so that the baseline RSS includes the server's steady working set.
	for range 500 {
		if _, err := timedHandshake(srv.Addr, "warm.test"); err != nil {
			t.Fatal(err)
		}
	}
	if r := flood(srv.Addr, hello, at, floodNames("w", 5000), workers); r.errs > 0 {
		t.Fatalf("warm-up flood: %d errors: %v", r.errs, r.firstErr)
	}
	time.Sleep(time.Duration(burst/rate+1) * time.Second) // let the burst refill
	rssBefore := srv.memKB(t, "VmRSS")
	before := commandCalls(t, redis)

	names := floodNames("a", total)
	begin := time.Now()
	res := flood(srv.Addr, hello, at, names, workers)
	elapsed := time.Since(begin)
	after := commandCalls(t, redis)
	rssAfter, hwm := srv.memKB(t, "VmRSS"), srv.memKB(t, "VmHWM")
	time.Sleep(2 * time.Second)
	rssSettled := srv.memKB(t, "VmRSS")

	var diffs []string
	commands := 0
	for cmd, n := range after {
		if d := n - before[cmd]; d > 0 && cmd != "info" {
			commands += d
			diffs = append(diffs, fmt.Sprintf("%s=%d", cmd, d))
		}
	}
	sort.Strings(diffs)
	lookups := after["exec"] - before["exec"] // one MULTI/EXEC per store read
	budget := rate*elapsed.Seconds() + burst
	var alerts []string
	for desc, n := range res.alerts {
		alerts = append(alerts, fmt.Sprintf("%s=%d", alertName(desc), n))
	}
	sort.Strings(alerts)
	t.Logf(`new-name flood: %d names in %v (%.0f handshakes/s, %d workers)
  answers: %s, no alert %d, client errors %d (%v)
  redis: %d store reads (MULTI/EXEC), %d commands in all [%s]
  budget new_name_rate × duration + burst = %d × %.2fs + %d = %.0f lookups
  RSS: before %.1f MB, after %.1f MB (growth %+.1f MB), after 2s %.1f MB, peak VmHWM %.1f MB`,
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), workers,
		strings.Join(alerts, " "), res.other, res.errs, res.firstErr,
		lookups, commands, strings.Join(diffs, " "),
		rate, elapsed.Seconds(), burst, budget,
		float64(rssBefore)/1024, float64(rssAfter)/1024, float64(rssAfter-rssBefore)/1024, float64(rssSettled)/1024, float64(hwm)/1024)
	if res.errs > total/100 {
		t.Errorf("%d client errors: %v", res.errs, cmpErr(res.firstErr, errors.New("none")))
	}
}

func alertName(desc byte) string {
	switch desc {
	case 112:
		return "unrecognized_name"
	case 80:
		return "internal_error"
	case 40:
		return "handshake_failure"
	}
	return strconv.Itoa(int(desc))
}
