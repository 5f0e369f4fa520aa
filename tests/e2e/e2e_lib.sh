# shellcheck shell=bash disable=SC2154,SC2034  # program paths and scenario come from the caller
# e2e_lib.sh: the shared set-up of the whole-path tests (sourced by
# controller_e2e.sh, crash_e2e.sh and fault_e2e.sh).
#
# Starts the real programs on loopback the way a team would run them:
# canary-edge with three regions (different propagation delays) and a state
# file, one canary-agent per region (mutual TLS by default, plain tcp with
# LIB_INSECURE=1), and canary-controller with the `api` deployer (bundled
# module files) unless a scenario writes its own deployer. Every port is
# picked free at run time.
#
# The caller runs lib_args "$@" (SCENARIO CONTROLLER AGENT EDGE CHECKER,
# then its own arguments), then lib_init, which makes $work and the EXIT
# trap that stops every process started here (by pid) and prints the logs
# when the test failed.
#
# Rollout knobs (environment-style variables read by lib_rollout):
#   LIB_STEPS, LIB_BAKE, LIB_FAILURE_LIMIT, LIB_INCONCLUSIVE_LIMIT,
#   LIB_ROUND_TIMEOUT, LIB_CONVERGE_TIMEOUT, LIB_DEPLOYER (JSON),
#   LIB_FAULT_VARS (extra middleware vars of the new build), LIB_API_BASE
#   (the API the api deployer talks to).

lib_regions=(enam weur apac)
declare -A lib_delay=([enam]=50 [weur]=200 [apac]=400)
# Longest propagation delay plus a margin: after it every region shows the
# last deployment change in the timeline.
lib_settle_s=1

lib_pids=()
lib_timelines=()
declare -A lib_agent_pid

lib_fail() {
	echo "FAIL ($scenario): $*" >&2
	exit 1
}
lib_log() { echo "== $scenario: $*"; }

lib_cleanup() {
	local rc=$?
	local p i
	# Newest first: a controller still running goes before the edge and
	# agents it talks to.
	for ((i = ${#lib_pids[@]} - 1; i >= 0; i--)); do kill "${lib_pids[$i]}" 2>/dev/null || true; done
	for p in "${lib_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	# A sanitizer build reports into the programs' logs, at any moment and
	# at exit (the SIGTERM above): any report fails the test.
	if [ $rc -eq 0 ] && grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work"/*.log 2>/dev/null; then
		echo "FAIL ($scenario): sanitizer report in the logs above" >&2
		rc=1
	fi
	if [ $rc -ne 0 ]; then
		echo "---- $scenario failed (rc $rc); logs:"
		for f in "$work"/*.log "$work"/app/state/journal.jsonl; do
			[ -f "$f" ] || continue
			echo "== $f"
			tail -n 80 "$f"
		done
	fi
	[ -n "${LIB_KEEP:-}" ] || rm -rf "$work"
	exit $rc
}

# lib_args SCENARIO CONTROLLER AGENT EDGE CHECKER ...: the arguments every
# whole-path script starts with.
lib_args() {
	scenario=$1
	controller=$2
	agent=$3
	edge=$4
	checker=$5
}

lib_init() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/canary-$scenario.XXXXXX")
	trap lib_cleanup EXIT
	journal=$work/app/state/journal.jsonl
}

# lib_free_port: a TCP port on 127.0.0.1 nobody listens on, drawn at random
# below the kernel's ephemeral range (32768.. on Linux), so no outgoing
# connection of a parallel test can be holding it.
lib_free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# ---- certificates: one CA for the controller, one for the agents ----------
# mbedTLS 2.28 (under nng) matches DNS names only: 127.0.0.1 is a DNS SAN too.
lib_make_cert() { # NAME CA CN
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$3" \
		-keyout "$work/$1.key" -out "$work/$1.csr" 2>/dev/null
	printf 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:localhost\n' >"$work/$1.ext"
	openssl x509 -req -in "$work/$1.csr" -CA "$work/$2.pem" -CAkey "$work/$2.key" \
		-CAcreateserial -days 2 -extfile "$work/$1.ext" -out "$work/$1.pem" 2>/dev/null
}

lib_certs() {
	local ca r
	for ca in controller-ca agents-ca; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
			-subj "/CN=$ca" -keyout "$work/$ca.key" -out "$work/$ca.pem" 2>/dev/null
	done
	lib_make_cert controller controller-ca 127.0.0.1
	for r in "${lib_regions[@]}"; do lib_make_cert "agent-$r" agents-ca "agent-$r"; done
}

# ---- canary-edge ------------------------------------------------------------
lib_edge_ports() {
	token=e2e-token-$$
	account=e2e-account
	api_port=0
	declare -gA region_port
	local r
	for r in "${lib_regions[@]}"; do region_port[$r]=0; done
}

# lib_start_edge: starts canary-edge with its state file (a restart reloads
# it). The first start lets the kernel pick every port (0) and reads them
# from the log; a restart binds the same ones again. Sets edge_pid, api.
lib_start_edge() {
	local args=() r n
	for r in "${lib_regions[@]}"; do
		args+=(--region "$r=127.0.0.1:${region_port[$r]}" --delay "$r=${lib_delay[$r]}")
	done
	n=$(grep -c "canary-edge: ready" "$work/edge.log" 2>/dev/null || true)
	"$edge" --api "127.0.0.1:$api_port" "${args[@]}" --token "$token" \
		--state "$work/edge-state.json" --isr / >>"$work/edge.log" 2>&1 &
	edge_pid=$!
	lib_pids+=("$edge_pid")
	for _ in $(seq 1 100); do
		if [ "$(grep -c "canary-edge: ready" "$work/edge.log")" -gt "${n:-0}" ]; then
			api_port=$(sed -n 's|^canary-edge: api http://127.0.0.1:||p' "$work/edge.log" | tail -n 1)
			for r in "${lib_regions[@]}"; do
				region_port[$r]=$(sed -n "s|^canary-edge: region $r http://127.0.0.1:||p" \
					"$work/edge.log" | tail -n 1)
			done
			api="http://127.0.0.1:$api_port"
			LIB_API_BASE=${LIB_API_BASE:-$api}
			return 0
		fi
		kill -0 "$edge_pid" 2>/dev/null || break
		sleep 0.1
	done
	lib_fail "canary-edge did not start"
}

lib_edge_get() { curl -fsS --max-time 10 -H "Authorization: Bearer $token" "$api$1"; }

# lib_edge_post PATH [CURL ARGS...]: a POST to the edge's API or admin routes.
lib_edge_post() {
	local path=$1
	shift
	curl -fsS --max-time 10 -X POST -H "Authorization: Bearer $token" "$@" "$api$path" >/dev/null
}

# lib_deploy_by_hand WORKER VERSION: someone else deploys WORKER at
# {VERSION:100}, behind the rollout's back.
lib_deploy_by_hand() {
	lib_edge_post "/client/v4/accounts/$account/workers/scripts/$1/deployments" \
		-H 'Content-Type: application/json' \
		-d "{\"strategy\":\"percentage\",\"versions\":[{\"version_id\":\"$2\",\"percentage\":100}]}"
}

# lib_wrangler_env WRANGLER: the environment the real wrangler needs to talk
# to canary-edge, offline (no npm update check, no metrics), with its
# temporary files and home in $work.
lib_wrangler_env() {
	[ -n "$1" ] || lib_fail "no wrangler given"
	mkdir -p "$work/tmp/update-check"
	export CLOUDFLARE_API_BASE_URL="$api/client/v4" CLOUDFLARE_API_TOKEN=$token
	export CLOUDFLARE_ACCOUNT_ID=$account WRANGLER_SEND_METRICS=false
	printf '{"latest":"4.86.0","lastUpdate":%s000}' "$(date +%s)" \
		>"$work/tmp/update-check/wrangler-latest.json"
	export TMPDIR=$work/tmp HOME=$work
}

# lib_deployment WORKER: the worker's current deployment as the API says,
# "id:pct,id:pct" (newest deployment, its versions in order).
lib_deployment() {
	lib_edge_get "/client/v4/accounts/$account/workers/scripts/$1/deployments" |
		tr -d ' \n' | sed 's/"deployments":\[{/\n/' | sed -n 2p | sed 's/}\].*//' |
		grep -o '"version_id":"[^"]*","percentage":[0-9.]*' |
		sed 's/"version_id":"\([^"]*\)","percentage":\([0-9]*\).*/\1:\2/' | paste -sd, -
}

# ---- the app: wrangler configs and bundled modules --------------------------
lib_app() {
	mkdir -p "$work/app/dist"
	cat >"$work/app/server.jsonc" <<EOF
{
  "name": "main-server",
  "main": "dist/server.js",
  "account_id": "$account",
  "compatibility_date": "2025-06-01",
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
  "vars": { ${LIB_FAULT_VARS:-} "WORKER_VERSION_ID": "set-at-upload", "SERVER_WORKER_NAME": "main-server" },
  "services": [ { "binding": "DEFAULT_WORKER", "service": "main-server" } ],
}
EOF
	cat >"$work/app/dist/server.js" <<'EOF'
export default { async fetch() { return new Response("server"); } };
EOF
	cat >"$work/app/dist/middleware.js" <<'EOF'
export default { async fetch(req, env) { return env.DEFAULT_WORKER.fetch(req); } };
EOF
}

# ---- the rollout file ---------------------------------------------------------
lib_rollout() {
	local tls steps
	steps=${LIB_STEPS:-'"server-0", "middleware-50", "middleware-100", "server-100"'}
	ctl_port=$(lib_free_port)
	if [ "${LIB_INSECURE:-0}" = 1 ]; then
		ctl_url="tcp://127.0.0.1:$ctl_port"
		tls=""
	else
		ctl_url="tls+tcp://127.0.0.1:$ctl_port"
		tls='"tls": { "cert": "../controller.pem", "key": "../controller.key", "ca": "../agents-ca.pem" },'
	fi
	if [ -z "${LIB_DEPLOYER:-}" ]; then
		LIB_DEPLOYER="{ \"kind\": \"api\", \"base_url\": \"$LIB_API_BASE/client/v4\",
    \"account_id\": \"$account\", \"token_env\": \"CANARY_E2E_TOKEN\",
    \"upload_modules\": { \"server\": [\"dist/server.js\"], \"middleware\": [\"dist/middleware.js\"] } }"
	fi
	export CANARY_E2E_TOKEN=$token
	cat >"$work/app/rollout.jsonc" <<EOF
{
  "name": "e2e-$scenario",
  "workers": {
    "server": { "config": "server.jsonc" },
    "middleware": { "config": "middleware.jsonc", "pin_var": "WORKER_VERSION_ID" },
  },
  "deployer": $LIB_DEPLOYER,
  "steps": [ $steps ],
  "probes": {
    "interval_s": 1,
    "targets": [
      { "id": "home", "url": "http://docs.example.com/", "requests": 10, "expect_status": [200],
        "cache": "isr", "timeout_ms": 2000 },
      { "id": "api", "url": "http://docs.example.com/api/health", "requests": 10,
        "expect_status": [200], "timeout_ms": 2000 },
    ],
  },
  "regions": [ { "name": "enam", "min_agents": 1 }, { "name": "weur", "min_agents": 1 },
               { "name": "apac", "min_agents": 1 } ],
  // share_z 4: with 20 responses a region fails the middleware-50 share
  // check only at 0 or 20 of 20 (a split not applied: odds 2 in 10^6 for a
  // healthy one); at the default z (3.29) a healthy region fails at 2 or
  // fewer, 1 check in 2,500, and a run of these tests makes hundreds.
  "gates": { "max_error_rate": 0.05, "max_p95_ms": 500, "min_isr_hit_ratio": 0.5, "share_z": 4,
             "failure_limit": ${LIB_FAILURE_LIMIT:-0},
             "inconclusive_limit": ${LIB_INCONCLUSIVE_LIMIT:-3},
             "bake_s": ${LIB_BAKE:-2}, "converge_timeout_s": ${LIB_CONVERGE_TIMEOUT:-15} },
  "propagation_s": 1,
  "agents": { "listen": ["$ctl_url"], $tls
              "round_timeout_s": ${LIB_ROUND_TIMEOUT:-3} },
  "state_dir": "state",
}
EOF
}

# ---- agents -------------------------------------------------------------------
# lib_start_agent REGION [ID]: one more agent in REGION (id agent-REGION
# unless given; its log is $work/ID.log). lib_agent_pid[ID] is its pid.
lib_start_agent() {
	local r=$1 id=${2:-agent-$1} auth
	if [ "${LIB_INSECURE:-0}" = 1 ]; then
		auth=(--insecure)
	else
		auth=(--cert "$work/agent-$r.pem" --key "$work/agent-$r.key" --ca "$work/controller-ca.pem")
	fi
	"$agent" run --region "$r" --id "$id" --dial "$ctl_url" "${auth[@]}" \
		--allow-host docs.example.com \
		--connect-to "docs.example.com:80:127.0.0.1:${region_port[$r]}" >>"$work/$id.log" 2>&1 &
	lib_agent_pid[$id]=$!
	lib_pids+=($!)
}

lib_start_agents() {
	local r
	for r in "${lib_regions[@]}"; do lib_start_agent "$r"; done
}

# lib_start_platform: certificates (unless LIB_INSECURE=1) and canary-edge.
lib_start_platform() {
	[ "${LIB_INSECURE:-0}" = 1 ] || lib_certs
	lib_edge_ports
	lib_start_edge
}

# lib_read_production: m0 and s0, the deployments production starts on.
lib_read_production() {
	m0=$(lib_deployment middleware)
	s0=$(lib_deployment main-server)
	[ -n "$m0" ] && [ -n "$s0" ] || lib_fail "no initial deployments on the edge"
}

# lib_setup: certificates, edge, app, rollout file, agents.
lib_setup() {
	lib_start_platform
	lib_app
	lib_rollout
	lib_start_agents
	lib_read_production
}

# ---- the controller -------------------------------------------------------------
lib_ctl_args() {
	ctl_args=(-f "$work/app/rollout.jsonc")
	[ "${LIB_INSECURE:-0}" = 1 ] && ctl_args+=(--insecure)
	return 0
}

# lib_controller COMMAND [ARGS...]: runs it to the end; sets rc.
lib_controller() {
	lib_ctl_args
	echo "---- canary-controller $*" >>"$work/controller.log"
	set +e
	timeout 120 "$controller" "$@" "${ctl_args[@]}" >>"$work/controller.log" 2>&1
	rc=$?
	set -e
	[ $rc -ne 124 ] || lib_fail "canary-controller $1 did not end within 120 s (stuck)"
}

# lib_controller_bg COMMAND: starts it in the background; sets cpid.
lib_controller_bg() {
	lib_ctl_args
	echo "---- canary-controller $1 (background)" >>"$work/controller.log"
	"$controller" "$1" "${ctl_args[@]}" >>"$work/controller.log" 2>&1 &
	cpid=$!
	lib_pids+=("$cpid")
}

# lib_wait_log PATTERN: the controller's log shows PATTERN (grep) within
# 60 s, while the controller (cpid) runs.
lib_wait_log() {
	for _ in $(seq 1 600); do
		grep -q "$1" "$work/controller.log" && return 0
		kill -0 "$cpid" 2>/dev/null || lib_fail "the controller ended before \"$1\""
		sleep 0.1
	done
	lib_fail "no \"$1\" in the controller log within 60 s"
}

# lib_wait_controller: waits for cpid (at most 120 s); sets rc.
lib_wait_controller() {
	local i
	for i in $(seq 1 1200); do
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$cpid" 2>/dev/null; then
		kill -9 "$cpid"
		lib_fail "canary-controller did not end within 120 s (stuck)"
	fi
	set +e
	wait "$cpid"
	rc=$?
	set -e
}

# lib_kill_at COMMAND TYPE N: starts the controller's COMMAND, kills it
# with SIGKILL the moment the Nth journal record of TYPE is written. Fails
# when the controller ends before that record.
#
# The kill may land a few records late when the controller writes them
# back to back. When none of those is an "intent" (every platform call that
# changes anything follows its intent), no change was started after the
# target, so the journal cut back to the target is exactly what a crash
# right after it leaves on disk: those records are trimmed. Otherwise the
# crash point is reported as it is.
lib_kill_at() {
	local rec wrc crc k total extra
	lib_controller_bg "$1"
	set +e
	rec=$("$watch" "$journal" "$2" "$3" 90000 "$cpid")
	wrc=$?
	wait "$cpid" 2>/dev/null
	crc=$?
	set -e
	[ $wrc -eq 0 ] || lib_fail "no $2 record number $3 in the journal (controller exit $crc)"
	[ $crc -eq 137 ] || lib_fail "the controller ended (exit $crc) before the kill at $2 #$3"
	lib_log "killed -9 after $2 #$3: $(printf '%s' "$rec" | cut -c1-160)"
	k=$(grep -n "^{\"type\":\"$2\"" "$journal" | sed -n "$3p" | cut -d: -f1)
	total=$(wc -l <"$journal")
	if [ "$total" -gt "$k" ]; then
		extra=$(tail -n "+$((k + 1))" "$journal" | grep -o '^{"type":"[a-z_-]*"' | cut -d'"' -f4 | paste -sd' ' -)
		if grep -q '^{"type":"intent"' <(tail -n "+$((k + 1))" "$journal"); then
			lib_log "the kill landed after $((total - k)) more records ($extra): a platform call had started, kept"
		else
			head -n "$k" "$journal" >"$journal.cut"
			mv "$journal.cut" "$journal"
			lib_log "the kill landed after $((total - k)) more records ($extra), no platform call among them: trimmed"
		fi
	fi
	lib_log "last record on disk: $(tail -n 1 "$journal" | cut -c1-160)"
}

# ---- what production shows --------------------------------------------------------
# lib_save_timeline: keeps the edge's timeline so far (a restarted edge
# starts a new one in memory; lib_check_timeline replays them all in order).
lib_save_timeline() {
	local f
	f=$work/timeline-${#lib_timelines[@]}.json
	lib_edge_get /__edge/timeline >"$f" || lib_fail "GET /__edge/timeline"
	lib_timelines+=("$f")
}

# lib_check_timeline initial|new|any: after the propagation delays, proves
# the skew invariant held in every region at every moment of every saved
# timeline and of the current one, and that production ended on the old
# versions (initial), the new ones (new) or either (any).
lib_check_timeline() {
	local final=() events=() f
	sleep "$lib_settle_s"
	lib_edge_get /__edge/state >"$work/state.json" || lib_fail "GET /__edge/state"
	lib_save_timeline
	for f in "${lib_timelines[@]}"; do
		# {"events":[...]} -> the inner list, one file's events after another's.
		events+=("$(tr -d '\n' <"$f" | sed 's/^[^[]*\[//; s/\][^]]*$//')")
	done
	(
		IFS=,
		printf '{"events":[%s]}\n' "$(printf '%s\n' "${events[@]}" | grep -v '^$' | paste -sd, -)"
	) >"$work/timeline-all.json"
	[ "$1" = any ] || final=(--final "$1")
	"$checker" "$work/state.json" "$work/timeline-all.json" middleware main-server "${final[@]}" ||
		lib_fail "timeline check ($1)"
	lib_log "timeline: skew invariant held at every moment ($(grep -o '"t_ms"' "$work/timeline-all.json" | wc -l) events, final $1)"
}

# lib_expect_production initial|new: the API's current deployments are the
# old pair (single versions m0+s0) or one new version of each at 100%.
lib_expect_production() {
	local m s
	m=$(lib_deployment middleware)
	s=$(lib_deployment main-server)
	case $1 in
	initial)
		[ "$m" = "$m0" ] && [ "$s" = "$s0" ] ||
			lib_fail "production is middleware $m server $s, expected $m0 + $s0"
		;;
	new)
		[[ $m == *:100 && $m != *,* && $m != "$m0" && $s == *:100 && $s != *,* && $s != "$s0" ]] ||
			lib_fail "production is middleware $m server $s, expected new versions at 100%"
		;;
	esac
}

# lib_final_for RC: the production an exit code promises.
lib_final_for() {
	case $1 in
	0) echo new ;;
	3) echo initial ;;
	*) lib_fail "exit $1: expected 0 (promoted) or 3 (rolled back)" ;;
	esac
}
