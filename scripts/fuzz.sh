#!/usr/bin/env bash
# Fuzzes the parsers with cargo-fuzz (libFuzzer) on the stable toolchain: every target, or those named,
# FUZZ_SECONDS each (default 30: CI's smoke run), one after the other.
#
#   ./scripts/fuzz.sh                          # every target, 30 s each
#   FUZZ_SECONDS=3600 ./scripts/fuzz.sh tokens  # one target, an hour
#   ./scripts/fuzz.sh --build                  # only build them (CI builds early, in the background)
#
# `--sanitizer none` is what makes stable enough: cargo-fuzz then passes no `-Z` flag, and the build is
# still instrumented for libFuzzer's coverage feedback (panics are what we look for: the crate forbids
# unsafe code). The corpus grows outside the clone, in FUZZ_CORPUS_DIR, seeded from fuzz/corpus/<target>;
# crashes land in fuzz/artifacts/<target>/. Exits non-zero if any target crashed, after printing how to
# reproduce each crash. fuzz/README.md says more.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

CARGO_FUZZ_VERSION=0.13.2
seconds=${FUZZ_SECONDS:-30}
cache=${IDENTSPHERE_CACHE_DIR:-$HOME/.cache/identsphere}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/fuzz-target}
corpora=${FUZZ_CORPUS_DIR:-$cache/fuzz-corpus}
build_only=
if [ "${1:-}" = --build ]; then build_only=1; shift; fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tokens json_bodies headers domain queries)

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked --version "$CARGO_FUZZ_VERSION" cargo-fuzz
fi

build_started=$(date +%s)
for target in "${targets[@]}"; do cargo fuzz build --sanitizer none "$target"; done
echo "fuzz: built in $(( $(date +%s) - build_started ))s"
[ -z "$build_only" ] || exit 0

crashed=()
for target in "${targets[@]}"; do
  mkdir -p "$corpora/$target" "artifacts/$target"
  before=$(ls "artifacts/$target")
  echo "fuzz: $target for ${seconds}s (corpus $corpora/$target)"
  if ! cargo fuzz run --sanitizer none "$target" "$corpora/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1; then
    crashed+=("$target")
    for artifact in $(comm -13 <(echo "$before") <(ls "artifacts/$target")); do
      path="$PWD/artifacts/$target/$artifact"
      echo "fuzz: $target crashed on $path (base64: $(base64 -w0 "$path"))"
      echo "fuzz:   reproduce with: cd fuzz && cargo fuzz run --sanitizer none $target $path"
    done
  fi
done

if [ ${#crashed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${crashed[*]}: fix each and add the input as a regression test (fuzz/README.md)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
