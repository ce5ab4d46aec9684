#!/usr/bin/env bash
# Re-vendors Swagger UI (the page `GET /docs` serves, built into the binary: no network at run time) from the npm
# registry: ./scripts/update-swagger-ui.sh [VERSION] (default: the latest).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-$(npm view swagger-ui-dist version)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$version" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
for file in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE; do
  cp "$work/package/$file" assets/swagger-ui/
done
echo "$version" >assets/swagger-ui/VERSION
echo "Swagger UI $version vendored into assets/swagger-ui/"
