#!/usr/bin/env bash
# test/govulncheck.sh — run govulncheck over the module against an offline
# copy of the Go vulnerability database.
#
# The database is not fetched from its web site (machines that only reach
# the Go module proxy cannot). Instead the golang.org/x/vulndb module, which
# carries every OSV entry under data/osv/, is downloaded from the proxy and
# indexed once with its own cmd/indexdb into a cache directory; govulncheck
# then reads it through a file:// URL. The result is cached per vulndb
# version, so later runs cost only the analysis.
#
# Environment:
#   VULNDB_VERSION      golang.org/x/vulndb pseudo-version to index
#   GOVULNCHECK_VERSION golang.org/x/vuln release to run
#   GOVULNCHECK_CACHE   where the indexed database lives
#                       (default ${XDG_CACHE_HOME:-~/.cache}/massvhost/vulndb)
#   GOVULNCHECK_DB      an existing database URL or directory; skips the build
# Extra arguments go to govulncheck (default ./...).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
# Scan with the toolchain go.mod asks for (its toolchain line), fetched from
# the module proxy when it is not the installed one: the standard library
# version is what most findings are about, and it must be the one the
# binary is built with.
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
cache=${GOVULNCHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/massvhost/vulndb}
db="$cache/$VULNDB_VERSION"

# Module queries below run outside this module so they never touch go.mod
# or go.sum, and without -mod or other project flags.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
outside() { (cd "$scratch" && env GOFLAGS= GOWORK=off "$@"); }

if [ -n "${GOVULNCHECK_DB:-}" ]; then
  dburl=$GOVULNCHECK_DB
  case $dburl in *://*) ;; *) dburl="file://$(cd "$dburl" && pwd)" ;; esac
else
  if [ ! -s "$db/index/db.json" ]; then
    echo "govulncheck: indexing golang.org/x/vulndb@$VULNDB_VERSION into $db"
    src=$(outside go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    if [ -z "$src" ] || [ ! -d "$src/data/osv" ]; then
      echo "govulncheck: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv" >&2
      exit 1
    fi
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.build.XXXXXX")
    if ! outside go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" \
      -vulns "$src/data/osv" -out "$tmp/db"; then
      rm -rf "$tmp"
      exit 1
    fi
    rm -rf "$db"
    mv "$tmp/db" "$db" # atomic: a half-built database is never used
    rm -rf "$tmp"
  fi
  dburl="file://$db"
fi

# The tool is installed into the cache too (outside the module, so the
# project's go.mod stays free of it), then run here with the project's own
# Go environment.
bin="$cache/bin-$GOVULNCHECK_VERSION"
if [ ! -x "$bin/govulncheck" ]; then
  mkdir -p "$bin"
  outside env GOBIN="$bin" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
fi

[ $# -gt 0 ] || set -- ./...
scanned=$(go env GOVERSION)
installed=$(GOTOOLCHAIN=local go env GOVERSION)
echo "govulncheck $GOVULNCHECK_VERSION ($scanned) -db $dburl $*"
if [ "$scanned" != "$installed" ]; then
  echo "govulncheck: note: the standard library scanned is $scanned (go.mod's toolchain line);" \
    "builds use it only when GOTOOLCHAIN allows switching (auto), not with the installed $installed" >&2
fi
"$bin/govulncheck" -db "$dburl" "$@"
