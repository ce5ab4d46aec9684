#!/usr/bin/env bash
# The test command: checks the backing stores, prepares the Python side of the cross-language JWT
# check, and runs every test of the workspace — the API suite once on the embedded store and, where
# Postgres and Redis answer, once on Postgres + Redis — then each SDK's own script (sdks/*/scripts/test.sh:
# React, Python, Go, Java, Ruby, PHP).
# Postgres and Redis answer, once on Postgres + Redis — then the browser SDK's (sdks/react/scripts/test.sh)
# and the Java SDK's (sdks/java/scripts/test.sh).
# Postgres and Redis answer, once on Postgres + Redis — then the browser SDK's (sdks/react/scripts/test.sh)
# and the Ruby and PHP SDKs' (sdks/ruby/scripts/test.sh, sdks/php/scripts/test.sh).
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

# python-jose + httpx, as the integration page uses them, in a virtualenv outside the clone.
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
  -E 'not test(/postgres_only/)' "$@" || status=1
if [ "$postgres" = yes ]; then
  echo "== Postgres + Redis: the API suite" >&2
  IDENTSPHERE_TEST_BACKEND=postgres cargo nextest run --workspace --no-fail-fast \
    -E 'binary(api) and not test(/^embedded::/)' "$@" || status=1
else
  echo "== Postgres + Redis suite NOT RUN ($postgres); CI requires it (IDENTSPHERE_TEST_REQUIRE_POSTGRES=1)" >&2
fi
# The browser SDK has its own toolchain (npm, Vitest, Chromium): its script runs every check of it.
if command -v node >/dev/null 2>&1; then
  echo "== sdks/react: ./sdks/react/scripts/test.sh" >&2
  ./sdks/react/scripts/test.sh || status=1
else
  echo "== sdks/react NOT RUN: node is not installed; the browser SDK's tests need Node.js 20 and npm" >&2
fi
# The Python SDK has its own toolchain (a virtualenv from PyPI, ruff, mypy, pytest): its script runs every check
# of it, against the server binary the workspace tests built. python3 is needed above already.
echo "== sdks/python: ./sdks/python/scripts/test.sh" >&2
./sdks/python/scripts/test.sh || status=1
# The Go SDK has its own toolchain too (Debian's golang-go, which its script installs as root when
# missing): its script runs gofmt, go vet and its suite with the race detector against real servers.
if command -v go >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }; then
  echo "== sdks/go: ./sdks/go/scripts/test.sh" >&2
  ./sdks/go/scripts/test.sh || status=1
else
  echo "== sdks/go NOT RUN: go is not installed and this is not root; apt-get install golang-go (Debian's Go 1.19)" >&2
# The Java SDK has its own toolchain (a JDK, Maven, Debian's Java packages): its script installs them from
# Debian when missing and root, and runs every check of it against the server binary built above.
if { command -v java && command -v mvn; } >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }; then
  echo "== sdks/java: ./sdks/java/scripts/test.sh" >&2
  ./sdks/java/scripts/test.sh || status=1
else
  echo "== sdks/java NOT RUN: no JDK and Maven, and not root to install them (apt-get install openjdk-17-jdk-headless maven)" >&2
# The Ruby and PHP SDKs run on Debian's toolchains, which their scripts install (apt-get, as root) when
# missing; each then runs its whole suite against real servers from the workspace's binary.
debian_installable() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
if command -v ruby >/dev/null 2>&1 || debian_installable; then
  echo "== sdks/ruby: ./sdks/ruby/scripts/test.sh" >&2
  ./sdks/ruby/scripts/test.sh || status=1
else
  echo "== sdks/ruby NOT RUN: no ruby, and not root to install Debian's (apt-get install ruby ruby-minitest ruby-rack ruby-webrick rake)" >&2
fi
if command -v php >/dev/null 2>&1 || debian_installable; then
  echo "== sdks/php: ./sdks/php/scripts/test.sh" >&2
  ./sdks/php/scripts/test.sh || status=1
else
  echo "== sdks/php NOT RUN: no php, and not root to install Debian's (apt-get install php-cli php-curl phpunit …, see sdks/php/README.md)" >&2
fi
# nextest does not run doctests.
cargo test --workspace --doc || status=1
exit $status
