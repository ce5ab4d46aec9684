# Sourced by the scripts that run a real server (loadtest-smoke.sh, schemathesis.sh, loadtest/memory.sh): starts
# one IdentSphere binary on a free loopback port with the abuse limits off (scripts/limits-off.env: every client
# is 127.0.0.1) and a clean environment (no IDENTSPHERE_* of the caller's), and removes everything it made on
# exit, whatever happens: the server, its work directory and, on Postgres, its database and Redis keys.
#
#   start_server <binary> <postgres|embedded> [NAME=value ...]   extra variables go to the server
#
# Sets `base` (the server's URL), `work` (a temporary directory; the log is $work/server.log), `server` (its
# pid) and, on Postgres, `database_url`.
#
#   IDENTSPHERE_TEST_DATABASE_URL  maintenance database (default postgres://postgres@127.0.0.1:5432/postgres)
#   IDENTSPHERE_TEST_REDIS_URL     Redis (default redis://127.0.0.1:6379)

admin_url=${IDENTSPHERE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
redis_url=${IDENTSPHERE_TEST_REDIS_URL:-redis://127.0.0.1:6379}
script_name=$(basename "$0" .sh | tr -c 'a-z0-9\n' '_')
work=$(mktemp -d "${TMPDIR:-/tmp}/identsphere-$script_name.XXXXXX")
server=""
database=""

stop_server() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if [ -n "$database" ]; then
    psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    redis-cli -u "$redis_url" --scan --pattern "$database:*" | xargs -r redis-cli -u "$redis_url" del >/dev/null || true
  fi
  rm -rf "$work"
}
trap stop_server EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() {
  local binary=$1 store=$2
  shift 2
  local port stores=() limits_off=()
  port=$(free_port)
  base="http://127.0.0.1:$port"
  if [ "$store" = postgres ]; then
    database="identsphere_${script_name}_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    psql -q "$admin_url" -c "CREATE DATABASE $database" >/dev/null
    database_url="${admin_url%/*}/$database"
    stores=(IDENTSPHERE_DATABASE_URL="$database_url" IDENTSPHERE_REDIS_URL="$redis_url"
      IDENTSPHERE_REDIS_KEY_PREFIX="$database:")
  fi
  mapfile -t limits_off < <(grep -v '^#' scripts/limits-off.env)
  env -i PATH="$PATH" HOME="$HOME" \
    IDENTSPHERE_BIND="127.0.0.1:$port" \
    IDENTSPHERE_PUBLIC_BASE_URL="$base" \
    IDENTSPHERE_KEY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)" \
    IDENTSPHERE_DATA_DIR="$work/data" \
    IDENTSPHERE_LOG=warn \
    "${stores[@]}" \
    "${limits_off[@]}" \
    "$@" \
    "$binary" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do
    curl -sf "$base/readyz" >/dev/null 2>&1 && return 0
    if ! kill -0 "$server" 2>/dev/null; then
      echo "$script_name: the server exited; its log:" >&2
      cat "$work/server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$script_name: the server was not ready within 30 s; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
}
