#!/usr/bin/env bash
# Every check of identsphere/identsphere: Debian's PHP 8.2 with ext-curl, PHPUnit and the PSR-7/16/17 and
# Nyholm packages the tests use (installed with apt-get when missing and running as root), the IdentSphere
# binary the tests start (the workspace's dev build, as sdks/react/scripts/test.sh builds it, unless
# $IDENTSPHERE_BIN names one), `php -l` and `declare(strict_types=1)` on every file, composer.json, then
# PHPUnit. Arguments go to phpunit (`./scripts/test.sh --filter Rotation`).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
. ../../scripts/sdk-common.sh
step() { echo "== sdks/php: $* ($(( $(date +%s) - started ))s)" >&2; }

step "Debian packages"
packages=(php-cli php-curl phpunit php-psr-http-message php-psr-http-factory php-psr-simple-cache php-nyholm-psr7)
debian_packages php "${packages[@]}"

identsphere_binary

step "php -l, strict types, composer.json"
while IFS= read -r -d '' file; do
  php -l "$file" >/dev/null
  grep -q '^declare(strict_types=1);$' "$file" || { echo "sdks/php: $file lacks declare(strict_types=1)" >&2; exit 1; }
done < <(find src tests bench -name '*.php' -print0)
php -r 'json_decode(file_get_contents("composer.json"), flags: JSON_THROW_ON_ERROR);'

step "phpunit"
phpunit "$@"

step "done"
