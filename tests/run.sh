#!/usr/bin/env bash
# tests/run.sh: install what is missing, build, and run every test of canary.
#
#   1. Debian packages that are missing (and only those), as root;
#   2. wrangler 4.86.0 from npm into a cache directory outside the tree;
#   3. configure, build with -j2, ctest;
#   4. the same suite again built with ASan and UBSan (CANARY_SANITIZE=ON);
#   5. the libFuzzer targets: the message decoder and the JSONC reader for
#      FUZZ_SECONDS (default 30) each, every other target for half of that.
#
# Environment: BUILD_DIR (default build), FUZZ_SECONDS, CANARY_CACHE_DIR
# (default ~/.cache/canary), SKIP_SANITIZE=1 and SKIP_FUZZ=1 for quicker
# local runs. Any failure exits non-zero.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
build=${BUILD_DIR:-build}
fuzz_seconds=${FUZZ_SECONDS:-30}
cache=${CANARY_CACHE_DIR:-${HOME:-/root}/.cache/canary}
wrangler_version=4.86.0

log() { printf '== %s\n' "$*"; }

# ---- 1. Debian packages: the "test" profile of deploy/install-deps.sh -------
bash "$top/deploy/install-deps.sh" test

# ---- 2. wrangler, for the tests that drive the real CLI --------------------
wrangler_dir="$cache/wrangler-$wrangler_version"
if [ ! -x "$wrangler_dir/node_modules/.bin/wrangler" ]; then
  log "installing wrangler $wrangler_version into $wrangler_dir"
  mkdir -p "$wrangler_dir"
  (cd "$wrangler_dir" && npm install --no-audit --no-fund --loglevel=error \
     "wrangler@$wrangler_version" >/dev/null)
fi
export CANARY_WRANGLER="$wrangler_dir/node_modules/.bin/wrangler"

# ---- 3. build and test ----------------------------------------------------
run_suite() {
  local dir=$1; shift
  log "configure $dir $*"
  cmake -S . -B "$dir" -DCANARY_WRANGLER="$CANARY_WRANGLER" "$@" >/dev/null
  log "build $dir"
  cmake --build "$dir" -j2
  log "ctest $dir"
  # Two at a time, one per core: every end-to-end test picks its own free
  # ports and work directory, so two never collide.
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j2)
}

run_suite "$build"

# ---- 4. the same suite under ASan and UBSan -------------------------------
if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite "$build-sanitize" -DCANARY_SANITIZE=ON
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

# ---- 5. fuzz smoke runs -----------------------------------------------------
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  log "build fuzz targets (clang, libFuzzer, ASan, UBSan)"
  # Undefined behaviour is a finding, like a crash.
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  CC=clang cmake -S . -B "$build-fuzz" -DCANARY_FUZZ=ON -DCANARY_TESTS=OFF >/dev/null
  cmake --build "$build-fuzz" -j2 --target fuzz_all
  # Every fuzz_* executable fuzz_all built.
  mapfile -t targets < <(find "$build-fuzz" -maxdepth 4 -type f -executable -name 'fuzz_*' \
                           -not -path '*/CMakeFiles/*' | sort)
  ((${#targets[@]})) || { echo "no fuzz targets were built" >&2; exit 1; }
  for target in "${targets[@]}"; do
    name=$(basename "$target")
    work="$build-fuzz/corpus/${name#fuzz_}"
    mkdir -p "$work"
    dirs=("$work")
    seeds="$top/tests/fuzz/corpus/${name#fuzz_}"
    [ -d "$seeds" ] && dirs+=("$seeds")
    # The message decoder and the JSONC reader take outside input on every
    # run and get the full time; the other parsers half of it.
    seconds=$fuzz_seconds
    case $name in
      fuzz_msg | fuzz_jsonc) ;;
      *) seconds=$(((fuzz_seconds + 1) / 2)) ;;
    esac
    log "fuzz $name for ${seconds}s"
    "$target" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$build-fuzz/$name-" "${dirs[@]}" 2>"$build-fuzz/$name.log" || {
      tail -50 "$build-fuzz/$name.log"; exit 1; }
    grep -E 'stat::number_of_executed_units' "$build-fuzz/$name.log" || true
  done
fi

log "all tests passed"
