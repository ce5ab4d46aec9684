#!/usr/bin/env bash
# Every check of the identsphere gem: Debian's Ruby 3.1 with minitest, rack, WEBrick and rake (installed
# with apt-get when missing and running as root), the IdentSphere binary the tests start (the workspace's
# dev build, as sdks/react/scripts/test.sh builds it, unless $IDENTSPHERE_BIN names one), the gemspec,
# then `rake test`: every test under `ruby -w`, failing on any warning of the SDK's own files. Arguments
# go to rake (`./scripts/test.sh TESTOPTS="--name=/rotation/"`).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
. ../../scripts/sdk-common.sh
step() { echo "== sdks/ruby: $* ($(( $(date +%s) - started ))s)" >&2; }

step "Debian packages"
packages=(ruby ruby-minitest ruby-rack ruby-webrick rake)
debian_packages ruby "${packages[@]}"

identsphere_binary

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
