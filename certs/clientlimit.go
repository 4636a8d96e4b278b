package certs

import (
	"context"
	"net"
	"net/netip"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// clientTableSize bounds the clients whose new-name budget is remembered.
// An entry is a token bucket plus LRU bookkeeping, about 200 bytes, so the
// table stays under 4 MiB. A client pushed out by more recent ones starts
// again with a full burst; an attacker who controls more addresses (or
// IPv6 /64s) than this can therefore spend more than one client's share,
// and the global NewNameRate is what still bounds the store then.
const clientTableSize = 16384

// clientKey is the context key of the client address (see WithClient).
type clientKey struct{}

// WithClient returns a copy of ctx that carries the address of the client
// a lookup is made for, typically tls.ClientHelloInfo.Conn.RemoteAddr(). A
// [Manager] charges the lookups of names it has never seen to that
// client's budget (Options.NewNameRatePerIP); lookups whose ctx carries no
// address are charged to the global budget only. GetCertificate does this
// itself.
func WithClient(ctx context.Context, remote net.Addr) context.Context {
	if remote == nil {
		return ctx
	}
	return context.WithValue(ctx, clientKey{}, remote)
}

// clientOf returns the budget key of the client ctx carries: its IPv4
// address, or the /64 of its IPv6 address (one subscriber line, one host
// with privacy addresses, or one cloud instance usually holds a whole
// /64). It reports false when ctx carries no IP address.
func clientOf(ctx context.Context) (netip.Addr, bool) {
	remote, _ := ctx.Value(clientKey{}).(net.Addr)
	var ip netip.Addr
	switch a := remote.(type) {
	case nil:
		return netip.Addr{}, false
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	switch {
	case !ip.IsValid():
		return netip.Addr{}, false
	case ip.Is6():
		return netip.PrefixFrom(ip, 64).Masked().Addr(), true
	}
	return ip, true
}

// clientLimiter gives each client IP its own token bucket for new-name
// lookups, kept in a bounded LRU. The nil *clientLimiter allows everything.
type clientLimiter struct {
	limit   rate.Limit
	burst   int
	buckets *lru.Cache[netip.Addr, *rate.Limiter] // safe for concurrent use
}

// newClientLimiter returns a limiter of perSecond with burst per client, or
// nil (no limit) when perSecond is 0.
func newClientLimiter(perSecond float64, burst int) *clientLimiter {
	if perSecond <= 0 {
		return nil
	}
	buckets, _ := lru.New[netip.Addr, *rate.Limiter](clientTableSize) // size is a positive constant
	return &clientLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: buckets}
}

// allow reports whether the client ctx carries may make one more new-name
// lookup at now, and takes the token if so. Lookups without a client are
// allowed.
func (l *clientLimiter) allow(ctx context.Context, now time.Time) bool {
	if l == nil {
		return true
	}
	ip, ok := clientOf(ctx)
	if !ok {
		return true
	}
	b, ok := l.buckets.Get(ip)
	if !ok {
		// Two first lookups racing: PeekOrAdd keeps one bucket.
		b = rate.NewLimiter(l.limit, l.burst)
		if prev, found, _ := l.buckets.PeekOrAdd(ip, b); found {
			b = prev
		}
	}
	return b.AllowN(now, 1)
}
