#!/usr/bin/env bash
# tests/bench/edge_bench.sh: canary-edge data-plane throughput on loopback.
#
# Starts canary-edge with one region, then runs wrk against that region:
#   1. ISR hits: GET /isr after one warming request (answered by the
#      middleware from the region's cache, x-opennext-cache: HIT);
#   2. server forwards: GET / (middleware picks a version, forwards to the
#      server with the pin override, the server answers).
# canary-edge is pinned to CPU 0 and wrk to CPU 1 when taskset exists.
# Prints requests/s of each and canary-edge's peak RSS. Never fails on speed.
#
# Usage: tests/bench/edge_bench.sh [PATH/TO/canary-edge]
# Environment: DURATION_S (default 5), CONNECTIONS (default 32).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
edge=${1:-$top/build/deploy/local-edge/canary-edge}
duration=${DURATION_S:-5}
conns=${CONNECTIONS:-32}

command -v wrk >/dev/null || { echo "edge_bench: wrk is not installed (Debian package wrk)" >&2; exit 1; }
[ -x "$edge" ] || { echo "edge_bench: no canary-edge at $edge" >&2; exit 1; }

pin_edge=() pin_wrk=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_edge=(taskset -c 0) pin_wrk=(taskset -c 1)
fi

work=$(mktemp -d)
edge_pid=""
cleanup() {
  if [ -n "$edge_pid" ]; then kill "$edge_pid" 2>/dev/null || true; wait "$edge_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"${pin_edge[@]}" "$edge" --api 127.0.0.1:0 --region bench=127.0.0.1:0 --isr /isr \
  --revalidate-s 3600 --seed 1 >"$work/edge.log" 2>&1 &
edge_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^canary-edge: region bench \(http:[^ ]*\).*/\1/p' "$work/edge.log")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { cat "$work/edge.log" >&2; exit 1; }

curl -fsS -o /dev/null "$url/isr"   # warm the cache
cache=$(curl -fsS -o /dev/null -w '%header{x-opennext-cache}' "$url/isr")
[ "$cache" = HIT ] || { echo "edge_bench: /isr is not a cache hit ($cache)" >&2; exit 1; }

run() { # NAME PATH
  local rps
  rps=$("${pin_wrk[@]}" wrk -t1 -c"$conns" -d"${duration}s" "$url$2" | awk '/^Requests\/sec/ {print $2}')
  printf '%-18s %10s requests/s   (wrk -t1 -c%s -d%ss %s)\n' "$1" "$rps" "$conns" "$duration" "$2"
}
echo "canary-edge data plane, one region on 127.0.0.1, $(nproc) cores"
run "ISR hits" /isr
run "server forwards" /
printf '%-18s %10s kB\n' "canary-edge peak RSS" "$(awk '/^VmHWM/ {print $2}' /proc/"$edge_pid"/status)"
