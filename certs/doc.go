// Package certs owns TLS certificates for the virtual hosts: where they are
// stored ([FileStore], the Redis store, [Tiered]), how a handshake finds one
// ([Manager]), and how missing ones are minted ([LocalCA], ACME). It knows
// host names only through package vhost's normalization; it never touches
// HTTP routing and does not decide which hosts exist (a [HostPolicy] does).
//
// # Why certificates load lazily
//
// A classic server parses one certificate per virtual host at start. At
// ~20k hosts that costs tens of seconds of start-up and gigabytes of
// resident memory, and because CGI children are forked from the server,
// every fork copies page tables in proportion to that resident set (the
// kernel profile is dominated by copy_pte_range and zap_pte_range). The
// [Manager] instead loads a certificate when a ClientHello first names it
// and keeps the hot ones in a bounded LRU: start-up time and memory stay
// flat as the tenant count grows, and the handshake cost of a load is under
// 1% of throughput. [Options].Preload keeps the classic behaviour as a
// baseline for comparison.
//
// # Lookup order
//
// [Manager.Lookup] (and [Manager.GetCertificate]) first normalizes the SNI
// with vhost.Normalize, so a name such as "../../etc/passwd" is refused
// before any file or key is built from it. Then:
//
//  1. the positive LRU: a fresh entry is returned with no I/O;
//  2. the negative cache: a recent "not found" or "invalid" is repeated;
//  3. the new-name rate limits, which bound store traffic from floods of
//     random names: first the client's share (per IP, IPv6 per /64, from
//     the address [WithClient] put in ctx), so one client cannot spend the
//     budget of all, then the global budget;
//  4. one shared load per name (singleflight): the store under the exact
//     name, then under the wildcard parent ("*.b.c" for "a.b.c"), then the
//     [Issuer] if the [HostPolicy] allows the name, writing the new pair
//     back to the store.
//
// Every loaded pair is validated: size, key match, a leaf that covers the
// name (a store mix-up never serves b's certificate for a), key strength.
//
// # Why the shared load is detached from the caller
//
// Concurrent handshakes for one uncached name wait for one load. That load
// runs on context.WithoutCancel of the first caller's context, bounded by
// its own timeouts, and each waiter selects on its own context. Were it run
// on the first caller's context, one client hanging up mid-handshake would
// fail every other client waiting for the same name.
//
// # Not found versus unavailable
//
// Stores report [ErrNotFound] when they answered "no such pair" and
// [ErrUnavailable] when they could not answer (timeout, I/O error, Redis
// down). The Manager treats them oppositely. Not found is remembered in the
// negative cache for NegativeTTL, so that unknown names cost a store lookup
// at most once per interval. Unavailable is never remembered: a certificate
// already cached keeps being served past its TTL (stale-if-error) and the
// store is asked again later, so that a Redis outage does not take down the
// hosts whose certificates are in memory, nor get misses cached that are
// not real. [ErrInvalidCert] (the store has an unusable pair) is remembered
// like not found, briefly.
package certs
