#!/usr/bin/env bash
# deploy/install-deps.sh: installs the Debian packages canary needs that are
# missing, and only those (apt-get; as root, or through sudo).
#
#   deploy/install-deps.sh PROFILE...
#
# Profiles (any number; their packages are merged):
#   build       what building canary needs: compiler, CMake, pkg-config and the
#               libraries it links (nng with its mbedTLS transport, mbedTLS,
#               libcurl, libevent, cJSON, mimalloc)
#   quickstart  build, plus what deploy/quickstart.sh runs: openssl (throw-away
#               certificates), curl and jq (canary-edge's admin API), ss and
#               setsid (free ports, process groups)
#   test        build, plus what tests/run.sh runs: cmocka, clang with
#               libFuzzer, clang-format (the format check), nginx, wrk and hey (benchmarks), Node.js and npm
#               (the Cloudflare worker tests, wrangler), openssl, curl, and
#               jq (the quickstart, which ctest runs too)
#
# Node.js and npm may come from elsewhere than Debian (a newer release bundles
# npm): they are only asked of Debian when the commands are absent.
# Exits 0 when everything is installed, non-zero (apt-get's) otherwise, and 2
# on an unknown profile.
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config git ca-certificates
  libnng-dev libmbedtls-dev libcurl4-openssl-dev libevent-dev libcjson-dev
  libmimalloc-dev
)
quickstart_pkgs=(openssl curl jq iproute2 util-linux procps)
test_pkgs=(
  libcmocka-dev
  clang libclang-rt-14-dev llvm clang-format
  openssl nginx-light wrk hey nodejs npm procps psmisc iproute2 curl
  jq util-linux
)

usage() {
  # The header comment above, up to the first line that is not a comment.
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

if [ $# -eq 0 ]; then
  usage >&2
  exit 2
fi

wanted=()
for profile in "$@"; do
  case $profile in
    build) wanted+=("${build_pkgs[@]}") ;;
    quickstart) wanted+=("${build_pkgs[@]}" "${quickstart_pkgs[@]}") ;;
    test) wanted+=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "install-deps.sh: unknown profile \"$profile\" (expected build, quickstart or test)" >&2
      exit 2
      ;;
  esac
done

missing=()
declare -A seen=()
for p in "${wanted[@]}"; do
  if [ -n "${seen[$p]:-}" ]; then
    continue
  fi
  seen[$p]=1
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    continue
  fi
  case $p in
    nodejs) command -v node >/dev/null || missing+=("$p") ;;
    npm) command -v npm >/dev/null || missing+=("$p") ;;
    *) missing+=("$p") ;;
  esac
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "== installing Debian packages: ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
