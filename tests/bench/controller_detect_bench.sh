#!/usr/bin/env bash
# controller_detect_bench.sh: how long canary-controller takes to decide to
# roll back after a fault appears, at a 1 s probe interval.
#
#   controller_detect_bench.sh CONTROLLER AGENT EDGE CHECKER [RUNS]
#
# Each run is the `detect` scenario of tests/e2e/controller_e2e.sh: the real
# canary-edge (three regions), three canary-agents over mutual TLS and the
# controller rolling out a good build; while middleware-100 bakes, region
# weur is taken down on the edge (POST /__edge/regions/weur/down). The time
# from that call to the controller's rollback decision (its log line) is
# printed per run, then the median. Never fails on speed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
runs=${5:-3}
times=()
for i in $(seq 1 "$runs"); do
  line=$(bash "$here/../e2e/controller_e2e.sh" detect "$1" "$2" "$3" "$4" | grep '^detection:')
  echo "run $i: $line"
  times+=("$(echo "$line" | awk '{ print $2 }')")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "detection at a 1 s interval: median $median ms over $runs runs"
