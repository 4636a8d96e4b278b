package vhost

import "errors"

// Errors returned by Normalize and by resolution. Callers branch on them with
// errors.Is; the wrapping error names the offending host.
var (
	// ErrInvalidName reports a host name that is not a syntactically valid
	// DNS host name (bad characters, empty or over-long labels, IP literal…).
	ErrInvalidName = errors.New("vhost: invalid host name")
	// ErrNoSuchHost reports a valid name that no tenant serves.
	ErrNoSuchHost = errors.New("vhost: no such host")
)

// Site is one tenant as the request path sees it. Values are immutable once
// returned by a Resolver.
type Site struct {
	// Name is the canonical host name the site was resolved for
	// (the request's host after Normalize and alias resolution).
	Name string
	// Tenant is the canonical name of the tenant that owns the directory
	// (differs from Name for www. aliases and Redis site aliases).
	Tenant string
	// Root is the tenant's directory (the expansion of %0-style patterns up
	// to the tenant level); DocRoot and CGIBin are absolute, cleaned paths.
	Root    string
	DocRoot string
	CGIBin  string
	// Owner and Group are the uid and gid owning DocRoot, read when the site
	// was resolved; CGI scripts run as this identity when the server is root.
	Owner, Group uint32
}
