#!/usr/bin/env bash
# Every check of the Python SDK: a virtualenv with the pinned dev requirements, ruff (lints and format),
# mypy --strict, then pytest against real IdentSpheres started from the workspace's binary (built here in the
# dev profile unless IDENTSPHERE_BIN names one, as sdks/react/scripts/test.sh does). Arguments go to pytest.
#
#   IDENTSPHERE_CACHE_DIR  where the virtualenv is kept (default ~/.cache/identsphere)
#   IDENTSPHERE_BIN        the server binary to test against (default: build it, see below)
#   PYTHON                 the interpreter the virtualenv is made from (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo "== sdks/python: $* ($(( $(date +%s) - started ))s)" >&2; }

step "virtualenv"
cache=${IDENTSPHERE_CACHE_DIR:-$HOME/.cache/identsphere}
venv="$cache/python-sdk-venv"
# Made again when the requirements change (their hash is kept beside them), so the pins are what runs.
wanted=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$wanted" ]; then
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$wanted" >"$venv/.requirements"
fi

step "ruff"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .

step "mypy --strict"
"$venv/bin/mypy"

. ../../scripts/sdk-common.sh
identsphere_binary

step "pytest"
"$venv/bin/pytest" "$@"

step "done"
