// Package conf loads the massvhost configuration into one typed, validated
// [Config]. It owns the configuration keys, their defaults (the embedded
// default.yaml, which is also the example config), the MASSVHOST_* environment
// and command-line flag mappings, and validation. It is the only package
// that imports viper.
//
// It does not hold configuration for others to read: no package globals, and
// product packages never import conf. The command turns a Config into each
// package's own Options (certs.Options, vhost.Options, …) and passes those
// down, so a package is configured the same way in tests and in production.
//
// Data flow of [Load]:
//
//	default.yaml ─► viper defaults           every key has one
//	--config FILE ─► YAML node walk ─► viper  unknown/duplicate/null keys,
//	                                          empty file: errors with file:line
//	MASSVHOST_* ───► key table ───► viper     unknown variables are errors
//	changed flags ─► viper                    only flags the user set
//	viper ─► UnmarshalExact ─► Config         durations, comma lists decoded
//	      ─► paths made absolute ─► Validate  every problem, errors.Join
//
// Strictness is the point: an unknown key is almost always a typo, and a
// typo that silently leaves a default in place (say cgi.min_uid) is worse
// than a server that refuses to start. An empty config file is rejected for
// the same reason: editors that truncate before writing produce one, and a
// reload must not turn it into "all defaults".
package conf
