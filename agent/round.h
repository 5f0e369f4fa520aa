/*
 * round.h: one probe round, from a survey's targets to a report.
 *
 * A round checks the survey against the agent's own policy first (every
 * target's host on the allowlist, http/https only, GET or HEAD, the total of
 * requests within the agent's cap), then feeds the requests to the engine:
 * targets interleaved, on an isr target the first request alone (it warms
 * the region's cache and is excluded from the cache check), the override
 * header on `override.share` percent of requests spread evenly, and
 * `version_keys` Cloudflare-Workers-Version-Key values spread round-robin.
 * Every response goes through agent_check_response into the target's
 * report. When the budget runs out first, the transfers in flight are
 * dropped and the report is marked partial.
 *
 * Threads: the loop thread of the engine's event_base only.
 */
#ifndef AGENT_ROUND_H
#define AGENT_ROUND_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "allow.h"
#include "check.h"
#include "engine.h"
#include "msg.h"

struct agent_round_opts {
	const struct agent_allow *allow; /* NULL: any host (probe mode, a person's own URL) */
	uint32_t max_requests;           /* cap on the sum of targets' requests */
	int follow; /* follow redirects; only without an allowlist (a Location is not checked) */
	const char *key_prefix; /* version key values are key_prefix + index */
};

struct agent_round;

/* Called once on the loop when the round ends (all done, or out of time).
 * The callee may free the round. */
typedef void (*agent_round_done_fn)(struct agent_round *r, void *arg);

/* agent_round_start: checks p against o and starts it on e (which must be
 * idle). budget_ms > 0 ends the round after that long; 0 runs to the end.
 * p is copied. On refusal returns CANARY_EDENIED (allowlist, scheme, cap) or
 * CANARY_EINVAL (a URL that does not parse, a bad method), naming the
 * target field in err, and starts nothing. */
int agent_round_start(struct agent_engine *e, struct event_base *base, const struct canary_probe *p,
                      uint32_t budget_ms, const struct agent_round_opts *o,
                      agent_round_done_fn done, void *arg, struct agent_round **rp, char *err,
                      size_t errlen);

/* agent_round_check: the policy check of agent_round_start alone. */
int agent_round_check(const struct canary_probe *p, const struct agent_round_opts *o, char *err,
                      size_t errlen);

/* agent_round_report: the report so far (rollout_id, round, partial and the
 * targets filled in; agent_id and region are the caller's). Owned by the
 * round; the caller may take the targets array by setting it to NULL. */
struct canary_report *agent_round_report(struct agent_round *r);

/* agent_round_verdicts: the OR of every response's verdict bits. */
unsigned agent_round_verdicts(const struct agent_round *r);

/* agent_round_free: stops a running round (dropping its transfers) and
 * frees it. Accepts NULL. */
void agent_round_free(struct agent_round *r);

#endif /* AGENT_ROUND_H */
