#!/usr/bin/env bash
# controller_cli.sh: canary-controller commands that need no platform and
# no agents, on the rollout file the whole-path tests use (e2e_lib.sh).
#
#   controller_cli.sh SCENARIO CONTROLLER
#
# Scenarios:
#   plan-lint   `plan` lints the wrangler configs as `run`'s preflight does:
#               good configs print the plan (exit 0); a middleware config
#               without the pin var and without the service binding to the
#               server is refused (exit 1) naming the file and both
#               problems, and no plan is printed
set -euo pipefail

# shellcheck source=e2e_lib.sh
. "$(dirname "$0")/e2e_lib.sh"
scenario=$1
controller=$2
lib_init
# The token and account the files name; no canary-edge runs, and nothing
# here talks to the API (port 9, discard, would refuse).
lib_edge_ports
LIB_API_BASE=http://127.0.0.1:9
lib_app
lib_rollout

# plan_to OUT: `plan` with its stdout in OUT.out, stderr in OUT.log; sets rc.
plan_to() {
	set +e
	timeout 30 "$controller" plan -f "$work/app/rollout.jsonc" >"$work/$1.out" 2>"$work/$1.log"
	rc=$?
	set -e
}

case $scenario in
plan-lint)
	plan_to good
	[ $rc -eq 0 ] || lib_fail "plan of a good rollout: expected exit 0, got $rc"
	grep -q 'server-100' "$work/good.out" || lib_fail "plan printed no steps: $(cat "$work/good.out")"
	# A middleware that would talk to whatever server the split picks.
	sed -i 's/"WORKER_VERSION_ID": "set-at-upload", //; /"services"/d' "$work/app/middleware.jsonc"
	plan_to bad
	[ $rc -eq 1 ] || lib_fail "plan of configs that fail the lint: expected exit 1, got $rc"
	grep -q 'plan refused: .*middleware.jsonc: vars: expected the pin var WORKER_VERSION_ID' \
		"$work/bad.log" || lib_fail "the refusal does not name the missing pin var"
	grep -q 'middleware.jsonc: services: expected a service binding to the server worker "main-server"' \
		"$work/bad.log" || lib_fail "the refusal does not name the missing service binding"
	grep -q 'server-100' "$work/bad.out" && lib_fail "a refused plan was printed"
	;;
*)
	lib_fail "unknown scenario"
	;;
esac
lib_log "ok"
