#!/usr/bin/env bash
# deploy/quickstart.sh: rehearse two canary rollouts on this machine, with no
# Cloudflare account: one that is promoted and one that rolls itself back.
#
#   deploy/quickstart.sh [--build-dir DIR] [--work-dir DIR] [--keep]
#                        [--no-install] [--no-build]
#
# What it does, all on 127.0.0.1:
#   1. installs the Debian packages that are missing (deploy/install-deps.sh
#      quickstart; as root or through sudo) and builds canary (cmake, -j2);
#   2. makes throw-away certificates with openssl: a CA for the agents, one
#      for the controller, a certificate per agent and one for the controller;
#   3. starts canary-edge (the local stand-in for Cloudflare's API and edge)
#      with three regions, enam, weur and apac, each with its own propagation
#      delay, and one canary-agent per region, connected to the controller
#      over mutual TLS and pointed at its region's listener with --connect-to;
#   4. runs canary-controller twice with the `api` deployer, uploading small
#      bundled modules it writes:
#        - a good build, promoted step by step
#          (server-0, middleware-50, middleware-100, server-100);
#        - a bad build whose server answers 20% of requests with a 500
#          (CANARY_EDGE_ERROR_RATE=0.2, a var of the new server version), which
#          the controller catches once users reach it and rolls back by itself;
#   5. prints a summary: each step and its verdicts, the time from the fault
#      reaching users to the rollback, and the versions each region serves at
#      the end (from canary-edge's /__edge/state).
# It stops everything it started when it ends, on Ctrl-C too: a rollout in
# progress is first rolled back by the controller.
#
# Options:
#   --build-dir DIR  where to build (default: build-quickstart in the tree)
#   --work-dir DIR   certificates, configs, state and logs (default: a new
#                    temporary directory, removed at the end unless --keep or
#                    a failure)
#   --keep           keep the work directory
#   --no-install     do not install Debian packages
#   --no-build       use the programs already built in the build directory
#
# Exit status: 0 when the good build was promoted and the bad one rolled back
# (canary-controller's exit codes 0 and 3), 1 otherwise, 130 on Ctrl-C.

# Trap handlers (cleanup, on_interrupt) are called indirectly.
# shellcheck disable=SC2317
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=$top/build-quickstart
work=""
keep=0
install=1
build=1

# Rehearsal parameters: short bakes so the whole run stays well under three
# minutes; the propagation delays differ per region as they do on Cloudflare.
readonly REGIONS=(enam weur apac)
declare -A DELAY_MS=([enam]=150 [weur]=500 [apac]=1000)
readonly HOST=docs.example.com
readonly ACCOUNT=0123456789abcdef0123456789abcdef
readonly BAKE_S=4
readonly FAULT_VARS='"CANARY_EDGE_ERROR_RATE": "0.2"'
readonly START_TIMEOUT_S=15   # canary-edge listening, agents connected
readonly ROLLOUT_TIMEOUT_S=75 # one canary-controller run, a hard stop
readonly STOP_GRACE_S=5       # SIGTERM, then SIGKILL
readonly ROLLBACK_WAIT_S=60   # on Ctrl-C, how long the controller may take to roll back

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

while [ $# -gt 0 ]; do
  case $1 in
    --build-dir)
      build_dir=${2:?--build-dir needs a directory}
      shift 2
      ;;
    --work-dir)
      work=${2:?--work-dir needs a directory}
      shift 2
      ;;
    --keep)
      keep=1
      shift
      ;;
    --no-install)
      install=0
      shift
      ;;
    --no-build)
      build=0
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "quickstart.sh: unknown option \"$1\" (see --help)" >&2
      exit 1
      ;;
  esac
done

t_start=$(date +%s%3N)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
die() {
  printf '\nquickstart: %s\n' "$*" >&2
  exit 1
}
elapsed_s() { # since the start, in seconds with one decimal
  local now
  now=$(date +%s%3N)
  printf '%d.%d' $(((now - t_start) / 1000)) $(((now - t_start) % 1000 / 100))
}

# ---- everything started here is stopped here -------------------------------
pids=()        # canary-edge and the agents, each in its own session
ctl_pid=""     # the controller while a rollout runs
tail_pid=""    # the tail that shows its output
interrupted=0
failed=1       # cleared when the run reaches its end

stop_pid() { # PID: SIGTERM, then SIGKILL after STOP_GRACE_S
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < STOP_GRACE_S * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$ctl_pid" ] && kill -0 "$ctl_pid" 2>/dev/null; then
    stop_pid "$ctl_pid"
  fi
  if [ -n "$tail_pid" ]; then
    kill "$tail_pid" 2>/dev/null || true
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${pids[$i]}"
  done
  if [ -n "$work" ] && [ -d "$work" ]; then
    if [ "$keep" -eq 1 ] || [ "$failed" -eq 1 ]; then
      printf '\nquickstart: logs, certificates and state kept in %s\n' "$work" >&2
    else
      rm -rf "$work"
    fi
  fi
  exit "$rc"
}

# Ctrl-C: a rollout in progress is rolled back by the controller (it treats
# SIGINT like SIGTERM) before everything else is stopped.
on_interrupt() {
  interrupted=1
  # A second Ctrl-C stops the wait (the controller is then stopped hard).
  trap 'interrupted=2' INT TERM
  if [ -n "$ctl_pid" ] && kill -0 "$ctl_pid" 2>/dev/null; then
    printf '\nquickstart: interrupted: canary-controller is rolling back (up to %d s)...\n' \
      "$ROLLBACK_WAIT_S" >&2
    kill -INT "$ctl_pid" 2>/dev/null || true
    for ((i = 0; i < ROLLBACK_WAIT_S * 10 && interrupted == 1; i++)); do
      kill -0 "$ctl_pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  printf 'quickstart: interrupted: stopping everything it started\n' >&2
  exit 130
}
trap cleanup EXIT
trap on_interrupt INT TERM

# ---- 1. packages and build --------------------------------------------------
if [ "$install" -eq 1 ]; then
  say "packages"
  "$top/deploy/install-deps.sh" quickstart
  note "all installed"
fi
for cmd in cmake openssl curl jq ss setsid; do
  command -v "$cmd" >/dev/null || die "$cmd is missing (run without --no-install)"
done

mkdir -p "$build_dir"
if [ "$build" -eq 1 ]; then
  say "build ($build_dir, -j2)"
  if ! cmake -S "$top" -B "$build_dir" -DCANARY_TESTS=OFF >"$build_dir/quickstart-configure.log" 2>&1; then
    tail -n 30 "$build_dir/quickstart-configure.log" >&2
    die "cmake configure failed (log: $build_dir/quickstart-configure.log)"
  fi
  if ! cmake --build "$build_dir" -j2 --target canary-edge canary-agent canary-controller \
    >"$build_dir/quickstart-build.log" 2>&1; then
    tail -n 30 "$build_dir/quickstart-build.log" >&2
    die "build failed (log: $build_dir/quickstart-build.log)"
  fi
  note "built in $(elapsed_s) s"
fi
find_program() { # NAME: the built executable
  local f
  f=$(find "$build_dir" -type f -name "$1" -perm -u+x -not -path '*/CMakeFiles/*' | head -n 1)
  [ -n "$f" ] || die "$1 not found under $build_dir (run without --no-build)"
  printf '%s' "$f"
}
edge_bin=$(find_program canary-edge)
agent_bin=$(find_program canary-agent)
controller_bin=$(find_program canary-controller)

if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/canary-quickstart.XXXXXX")
else
  mkdir -p "$work"
  work=$(cd "$work" && pwd)
fi

# ---- 2. throw-away certificates ---------------------------------------------
say "certificates (openssl, EC P-256, valid 1 day) in $work/tls"
tls=$work/tls
mkdir -p "$tls"
chmod 700 "$tls"
make_ca() { # NAME
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj "/CN=canary quickstart $1" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tls/$1.key" -out "$tls/$1.pem" 2>>"$tls/openssl.log"
}
# The agents dial the controller at 127.0.0.1 and check that its certificate
# names that host. mbedTLS 2.28 (nng's TLS) matches DNS names only, not IP
# addresses, hence DNS:127.0.0.1 beside IP:127.0.0.1.
make_cert() { # NAME CA
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
    -keyout "$tls/$1.key" -out "$tls/$1.csr" 2>>"$tls/openssl.log"
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:localhost" >"$tls/$1.ext"
  openssl x509 -req -in "$tls/$1.csr" -CA "$tls/$2.pem" -CAkey "$tls/$2.key" \
    -CAcreateserial -days 1 -extfile "$tls/$1.ext" -out "$tls/$1.pem" 2>>"$tls/openssl.log"
}
make_ca agents-ca
make_ca controller-ca
make_cert controller controller-ca
for r in "${REGIONS[@]}"; do
  make_cert "agent-$r" agents-ca
done
note "agents-ca.pem issues agent-{enam,weur,apac}.pem; controller-ca.pem issues controller.pem"

# ---- 3. canary-edge and the agents ------------------------------------------
# A free TCP port on 127.0.0.1 for the controller's agent listener: random in
# 20000..59999 and not listened on (canary-edge picks its own with port 0).
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! ss -Htln "sport = :$p" | grep -q .; then
      printf '%s' "$p"
      return 0
    fi
  done
  die "no free port found on 127.0.0.1"
}

say "canary-edge: the local Cloudflare, regions ${REGIONS[*]}"
token=quickstart-$$-$RANDOM
edge_args=(--api 127.0.0.1:0 --token "$token" --state "$work/edge-state.json" --isr /)
for r in "${REGIONS[@]}"; do
  edge_args+=(--region "$r=127.0.0.1:0" --delay "$r=${DELAY_MS[$r]}")
done
# Own session: Ctrl-C in the terminal reaches this script only, which stops
# the services after the controller has rolled back.
setsid "$edge_bin" "${edge_args[@]}" >"$work/edge.log" 2>&1 &
pids+=($!)
declare -A region_url
api=""
for ((i = 0; i < START_TIMEOUT_S * 10; i++)); do
  api=$(sed -n 's/^canary-edge: api \(http:[^ ]*\).*/\1/p' "$work/edge.log" | head -n 1)
  n=0
  for r in "${REGIONS[@]}"; do
    region_url[$r]=$(sed -n "s/^canary-edge: region $r \\(http:[^ ]*\\).*/\\1/p" "$work/edge.log" | head -n 1)
    [ -n "${region_url[$r]}" ] && n=$((n + 1))
  done
  if [ -n "$api" ] && [ "$n" -eq ${#REGIONS[@]} ]; then
    break
  fi
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/edge.log" >&2; die "canary-edge exited"; }
  sleep 0.1
done
if [ -z "$api" ] || [ "$n" -ne ${#REGIONS[@]} ]; then
  cat "$work/edge.log" >&2
  die "canary-edge did not start within $START_TIMEOUT_S s"
fi
note "API $api (bearer token required)"
for r in "${REGIONS[@]}"; do
  note "region $r ${region_url[$r]} (propagation delay ${DELAY_MS[$r]} ms)"
done

edge_get() { # PATH: a GET on the edge's API listener
  curl -fsS --max-time 5 -H "Authorization: Bearer $token" "$api$1"
}
# What each region serves now: "region middleware-deployment server-deployment".
edge_get /__edge/state >"$work/state-seed.json"

say "agents: one canary-agent per region, mutual TLS to the controller"
ctl_port=$(free_port)
for r in "${REGIONS[@]}"; do
  port=${region_url[$r]##*:}
  port=${port%%/*}
  setsid "$agent_bin" run --region "$r" --id "agent-$r" \
    --dial "tls+tcp://127.0.0.1:$ctl_port" \
    --cert "$tls/agent-$r.pem" --key "$tls/agent-$r.key" --ca "$tls/controller-ca.pem" \
    --allow-host "$HOST" --connect-to "$HOST:80:127.0.0.1:$port" \
    >"$work/agent-$r.log" 2>&1 &
  pids+=($!)
  note "agent-$r: probes http://$HOST/ through 127.0.0.1:$port, dials tls+tcp://127.0.0.1:$ctl_port"
done
sleep 0.3
for p in "${pids[@]}"; do
  kill -0 "$p" 2>/dev/null || { tail -n 20 "$work"/agent-*.log >&2; die "an agent exited at start"; }
done

# ---- 4. the app and its two builds ------------------------------------------
# write_build NAME SERVER_VARS: wrangler configs, bundled modules and the
# rollout file of one build in $work/NAME/; SERVER_VARS are the server's vars
# (JSON members), where a bad build carries its fault.
write_build() {
  local name=$1 server_vars=$2 dir=$work/$1
  mkdir -p "$dir/dist"
  cat >"$dir/server.jsonc" <<EOF
// The server worker of build "$name" (the Next server on real Cloudflare).
{
  "name": "main-server",
  "main": "dist/server.js",
  "account_id": "$ACCOUNT",
  "compatibility_date": "2025-04-14",
  "compatibility_flags": ["nodejs_compat"],
  "version_metadata": { "binding": "CF_VERSION_METADATA" },
  "vars": { $server_vars },
}
EOF
  cat >"$dir/middleware.jsonc" <<EOF
// The middleware worker of build "$name": forwards to main-server pinned to
// WORKER_VERSION_ID, which canary-controller sets at upload.
{
  "name": "middleware",
  "main": "dist/middleware.js",
  "account_id": "$ACCOUNT",
  "compatibility_date": "2025-04-14",
  "compatibility_flags": ["nodejs_compat"],
  "version_metadata": { "binding": "CF_VERSION_METADATA" },
  "vars": { "WORKER_VERSION_ID": "set-at-upload", "SERVER_WORKER_NAME": "main-server" },
  "services": [ { "binding": "DEFAULT_WORKER", "service": "main-server" } ],
}
EOF
  # Already-bundled modules, uploaded as they are (canary-edge stores them;
  # its data plane plays their part).
  cat >"$dir/dist/server.js" <<EOF
// build $name: the server
export default {
  async fetch(request, env) {
    return new Response("hello from build $name\\n", {
      headers: { "x-canary-server-version": env.CF_VERSION_METADATA.id },
    });
  },
};
EOF
  cat >"$dir/dist/middleware.js" <<EOF
// build $name: the middleware, pinned to its server version
export default {
  async fetch(request, env) {
    const headers = new Headers(request.headers);
    headers.set("Cloudflare-Workers-Version-Overrides",
      \`\${env.SERVER_WORKER_NAME}="\${env.WORKER_VERSION_ID}"\`);
    const res = await env.DEFAULT_WORKER.fetch(new Request(request, { headers }));
    const out = new Response(res.body, res);
    out.headers.set("x-canary-middleware-version", env.CF_VERSION_METADATA.id);
    return out;
  },
};
EOF
  cat >"$dir/rollout.jsonc" <<EOF
{
  "name": "quickstart-$name",
  "workers": {
    "server": { "config": "server.jsonc" },
    "middleware": { "config": "middleware.jsonc", "pin_var": "WORKER_VERSION_ID" },
  },
  "deployer": { "kind": "api", "base_url": "$api/client/v4", "account_id": "$ACCOUNT",
                "token_env": "CLOUDFLARE_API_TOKEN",
                "upload_modules": { "server": ["dist/server.js"], "middleware": ["dist/middleware.js"] } },
  "steps": ["server-0", "middleware-50", "middleware-100", "server-100"],
  "probes": {
    "interval_s": 1,
    "targets": [
      { "id": "home", "url": "http://$HOST/", "requests": 12, "expect_status": [200], "cache": "isr" },
      { "id": "api", "url": "http://$HOST/api/health", "requests": 12, "expect_status": [200] },
    ],
    "headers": { "middleware_version": "x-canary-middleware-version",
                 "server_version": "x-canary-server-version", "cache": "x-opennext-cache" },
  },
  "regions": [ { "name": "enam", "min_agents": 1 }, { "name": "weur", "min_agents": 1 },
               { "name": "apac", "min_agents": 1 } ],
  // Loopback answers take about a millisecond, so a scheduling hiccup on a
  // busy machine is many times the baseline: the latency ratio is loose here
  // and the absolute p95 limit does the work.
  "gates": { "max_error_rate": 0.02, "max_p95_ms": 500, "max_latency_ratio": 50,
             "min_isr_hit_ratio": 0.5, "failure_limit": 0, "inconclusive_limit": 3,
             "bake_s": $BAKE_S, "converge_timeout_s": 10 },
  // server-0 cannot be seen from outside: wait this long for it to spread.
  "propagation_s": 1,
  "agents": { "listen": ["tls+tcp://127.0.0.1:$ctl_port"],
              "tls": { "cert": "$tls/controller.pem", "key": "$tls/controller.key",
                       "ca": "$tls/agents-ca.pem" },
              "round_timeout_s": 3 },
  "state_dir": "state",
}
EOF
}
write_build good ""
write_build bad "$FAULT_VARS"

# ---- 5. the two rollouts ----------------------------------------------------
export CLOUDFLARE_API_TOKEN=$token
# run_rollout NAME: runs canary-controller on build NAME, its output shown as
# it comes; sets rc and the start/end times (epoch ms).
run_rollout() {
  local name=$1 i
  local log=$work/$name/controller.log
  : >"$log"
  setsid "$controller_bin" run -f "$work/$name/rollout.jsonc" >"$log" 2>&1 &
  ctl_pid=$!
  tail -n +1 -f --pid="$ctl_pid" "$log" &
  tail_pid=$!
  for ((i = 0; i < ROLLOUT_TIMEOUT_S * 10; i++)); do
    kill -0 "$ctl_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$ctl_pid" 2>/dev/null; then
    printf 'quickstart: canary-controller still running after %d s: stopping it\n' \
      "$ROLLOUT_TIMEOUT_S" >&2
    kill -TERM "$ctl_pid" 2>/dev/null || true
  fi
  rc=0
  wait "$ctl_pid" || rc=$?
  ctl_pid=""
  wait "$tail_pid" 2>/dev/null || true
  tail_pid=""
}

say "rollout 1: a good build, promoted step by step"
run_rollout good
rc_good=$rc
edge_get /__edge/state >"$work/state-good.json"

say "rollout 2: a bad build (its server answers 20% of requests with a 500)"
run_rollout bad
rc_bad=$rc
edge_get /__edge/state >"$work/state-end.json"
edge_get /__edge/timeline >"$work/timeline.json"

# ---- 6. summary -------------------------------------------------------------
exit_meaning() {
  case $1 in
    0) echo "promoted" ;;
    1) echo "usage or config error, nothing changed" ;;
    2) echo "refused by preflight, nothing changed" ;;
    3) echo "rolled back, production verified on the old versions" ;;
    4) echo "ROLLBACK FAILED: a person must act" ;;
    5) echo "stopped on drift" ;;
    *) echo "ended by a signal or a crash" ;;
  esac
}

# log_field LINE KEY: the value of KEY in one text log line of the
# controller (key=bare or key="quoted with \" escapes").
log_field() {
  printf '%s\n' "$1" | awk -v key="$2" '
    {
      s = $0
      while ((i = index(s, " " key "=")) > 0) {
        s = substr(s, i + length(key) + 2)
        if (substr(s, 1, 1) == "\"") {
          v = ""; s = substr(s, 2)
          while (length(s) > 0) {
            c = substr(s, 1, 1)
            if (c == "\\") { v = v substr(s, 2, 1); s = substr(s, 3); continue }
            if (c == "\"") break
            v = v c; s = substr(s, 2)
          }
          print v; exit
        }
        split(s, parts, " "); print parts[1]; exit
      }
    }'
}
# log_ms LINE: the line's timestamp (first field, ISO 8601 UTC) in epoch ms.
log_ms() {
  date -d "${1%% *}" +%s%3N 2>/dev/null || echo ""
}
# log_event LINE: the event name (third field).
log_event() {
  awk '{ print $3 }' <<<"$1"
}

# Version labels: what the seed, the good build and the bad build uploaded,
# from canary-edge's state: version id -> "seed", "good" or "bad".
declare -A label=()
while read -r id what; do
  label[$id]=$what
done < <(jq -rn --slurpfile seed "$work/state-seed.json" --slurpfile good "$work/state-good.json" \
  --slurpfile final "$work/state-end.json" '
  def ids(s): [s.workers[].versions[].id];
  (ids($seed[0])) as $s | (ids($good[0])) as $g
  | ids($final[0])[] as $id
  | "\($id) \(if ($s | index($id)) != null then "seed"
              elif ($g | index($id)) != null then "good" else "bad" end)"')

# label_dep TEXT: a deployment as the controller logs it, "{ID:PCT, ID:PCT}",
# with each version named by its build: "good 0de2921d 50% + bad d2dcad9f 50%".
label_dep() {
  local text=${1#\{} out="" part id pct
  text=${text%\}}
  IFS=',' read -ra parts <<<"$text"
  for part in "${parts[@]}"; do
    part=${part# }
    id=${part%%:*}
    pct=${part##*:}
    out+="${out:+ + }${label[$id]:-?} ${id:0:8} $pct%"
  done
  printf '%s' "$out"
}

# steps_summary NAME: rollout NAME step by step, from its controller log:
# what each step deployed, how it converged, its bake verdicts, why it was
# rolled back, and the outcome.
steps_summary() {
  local log=$work/$1/controller.log line ev step summary rounds shown=0
  local -A pass=() fail=() inconc=() deps=() conv=() firstfail=()
  local order=() findings=() reason="" outcome=""
  while IFS= read -r line; do
    ev=$(log_event "$line")
    step=$(log_field "$line" step)
    case $ev in
      deploy)
        [ -n "${deps[$step]+x}" ] || order+=("$step")
        deps[$step]="${deps[$step]:+${deps[$step]}; }$(log_field "$line" worker): $(label_dep "$(log_field "$line" deployment)")"
        ;;
      converged)
        # Rollback moves converge as "rollback move N"; their deploys are "rollback-N".
        [[ $step == "rollback move "* ]] && step=rollback-${step#rollback move }
        conv[$step]=$(log_field "$line" rounds)
        ;;
      verdict)
        summary=$(log_field "$line" summary)
        [ -n "${deps[$step]+x}" ] || { order+=("$step"); deps[$step]="(what served before the rollout)"; }
        case ${summary%% *} in
          PASS) pass[$step]=$((${pass[$step]:-0} + 1)) ;;
          FAIL)
            fail[$step]=$((${fail[$step]:-0} + 1))
            [ -n "${firstfail[$step]:-}" ] || firstfail[$step]=$summary
            ;;
          *) inconc[$step]=$((${inconc[$step]:-0} + 1)) ;;
        esac
        ;;
      finding)
        [ ${#findings[@]} -ge 3 ] || findings+=("$step, $(log_field "$line" region), $(log_field "$line" target): $(log_field "$line" detail)")
        ;;
      rollback) reason=$(log_field "$line" reason) ;;
      promoted | rolled_back) outcome="$ev: $(log_field "$line" msg)" ;;
    esac
  done <"$log"
  for step in "${order[@]}"; do
    shown=1
    printf '   %-15s %s\n' "$step" "${deps[$step]}"
    rounds=""
    [ -z "${conv[$step]:-}" ] || rounds="converged after ${conv[$step]} probe round(s)"
    if [ $((${pass[$step]:-0} + ${fail[$step]:-0} + ${inconc[$step]:-0})) -gt 0 ]; then
      rounds+="${rounds:+; }verdicts: ${pass[$step]:-0} PASS, ${fail[$step]:-0} FAIL, ${inconc[$step]:-0} INCONCLUSIVE"
    fi
    [ -z "$rounds" ] || printf '   %-15s %s\n' "" "$rounds"
    [ -z "${firstfail[$step]:-}" ] || printf '   %-15s first FAIL: %s\n' "" "${firstfail[$step]#FAIL }"
  done
  [ "$shown" -eq 1 ] || note "(no steps ran: see $log)"
  for line in "${findings[@]}"; do
    note "finding: $line"
  done
  [ -z "$reason" ] || note "rollback because: $reason"
  [ -z "$outcome" ] || note "$outcome"
}

# serving FILE: per region, the middleware and server deployments, labelled.
serving() {
  local region mw srv
  while read -r region mw srv; do
    printf '   %-6s middleware: %-28s server: %s\n' "$region" "$(label_dep "$mw")" "$(label_dep "$srv")"
  done < <(jq -r 'def dep(d): "{" + ([d.versions[]? | "\(.version_id):\(.percentage)"] | join(",")) + "}";
    .regions[] | "\(.name) \(dep(.deployments.middleware)) \(dep(.deployments["main-server"]))"' "$1")
}

# The fault's timeline: when the bad build first reached users (the first
# timeline event where a region's middleware deployment gives a bad version
# more than 0%: it pins the bad server), the first failing verdict, the
# controller's rollback decision and first rollback deploy, and when every
# region was back on the good build.
bad_ids=$(for id in "${!label[@]}"; do
  if [ "${label[$id]}" = bad ]; then printf '%s\n' "$id"; fi
done | jq -Rsc 'split("\n") | map(select(. != ""))')
fault_ms=$(jq -r --argjson bad "$bad_ids" '
  [.events[] | select(.worker == "middleware")
   | select(any(.versions[]; (.version_id as $v | $bad | index($v)) != null and .percentage > 0))
   | .t_ms] | min // empty' "$work/timeline.json")
restored_ms=""
if [ -n "$fault_ms" ]; then
  # Per region, the first change after the fault that leaves no bad
  # middleware; the latest of those, or nothing if a region never got there.
  restored_ms=$(jq -r --argjson bad "$bad_ids" --argjson fault "$fault_ms" '
    [.events[] | select(.worker == "middleware" and .t_ms >= $fault)] as $ev
    | [$ev[].region] | unique
    | map(. as $r | [$ev[] | select(.region == $r)
          | select(all(.versions[]; (.version_id as $v | $bad | index($v)) == null))
          | .t_ms] | min)
    | if length == 0 or any(. == null) then empty else max end' "$work/timeline.json")
fi
fail_ms="" decided_ms="" move_ms=""
while IFS= read -r line; do
  case $(log_event "$line") in
    verdict)
      if [ -z "$fail_ms" ] && [[ $(log_field "$line" summary) == FAIL* ]]; then
        fail_ms=$(log_ms "$line")
      fi
      ;;
    rollback) [ -n "$decided_ms" ] || decided_ms=$(log_ms "$line") ;;
    deploy)
      if [ -z "$move_ms" ] && [[ $(log_field "$line" step) == rollback* ]]; then
        move_ms=$(log_ms "$line")
      fi
      ;;
  esac
done <"$work/bad/controller.log"
after_fault() { # MS: "+S.s s" after the fault, or "-"
  if [ -n "$1" ] && [ -n "$fault_ms" ]; then
    local d=$(($1 - fault_ms))
    printf '+%d.%d s' $((d / 1000)) $((d % 1000 / 100))
  else
    printf -- '-'
  fi
}

say "summary ($(elapsed_s) s in all)"
printf '\n rollout 1, good build: exit %d, %s\n' "$rc_good" "$(exit_meaning "$rc_good")"
steps_summary good
printf '\n rollout 2, bad build (CANARY_EDGE_ERROR_RATE=0.2 on its server): exit %d, %s\n' \
  "$rc_bad" "$(exit_meaning "$rc_bad")"
steps_summary bad
printf '\n time from fault to rollback (bad build):\n'
if [ -n "$fault_ms" ]; then
  fault_at=$(date -u -d "@$((fault_ms / 1000))" +%H:%M:%S)
  note "first region sends users to the bad build  $fault_at.$(printf '%03d' $((fault_ms % 1000))) UTC"
  note "first failing verdict                      $(after_fault "$fail_ms")"
  note "controller decides to roll back            $(after_fault "$decided_ms")"
  note "first rollback deploy                      $(after_fault "$move_ms")"
  note "every region back on the good build        $(after_fault "$restored_ms")"
else
  note "the bad build never reached users"
fi
printf '\n versions serving at the end (canary-edge /__edge/state):\n'
serving "$work/state-end.json"
printf '\n'

if [ "$rc_good" -eq 0 ] && [ "$rc_bad" -eq 3 ]; then
  failed=0
  note "as expected: the good build was promoted, the bad one rolled itself back."
  exit 0
fi
note "unexpected outcome: logs in $work"
exit 1
