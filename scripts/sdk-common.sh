# Sourced by the SDKs' scripts/test.sh (after `cd` into the SDK, with `step` defined): what they share.

# debian_packages SDK PACKAGE...: installs the missing ones with apt-get as root, else fails naming them.
debian_packages() {
  local sdk=$1 package missing=()
  shift
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "sdks/$sdk: missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
}

# identsphere_binary: sets IDENTSPHERE_BIN, building the server unless it is set. The debug build the
# workspace tests built already (dependencies are optimized in the dev profile, so Argon2 and RSA run at full
# speed): `--tests --bins` resolves the features as the test build does (dev-dependencies included), so after
# the tests it builds nothing; `--bins` alone would resolve them otherwise and rebuild ~35 crates.
identsphere_binary() {
  if [ -z "${IDENTSPHERE_BIN:-}" ]; then
    step "IdentSphere binary (dev profile)"
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/identsphere/target}
    (cd ../.. && cargo build -q --locked --workspace --tests --bins)
    export IDENTSPHERE_BIN=$CARGO_TARGET_DIR/debug/identsphere
  fi
}
