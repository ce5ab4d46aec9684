#!/usr/bin/env bash
# A short smoke of the load test's `mixed` scenario against a real server on Postgres + Redis: the load test
# builds, runs and sees no failed request. Seconds, no thresholds: the numbers come from the benchmark
# (loadtest/README.md, docs/performance.md), not from this check.
#
# The server is the debug build on a fresh database (dropped at the end, whatever happens) and a Redis key
# prefix of its own, on a free loopback port, with the abuse limits off (every virtual user is 127.0.0.1).
#
#   IDENTSPHERE_TEST_DATABASE_URL  maintenance database (default postgres://postgres@127.0.0.1:5432/postgres)
#   IDENTSPHERE_TEST_REDIS_URL     Redis (default redis://127.0.0.1:6379)
#   SMOKE_SECONDS                  how long goose runs (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url=${IDENTSPHERE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis_url=${IDENTSPHERE_TEST_REDIS_URL:-redis://127.0.0.1:6379}
seconds=${SMOKE_SECONDS:-10}

cargo build -q -p identsphere -p identsphere-loadtest
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug"

database="identsphere_smoke_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
work=$(mktemp -d "${TMPDIR:-/tmp}/identsphere-smoke.XXXXXX")
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$redis_url" --scan --pattern "$database:*" | xargs -r redis-cli -u "$redis_url" del >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -q "$admin_url" -c "CREATE DATABASE $database" >/dev/null
database_url="${admin_url%/*}/$database"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
env -i PATH="$PATH" HOME="$HOME" \
  IDENTSPHERE_BIND="127.0.0.1:$port" \
  IDENTSPHERE_PUBLIC_BASE_URL="$base" \
  IDENTSPHERE_DATABASE_URL="$database_url" \
  IDENTSPHERE_REDIS_URL="$redis_url" \
  IDENTSPHERE_REDIS_KEY_PREFIX="$database:" \
  IDENTSPHERE_KEY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)" \
  IDENTSPHERE_DATA_DIR="$work/data" \
  IDENTSPHERE_LOG=warn \
  IDENTSPHERE_RATE_LIMIT_SIGNIN_IP=off \
  IDENTSPHERE_RATE_LIMIT_SIGNIN_ACCOUNT_FAILURES=off \
  IDENTSPHERE_RATE_LIMIT_REGISTER_IP=off \
  IDENTSPHERE_RATE_LIMIT_REFRESH_IP=off \
  "$bin/identsphere" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 300); do
  curl -sf "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "loadtest-smoke.sh: the server exited; its log:" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done

status=0
LOADTEST_SCENARIO=mixed "$bin/loadtest" --host "$base" --users 8 --increase-rate 8 --run-time "${seconds}s" \
  --no-reset-metrics --quiet || status=$?
if [ "$status" -ne 0 ]; then
  echo "loadtest-smoke.sh: the mixed scenario failed (exit $status); the server's log:" >&2
  cat "$work/server.log" >&2
fi
exit "$status"
