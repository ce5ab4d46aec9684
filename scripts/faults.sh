#!/usr/bin/env bash
# The fault harness (tests/faults/): three replicas of the server on a private Postgres cluster and a private
# Redis (free ports, a temporary directory; the machine's own Postgres and Redis are never touched), a recorded
# client workload, faults injected while it runs (kill -9 mid-rotation, graceful restart, Postgres restarted
# and stopped 10 s, Redis restarted without persistence, latency and packet loss between a replica and its
# stores, clock skew), then the checker over the history. Exits non-zero on any violation.
#
#   ./scripts/faults.sh            the short run (150 s, each kind of fault at least once; scripts/test.sh runs it)
#   ./scripts/faults.sh --long     30 minutes, hundreds of faults, resident memory sampled
#   ./scripts/faults.sh --seconds N [--seed S] [--release|--dev]   any length; a seed replays a schedule
#
# The short run uses the dev-profile binary scripts/test.sh has just built (dependencies at opt-level 3), so CI
# builds nothing more; --long builds and runs the release binary. IDENTSPHERE_FAULTS_BIN overrides both.
# Results (summary.json, run.json: the whole history) go to $IDENTSPHERE_FAULTS_OUT (default
# ${TMPDIR:-/tmp}/identsphere-faults/<time>). Needs postgresql-15 (initdb, pg_ctl), redis-server and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=150
profile=dev
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --long) seconds=1800; profile=release; args+=(--quiet 2) ;;
    --seconds) seconds=$2; shift ;;
    --seed) args+=(--seed "$2"); shift ;;
    --release) profile=release ;;
    --dev) profile=dev ;;
    *) echo "faults.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

pg_bin=/usr/lib/postgresql/15/bin
for need in "$pg_bin/initdb" "$(command -v redis-server || true)" "$(command -v python3 || true)"; do
  if [ -z "$need" ] || [ ! -x "$need" ]; then
    echo "faults.sh: needs postgresql-15 ($pg_bin), redis-server and python3" >&2
    exit 1
  fi
done

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/identsphere/target}
if [ -n "${IDENTSPHERE_FAULTS_BIN:-}" ]; then
  binary=$IDENTSPHERE_FAULTS_BIN
elif [ "$profile" = release ]; then
  cargo build --quiet --release --bin identsphere
  binary=$CARGO_TARGET_DIR/release/identsphere
else
  # The binary the workspace's tests built: `--tests --bins` resolves features as the test build does, so after
  # the tests nothing is rebuilt (`--bin identsphere` alone rebuilt ~35 crates: 6 minutes of a cold CI run).
  cargo build --quiet --locked --workspace --tests --bins
  binary=$CARGO_TARGET_DIR/debug/identsphere
fi

# httpx, in the virtualenv scripts/test.sh prepares (the same requirements file).
cache=${IDENTSPHERE_CACHE_DIR:-$HOME/.cache/identsphere}
venv="$cache/venv"
if ! "$venv/bin/python" -c 'import httpx' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi

# The checker must be able to fail: its own tests feed it broken histories first.
"$venv/bin/python" -m unittest -q tests/faults/test_checker.py

work=$(mktemp -d "${TMPDIR:-/tmp}/identsphere-faults.XXXXXX")
out=${IDENTSPHERE_FAULTS_OUT:-${TMPDIR:-/tmp}/identsphere-faults/$(date +%Y%m%d-%H%M%S)}
# Whatever happens, stop every process the harness started and remove its stores.
cleanup() {
  if [ -f "$work/pids" ]; then
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$work/pids"
  fi
  if [ -f "$work/pg/postmaster.pid" ]; then
    if [ "$(id -u)" = 0 ]; then
      runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    else
      "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
  fi
  # The replicas' logs are worth keeping next to the results.
  mkdir -p "$out" && cp "$work"/*.log "$out"/ 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "faults.sh: $seconds s against $binary; results in $out" >&2
"$venv/bin/python" tests/faults/faults.py --binary "$binary" --work "$work" --out "$out" --seconds "$seconds" \
  ${args[@]+"${args[@]}"}
