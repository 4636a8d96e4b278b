package redisbench

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"massvhost/certs"
	"massvhost/test/certtest"
	"massvhost/test/redistest"
)

// timedHandshake dials addr and completes a full TLS handshake with sni on a
// new connection (the client keeps no session cache, so nothing is resumed)
// and returns how long dial plus handshake took. The chain is not verified:
// that is client work, the same for both names, and only adds noise; the
// leaf's name is checked instead.
func timedHandshake(addr, sni string) (time.Duration, error) {
	begin := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(conn, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return 0, err
	}
	elapsed := time.Since(begin)
	if leaf := tc.ConnectionState().PeerCertificates[0]; leaf.VerifyHostname(sni) != nil {
		return 0, fmt.Errorf("%s: served a certificate for %v", sni, leaf.DNSNames)
	}
	return elapsed, nil
}

// percentile returns the p-th percentile (nearest rank) of sorted d.
func percentile(d []time.Duration, p float64) time.Duration {
	i := int(float64(len(d))*p+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d.Microseconds())/1000) }

// TestHandshakeLatency compares full handshakes for a cold name (stored in
// Redis, never looked up before: a Redis round trip and a parse inside the
// handshake) with a warm one (in the Manager's cache), interleaved so that
// both see the same machine noise.
func TestHandshakeLatency(t *testing.T) {
	skipUnlessEnabled(t)
	const runs, perRun = 5, 1000
	redisAddr := redistest.Start(t)
	rs, err := certs.NewRedisStore(certs.RedisOptions{Addrs: []string{redisAddr}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ca := certtest.NewCA(t)
	ctx := context.Background()
	names := make([]string, runs*perRun)
	var batch []certs.Pair
	for i := range names {
		names[i] = fmt.Sprintf("c%05d.cold.test", i)
		crt, key := ca.Leaf(t, names[i])
		batch = append(batch, certs.Pair{Name: names[i], CertPEM: crt, KeyPEM: key})
		if len(batch) == 500 || i == len(names)-1 {
			if err := rs.PutBatch(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	crt, key := ca.Leaf(t, "warm.test")
	if err := rs.Put(ctx, "warm.test", crt, key); err != nil {
		t.Fatal(err)
	}
	// new_name_rate 0: every cold name is looked up, none refused.
	srv := startServer(t, configFor(t, redisAddr, "  new_name_rate: 0\n  cache_size: 100000\n"))

	for range 200 { // warm-up, not measured
		if _, err := timedHandshake(srv.Addr, "warm.test"); err != nil {
			t.Fatal(err)
		}
	}
	var coldP50, coldP99, warmP50, warmP99, added []time.Duration
	var report strings.Builder
	fmt.Fprintf(&report, "| run | warm p50 ms | warm p99 ms | cold p50 ms | cold p99 ms | cold−warm p99 ms |\n|---|---|---|---|---|---|\n")
	for run := range runs {
		warm := make([]time.Duration, 0, perRun)
		cold := make([]time.Duration, 0, perRun)
		for i := range perRun {
			order := []string{"warm.test", names[run*perRun+i]}
			if i%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, sni := range order {
				d, err := timedHandshake(srv.Addr, sni)
				if err != nil {
					t.Fatalf("%s: %v", sni, err)
				}
				if sni == "warm.test" {
					warm = append(warm, d)
				} else {
					cold = append(cold, d)
				}
			}
		}
		slices.Sort(warm)
		slices.Sort(cold)
		warmP50, warmP99 = append(warmP50, percentile(warm, .5)), append(warmP99, percentile(warm, .99))
		coldP50, coldP99 = append(coldP50, percentile(cold, .5)), append(coldP99, percentile(cold, .99))
		added = append(added, coldP99[run]-warmP99[run])
		fmt.Fprintf(&report, "| %d | %s | %s | %s | %s | %s |\n", run+1, ms(warmP50[run]), ms(warmP99[run]),
			ms(coldP50[run]), ms(coldP99[run]), ms(added[run]))
	}
	mw50, mw99, mc50, mc99 := median(warmP50), median(warmP99), median(coldP50), median(coldP99)
	fmt.Fprintf(&report, "| **median of %d** | **%s** | **%s** | **%s** | **%s** | **%s** |\n", runs, ms(mw50), ms(mw99), ms(mc50), ms(mc99), ms(median(added)))
	fmt.Fprintf(&report, "\ncold/warm ratio: p50 %.2f, p99 %.2f; %d cold + %d warm handshakes per run\n",
		float64(mc50)/float64(mw50), float64(mc99)/float64(mw99), perRun, perRun)
	t.Logf("handshake latency, new TCP connection + full TLS handshake each:\n%s", report.String())
	if out := srv.output(); strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
		t.Logf("server log:\n%s", out)
	}
}
