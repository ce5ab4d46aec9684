#!/usr/bin/env bash
# Checks the Helm chart (helm/identsphere), its Grafana dashboard and the Dockerfile offline: strict helm lint,
# rendering with the default and the production values (helm/values-production.yaml), kubernetes-validate --strict,
# the chart's own promises, PromQL of the alerts and dashboard, and checkov. No cluster, helm binary or Docker
# engine is needed: Helm's Go SDK comes with the helm-python-sdk wheel.
#
#   IDENTSPHERE_CACHE_DIR              where the virtualenv is kept (default ~/.cache/identsphere)
#   IDENTSPHERE_CHART_REQUIRE_SERVER   0: only warn (instead of failing) when a setting or metric the chart uses
#                                      is not found in the server's sources (src/, actors/)
# Arguments go to scripts/check_chart.py (--out DIR keeps the rendered manifests).
set -euo pipefail
cd "$(dirname "$0")/.."

# The versions this check was written and measured with. Changing one re-creates the virtualenv.
requirements=(
  helm-python-sdk==0.2.2
  kubernetes-validate==1.37.0
  checkov==3.3.30
  promql-parser==0.11.0
)

cache=${IDENTSPHERE_CACHE_DIR:-$HOME/.cache/identsphere}
venv="$cache/chart-venv"
stamp="$venv/.requirements"
want="$(printf '%s\n' "${requirements[@]}")"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
  || ! "$venv/bin/python" -c 'import helm_python, kubernetes_validate, promql_parser, checkov' 2>/dev/null; then
  echo "check-chart.sh: preparing the virtualenv $venv" >&2
  python=${PYTHON:-python3}
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "check-chart.sh: needs Python 3.10 or later ($python is $("$python" --version 2>&1))" >&2; exit 1; }
  rm -rf "$venv"
  mkdir -p "$cache"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input "${requirements[@]}"
  echo "$want" >"$stamp"
fi

exec "$venv/bin/python" scripts/check_chart.py "$@"
