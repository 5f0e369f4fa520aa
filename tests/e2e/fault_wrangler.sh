#!/usr/bin/env bash
# fault_wrangler.sh: the wrangler deployer's command in the fault tests. Runs
# the real wrangler, except for one chosen call, which fails.
#
# Environment (the controller passes its own to the deployer's children):
#   FAULT_WRANGLER_REAL  the real wrangler CLI
#   FAULT_WRANGLER_DIR   a directory for the call counters and the hang pid
#   FAULT_WRANGLER_RULE  "SUBCOMMAND N MODE": the Nth call of SUBCOMMAND
#                        ("versions-upload", "versions-deploy",
#                        "deployments-status") gets MODE:
#     exit     an error on stderr with colour codes, exit 1, nothing done
#     hang     never answers (exec sleep; its pid in FAULT_WRANGLER_DIR/hang.pid)
#     garbage  exit 0 with output that is no answer at all, nothing done
# Every call is logged to FAULT_WRANGLER_DIR/calls.log.
set -u

sub="${1:-}-${2:-}"
dir=${FAULT_WRANGLER_DIR:?}
read -r rule_sub rule_n rule_mode <<<"${FAULT_WRANGLER_RULE:-none 0 none}"

# The count of this subcommand, under a lock: the controller may run two
# calls at once.
exec 9>>"$dir/lock"
flock 9
n=$(($(cat "$dir/count-$sub" 2>/dev/null || echo 0) + 1))
echo "$n" >"$dir/count-$sub"
flock -u 9
exec 9>&-

if [ "$sub" = "$rule_sub" ] && [ "$n" -eq "$rule_n" ]; then
	echo "$sub #$n: $rule_mode" >>"$dir/calls.log"
	case $rule_mode in
	exit)
		printf '\033[31m✘ \033[41;31m[\033[41;97mERROR\033[41;31m]\033[0m A request to the Cloudflare API failed: injected by fault_wrangler [code: 10013]\n' >&2
		exit 1
		;;
	hang)
		echo $$ >"$dir/hang.pid"
		exec sleep 600
		;;
	garbage)
		printf '<html><body>502 Bad Gateway</body></html>\n\033[2J{{{ "deployments": [ ,,, \n'
		exit 0
		;;
	esac
fi
echo "$sub #$n" >>"$dir/calls.log"
exec "${FAULT_WRANGLER_REAL:?}" "$@"
