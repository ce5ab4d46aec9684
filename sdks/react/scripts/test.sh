#!/usr/bin/env bash
# Every check of @identsphere/react: install from the lockfile, typecheck, build (ESM + .d.ts), the unit and
# component tests (jsdom), the integration tests against a real IdentSphere, and the browser end-to-end
# test (Debian's Chromium driving the demo app). The tests start their own IdentSphere from $IDENTSPHERE_BIN,
# or else from the binary this script builds in the dev profile (CARGO_TARGET_DIR, default
# ~/.cache/identsphere/target as CI uses). `npm test` runs this script; arguments go to `vitest run`
# (`npm test -- --project unit`).
#
#   CHROMIUM_PATH  the browser (default /usr/bin/chromium; installed with apt-get when missing and root)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo "== sdks/react: $* ($(( $(date +%s) - started ))s)" >&2; }

step "npm ci"
npm ci --no-audit --no-fund --loglevel=error

step "typecheck"
npx tsc --noEmit

step "build"
npm run --silent build
for entry in dist/index.js dist/index.d.ts dist/client/index.js dist/client/index.d.ts; do
  [ -f "$entry" ] || { echo "sdks/react: the build did not produce $entry" >&2; exit 1; }
done

# The server: $IDENTSPHERE_BIN as it is, else the workspace's debug build (scripts/sdk-common.sh says why
# that one), built here.
. ../../scripts/sdk-common.sh
identsphere_binary

step "Chromium"
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM_PATH" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "sdks/react: no Chromium at $CHROMIUM_PATH: install Debian's (apt-get install chromium) or set CHROMIUM_PATH" >&2
    exit 1
  fi
fi

step "vitest: unit, integration, e2e"
npx vitest run "$@"

step "done"
