#!/usr/bin/env bash
# agent_vs_wrk.sh: requests per second of `canary-agent probe` (every check
# on) against wrk and hey, in the same run, on the same nginx target, and
# against libcurl_floor (a bare libcurl multi loop with no checks, built next
# to the agent): what the agent costs beyond libcurl itself.
#
#   tests/bench/agent_vs_wrk.sh [path/to/canary-agent [path/to/libcurl_floor]]
#
# nginx (nginx-light) serves a 29-byte page with the middleware, server and
# cache headers on 127.0.0.1, pinned to CPU 0 with taskset; wrk, hey, the
# agent and the floor run one after the other on CPU 1, each at concurrency 32 for
# BENCH_SECONDS (default 5), alternated BENCH_ROUNDS times (default 3);
# the medians are printed with the agent's ratio to wrk and to hey, each
# client's CPU time per request (user + system, from /usr/bin/time), and the
# agent's peak RSS (/usr/bin/time's maximum resident set size).
# Targets (issue 4): >= 0.5 of wrk, >= 1.3 of hey, peak RSS <= 16 MiB.
# Prints figures and never fails on speed; it fails only when a tool is
# missing or the target does not come up.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
agent=${1:-$top/build/agent/canary-agent}
floor=${2:-$(dirname "$agent")/libcurl_floor}
secs=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
conc=32
mw=00000000-0000-4000-8000-0000000000a0
srv=00000000-0000-4000-8000-0000000000b0

for tool in nginx wrk hey taskset /usr/bin/time "$agent" "$floor"; do
  command -v "$tool" >/dev/null || { echo "agent_vs_wrk: $tool not found" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then
  echo "agent_vs_wrk: needs 2 CPUs (target on CPU 0, load generators on CPU 1)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/agent-vs-wrk.XXXXXX)
nginx_pid=""
cleanup() {
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A port from a range picked by pid, moving on while one is taken.
port=$((20000 + $$ % 20000))
started=0
for _ in $(seq 1 20); do
  cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/error.log;
pid $work/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  default_type text/plain;
  server {
    listen 127.0.0.1:$port;
    location / {
      add_header x-canary-middleware-version $mw;
      add_header x-canary-server-version $srv;
      add_header x-opennext-cache HIT;
      return 200 "hello from the canary target\n";
    }
  }
}
CONF
  taskset -c 0 nginx -c "$work/nginx.conf" -p "$work" &
  nginx_pid=$!
  for _ in $(seq 1 50); do
    if curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1; then started=1; break; fi
    if ! kill -0 "$nginx_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  [ "$started" = 1 ] && break
  kill "$nginx_pid" 2>/dev/null || true
  wait "$nginx_pid" 2>/dev/null || true
  nginx_pid=""
  port=$((port + 1))
done
[ "$started" = 1 ] || { echo "agent_vs_wrk: nginx did not start" >&2; cat "$work/error.log" >&2; exit 1; }
url="http://127.0.0.1:$port/"

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: >"$work/wrk" >"$work/hey" >"$work/agent" >"$work/rss" >"$work/floor"
: >"$work/wrk.cpu" >"$work/hey.cpu" >"$work/agent.cpu" >"$work/floor.cpu"
# cpu_per_request TIMEFILE REQUESTS: microseconds of CPU (user + system) per
# request, from /usr/bin/time's "%U %S" line.
cpu_per_request() { awk -v n="$2" '{printf "%.2f\n", ($1 + $2) * 1e6 / n}' "$1"; }
timed() { /usr/bin/time -f '%U %S %M' -o "$work/time" "$@"; }
for r in $(seq 1 "$rounds"); do
  timed taskset -c 1 wrk -t1 -c"$conc" -d"${secs}s" "$url" >"$work/wrk.out"
  awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out" >>"$work/wrk"
  cpu_per_request "$work/time" "$(awk '/requests in/ {print $1}' "$work/wrk.out")" >>"$work/wrk.cpu"

  timed taskset -c 1 hey -z "${secs}s" -c "$conc" "$url" >"$work/hey.out"
  awk '/Requests\/sec:/ {print $2}' "$work/hey.out" >>"$work/hey"
  cpu_per_request "$work/time" "$(awk '/\[200\]/ {print $2}' "$work/hey.out")" >>"$work/hey.cpu"

  timed taskset -c 1 "$agent" probe "$url" --duration "$secs" -c "$conc" --isr \
    --expect-status 200 --expect-middleware "$mw" --expect-server "$srv" \
    --body-match "canary target" --json >"$work/agent.json" || {
    echo "agent_vs_wrk: a check failed:" >&2; cat "$work/agent.json" >&2; exit 1; }
  # requests_per_s and requests from the agent's JSON; peak RSS from time(1)
  sed -n 's/.*"requests_per_s":\([0-9.e+]*\).*/\1/p' "$work/agent.json" >>"$work/agent"
  awk '{print $3}' "$work/time" >>"$work/rss"
  cpu_per_request "$work/time" \
    "$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' "$work/agent.json")" >>"$work/agent.cpu"

  timed taskset -c 1 "$floor" "$url" "$secs" "$conc" >"$work/floor.out" || {
    echo "agent_vs_wrk: libcurl_floor failed" >&2; exit 1; }
  awk '{print $6}' "$work/floor.out" >>"$work/floor"
  cpu_per_request "$work/time" "$(awk '{print $2}' "$work/floor.out")" >>"$work/floor.cpu"
  printf 'round %d: requests/s wrk %.0f  hey %.0f  agent %.0f  floor %.0f;' "$r" \
    "$(tail -1 "$work/wrk")" "$(tail -1 "$work/hey")" "$(tail -1 "$work/agent")" \
    "$(tail -1 "$work/floor")"
  printf '  CPU us/request wrk %s  hey %s  agent %s  floor %s\n' \
    "$(tail -1 "$work/wrk.cpu")" "$(tail -1 "$work/hey.cpu")" "$(tail -1 "$work/agent.cpu")" \
    "$(tail -1 "$work/floor.cpu")"
done

wrk_rps=$(median <"$work/wrk")
hey_rps=$(median <"$work/hey")
agent_rps=$(median <"$work/agent")
floor_rps=$(median <"$work/floor")
wrk_cpu=$(median <"$work/wrk.cpu")
hey_cpu=$(median <"$work/hey.cpu")
agent_cpu=$(median <"$work/agent.cpu")
floor_cpu=$(median <"$work/floor.cpu")
rss_kib=$(sort -g "$work/rss" | tail -1)
awk -v w="$wrk_rps" -v h="$hey_rps" -v a="$agent_rps" -v f="$floor_rps" -v r="$rss_kib" -v s="$secs" \
    -v n="$rounds" -v c="$conc" -v wc="$wrk_cpu" -v hc="$hey_cpu" -v ac="$agent_cpu" \
    -v fc="$floor_cpu" 'BEGIN {
  printf "\nmedians of %d rounds, %d s each, concurrency %d (nginx on CPU 0, clients on CPU 1)\n", n, s, c
  printf "                            requests/s   CPU us/request\n"
  printf "  wrk                       %10.0f   %8.2f\n", w, wc
  printf "  hey                       %10.0f   %8.2f\n", h, hc
  printf "  canary-agent probe        %10.0f   %8.2f   (all checks on)\n", a, ac
  printf "  libcurl floor             %10.0f   %8.2f   (bare multi loop, no checks)\n", f, fc
  printf "  agent / wrk               %10.2f   (target >= 0.5)\n", a / w
  printf "  agent / hey               %10.2f   (target >= 1.3)\n", a / h
  printf "  agent / libcurl floor     %10.2f   (what the agent keeps of libcurl alone)\n", a / f
  printf "  libcurl floor / wrk       %10.2f\n", f / w
  printf "  agent peak RSS            %10.1f MiB (target <= 16)\n", r / 1024
  printf "CPU per request depends much less than requests/s on what else the machine runs.\n"
}'
