#!/usr/bin/env bash
# crash_e2e.sh: kill -9 canary-controller, canary-edge or an agent in the
# middle of a rollout and prove the rollout still ends promoted (exit 0) or
# rolled back (exit 3), never stuck, with the skew invariant held in every
# region at every moment of the edge's timeline.
#
#   crash_e2e.sh SCENARIO CONTROLLER AGENT EDGE CHECKER WATCH PROXY FAKE
#
# Controller kills land right after the Nth journal record of a type
# (crash_watch), or at seeded random moments; `canary-controller resume`
# then carries on from the journal and the platform's real state.
#
# Scenarios (plan: server-0, middleware-50, middleware-100, server-100):
#   after-start            before preflight read anything: resume says
#                          nothing reached production (exit 2, production
#                          untouched, the rollout closed); a new run promotes
#   after-versions         uploads done, no step applied: resume promotes
#   after-upload-intent    the first upload may or may not have happened,
#                          nothing was deployed: resume exits 2 the same way;
#                          a new run promotes
#   after-deploy-intent    the middleware-50 deploy in flight: resume promotes
#   after-deploy-result    middleware-100 applied, not yet baked: resume promotes
#   after-step             middleware-50 applied, converging: resume promotes
#   after-rollback         a bad build: killed as the rollback starts; resume
#                          finishes it (exit 3)
#   after-rollback-intent  a bad build: killed during a rollback move; exit 3
#   after-resume           killed during a step, then the resume killed right
#                          after its own "resume" record: a second resume
#                          promotes
#   after-rollback-verified  a bad build: killed between the verified rollback
#                          and the end record; resume verifies again (exit 3)
#   after-end              killed after the end record: resume reports the
#                          outcome (exit 0) without touching anything
#   random-1|random-2      three kills at seeded random moments (a good build,
#                          then a bad one); resume until it ends. The seed is
#                          printed; CRASH_SEED=N replays or varies it
#   edge-restart           canary-edge killed mid-bake and restarted on its
#                          state file: ends 0 or 3, invariant across both lives
#   agent-restart          one region's agent killed mid-bake, back 2 s later:
#                          inconclusive rounds within inconclusive_limit (6):
#                          promoted
#   agent-lost             the same with inconclusive_limit 1: rolled back
set -euo pipefail

# shellcheck source=e2e_lib.sh
. "$(dirname "$0")/e2e_lib.sh"
lib_args "$@"
watch=$6
# (the fault tests' helpers PROXY and FAKE come next: unused here)
lib_init

bad_build='"CANARY_EDGE_ERROR_RATE": "0.5",'
case $scenario in
after-rollback | after-rollback-intent | after-rollback-verified | random-2)
	LIB_FAULT_VARS=$bad_build
	;;
agent-restart)
	LIB_BAKE=6
	LIB_INCONCLUSIVE_LIMIT=6
	;;
agent-lost)
	LIB_BAKE=6
	LIB_INCONCLUSIVE_LIMIT=1
	;;
edge-restart) LIB_BAKE=5 ;;
esac
lib_setup

# finish: resume until the rollout ends. A rollout stopped before anything
# reached production has nothing to resume: resume says so and exits 2
# (nothing_to_resume checks it); a new run starts the rollout again.
finish() {
	lib_controller resume
	if [ $rc -eq 2 ]; then
		nothing_to_resume
		lib_controller run
	fi
}

# nothing_to_resume: resume's exit 2 is true: the journal holds no
# deployment, production is untouched, resume said so plainly and closed
# the rollout in the journal (so `run` may start again).
nothing_to_resume() {
	grep -q '"type":"intent".*"op":"deploy"' "$journal" &&
		lib_fail "resume: exit 2 (nothing to resume) on a journal that holds a deployment"
	grep -q 'stopped before anything reached production' "$work/controller.log" ||
		lib_fail "resume: exit 2 without saying that nothing reached production"
	tail -n 1 "$journal" | grep -q '"type":"end".*"exit_code":2' ||
		lib_fail "resume: the rollout was not closed in the journal: $(tail -n 1 "$journal")"
	lib_expect_production initial
	lib_log "resume: nothing reached production (exit 2), production untouched; run again"
}

# end_with CODE...: rc is one of the codes; production and the timeline
# agree with it.
end_with() {
	local ok=0 c
	for c in "$@"; do [ "$rc" -eq "$c" ] && ok=1; done
	[ $ok = 1 ] || lib_fail "expected exit $*, got $rc"
	lib_log "ended with exit $rc"
	lib_expect_production "$(lib_final_for "$rc")"
	lib_check_timeline "$(lib_final_for "$rc")"
	lib_controller status
	[ $rc -eq 0 ] || lib_fail "status after the end: exit $rc"
	grep -q '^outcome:' "$work/controller.log" || lib_fail "status shows no outcome"
}

case $scenario in
after-start)
	lib_kill_at run start 1
	finish
	grep -q 'stopped before anything reached production' "$work/controller.log" ||
		lib_fail "resume after a kill in preflight did not say nothing reached production"
	end_with 0
	;;
after-versions)
	lib_kill_at run versions 2
	finish
	end_with 0
	;;
after-upload-intent)
	lib_kill_at run intent 1
	finish
	grep -q 'stopped before anything reached production' "$work/controller.log" ||
		lib_fail "resume after a kill during the uploads did not say nothing reached production"
	end_with 0
	;;
after-deploy-intent)
	lib_kill_at run intent 4
	finish
	end_with 0
	;;
after-deploy-result)
	lib_kill_at run result 5
	finish
	end_with 0
	;;
after-step)
	lib_kill_at run step 3
	finish
	end_with 0
	# The preflight round is the latency reference of the rest of the bake.
	grep -q 'restored from the journal (3 regions)' "$work/controller.log" ||
		lib_fail "resume did not restore the baseline round from the journal"
	;;
after-rollback)
	lib_kill_at run rollback 1
	finish
	end_with 3
	grep -q 'resuming an interrupted rollback' "$work/controller.log" ||
		lib_fail "resume did not finish the interrupted rollback"
	;;
after-rollback-intent)
	# intents 1-2 upload, 3 server-0, 4 middleware-50; the bad build fails
	# its first bake round, so intent 5 is the first rollback move.
	lib_kill_at run intent 5
	grep -q '"type":"rollback"' "$journal" || lib_fail "intent 5 came before any rollback"
	finish
	end_with 3
	;;
after-resume)
	lib_kill_at run step 3
	lib_kill_at resume resume 1
	finish
	end_with 0
	[ "$(grep -c '"type":"resume"' "$journal")" -eq 2 ] || lib_fail "expected two resume records"
	;;
after-rollback-verified)
	lib_kill_at run rollback_verified 1
	finish
	end_with 3
	;;
after-end)
	lib_controller_bg run
	set +e
	"$watch" "$journal" end 1 90000 "$cpid" >/dev/null
	wait "$cpid"
	first=$?
	set -e
	[ $first -eq 0 ] || [ $first -eq 137 ] || lib_fail "run: exit $first"
	before=$(wc -l <"$journal")
	finish
	[ $rc -eq 0 ] || lib_fail "resume of a promoted rollout: exit $rc"
	grep -q 'ended: promoted' "$work/controller.log" || lib_fail "resume did not report the outcome"
	[ "$(wc -l <"$journal")" -eq "$before" ] || lib_fail "resume of an ended rollout wrote to the journal"
	end_with 0
	;;
random-1 | random-2)
	seed=${CRASH_SEED:-$((${scenario#random-} * 7919))}
	RANDOM=$seed
	lib_log "seed $seed"
	cmd=run
	landed=0
	# The bad build rolls back within about 8 s, the good one promotes in
	# about 13: kills fall inside that span.
	span=6000
	[ "$scenario" = random-2 ] && span=3500
	for k in 1 2 3; do
		delay_ms=$((500 + RANDOM % span))
		lib_controller_bg "$cmd"
		lib_log "kill $k: $cmd, kill -9 after ${delay_ms} ms"
		sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
		if kill -9 "$cpid" 2>/dev/null; then
			landed=$((landed + 1))
			lib_log "killed at record $(wc -l <"$journal" 2>/dev/null || echo 0): $(tail -n 1 "$journal" 2>/dev/null | cut -c1-120)"
		fi
		set +e
		wait "$cpid"
		set -e
		cmd=resume
		# Resume closed a rollout that had reached nothing: start again.
		if tail -n 1 "$journal" 2>/dev/null | grep -q '"type":"end".*"exit_code":2'; then
			nothing_to_resume
			cmd=run
		fi
	done
	[ $landed -ge 1 ] || lib_fail "no kill landed before the rollout ended"
	if [ $cmd = run ]; then lib_controller run; else finish; fi
	if [ "$scenario" = random-2 ]; then end_with 3; else end_with 0 3; fi
	;;
edge-restart)
	lib_controller_bg run
	lib_wait_log 'converged step=middleware-50'
	lib_save_timeline
	kill -9 "$edge_pid"
	wait "$edge_pid" 2>/dev/null || true
	lib_log "canary-edge killed -9 while middleware-50 bakes"
	sleep 1.5
	lib_start_edge
	lib_log "canary-edge restarted from its state file"
	lib_wait_controller
	end_with 0 3
	;;
agent-restart | agent-lost)
	lib_controller_bg run
	lib_wait_log 'converged step=middleware-50'
	kill -9 "${lib_agent_pid[agent-weur]}"
	lib_log "agent-weur killed -9 while middleware-50 bakes"
	if [ "$scenario" = agent-restart ]; then sleep 2; else sleep 4; fi
	lib_start_agent weur
	lib_log "agent-weur restarted"
	lib_wait_controller
	grep -q 'region=weur verdict=INCONCLUSIVE' "$work/controller.log" ||
		lib_fail "no inconclusive round for the missing region"
	if [ "$scenario" = agent-restart ]; then end_with 0; else end_with 3; fi
	;;
*)
	lib_fail "unknown scenario"
	;;
esac
lib_log "ok"
