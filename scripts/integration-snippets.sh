#!/usr/bin/env bash
# Runs every token-validation snippet of docs/integration.md against a live server, each in its own toolchain:
# the snippets are extracted from the page (the fenced block after each `<!-- snippet: NAME -->`), so the page
# cannot drift from the product. Each one must print the `sub` of a fresh access token and exit 0, then exit
# non-zero on the same token with one character of the signature changed, then on one with a payload character
# changed, then with IDENTSPHERE_URL naming the server otherwise (the wrong issuer), then on an mfa token
# (signed by the same key, `typ: mfa`). The server is one IdentSphere on the embedded store (scripts/server.sh);
# a user registered with curl gives the token. The page's day-one `curl` walk runs too, and the Rust snippet is
# parsed (below).
#
# Toolchains: Python packages in a virtualenv and `jose` from npm, both pinned, under $IDENTSPHERE_CACHE_DIR
# (default ~/.cache/identsphere); Go with Debian's golang-jwt (no module proxy: GOPROXY=off), Ruby's `jwt`, PHP
# and the JDK from Debian, installed with apt-get when missing and running as root. A language whose toolchain
# is neither present nor installable is reported loudly as SKIPPED, as scripts/test.sh does for the SDKs, and
# the script passes, unless IDENTSPHERE_SNIPPETS_REQUIRE_ALL is set (CI sets it): then a skip is a failure.
# The Rust snippet is compiled and run by the API suite (tests/api/integration_doc.rs: the page's snippet is
# the module it runs, word for word), so it is not built here.
#
#   IDENTSPHERE_BIN  the server binary; unset: the workspace's debug build (built when needed, a no-op after the
#                    tests: see scripts/sdk-common.sh)
#   ./scripts/integration-snippets.sh [NAME ...]   only these snippets (python-pyjwt, node-jose, …)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo "== snippets: $* ($(( $(date +%s) - started ))s)" >&2; }

doc=docs/integration.md
cache=${IDENTSPHERE_CACHE_DIR:-$HOME/.cache/identsphere}
pyjwt=PyJWT==2.10.1
jose_py=python-jose==3.5.0
jose_js=jose@6.2.19

root=$PWD
. scripts/server.sh
# identsphere_binary builds from sdks/<name>: give it that layout.
(cd sdks/go && . ../../scripts/sdk-common.sh && identsphere_binary && echo "$IDENTSPHERE_BIN" >"$work/bin")
binary=$(cat "$work/bin")

# extract NAME FILE: the code block after `<!-- snippet: NAME -->` into FILE; fails when there is none.
extract() {
  awk -v name="$1" '
    $0 == "<!-- snippet: " name " -->" { armed = 1; next }
    armed && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }
  ' "$doc" >"$2"
  [ -s "$2" ] || { echo "snippets: no snippet '$1' in $doc" >&2; exit 1; }
}

debian() {
  local package missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]}, as root)" >&2
    return 1
  fi
}

# Each prepare_NAME sets up the toolchain (returning non-zero when it cannot) and sets `run` to the command
# that runs the extracted snippet.
prepare_python() {
  local venv="$cache/integration-venv"
  if ! "$venv/bin/python" -c 'import jwt, jose, cryptography' 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "${pyjwt/==/[crypto]==}" "${jose_py/==/[cryptography]==}" || return 1
  fi
  "$venv/bin/pip" list --disable-pip-version-check 2>/dev/null | grep -iE '^(pyjwt|python-jose) ' >&2
  run=("$venv/bin/python" "$1")
}
prepare_python-pyjwt() { prepare_python "$@"; }
prepare_python-jose() { prepare_python "$@"; }

prepare_node-jose() {
  command -v node >/dev/null 2>&1 || debian nodejs npm || return 1
  local dir="$cache/integration-node"
  mkdir -p "$dir"
  if [ "$(cd "$dir" && node -p 'require("./node_modules/jose/package.json").version' 2>/dev/null)" \
    != "${jose_js#jose@}" ]; then
    (cd "$dir" && { [ -f package.json ] || echo '{"private": true}' >package.json; } \
      && npm install --silent --no-audit --no-fund "$jose_js") || return 1
  fi
  echo "node $(node --version), $jose_js" >&2
  # ESM resolves packages from the file's directory: the snippet runs next to node_modules.
  cp "$1" "$dir/verify.mjs"
  run=(node "$dir/verify.mjs")
}

prepare_go-golang-jwt() {
  command -v go >/dev/null 2>&1 || debian golang-go || return 1
  debian golang-github-golang-jwt-jwt-dev || return 1
  local dir="$work/go"
  mkdir -p "$dir"
  cp "$1" "$dir/main.go"
  # Debian installs the module's source under /usr/share/gocode; a replace points the module at it, and
  # GOPROXY=off makes sure nothing is fetched.
  cat >"$dir/go.mod" <<EOF
module verify

go 1.19

require github.com/golang-jwt/jwt/v4 v4.4.3

replace github.com/golang-jwt/jwt/v4 => /usr/share/gocode/src/github.com/golang-jwt/jwt
EOF
  (cd "$dir" && GOPROXY=off GOFLAGS=-mod=mod go build -o verify .) || return 1
  echo "$(go version), golang-jwt $(dpkg-query -W -f='${Version}' golang-github-golang-jwt-jwt-dev)" >&2
  run=("$dir/verify")
}

prepare_ruby-jwt() {
  debian ruby ruby-jwt || return 1
  echo "$(ruby --version), jwt $(ruby -rjwt -e 'print JWT::VERSION::STRING')" >&2
  run=(ruby "$1")
}

prepare_php-openssl() {
  debian php-cli || return 1
  echo "$(php --version | head -1)" >&2
  run=(php "$1")
}

prepare_java-jdk() {
  command -v javac >/dev/null 2>&1 || debian openjdk-17-jdk-headless || return 1
  local dir="$work/java"
  mkdir -p "$dir"
  cp "$1" "$dir/Verify.java"
  echo "$(java -version 2>&1 | head -1)" >&2
  # Compiled once (`java Verify.java` compiles on every run: 3 s each).
  javac -d "$dir" "$dir/Verify.java" || return 1
  run=(java -cp "$dir" Verify)
}

prepare_curl() {
  command -v jq >/dev/null 2>&1 || debian jq || return 1
  run=(bash "$1")
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(python-pyjwt python-jose node-jose go-golang-jwt ruby-jwt php-openssl java-jdk curl)
# Every snippet of the page is run here, except Rust's (the API suite runs it: see the top).
for found in $(sed -n 's/^<!-- snippet: \(.*\) -->$/\1/p' "$doc"); do
  case " ${names[*]} rust-jsonwebtoken day-one " in
    *" $found "*) ;;
    *) [ $# -gt 0 ] || { echo "snippets: '$found' in $doc is run by nothing: add it here" >&2; exit 1; } ;;
  esac
done

step "server"
start_server "$binary" embedded
token=$(curl -sf -X POST "$base/v1/auth/register" -H 'Content-Type: application/json' \
  -d '{"email":"snippets@example.com","password":"correct horse battery staple"}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
sub=$(curl -sf "$base/v1/auth/session" -H "Authorization: Bearer $token" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["user"]["id"])')
# One character changed in the middle of the signature, and in the middle of the payload.
tamper() {
  python3 -c '
import sys
token, part = sys.argv[1], int(sys.argv[2])
parts = token.split(".")
s = parts[part]
i = len(s) // 2
parts[part] = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
print(".".join(parts))' "$token" "$1"
}
bad_signature=$(tamper 2)
bad_payload=$(tamper 1)
other_name=${base/127.0.0.1/localhost}
# A token the server signed with the same key that is not an access token: the mfa token of a sign-in waiting
# for its second factor (a second user enrolls TOTP, then logs in).
mfa_token=$(python3 - "$base" <<'PY'
import base64, hashlib, hmac, json, struct, sys, time, urllib.request

base = sys.argv[1]
def call(path, body, token=None):
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(base + path, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request) as response:
        return json.load(response)
def totp(secret):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 15
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000:06d}"
user = {"email": "snippets-mfa@example.com", "password": "correct horse battery staple"}
tokens = call("/v1/auth/register", user)
secret = call("/v1/auth/mfa/totp", {}, tokens["access_token"])["secret"]
call("/v1/auth/mfa/totp/confirm", {"code": totp(secret), "refresh_token": tokens["refresh_token"]},
     tokens["access_token"])
print(call("/v1/auth/login", user)["mfa_token"])
PY
)

status=0
skipped=()
for name in "${names[@]}"; do
  step "$name"
  file="$work/snippet-$name"
  extract "$name" "$file"
  run=()
  if ! "prepare_$name" "$file"; then
    echo "== snippets: $name SKIPPED: its toolchain is neither installed nor installable here" >&2
    skipped+=("$name")
    continue
  fi
  out=$(IDENTSPHERE_URL="$base" TOKEN="$token" "${run[@]}" 2>"$work/err") || {
    echo "snippets: $name FAILED on a valid token:" >&2; cat "$work/err" >&2; status=1; continue; }
  if [ "$out" != "$sub" ]; then
    echo "snippets: $name printed '$out' for a valid token, expected its sub $sub" >&2; status=1; continue
  fi
  echo "   valid: printed its sub, $out" >&2
  for kind in signature payload issuer type; do
    url=$base bad=$token
    case $kind in
      signature) bad=$bad_signature ;;
      payload) bad=$bad_payload ;;
      # The same server under another name: the keys verify, the issuer is not the one expected. The curl
      # snippet asks the server, which does not care by what name it is reached.
      issuer) [ "$name" != curl ] || continue; url=$other_name ;;
      type) bad=$mfa_token ;;
    esac
    if IDENTSPHERE_URL="$url" TOKEN="$bad" "${run[@]}" >"$work/out" 2>"$work/err"; then
      echo "snippets: $name ACCEPTED a token with a changed $kind (printed $(cat "$work/out"))" >&2; status=1
    else
      echo "   changed $kind: refused ($(tail -1 "$work/err" | cut -c1-100))" >&2
    fi
  done
done

# The day-one calls, as a reader pastes them: every step answers as the page says.
step "day-one (the curl walk: register, login, session, refresh, logout)"
extract day-one "$work/day-one.sh"
if IDENTSPHERE_URL="$base" bash "$work/day-one.sh" >"$work/out" 2>&1 \
  && [ "$(tail -2 "$work/out" | tr '\n' ' ')" = "204 token_revoked " ] \
  && grep -q '"email": "ada@example.com"' "$work/out" && grep -q '"aal": "aal1"' "$work/out"; then
  echo "   register, session, logout 204, then token_revoked" >&2
else
  echo "snippets: the day-one calls did not answer as documented:" >&2; cat "$work/out" >&2; status=1
fi

if [ ${#skipped[@]} -gt 0 ]; then
  echo "== snippets: NOT RUN (toolchain missing): ${skipped[*]}" >&2
  [ -z "${IDENTSPHERE_SNIPPETS_REQUIRE_ALL:-}" ] || status=1
fi
step "done (status $status)"
exit $status
