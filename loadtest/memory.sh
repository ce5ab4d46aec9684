#!/usr/bin/env bash
# Memory per live session family, and whether idle organization actors are reclaimed.
#
# Starts the release server on a fresh Postgres database and Redis prefix (scripts/server.sh: both removed at the
# end), populates it, warms it up (so one-off growth — the hashing threads' Argon2 memory, connection pools — is
# in the baseline), waits for every actor to stop, then runs a login storm over the populated organizations: every login starts a
# session family through its organization's actor. It prints the server's resident size (VmRSS) and the live
# actors (`identsphere_actors_live`) at the baseline, right after the storm, and once the actors have gone idle,
# and the growth per live family.
#
#   cargo build --release -p identsphere -p identsphere-loadtest && ./loadtest/memory.sh
#
#   MEMORY_SECONDS   length of the login storm (default 60)
#   MEMORY_IDLE      the actors' idle timeout in seconds (default 10)
#   IDENTSPHERE_TEST_DATABASE_URL / IDENTSPHERE_TEST_REDIS_URL as for the tests (scripts/server.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/server.sh

seconds=${MEMORY_SECONDS:-60}
idle=${MEMORY_IDLE:-10}
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release"
metrics_port=$(free_port)
start_server "$bin/identsphere" postgres IDENTSPHERE_METRICS_BIND="127.0.0.1:$metrics_port" \
  IDENTSPHERE_ACTOR_IDLE_TIMEOUT="$idle"
LOADTEST_DATABASE_URL="$database_url" "$bin/populate" >/dev/null

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$server/status"; }
actors() { curl -sf "http://127.0.0.1:$metrics_port/metrics" | awk '/^identsphere_actors_live / { print $2 }'; }
families() {
  psql -qtA "$database_url" -c "SELECT count(*) FROM session_families WHERE revoked_at IS NULL AND expires_at > now()"
}
storm() {
  LOADTEST_SCENARIO=signin "$bin/loadtest" --host "$base" --users 8 --increase-rate 8 --run-time "${1}s" --quiet \
    >"$work/loadtest.log" 2>&1 || { echo "memory.sh: the login storm failed:" >&2; cat "$work/loadtest.log" >&2; exit 1; }
}
wait_idle() {
  for _ in $(seq $((idle * 10))); do
    [ "$(actors)" = "0" ] && return
    sleep 1
  done
  echo "memory.sh: actors still live $((idle * 10)) s after the load: $(actors)" >&2
  exit 1
}
report() { printf '%-26s VmRSS %7s KiB  actors live %6s  live families %6s\n' "$1" "$(rss_kib)" "$(actors)" "$(families)"; }

storm 10
wait_idle
report "baseline (after warm-up)"
base_rss=$(rss_kib) base_families=$(families)
storm "$seconds"
report "after the login storm"
peak_rss=$(rss_kib) peak_families=$(families) peak_actors=$(actors)
wait_idle
report "actors idle"
python3 - "$base_rss" "$peak_rss" "$(rss_kib)" "$base_families" "$peak_families" "$peak_actors" <<'EOF'
import sys
base, peak, idle, f0, f1, actors = map(int, sys.argv[1:])
new = f1 - f0
print(f"{new} new families over {actors} actors: +{(peak - base) * 1024 / new:.0f} bytes of resident size per family "
      f"with the actors live, +{(idle - base) * 1024 / new:.0f} once they have stopped")
EOF
