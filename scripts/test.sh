#!/usr/bin/env bash
# The test command: checks the backing stores, prepares the Python side of the cross-language JWT
# check, and runs every test of the workspace — the API suite once on the embedded store and, where
# Postgres and Redis answer, once on Postgres + Redis — then the short run of the fault harness
# (scripts/faults.sh), each SDK's own script (sdks/*/scripts/test.sh: React, Python, Go, Java, Ruby, PHP), the
# snippets of docs/integration.md (scripts/integration-snippets.sh) and the doctests.
#
#   IDENTSPHERE_TEST_DATABASE_URL  maintenance database used to create one database per test
#                                  (default postgres://postgres@127.0.0.1:5432/postgres)
#   IDENTSPHERE_TEST_REDIS_URL     Redis for the denylist (default redis://127.0.0.1:6379)
#   IDENTSPHERE_CACHE_DIR          where the Python virtualenv is kept (default ~/.cache/identsphere)
#   IDENTSPHERE_TEST_REQUIRE_POSTGRES  when set (CI sets it), fail instead of running only the embedded suite
#                                  if Postgres or Redis cannot be reached
set -euo pipefail
cd "$(dirname "$0")/.."

db_url=${IDENTSPHERE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis_url=${IDENTSPHERE_TEST_REDIS_URL:-redis://127.0.0.1:6379}

# Reachability only (bash's /dev/tcp): the tests say more if a store misbehaves.
reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
hostport() { local rest=${1#*://}; rest=${rest#*@}; rest=${rest%%/*}; echo "${rest%%:*} ${rest##*:}"; }
read -r db_host db_port <<<"$(hostport "$db_url")"
read -r redis_host redis_port <<<"$(hostport "$redis_url")"
postgres=yes
reachable "$db_host" "$db_port" || postgres="no: Postgres is not reachable at $db_host:$db_port ($db_url)"
[ "$postgres" != yes ] || reachable "$redis_host" "$redis_port" \
  || postgres="no: Redis is not reachable at $redis_host:$redis_port ($redis_url)"
if [ "$postgres" != yes ] && [ -n "${IDENTSPHERE_TEST_REQUIRE_POSTGRES:-}" ]; then
  echo "test.sh: the Postgres + Redis suite is required here, but $postgres" >&2
  exit 1
fi

# python-jose + httpx, as a resource server in Python would, in a virtualenv outside the clone.
cache=${IDENTSPHERE_CACHE_DIR:-$HOME/.cache/identsphere}
venv="$cache/venv"
if ! "$venv/bin/python" -c 'import jose, httpx' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
export IDENTSPHERE_TEST_PYTHON="$venv/bin/python"

# nextest runs each test in its own process: process-wide state (the metrics registry) stays per test.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test.sh: installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi
# The contract suite runs on both backends; what belongs to one backend only runs once.
status=0
echo "== embedded store: the whole workspace" >&2
IDENTSPHERE_TEST_BACKEND=embedded cargo nextest run --workspace --no-fail-fast \
  -E 'not (binary(api) and test(/postgres_only/))' "$@" || status=1
if [ "$postgres" = yes ]; then
  echo "== Postgres + Redis: the API suite" >&2
  IDENTSPHERE_TEST_BACKEND=postgres cargo nextest run --workspace --no-fail-fast \
    -E 'binary(api) and not test(/^embedded::/)' "$@" || status=1
else
  echo "== Postgres + Redis suite NOT RUN ($postgres); CI requires it (IDENTSPHERE_TEST_REQUIRE_POSTGRES=1)" >&2
fi
# The fault harness (tests/faults): replicas on a private Postgres cluster and a private Redis it starts and
# removes itself (never the ones above), faults under a recorded workload, the checker; about 2.5 minutes.
if [ -x /usr/lib/postgresql/15/bin/initdb ] && command -v redis-server >/dev/null 2>&1; then
  echo "== fault harness: ./scripts/faults.sh" >&2
  ./scripts/faults.sh || status=1
elif [ -n "${IDENTSPHERE_TEST_REQUIRE_POSTGRES:-}" ]; then
  echo "== fault harness NOT RUN: it needs postgresql-15 (initdb, pg_ctl) and redis-server" >&2
  status=1
else
  echo "== fault harness NOT RUN: it needs postgresql-15 (initdb, pg_ctl) and redis-server; CI requires it" >&2
fi
# The browser SDK has its own toolchain (npm, Vitest, Chromium): its script runs every check of it.
if command -v node >/dev/null 2>&1; then
  echo "== sdks/react: ./sdks/react/scripts/test.sh" >&2
  ./sdks/react/scripts/test.sh || status=1
else
  echo "== sdks/react NOT RUN: node is not installed; the browser SDK's tests need Node.js 20 and npm" >&2
fi
# The Python SDK's virtualenv comes from PyPI (python3 is needed above already). The Go, Java, Ruby and PHP
# SDKs run on Debian's toolchains, which their scripts install (apt-get, as root) when missing. Each script runs
# every check of its SDK against real servers from the binary the workspace tests built.
echo "== sdks/python: ./sdks/python/scripts/test.sh" >&2
./sdks/python/scripts/test.sh || status=1
debian_installable() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
# sdk NAME COMMAND INSTALL: runs sdks/NAME's script where COMMAND is, or can be installed; else says so loudly.
sdk() {
  if command -v "$2" >/dev/null 2>&1 || debian_installable; then
    echo "== sdks/$1: ./sdks/$1/scripts/test.sh" >&2
    "./sdks/$1/scripts/test.sh" || status=1
  else
    echo "== sdks/$1 NOT RUN: no $2, and not root to install it (apt-get install $3)" >&2
  fi
}
sdk go go golang-go
sdk java mvn "openjdk-17-jdk-headless maven"
sdk ruby ruby "ruby ruby-minitest ruby-rack ruby-webrick rake"
sdk php php "php-cli php-curl phpunit (see sdks/php/README.md)"
# docs/integration.md: every validation snippet, extracted from the page and run in its toolchain against a live
# server (a fresh token accepted, a changed one refused).
echo "== docs/integration.md snippets: ./scripts/integration-snippets.sh" >&2
./scripts/integration-snippets.sh || status=1
# nextest does not run doctests.
cargo test --workspace --doc || status=1
exit $status
