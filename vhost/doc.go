// Package vhost maps a request's host name to a tenant [Site]. It knows
// nothing about TLS or HTTP handlers: the certs package asks it whether a
// name may get a certificate ([Resolver.Exists]), and the server asks it
// which directories serve a request ([Resolver.Resolve]).
//
// It owns three things:
//
//   - [Normalize], the one canonical spelling of a host name. SNI, the Host
//     header, the HTTP/2 :authority, certificate cache keys, file names and
//     Redis keys are all built from its result.
//   - [Pattern], the Apache VirtualDocumentRoot-style mapping from a
//     canonical name to directories below the sites root ("%0/htdocs").
//   - [Resolver], which turns a name into a Site by looking for the tenant's
//     directory (then a www alias, an [AliasSource], a default site), and
//     caches the answer for a few seconds in a bounded LRU.
//
// # Why Normalize runs before any I/O
//
// Host names arrive from the network unvalidated: crypto/tls hands
// GetCertificate whatever the client put in SNI ("../../etc/passwd", "a/b",
// "Example.COM"), and net/http accepts a Host of "..". Each of those, used
// as a path or key, is a traversal or a cache-poisoning bug, and two
// spellings of one tenant ("A.test", "a.test.", "a.test:443") are two cache
// entries and a routing mismatch waiting to happen. So every entry point
// here normalizes first, rejects what is not a plain LDH host name, and only
// then touches the filesystem, the caches or an AliasSource. Patterns add a
// second line of defence: [Pattern.Expand] refuses to produce an absolute
// path or a ".." component whatever the pattern and name, and the Resolver
// asserts that every path it returns lies below the sites root.
//
// # Limits
//
// A tenant directory is not a sandbox. The Resolver follows a symbolic link
// at a tenant's document root (tenants may link their own directories) and
// reports the owner of the link's target, so a tenant that links to another
// tenant's tree is given that tenant's Owner. Code that runs programs as
// [Site].Owner must check the ownership of what it runs, as suEXEC does, and
// file serving must confine each request below DocRoot (os.Root).
// Resolutions are cached for [Options].CacheTTL, so a directory created or
// removed is noticed within that time, or at once after [Resolver.Forget].
package vhost
