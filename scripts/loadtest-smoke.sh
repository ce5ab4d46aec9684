#!/usr/bin/env bash
# A short smoke of the load test's `mixed` scenario against a real server on Postgres + Redis: the load test
# builds, runs and sees no failed request. Seconds, no thresholds: the numbers come from the benchmark
# (loadtest/README.md, docs/performance.md), not from this check.
#
# The server is the debug build on a fresh database and Redis key prefix, both removed at the end
# (scripts/server.sh, which also names the variables that point at Postgres and Redis).
#
#   SMOKE_SECONDS                  how long goose runs (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/server.sh

seconds=${SMOKE_SECONDS:-10}
# The server as the workspace's tests built it: `--tests --bins` resolves features as the test build does,
# so after the tests nothing is rebuilt (`--bins` alone would rebuild ~35 crates: minutes of a cold CI run).
cargo build -q --locked --workspace --tests --bins
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug"
start_server "$bin/identsphere" postgres

status=0
LOADTEST_SCENARIO=mixed "$bin/loadtest" --host "$base" --users 8 --increase-rate 8 --run-time "${seconds}s" \
  --no-reset-metrics --quiet || status=$?
if [ "$status" -ne 0 ]; then
  echo "loadtest-smoke.sh: the mixed scenario failed (exit $status); the server's log:" >&2
  cat "$work/server.log" >&2
fi
exit "$status"
