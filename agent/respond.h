/*
 * respond.h: the agent's side of the probe rounds, an nng respondent on the
 * agent's libevent loop.
 *
 * Each survey is one round: it is decoded strictly (msg.h), checked against
 * the agent's policy (round.h) and run; its report goes back before the
 * survey's deadline (a round that cannot finish in time sends what it has,
 * marked partial). A survey that does not decode, or that the policy
 * refuses, is logged and answered at once with a report whose "error" says
 * why; the agent goes on serving. One survey is handled at a time: the next
 * one is received after the reply to the current one is sent.
 *
 * Threads: nng's aio callbacks only hand messages to the loop (canary_evq)
 * or start the next receive; all state lives on the loop thread.
 */
#ifndef AGENT_RESPOND_H
#define AGENT_RESPOND_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "engine.h"
#include "link.h"
#include "round.h"

struct agent_respond_opts {
	const char *agent_id;
	const char *region;
	const char *const *listen; /* URLs to listen on */
	int n_listen;
	const char *const *dial; /* URLs to dial */
	int n_dial;
	int insecure;                  /* allow tcp:// and ipc:// */
	struct canary_tls_files tls;   /* for tls+tcp URLs */
	struct agent_round_opts round; /* allowlist and caps */
};

struct agent_respond;

/* agent_respond_new: opens the respondent socket, starts every listener and
 * dialer (dialers retry in the background) and waits for surveys on base.
 * e must be the agent's engine on the same base, idle. o and the strings it
 * points to must outlive the respondent. Returns 0, CANARY_EINVAL when
 * agent_id or region is not an id (msg.h: 1..CANARY_ID_LEN-1 bytes, no
 * control characters; every report carries both), or a canary error naming
 * the URL or file at fault, with words in err. */
int agent_respond_new(struct event_base *base, struct agent_engine *e,
                      const struct agent_respond_opts *o, struct agent_respond **rp, char *err,
                      size_t errlen);

/* agent_respond_rounds: surveys answered so far (reports and error reports). */
uint64_t agent_respond_rounds(const struct agent_respond *r);

/* agent_respond_encode: fills rep's proto_version, agent_id and region and
 * encodes it into *textp (malloc'd, the caller frees) and *lenp. A report
 * that does not encode is answered anyway: it is replaced (in rep, whose
 * targets array is then freed with free()) by an error report for the same
 * round whose "error" says why, keeping the rollout id when that is valid,
 * else "".
 * Returns 0, with *replaced set when the error report went instead, or the
 * encoder's error (only when agent_id or region is not a valid id) with
 * words in err. Pure: no I/O. */
int agent_respond_encode(const char *agent_id, const char *region, struct canary_report *rep,
                         char **textp, size_t *lenp, int *replaced, char *err, size_t errlen);

/* agent_respond_salvage: for a survey that did not decode, its "round" and
 * "rollout_id" when buf is a JSON object holding valid ones, so the error
 * report lands in the controller's round; else *round = 0 and rollout "".
 * rollout has CANARY_ID_LEN bytes. Pure. */
void agent_respond_salvage(const char *buf, size_t len, uint64_t *round, char *rollout);

/* agent_respond_free: closes the socket (pending round dropped). Accepts
 * NULL. Call on the loop thread. */
void agent_respond_free(struct agent_respond *r);

#endif /* AGENT_RESPOND_H */
