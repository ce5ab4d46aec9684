#!/usr/bin/env bash
# Every check of the identsphere gem: Debian's Ruby 3.1 with minitest, rack, WEBrick and rake (installed
# with apt-get when missing and running as root), the IdentSphere binary the tests start (the workspace's
# dev build, as sdks/react/scripts/test.sh builds it, unless $IDENTSPHERE_BIN names one), the gemspec,
# then `rake test`: every test under `ruby -w`, failing on any warning of the SDK's own files. Arguments
# go to rake (`./scripts/test.sh TESTOPTS="--name=/rotation/"`).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo "== sdks/ruby: $* ($(( $(date +%s) - started ))s)" >&2; }

step "Debian packages"
packages=(ruby ruby-minitest ruby-rack ruby-webrick rake)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "sdks/ruby: missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if [ -z "${IDENTSPHERE_BIN:-}" ]; then
  step "IdentSphere binary (dev profile)"
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/identsphere/target}
  # Every workspace binary, with the features the workspace's tests unify, as the other SDKs build it:
  # building one package alone would rebuild every dependency.
  (cd ../.. && cargo build -q --locked --workspace --bins)
  export IDENTSPHERE_BIN=$CARGO_TARGET_DIR/debug/identsphere
fi

step "gemspec and syntax (ruby -wc)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
gem build -q identsphere.gemspec --output "$scratch/identsphere.gem" >/dev/null
for file in lib/identsphere.rb lib/identsphere/*.rb bench/*.rb; do
  warnings=$(ruby -wc "$file" 2>&1 >/dev/null)
  [ -z "$warnings" ] || { echo "sdks/ruby: $file is not warning-free under ruby -w:" >&2; echo "$warnings" >&2; exit 1; }
done

step "rake test"
rake test "$@"

step "done"
