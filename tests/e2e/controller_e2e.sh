#!/usr/bin/env bash
# controller_e2e.sh: canary-controller end to end on loopback.
#
#   controller_e2e.sh SCENARIO CONTROLLER AGENT EDGE CHECKER [WRANGLER]
#
# Starts the real programs: canary-edge with three regions (different
# propagation delays), three canary-agents (one per region) dialing the
# controller over mutual TLS (certificates made here with the openssl CLI),
# and canary-controller with the `api` deployer (bundled module files, or the
# real wrangler for the wrangler-* scenarios). Then checks the exit code, the
# versions the edge ends on, and replays /__edge/timeline with CHECKER to
# prove the skew invariant held in every region at every moment.
#
# Scenarios:
#   promote                 a good build is promoted (exit 0, every region on m1+s1)
#   fault-error|fault-latency|fault-ignore-pin|fault-override-key|fault-no-cache
#                           a bad build is rolled back (exit 3, every region on m0+s0)
#   drift                   someone deploys mid-rollout: exit 5, their deployment untouched
#   sigterm                 SIGTERM mid-rollout: rolled back (exit 3)
#   wrangler-promote|wrangler-fault
#                           the same with the wrangler deployer and the real wrangler
#   manual-rollback         the controller is killed (-9) mid-rollout; `rollback` by hand restores
#                           m0+s0 (exit 3), `status` says so, a second `rollback` has nothing to do
#   check                   `check` on a healthy production (exit 0), then with a region down (exit 1)
#   detect                  the detection benchmark (tests/bench/controller_detect_bench.sh):
#                           a region goes down while middleware-100 bakes; prints the time
#                           from the fault to the controller's rollback decision
set -euo pipefail

scenario=$1
controller=$2
agent=$3
edge=$4
checker=$5
wrangler=${6:-}

work=$(mktemp -d "${TMPDIR:-/tmp}/canary-e2e-$scenario.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    echo "---- $scenario failed (rc $rc); logs:"
    for f in "$work"/*.log; do echo "== $f"; tail -n 60 "$f"; done
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL ($scenario): $*" >&2; exit 1; }
log() { echo "== $scenario: $*"; }

# A free TCP port on 127.0.0.1 for the controller's listener: random below
# the kernel's ephemeral range (32768..), so no outgoing connection holds
# it, and not listened on. canary-edge binds port 0 and says where it is.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# ---- certificates: one CA for the controller, one for the agents ----------
# mbedTLS 2.28 (under nng) matches DNS names only: 127.0.0.1 is a DNS SAN too.
make_cert() { # NAME CA CN
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$3" \
    -keyout "$work/$1.key" -out "$work/$1.csr" 2>/dev/null
  printf 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:localhost\n' >"$work/$1.ext"
  openssl x509 -req -in "$work/$1.csr" -CA "$work/$2.pem" -CAkey "$work/$2.key" \
    -CAcreateserial -days 2 -extfile "$work/$1.ext" -out "$work/$1.pem" 2>/dev/null
}
for ca in controller-ca agents-ca; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$ca" -keyout "$work/$ca.key" -out "$work/$ca.pem" 2>/dev/null
done
make_cert controller controller-ca 127.0.0.1
for r in enam weur apac; do make_cert "agent-$r" agents-ca "agent-$r"; done

# ---- canary-edge ------------------------------------------------------------
token=e2e-token-$$
"$edge" --api 127.0.0.1:0 \
  --region enam=127.0.0.1:0 --delay enam=50 \
  --region weur=127.0.0.1:0 --delay weur=300 \
  --region apac=127.0.0.1:0 --delay apac=700 \
  --token "$token" --state "$work/edge-state.json" --isr / >"$work/edge.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q "canary-edge: ready" "$work/edge.log" && break
  sleep 0.1
done
grep -q "canary-edge: ready" "$work/edge.log" || fail "canary-edge did not start"
api=$(sed -n 's|^canary-edge: api \(http://127.0.0.1:[0-9]*\)$|\1|p' "$work/edge.log")
declare -A region_port
for r in enam weur apac; do
  region_port[$r]=$(sed -n "s|^canary-edge: region $r http://127.0.0.1:\([0-9]*\)\$|\1|p" \
    "$work/edge.log")
  [ -n "${region_port[$r]}" ] || fail "canary-edge did not say where region $r listens"
done
[ -n "$api" ] || fail "canary-edge did not say where its API listens"
account=e2e-account
# The slowest region applies a deployment change this long after the API
# accepted it (--delay above), plus a margin.
settle() { sleep 1.5; }

edge_get() { curl -fsS -H "Authorization: Bearer $token" "$api$1"; }

# ---- the app: wrangler configs and bundled modules --------------------------
# FAULT_VARS: extra vars of the middleware build being rolled out.
fault_vars=""
case $scenario in
  fault-error) fault_vars='"CANARY_EDGE_ERROR_RATE": "0.5",' ;;
  fault-latency) fault_vars='"CANARY_EDGE_LATENCY_MS": "600",' ;;
  fault-ignore-pin | wrangler-fault) fault_vars='"CANARY_EDGE_IGNORE_PIN": "1",' ;;
  fault-override-key) fault_vars='"CANARY_EDGE_OVERRIDE_KEY": "server",' ;;
  fault-no-cache) fault_vars='"CANARY_EDGE_NO_CACHE": "1",' ;;
esac
mkdir -p "$work/app/dist"
cat >"$work/app/server.jsonc" <<EOF
{
  "name": "main-server",
  "main": "dist/server.js",
  "account_id": "$account",
  "compatibility_date": "2025-04-14",
  "version_metadata": { "binding": "CF_VERSION_METADATA" },
}
EOF
cat >"$work/app/middleware.jsonc" <<EOF
{
  "name": "middleware",
  "main": "dist/middleware.js",
  "account_id": "$account",
  "compatibility_date": "2025-04-14",
  "version_metadata": { "binding": "CF_VERSION_METADATA" },
  "vars": { $fault_vars "WORKER_VERSION_ID": "set-at-upload", "SERVER_WORKER_NAME": "main-server" },
  "services": [ { "binding": "DEFAULT_WORKER", "service": "main-server" } ],
}
EOF
cat >"$work/app/dist/server.js" <<'EOF'
export default { async fetch() { return new Response("server"); } };
EOF
cat >"$work/app/dist/middleware.js" <<'EOF'
export default { async fetch(req, env) { return env.DEFAULT_WORKER.fetch(req); } };
EOF

# ---- the rollout file ---------------------------------------------------------
ctl_port=$(free_port)
steps='"server-0", "middleware-50", "middleware-100", "server-100"'
bake=3
case $scenario in
  sigterm | drift | manual-rollback) bake=6 ;;
  detect)
    # A long bake on middleware-100, the step the fault interrupts.
    steps='"server-0", "middleware-50", { "step": "middleware-100", "bake_s": 30 }, "server-100"'
    ;;
esac
if [[ $scenario == wrangler-* ]]; then
  deployer="{ \"kind\": \"wrangler\", \"command\": [\"$wrangler\"], \"timeout_s\": 120 }"
  export CLOUDFLARE_API_BASE_URL="$api/client/v4" CLOUDFLARE_API_TOKEN=$token
  export CLOUDFLARE_ACCOUNT_ID=$account WRANGLER_SEND_METRICS=false
  # Offline: skip wrangler's npm update check.
  mkdir -p "$work/tmp/update-check"
  printf '{"latest":"4.86.0","lastUpdate":%s000}' "$(date +%s)" \
    >"$work/tmp/update-check/wrangler-latest.json"
  export TMPDIR=$work/tmp HOME=$work
else
  deployer="{ \"kind\": \"api\", \"base_url\": \"$api/client/v4\", \"account_id\": \"$account\",
    \"token_env\": \"CANARY_E2E_TOKEN\",
    \"upload_modules\": { \"server\": [\"dist/server.js\"], \"middleware\": [\"dist/middleware.js\"] } }"
  export CANARY_E2E_TOKEN=$token
fi
cat >"$work/app/rollout.jsonc" <<EOF
{
  "name": "e2e-$scenario",
  "workers": {
    "server": { "config": "server.jsonc" },
    "middleware": { "config": "middleware.jsonc", "pin_var": "WORKER_VERSION_ID" },
  },
  "deployer": $deployer,
  "steps": [ $steps ],
  "probes": {
    "interval_s": 1,
    "targets": [
      { "id": "home", "url": "http://docs.example.com/", "requests": 12, "expect_status": [200],
        "cache": "isr", "timeout_ms": 3000 },
      { "id": "api", "url": "http://docs.example.com/api/health", "requests": 12,
        "expect_status": [200], "timeout_ms": 3000 },
    ],
  },
  "regions": [ { "name": "enam", "min_agents": 1 }, { "name": "weur", "min_agents": 1 },
               { "name": "apac", "min_agents": 1 } ],
  "gates": { "max_error_rate": 0.05, "max_p95_ms": 400, "min_isr_hit_ratio": 0.5,
             "failure_limit": 0, "inconclusive_limit": 3, "bake_s": $bake,
             "converge_timeout_s": 20 },
  "propagation_s": 1,
  "agents": { "listen": ["tls+tcp://127.0.0.1:$ctl_port"],
              "tls": { "cert": "../controller.pem", "key": "../controller.key",
                       "ca": "../agents-ca.pem" },
              "round_timeout_s": 4 },
  "state_dir": "state",
}
EOF

# ---- agents -------------------------------------------------------------------
start_agents() {
  for r in enam weur apac; do
    "$agent" run --region "$r" --id "agent-$r" --dial "tls+tcp://127.0.0.1:$ctl_port" \
      --cert "$work/agent-$r.pem" --key "$work/agent-$r.key" --ca "$work/controller-ca.pem" \
      --allow-host docs.example.com \
      --connect-to "docs.example.com:80:127.0.0.1:${region_port[$r]}" >"$work/agent-$r.log" 2>&1 &
    pids+=($!)
  done
}

check_timeline() { # initial|new
  settle
  edge_get /__edge/state >"$work/state.json"
  edge_get /__edge/timeline >"$work/timeline.json"
  "$checker" "$work/state.json" "$work/timeline.json" middleware main-server --final "$1" ||
    fail "timeline check ($1)"
}

run_controller() { # COMMAND [ARGS...]; sets rc
  set +e
  "$controller" "$@" -f "$work/app/rollout.jsonc" >>"$work/controller.log" 2>&1
  rc=$?
  set -e
}

start_agents
case $scenario in
  promote | wrangler-promote)
    run_controller run
    [ $rc -eq 0 ] || fail "expected exit 0 (promoted), got $rc"
    check_timeline new
    grep -q 'promoted' "$work/controller.log" || fail "no promoted line"
    # An ended rollout: resume prints the outcome and exits with its code.
    run_controller resume
    [ $rc -eq 0 ] || fail "resume of a promoted rollout: expected 0, got $rc"
    run_controller status
    [ $rc -eq 0 ] || fail "status: expected 0, got $rc"
    ;;
  fault-* | wrangler-fault)
    run_controller run
    [ $rc -eq 3 ] || fail "expected exit 3 (rolled back), got $rc"
    check_timeline initial
    # The verdict names the check the fault trips.
    case $scenario in
      fault-error) want='check=error_rate' ;;
      fault-latency) want='check=p95' ;;
      fault-no-cache) want='check=isr_hit_ratio' ;;
      *) want='check=affinity\|check=unexpected_pair' ;;
    esac
    grep "finding" "$work/controller.log" | head -3
    grep -q "$want" "$work/controller.log" || fail "no finding with $want"
    grep -q 'rolled_back' "$work/controller.log" || fail "no rolled_back line"
    ;;
  sigterm)
    "$controller" run -f "$work/app/rollout.jsonc" >>"$work/controller.log" 2>&1 &
    cpid=$!
    # Stop it once the middleware step has begun baking.
    for _ in $(seq 1 600); do
      grep -q 'middleware-50' "$work/controller.log" && grep -q 'converged' "$work/controller.log" && break
      sleep 0.1
    done
    kill -TERM "$cpid"
    set +e
    wait "$cpid"
    rc=$?
    set -e
    [ $rc -eq 3 ] || fail "SIGTERM: expected exit 3 (rolled back), got $rc"
    check_timeline initial
    ;;
  drift)
    "$controller" run -f "$work/app/rollout.jsonc" >>"$work/controller.log" 2>&1 &
    cpid=$!
    # While server-0 bakes (nothing a probe sees depends on s1 yet)...
    for _ in $(seq 1 600); do
      grep -q 'verdict step=server-0 phase=bake' "$work/controller.log" && break
      sleep 0.1
    done
    # ...someone else deploys the server at 100% of its current first version.
    dep=$(edge_get "/client/v4/accounts/$account/workers/scripts/main-server/deployments")
    first=$(printf '%s' "$dep" | grep -o '"version_id":"[0-9a-f-]*"' | head -1 | cut -d'"' -f4)
    [ -n "$first" ] || fail "no server deployment to drift from"
    curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"strategy\":\"percentage\",\"versions\":[{\"version_id\":\"$first\",\"percentage\":100}]}" \
      "$api/client/v4/accounts/$account/workers/scripts/main-server/deployments" >/dev/null
    set +e
    wait "$cpid"
    rc=$?
    set -e
    [ $rc -eq 5 ] || fail "drift: expected exit 5, got $rc"
    after=$(edge_get "/client/v4/accounts/$account/workers/scripts/main-server/deployments" |
      grep -o '"version_id":"[0-9a-f-]*","percentage":[0-9]*' | head -1)
    [ "$after" = "\"version_id\":\"$first\",\"percentage\":100" ] ||
      fail "drift: the other deployment was touched: $after"
    ;;
  manual-rollback)
    "$controller" run -f "$work/app/rollout.jsonc" >>"$work/controller.log" 2>&1 &
    cpid=$!
    for _ in $(seq 1 600); do
      grep -q 'verdict step=middleware-50 phase=bake' "$work/controller.log" && break
      sleep 0.1
    done
    grep -q 'verdict step=middleware-50 phase=bake' "$work/controller.log" ||
      fail "middleware-50 never baked"
    kill -KILL "$cpid"
    wait "$cpid" 2>/dev/null || true
    run_controller status
    grep -q 'in progress or interrupted' "$work/controller.log" ||
      fail "status of a killed rollout does not say it was interrupted"
    # A new run must not start over the unfinished one.
    run_controller run
    [ $rc -eq 1 ] || fail "run over an unfinished rollout: expected exit 1, got $rc"
    grep -q 'never ended' "$work/controller.log" || fail "run did not say why it refused"
    run_controller rollback
    [ $rc -eq 3 ] || fail "rollback by hand: expected exit 3, got $rc"
    grep -q 'rollback_move move=2' "$work/controller.log" ||
      fail "rollback by hand did not move the middleware back first"
    check_timeline initial
    "$controller" status --json -f "$work/app/rollout.jsonc" >"$work/status.json"
    grep -q '"outcome":"rolled_back"' "$work/status.json" ||
      fail "status --json: $(cat "$work/status.json")"
    # Production is m0+s0 already: nothing to move, verified, exit 0.
    run_controller rollback
    [ $rc -eq 0 ] || fail "second rollback by hand: expected exit 0, got $rc"
    ;;
  check)
    run_controller check --log-format json
    [ $rc -eq 0 ] || fail "check on healthy production: expected 0, got $rc"
    grep -q '^{"ts":"[^"]*","level":"info","event":"verdict",.*"summary":"PASS' \
      "$work/controller.log" || fail "check --log-format json: no JSON verdict line"
    curl -fsS -X POST -H "Authorization: Bearer $token" "$api/__edge/regions/weur/down" >/dev/null
    run_controller check
    [ $rc -eq 1 ] || fail "check with a region down: expected 1, got $rc"
    ;;
  detect)
    "$controller" run -f "$work/app/rollout.jsonc" >>"$work/controller.log" 2>&1 &
    cpid=$!
    for _ in $(seq 1 900); do
      grep -q 'verdict step=middleware-100 phase=bake' "$work/controller.log" && break
      sleep 0.1
    done
    grep -q 'verdict step=middleware-100 phase=bake' "$work/controller.log" ||
      fail "middleware-100 never baked"
    t0=$(date +%s%3N)
    curl -fsS -X POST -H "Authorization: Bearer $token" "$api/__edge/regions/weur/down" >/dev/null
    set +e
    wait "$cpid"
    rc=$?
    set -e
    [ $rc -eq 3 ] || fail "region down: expected exit 3 (rolled back), got $rc"
    # The rollback decision's log line carries its own time stamp.
    ts=$(grep -m1 ' rollback reason=' "$work/controller.log" | cut -d' ' -f1)
    t1=$(date -d "$ts" +%s%3N)
    grep -m1 ' rollback reason=' "$work/controller.log"
    echo "detection: $((t1 - t0)) ms from the fault to the rollback decision" \
      "($(awk "BEGIN { printf \"%.2f\", ($t1 - $t0) / 1000 }") probe intervals of 1 s)"
    ;;
  *)
    fail "unknown scenario"
    ;;
esac
log "ok"
