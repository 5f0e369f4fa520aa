#!/usr/bin/env bash
# controller_e2e.sh: canary-controller end to end on loopback.
#
#   controller_e2e.sh SCENARIO CONTROLLER AGENT EDGE CHECKER [WRANGLER]
#
# Starts the real programs (e2e_lib.sh): canary-edge with three regions
# (different propagation delays), three canary-agents (one per region)
# dialing the controller over mutual TLS (certificates made with the openssl
# CLI), and canary-controller with the `api` deployer (bundled module files,
# or the real wrangler for the wrangler-* scenarios). Then checks the exit
# code, the versions the edge ends on, and replays /__edge/timeline with
# CHECKER to prove the skew invariant held in every region at every moment.
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

# shellcheck source=e2e_lib.sh
. "$(dirname "$0")/e2e_lib.sh"
lib_args "$@"
wrangler=${6:-}
lib_init

# The middleware build being rolled out: faults come from its vars.
case $scenario in
fault-error) LIB_FAULT_VARS='"CANARY_EDGE_ERROR_RATE": "0.5",' ;;
fault-latency) LIB_FAULT_VARS='"CANARY_EDGE_LATENCY_MS": "600",' ;;
fault-ignore-pin | wrangler-fault) LIB_FAULT_VARS='"CANARY_EDGE_IGNORE_PIN": "1",' ;;
fault-override-key) LIB_FAULT_VARS='"CANARY_EDGE_OVERRIDE_KEY": "server",' ;;
fault-no-cache) LIB_FAULT_VARS='"CANARY_EDGE_NO_CACHE": "1",' ;;
esac
LIB_BAKE=3
LIB_ROUND_TIMEOUT=4
LIB_CONVERGE_TIMEOUT=20
case $scenario in
sigterm | drift | manual-rollback) LIB_BAKE=6 ;;
detect)
	# A long bake on middleware-100, the step the fault interrupts.
	LIB_STEPS='"server-0", "middleware-50", { "step": "middleware-100", "bake_s": 30 }, "server-100"'
	;;
esac

lib_start_platform
if [[ $scenario == wrangler-* ]]; then
	lib_wrangler_env "$wrangler"
	LIB_DEPLOYER="{ \"kind\": \"wrangler\", \"command\": [\"$wrangler\"], \"timeout_s\": 120 }"
fi
lib_app
lib_rollout
lib_start_agents
lib_read_production

case $scenario in
promote | wrangler-promote)
	lib_controller run
	[ $rc -eq 0 ] || lib_fail "expected exit 0 (promoted), got $rc"
	lib_check_timeline new
	grep -q 'promoted' "$work/controller.log" || lib_fail "no promoted line"
	# The new server version carries its config's compatibility date.
	sv=$(grep -m 1 -o 'server version [0-9a-f-]*' "$work/controller.log" | cut -d' ' -f3)
	cd_got=$(lib_edge_get "/client/v4/accounts/$account/workers/scripts/main-server/versions/$sv" |
		jq -r .result.resources.script_runtime.compatibility_date)
	[ "$cd_got" = 2025-06-01 ] || lib_fail "server $sv: compatibility_date $cd_got, expected 2025-06-01"
	# An ended rollout: resume prints the outcome and exits with its code.
	lib_controller resume
	[ $rc -eq 0 ] || lib_fail "resume of a promoted rollout: expected 0, got $rc"
	lib_controller status
	[ $rc -eq 0 ] || lib_fail "status: expected 0, got $rc"
	;;
fault-* | wrangler-fault)
	lib_controller run
	[ $rc -eq 3 ] || lib_fail "expected exit 3 (rolled back), got $rc"
	lib_check_timeline initial
	# The verdict names the check the fault trips.
	case $scenario in
	fault-error) want='check=error_rate' ;;
	fault-latency) want='check=p95' ;;
	fault-no-cache) want='check=isr_hit_ratio' ;;
	*) want='check=affinity\|check=unexpected_pair' ;;
	esac
	grep -m 3 "finding" "$work/controller.log" || true
	grep -q "$want" "$work/controller.log" || lib_fail "no finding with $want"
	grep -q 'rolled_back' "$work/controller.log" || lib_fail "no rolled_back line"
	;;
sigterm)
	lib_controller_bg run
	# Stop it once the middleware step has begun baking.
	lib_wait_log 'converged step=middleware-50'
	kill -TERM "$cpid"
	lib_wait_controller
	[ $rc -eq 3 ] || lib_fail "SIGTERM: expected exit 3 (rolled back), got $rc"
	lib_check_timeline initial
	;;
drift)
	lib_controller_bg run
	# While server-0 bakes (nothing a probe sees depends on s1 yet)...
	lib_wait_log 'verdict step=server-0 phase=bake'
	# ...someone else deploys the server at 100% of its current first version.
	first=$(lib_deployment main-server | cut -d, -f1 | cut -d: -f1)
	[ -n "$first" ] || lib_fail "no server deployment to drift from"
	lib_deploy_by_hand main-server "$first"
	lib_wait_controller
	[ $rc -eq 5 ] || lib_fail "drift: expected exit 5, got $rc"
	after=$(lib_deployment main-server)
	[ "$after" = "$first:100" ] || lib_fail "drift: the other deployment was touched: $after"
	;;
manual-rollback)
	lib_controller_bg run
	lib_wait_log 'verdict step=middleware-50 phase=bake'
	kill -KILL "$cpid"
	wait "$cpid" 2>/dev/null || true
	lib_controller status
	grep -q 'in progress or interrupted' "$work/controller.log" ||
		lib_fail "status of a killed rollout does not say it was interrupted"
	# A new run must not start over the unfinished one.
	lib_controller run
	[ $rc -eq 1 ] || lib_fail "run over an unfinished rollout: expected exit 1, got $rc"
	grep -q 'never ended' "$work/controller.log" || lib_fail "run did not say why it refused"
	lib_controller rollback
	[ $rc -eq 3 ] || lib_fail "rollback by hand: expected exit 3, got $rc"
	grep -q 'rollback_move move=2' "$work/controller.log" ||
		lib_fail "rollback by hand did not move the middleware back first"
	lib_check_timeline initial
	lib_ctl_args
	"$controller" status --json "${ctl_args[@]}" >"$work/status.json"
	grep -q '"outcome":"rolled_back"' "$work/status.json" ||
		lib_fail "status --json: $(cat "$work/status.json")"
	# Production is m0+s0 already: nothing to move, verified, exit 0.
	lib_controller rollback
	[ $rc -eq 0 ] || lib_fail "second rollback by hand: expected exit 0, got $rc"
	;;
check)
	lib_controller check --log-format json
	[ $rc -eq 0 ] || lib_fail "check on healthy production: expected 0, got $rc"
	grep -q '^{"ts":"[^"]*","level":"info","event":"verdict",.*"summary":"PASS' \
		"$work/controller.log" || lib_fail "check --log-format json: no JSON verdict line"
	lib_edge_post /__edge/regions/weur/down
	lib_controller check
	[ $rc -eq 1 ] || lib_fail "check with a region down: expected 1, got $rc"
	;;
detect)
	lib_controller_bg run
	lib_wait_log 'verdict step=middleware-100 phase=bake'
	t0=$(date +%s%3N)
	lib_edge_post /__edge/regions/weur/down
	lib_wait_controller
	[ $rc -eq 3 ] || lib_fail "region down: expected exit 3 (rolled back), got $rc"
	# The rollback decision's log line carries its own time stamp.
	ts=$(grep -m1 ' rollback reason=' "$work/controller.log" | cut -d' ' -f1)
	t1=$(date -d "$ts" +%s%3N)
	grep -m1 ' rollback reason=' "$work/controller.log"
	echo "detection: $((t1 - t0)) ms from the fault to the rollback decision" \
		"($(awk "BEGIN { printf \"%.2f\", ($t1 - $t0) / 1000 }") probe intervals of 1 s)"
	;;
*)
	lib_fail "unknown scenario"
	;;
esac
lib_log "ok"
