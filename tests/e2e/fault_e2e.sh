#!/usr/bin/env bash
# fault_e2e.sh: rollouts against a failing platform, failing agents and a
# deployment made behind the rollout's back. Each ends with its documented
# exit code (0 promoted, 2 refused by preflight, 3 rolled back, 5 drift) and
# production consistent: the old pair after a rollback, untouched after a
# refusal or drift, the skew invariant held in the edge's timeline.
#
#   fault_e2e.sh SCENARIO CONTROLLER AGENT EDGE CHECKER WATCH PROXY FAKE [WRANGLER]
#
# Scenarios:
#   api-500-read            two reads answered 500 mid-rollout: retried, promoted
#   api-500-deploy          the middleware-50 deploy answered 500 (not applied):
#                           not repeated blindly, rolled back
#   api-applied-500         the middleware-50 deploy applied, answered 500:
#                           rolled back from what the platform really holds
#   api-429                 two deploys answered 429 Retry-After: 1: waited,
#                           repeated, promoted
#   api-malformed           a deployments read answered with cut-off JSON after
#                           the uploads: rolled back
#   api-malformed-preflight the first deployments read malformed: refused (2),
#                           nothing uploaded or deployed
#   api-rollback-blocked    a bad build whose rollback cannot deploy (every
#                           middleware deploy answered 500): exit 4 naming the
#                           state production is in and the commands that finish
#                           the job; once the API is back, `rollback` finishes
#                           it (exit 3)
#   agent-bad-reports       a fake agent in enam (joining after the baseline)
#                           answers every survey with a bad
#                           report (not JSON, NUL bytes, cut, too deep, wrong
#                           field type, wrong protocol, over 1 MiB, empty, no
#                           targets); the real agents carry the rollout: promoted
#   agent-only-bad          apac's only agent is the fake one: apac never has a
#                           good report, refused (2) naming it, nothing changed
#   quorum-late-region      enam has two agents, apac's connects only once the
#                           baseline round went out without it: the round is
#                           repeated until apac reports, promoted
#   quorum-missing-region   the same, apac's agent never comes: refused (2)
#                           after the quorum wait, naming apac and what it had
#   drift                   someone deploys the server by hand while server-0
#                           bakes: stopped (5), their deployment untouched
#   wrangler-exit           the middleware-50 `versions deploy` exits 1 with a
#                           coloured error: rolled back, colour codes stripped
#   wrangler-hang           the server-0 `versions deploy` never answers:
#                           killed at timeout_s, rolled back (timeout_s is 45:
#                           a real call can take 15 s on a loaded machine)
#   wrangler-garbage        the `deployments status` after the uploads prints
#                           garbage: rolled back
set -euo pipefail

# shellcheck source=e2e_lib.sh
. "$(dirname "$0")/e2e_lib.sh"
lib_args "$@"
watch=$6
proxy=$7
fake=$8
wrangler=${9:-}
lib_init

case $scenario in
agent-*) LIB_INSECURE=1 ;;
quorum-late-region)
	LIB_STEPS='"server-0", "middleware-100", "server-100"'
	LIB_BAKE=1
	# The quorum wait is 2 round timeouts: 10 s for apac's agent to start.
	LIB_ROUND_TIMEOUT=5
	;;
api-rollback-blocked) LIB_FAULT_VARS='"CANARY_EDGE_ERROR_RATE": "0.5",' ;;
drift) LIB_BAKE=4 ;;
esac

lib_start_platform

# ---- the API through the fault proxy ------------------------------------------
proxy_url=""
start_proxy() {
	"$proxy" --listen 127.0.0.1:0 --upstream "127.0.0.1:$api_port" --log "$work/proxy-requests.log" \
		>"$work/proxy.log" 2>&1 &
	lib_pids+=($!)
	for _ in $(seq 1 50); do
		proxy_url=$(sed -n 's/^fault_proxy: listening //p' "$work/proxy.log")
		[ -n "$proxy_url" ] && return 0
		sleep 0.1
	done
	lib_fail "fault_proxy did not start"
}
arm() { # QUERY
	curl -fsS -X POST "$proxy_url/__fault/arm?$1" >/dev/null || lib_fail "arming $1"
}
faults() { # KIND: faulted requests so far
	grep -c " fault $1\$" "$work/proxy-requests.log" || true
}
case $scenario in
api-*)
	start_proxy
	LIB_API_BASE=$proxy_url
	;;
esac

# ---- the deployer CLI that fails once -------------------------------------------
if [[ $scenario == wrangler-* ]]; then
	lib_wrangler_env "$wrangler"
	mkdir -p "$work/wr"
	export FAULT_WRANGLER_REAL=$wrangler FAULT_WRANGLER_DIR=$work/wr
	case $scenario in
	wrangler-exit) export FAULT_WRANGLER_RULE="versions-deploy 2 exit" ;;
	# The real CLI takes seconds a call: the next two fail early to keep
	# the test short. server-0 is the first deploy.
	wrangler-hang) export FAULT_WRANGLER_RULE="versions-deploy 1 hang" ;;
	# status reads: 2 in preflight, then the drift check before server-0
	# (after the uploads).
	wrangler-garbage) export FAULT_WRANGLER_RULE="deployments-status 3 garbage" ;;
	esac
	timeout_s=60
	[ "$scenario" = wrangler-hang ] && timeout_s=45
	LIB_DEPLOYER="{ \"kind\": \"wrangler\", \"command\": [\"bash\", \"$(dirname "$(readlink -f "$0")")/fault_wrangler.sh\"], \"timeout_s\": $timeout_s }"
	LIB_STEPS='"server-0", "middleware-50", "middleware-100", "server-100"'
fi

lib_app
lib_rollout
lib_read_production

# ---- agents -------------------------------------------------------------------
start_fake() { # REGION
	"$fake" --dial "$ctl_url" --region "$1" --id "fake-$1" \
		--modes garbage,binary,truncated,deep,badfield,badproto,oversized,empty,valid \
		>"$work/fake-agent.log" 2>&1 &
	lib_pids+=($!)
}
case $scenario in
agent-only-bad)
	lib_start_agent enam
	lib_start_agent weur
	start_fake apac
	;;
quorum-*)
	# Three agents connected, as many as the regions need in all, but
	# none of them in apac.
	lib_start_agent enam
	lib_start_agent enam agent-enam-2
	lib_start_agent weur
	;;
*) lib_start_agents ;;
esac

# expect CODE FINAL: the exit code, what production must be, the timeline.
expect() {
	[ "$rc" -eq "$1" ] || lib_fail "expected exit $1, got $rc"
	lib_log "ended with exit $rc"
	case $2 in
	initial | new)
		lib_expect_production "$2"
		lib_check_timeline "$2"
		;;
	esac
}

# no_change: preflight refused; the journal holds no platform call and
# production is what it was.
no_change() {
	lib_expect_production initial
	lib_check_timeline initial
	if grep -q '"type":"intent"' "$journal"; then
		lib_fail "preflight refused but the journal holds a platform call"
	fi
	lib_log "nothing uploaded or deployed"
}

case $scenario in
api-500-read)
	# The first two deployment reads pass (preflight); the next two fail.
	arm "kind=status&status=500&method=GET&path=/deployments&skip=2&count=2"
	lib_controller run
	expect 0 new
	[ "$(faults status)" -eq 2 ] || lib_fail "expected 2 faulted reads, got $(faults status)"
	;;
api-500-deploy)
	arm "kind=status&status=500&method=POST&path=/scripts/middleware/deployments&count=1"
	lib_controller run
	expect 3 initial
	[ "$(faults status)" -eq 1 ] || lib_fail "the 500 was not served"
	grep -q 'rollback reason=.*middleware/deployments: HTTP 500' "$work/controller.log" ||
		lib_fail "the rollback reason does not name the request and its status"
	# The failed POST is not repeated: the next middleware POST is the
	# rollback's {m0:100}, after a read of the real state.
	posts=$(grep -c 'POST .*/scripts/middleware/deployments' "$work/proxy-requests.log")
	[ "$posts" -le 2 ] || lib_fail "$posts middleware deployment POSTs: a 500 was retried blindly"
	;;
api-applied-500)
	arm "kind=applied&method=POST&path=/scripts/middleware/deployments&count=1"
	lib_controller run
	expect 3 initial
	[ "$(faults applied)" -eq 1 ] || lib_fail "the applied-then-500 fault was not served"
	;;
api-429)
	arm "kind=status&status=429&retry_after=1&method=POST&path=/deployments&skip=1&count=2"
	lib_controller run
	expect 0 new
	[ "$(faults status)" -eq 2 ] || lib_fail "expected 2 answers 429, got $(faults status)"
	# Each repeat came at least Retry-After (1 s) after its 429.
	awk '/ -> 429 fault status$/ { t = $1; next }
	     t && / POST .*\/deployments/ { if ($1 - t < 1000) { print "repeat after " $1 - t " ms"; bad = 1 } t = 0 }
	     END { exit bad }' "$work/proxy-requests.log" || lib_fail "a 429 was repeated before its Retry-After"
	;;
api-malformed)
	# Preflight reads each worker once; the first middleware read after
	# that (the drift check before server-0, after the uploads) is cut off.
	arm "kind=malformed&method=GET&path=/scripts/middleware/deployments&skip=1&count=1"
	lib_controller run
	expect 3 initial
	[ "$(faults malformed)" -eq 1 ] || lib_fail "the malformed answer was not served"
	grep -q 'rollback reason=.*middleware/deployments: HTTP 200, expected a JSON envelope' \
		"$work/controller.log" || lib_fail "the rollback reason does not say what was wrong where"
	grep -q '"type":"versions".*"s1":"[0-9a-f-]\{36\}"' "$journal" ||
		lib_fail "the fault came before the uploads"
	;;
api-malformed-preflight)
	arm "kind=malformed&method=GET&path=/deployments&count=1"
	lib_controller run
	expect 2 none
	no_change
	grep -q ' POST ' "$work/proxy-requests.log" && lib_fail "preflight refused, yet something was POSTed"
	grep -q 'refused check=deployments.*/deployments: HTTP 200, expected a JSON envelope' \
		"$work/controller.log" || lib_fail "the refusal does not say what was wrong where"
	;;
api-rollback-blocked)
	lib_controller_bg run
	"$watch" "$journal" step 3 60000 >/dev/null || lib_fail "middleware-50 was never applied"
	arm "kind=status&status=500&method=POST&path=/scripts/middleware/deployments&count=1000"
	lib_wait_controller
	[ "$rc" -eq 4 ] || lib_fail "expected exit 4 (rollback failed), got $rc"
	grep -q 'ROLLBACK UNFINISHED: production is server main-server' "$work/controller.log" ||
		lib_fail "no statement of the state production is in"
	# The state it names is the platform's (the middleware-50 split).
	line=$(grep 'ROLLBACK UNFINISHED' "$work/controller.log" | tail -n 1)
	for w in main-server middleware; do
		for v in $(lib_deployment "$w" | tr ',' ' '); do
			[[ $line == *"${v%%:*}:${v##*:}"* ]] ||
				lib_fail "the platform holds $w $v, the controller says: $line"
		done
	done
	grep -q "canary-controller rollback -f $work/app/rollout.jsonc" "$work/controller.log" ||
		lib_fail "no command to finish the job"
	grep -q 'npx wrangler versions deploy .*--config' "$work/controller.log" ||
		lib_fail "no manual commands"
	attempts=$(grep -c 'POST .*/scripts/middleware/deployments -> 500 fault' "$work/proxy-requests.log")
	lib_log "exit 4 after $attempts refused rollback deploys, production stated as the platform holds it"
	curl -fsS -X POST "$proxy_url/__fault/clear" >/dev/null
	lib_controller rollback
	expect 3 initial
	;;
agent-bad-reports)
	# The fake joins once the baseline passed, so that every bad report
	# lands in a judged round of the steps.
	lib_controller_bg run
	"$watch" "$journal" versions 1 60000 >/dev/null || lib_fail "the baseline never passed"
	start_fake enam
	lib_wait_controller
	expect 0 new
	answered=$(grep -c '^fault_agent: round' "$work/fake-agent.log" || true)
	[ "$answered" -ge 9 ] || lib_fail "the fake agent answered only $answered surveys"
	grep -q 'mode oversized' "$work/fake-agent.log" || lib_fail "no oversized report was sent"
	rejected=$(grep -c 'report_rejected.*why=malformed' "$work/controller.log" || true)
	[ "$rejected" -ge 5 ] || lib_fail "only $rejected malformed reports rejected and logged"
	lib_log "fake agent answered $answered surveys; $rejected malformed reports rejected"
	;;
agent-only-bad)
	lib_controller run
	expect 2 none
	no_change
	# The fake's bad reports never count, so apac stays short of agents
	# until the quorum wait ends; its one well-formed report (no targets),
	# when it lands in a round, makes apac inconclusive instead.
	grep -q 'refused check=quorum.*apac had 0 of 1 agents\|region=apac verdict=INCONCLUSIVE' \
		"$work/controller.log" || lib_fail "the refusal does not name apac"
	;;
quorum-late-region)
	lib_controller_bg run
	lib_wait_log 'quorum_wait .*apac had 0 of 1 agents'
	lib_log "the baseline round went out without apac; starting apac's agent"
	lib_start_agent apac
	lib_wait_controller
	expect 0 new
	grep -q 'refused' "$work/controller.log" && lib_fail "a refusal was logged"
	grep -q 'verdict step=baseline phase=baseline .*summary="PASS' "$work/controller.log" ||
		lib_fail "no passing baseline round"
	;;
quorum-missing-region)
	lib_controller run
	expect 2 none
	no_change
	grep -q 'refused check=quorum detail=.*apac had 0 of 1 agents' "$work/controller.log" ||
		lib_fail "the refusal does not name apac and what it had"
	grep -q 'quorum_wait' "$work/controller.log" || lib_fail "the baseline round was not repeated"
	;;
drift)
	lib_controller_bg run
	"$watch" "$journal" step 1 60000 >/dev/null || lib_fail "server-0 was never applied"
	# Someone deploys the server by hand while server-0 bakes: {s0:100},
	# dropping the rollout's s1 at 0%. Probes cannot tell (nothing routes
	# to s1 yet) and the invariant holds (m0 pins s0): only the drift
	# check before middleware-50 can see it.
	s0id=${s0%%:*}
	lib_deploy_by_hand main-server "$s0id"
	lib_log "deployed main-server {$s0id:100} behind the rollout's back"
	lib_wait_controller
	expect 5 none
	[ "$(lib_deployment main-server)" = "$s0id:100" ] || lib_fail "the server deployment was touched"
	[ "$(lib_deployment middleware)" = "$m0" ] || lib_fail "the middleware deployment was touched"
	grep -q '"type":"step".*"middleware-50"' "$journal" && lib_fail "a step was applied after the drift"
	lib_check_timeline initial
	grep -q 'stopped on drift' "$work/controller.log" || lib_fail "no drift message"
	;;
wrangler-exit | wrangler-hang | wrangler-garbage)
	lib_controller run
	expect 3 initial
	grep -q "$(echo "$FAULT_WRANGLER_RULE" | sed 's/ \([0-9]*\) / #\1: /')" "$work/wr/calls.log" ||
		lib_fail "the fault was never injected: $(cat "$work/wr/calls.log")"
	case $scenario in
	wrangler-exit)
		grep -q 'injected by fault_wrangler' "$work/controller.log" ||
			lib_fail "the CLI's stderr is not in the error"
		grep -q "$(printf '\033')" "$work/controller.log" && lib_fail "colour codes reached the log"
		;;
	wrangler-hang)
		grep -q 'no answer after 45 s, killed' "$work/controller.log" ||
			lib_fail "no timeout message"
		hang=$(cat "$work/wr/hang.pid")
		if kill -0 "$hang" 2>/dev/null; then
			kill -9 "$hang"
			lib_fail "the hung CLI (pid $hang) was still running"
		fi
		;;
	esac
	;;
*)
	lib_fail "unknown scenario"
	;;
esac
lib_log "ok"
