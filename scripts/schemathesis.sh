#!/usr/bin/env bash
# Fuzzes a real IdentSphere against its own OpenAPI description (`/openapi.json`) with Schemathesis:
# every check (no 5xx, status codes, content types, headers and bodies conforming to the document,
# invalid input refused, unsupported methods answered 405 with `Allow`, auth not ignored) over the
# examples, coverage, fuzzing and stateful (OpenAPI links) phases, with a bounded number of examples
# per operation. Exits non-zero on any failure.
#
# The server is the debug build, on the embedded store in a temporary data directory, with production
# password hashing and the abuse limits off (a fuzzer signs in far more often from one address than a
# person would): scripts/server.sh starts it and stops it at the end, whatever happens.
#
#   IDENTSPHERE_CACHE_DIR            where the virtualenv is kept (default ~/.cache/identsphere)
#   SCHEMATHESIS_MAX_EXAMPLES        test cases per operation and phase (default 1000: about two minutes
#                                    on 2 cores, most of it Argon2 at production parameters)
#   SCHEMATHESIS_SEED                the random seed (default: a fresh one, printed by Schemathesis)
#   extra arguments                  passed to `schemathesis run` (e.g. --include-path /v1/auth/login);
#                                    it runs in $IDENTSPHERE_CACHE_DIR/schemathesis-run, so give paths
#                                    (--report-dir ...) absolute
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/server.sh

version=4.32.5
cache=${IDENTSPHERE_CACHE_DIR:-$HOME/.cache/identsphere}
venv="$cache/schemathesis-venv"
if [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$version" ]; then
  echo "schemathesis.sh: installing schemathesis $version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

# The server as the workspace's tests built it: `--tests --bins` resolves features as the test build does,
# so after the tests nothing is rebuilt (`--bins` alone would rebuild ~35 crates: minutes of a cold CI run).
cargo build -q --locked --workspace --tests --bins
# The binary cargo just built, wherever CARGO_TARGET_DIR puts it (CI keeps the build cache outside the clone).
binary="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug/identsphere"

# The revocation feed's key, for Schemathesis to read it as a resource server would.
platform_key="platform-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
start_server "$binary" embedded IDENTSPHERE_PLATFORM_API_KEY="$platform_key"

# One account for the operations that need an access token: Schemathesis signs
# it in (and again after a 401, e.g. once a fuzzed logout has revoked the session), into its personal
# organization: one the fuzzer creates and gives a policy (a second factor required) is not signed into.
email="fuzz-$RANDOM$RANDOM@example.com"
password="fuzz-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
if ! organization=$("$venv/bin/python" - "$base" "$email" "$password" <<'PY'
import json, sys, urllib.request
base, email, password = sys.argv[1:]
body = json.dumps({"email": email, "password": password}).encode()
request = urllib.request.Request(f"{base}/v1/auth/register", body, {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request, timeout=30))["session"]["organization_id"])
PY
); then
  echo "schemathesis.sh: the server is not serving; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
cat >"$work/schemathesis.toml" <<TOML
[auth.dynamic.openapi.bearer]
path = "/v1/auth/login"
payload = { email = "$email", password = "$password", organization = "$organization" }
extract_selector = "/access_token"

[auth.openapi.platform_api_key]
bearer = "$platform_key"

# Beyond its schema, an email must be a deliverable address and a password must not be on the list of
# common passwords: a schema-valid body can still be a 422 there, and says why (invalid_email, weak_password).
# Likewise a schema-valid code, link token or current password is almost never the right one (401, 400
# link_invalid), second-factor steps depend on the account's state (409, 403 insufficient_aal), and a
# generated organization, member or session id names none of the account's (404), a slug may be taken (409),
# and a generated invitation token is no invitation (400 invitation_invalid). A WebAuthn credential is opaque to
# the schema (an object webauthn-rs parses: 400 when it is not one), a generated ceremony id, one-time code or
# provider state names no flow (400 ceremony_expired, oauth_code_invalid, oauth_state_invalid), and a generated
# issuer is rarely an https:// host name or an address a connection claims (400, 404 connection_not_found).
[[operations]]
include-path-regex = "^/v1/(auth/(register|login|mfa/.*|email/verify|password(/.*)?|sessions/.*|passkeys(/.*)?|oauth/.*|identities(/.*)?|sso/discover)|organizations.*|invitations/accept)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429"]
TOML

# A blank body is no body (`http::json`): on refresh and logout, whose body is optional, it is accepted
# like an empty one, so it is not the schema-violating request Schemathesis would take it for. The import's
# NDJSON is sent as text.
cat >"$work/identsphere_hooks.py" <<'PY'
import schemathesis

# The user import's body is NDJSON: text, one user a line (each line it cannot read is answered `invalid`).
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

@schemathesis.hook
def filter_body(context, body):
    blank = isinstance(body, bytes) and not body.strip(b" \t\n\r\x0c")
    return not (blank or (isinstance(body, str) and not body.strip(" \t\n\r\x0c")))
PY

# Schemathesis and Hypothesis keep caches in the working directory: keep them out of the clone.
runs="$cache/schemathesis-run"
mkdir -p "$runs"
status=0
(cd "$runs" && PYTHONPATH="$work${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=identsphere_hooks \
"$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$base/openapi.json" \
  --checks all \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-1000}" \
  ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
  --workers 2 \
  --request-timeout 10 \
  --generation-database none \
  --wait-for-schema 30 \
  --no-color \
  "$@") || status=$?

# A 5xx is logged with its cause under its request id: show the server's errors with a failure.
if [ "$status" -ne 0 ] && grep -q '"level":"ERROR"' "$work/server.log"; then
  echo "== the server's errors (match them to a report above by X-Request-Id):" >&2
  grep '"level":"ERROR"' "$work/server.log" >&2 || true
fi
exit "$status"
