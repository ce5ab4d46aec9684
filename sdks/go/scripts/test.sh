#!/usr/bin/env bash
# Every check of the Go SDK: gofmt, go vet, and the whole suite with the race detector (tests and runnable
# examples against real IdentSphere servers the tests start), then one pass of each benchmark so they keep
# working. Go is Debian's golang-go (1.19), installed with apt-get when missing and running as root; the
# module has no requirements and nothing is fetched from a module proxy.
#
# The tests start IdentSphere from $IDENTSPHERE_BIN or, when it is unset, from the workspace's debug build
# (CARGO_TARGET_DIR, default ~/.cache/identsphere/target), which this script builds first. The key-rotation
# test uses Postgres and Redis (IDENTSPHERE_TEST_DATABASE_URL, IDENTSPHERE_TEST_REDIS_URL) with psql and
# redis-cli; without them it is skipped, unless IDENTSPHERE_TEST_REQUIRE_POSTGRES is set (CI), which makes
# that a failure. Arguments go to `go test` (./scripts/test.sh -run Revocation -v).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo "== sdks/go: $* ($(( $(date +%s) - started ))s)" >&2; }

step "Go"
if ! command -v go >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
  else
    echo "sdks/go: go is not installed: apt-get install golang-go (Debian's Go 1.19), as root" >&2
    exit 1
  fi
fi
go version >&2
# The standard library is all the module needs: never reach for a module proxy.
export GOPROXY=off GOFLAGS=-mod=mod

. ../../scripts/sdk-common.sh
identsphere_binary

step "gofmt -l"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "sdks/go: not gofmt-formatted (run gofmt -w .):" >&2
  echo "$unformatted" >&2
  exit 1
fi

step "go vet"
go vet ./...

step "go test -race"
go test -race -count=1 "$@" ./...

step "benchmarks, one short pass"
go test -run '^$' -bench . -benchtime 200x ./...

step "done"
