package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
)

// handshakeFrom is handshake with the client bound to the local address
// from (127.0.0.2 and 127.0.0.3 are distinct loopback addresses on Linux).
func handshakeFrom(from, addr, sni string, f *fixture) error {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}},
		Config:    &tls.Config{ServerName: sni, RootCAs: f.ca.Pool},
	}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// TestNewNameBudgetPerClient floods new names from one loopback address
// through real handshakes: it is cut at its own burst, while another
// address still gets new names loaded, and the flood spent no global
// token beyond its share.
func TestNewNameBudgetPerClient(t *testing.T) {
	f := newFixture(t)
	for i := range 12 {
		name := fmt.Sprintf("n%d.test", i)
		f.write(t, name, name)
	}
	// The clock does not move: no bucket refills during the test.
	m := f.manager(t, func(o *Options) {
		o.NewNameRate, o.NewNameBurst = 1, 8
		o.NewNameRatePerIP, o.NewNameBurstPerIP = 1, 3
	})
	addr := serveTLS(t, m.GetCertificate)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from 127.0.0.2 (loopback is 127.0.0.0/8 on Linux only): %v", err)
	}
	c.Close()
	if err := handshakeFrom("127.0.0.2", addr, "n0.test", f); err != nil {
		t.Fatalf("127.0.0.2, first new name: %v", err)
	}

	// 127.0.0.2 has spent one token on n0; n1 and n2 take the rest of its
	// burst; every further new name is refused without a store read.
	for i := 1; i < 10; i++ {
		name := fmt.Sprintf("n%d.test", i)
		err := handshakeFrom("127.0.0.2", addr, name, f)
		if i < 3 && err != nil {
			t.Errorf("127.0.0.2, new name %s within its burst: %v", name, err)
		}
		if i >= 3 && err == nil {
			t.Errorf("127.0.0.2, new name %s beyond its burst of 3: handshake succeeded", name)
		}
	}
	if got := f.store.gets("n9.test"); got != 0 {
		t.Errorf("a refused new name reached the store %d times", got)
	}
	// Cached names cost no token: the flooding client still gets them.
	if err := handshakeFrom("127.0.0.2", addr, "n1.test", f); err != nil {
		t.Errorf("127.0.0.2, cached name: %v", err)
	}
	// Another client still has its share, and the global budget (8) has
	// tokens left because the flood beyond 3 never reached it.
	for _, name := range []string{"n10.test", "n11.test", "n9.test"} {
		if err := handshakeFrom("127.0.0.3", addr, name, f); err != nil {
			t.Errorf("127.0.0.3, new name %s while 127.0.0.2 is over its budget: %v", name, err)
		}
	}
	st := m.Stats()
	if st.ClientRateLimited != 7 || st.RateLimited != 7 {
		t.Errorf("Stats: ClientRateLimited %d, RateLimited %d, want 7 and 7", st.ClientRateLimited, st.RateLimited)
	}
	_, err = m.Lookup(WithClient(context.Background(), &net.TCPAddr{IP: net.ParseIP("127.0.0.2"), Port: 1}), "n8.test")
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Lookup over the client's budget: %v, want ErrUnavailable like the global limit", err)
	}
}

// TestNewNameBudgetPerClientNeedsGlobal checks that the per-client share
// applies only with a global budget: NewNameRate 0 limits nothing.
func TestNewNameBudgetPerClientNeedsGlobal(t *testing.T) {
	f := newFixture(t)
	m := f.manager(t, func(o *Options) { o.NewNameRatePerIP, o.NewNameBurstPerIP = 1, 1 })
	ctx := WithClient(context.Background(), &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 443})
	for i := range 5 {
		if _, err := m.Lookup(ctx, fmt.Sprintf("x%d.test", i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("lookup %d: %v, want ErrNotFound (no limit)", i, err)
		}
	}
}

func TestClientOf(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	for _, tc := range []struct {
		name   string
		remote net.Addr
		want   string // "" for no client
	}{
		{"IPv4", tcp("192.0.2.7:5000"), "192.0.2.7"},
		{"IPv4-mapped IPv6 is the IPv4 client", tcp("[::ffff:192.0.2.7]:5000"), "192.0.2.7"},
		{"IPv6 keyed by /64", tcp("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443"), "2001:db8:1:2::"},
		{"IPv6 zone dropped", tcp("[fe80::1%eth0]:443"), "fe80::"},
		{"other net.Addr by its string", &net.UDPAddr{IP: net.ParseIP("198.51.100.1"), Port: 9}, "198.51.100.1"},
		{"not an IP", &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, ""},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, ok := clientOf(WithClient(context.Background(), tc.remote))
			if got := ""; ok {
				got = ip.String()
				if got != tc.want {
					t.Errorf("clientOf = %s, want %s", got, tc.want)
				}
			} else if tc.want != "" {
				t.Errorf("clientOf: no client, want %s", tc.want)
			}
		})
	}
	a, _ := clientOf(WithClient(context.Background(), tcp("[2001:db8:1:2::1]:1")))
	b, _ := clientOf(WithClient(context.Background(), tcp("[2001:db8:1:2:ffff::9]:2")))
	c, _ := clientOf(WithClient(context.Background(), tcp("[2001:db8:1:3::1]:1")))
	if a != b || a == c {
		t.Errorf("one /64 must share a budget and the next /64 not: %v %v %v", a, b, c)
	}
}
