/*
 * check.h: the checks an agent makes on one response, as pure functions.
 *
 * Input is what one request produced (status or error class, the version and
 * cache header values, the body prefix, the phase times); output is a set of
 * verdict bits and the counts added to a struct canary_target_report. No
 * sockets, clocks or files: the engine measures, this module judges.
 *
 * The rules (DESIGN.md "Probe rounds"):
 *  - the status must be one of the target's expected statuses, else an
 *    "http" error; a status outside 100..599 (a server may answer 999) is
 *    such an error too, counted in statuses_other since the report's
 *    table only carries 100..599, so the report always encodes;
 *  - when versions are expected (expect->n_middleware > 0), the middleware
 *    header must name an expected middleware version (or the override's
 *    version on an overridden request) and the server header an expected
 *    server version; a missing or unexpected one is an unknown version;
 *  - a response from middleware m carrying a server header other than pin(m)
 *    is an affinity violation; no server header on a cache HIT or STALE is a
 *    hit the middleware answered alone, which is fine;
 *  - an overridden request must be answered by the override's version and
 *    its pin, else an override violation;
 *  - on isr targets, after the warming request, the cache header must say
 *    HIT or STALE; absent or anything else is a miss;
 *  - body_match, when set, must occur in the (capped) body;
 *  - a version key that sees two middleware versions in a round is a key
 *    violation, counted once per key.
 * Checks of the headers are skipped on a response with an unexpected status
 * that carries no version header (an error page from the platform in front).
 */
#ifndef AGENT_CHECK_H
#define AGENT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

/* Verdict bits returned by agent_check_response; 0 is a clean response. */
enum agent_verdict {
	AGENT_V_TRANSPORT = 1 << 0, /* no HTTP response (dns, connect, tls, timeout, broken) */
	AGENT_V_STATUS = 1 << 1,    /* status not expected */
	AGENT_V_UNKNOWN = 1 << 2,   /* version header missing or not expected */
	AGENT_V_AFFINITY = 1 << 3,  /* server is not the middleware's pin */
	AGENT_V_CACHE_MISS = 1 << 4,
	AGENT_V_BODY = 1 << 5,
	AGENT_V_OVERRIDE = 1 << 6,
	AGENT_V_KEY = 1 << 7, /* this response made its version key see a second version */
};

/* One response, as the engine saw it. Strings are borrowed for the call. */
struct agent_response {
	int status;                    /* HTTP status, any positive value; 0: no response */
	enum canary_errclass errclass; /* meaningful when status == 0 */
	const char *error;             /* words for a failed transfer, or NULL */
	const char *middleware;        /* middleware version header, NULL if absent */
	const char *server;            /* server version header, NULL if absent */
	const char *cache;             /* cache header, NULL if absent */
	const char *body;              /* first body bytes (may be NULL when len 0) */
	size_t body_len;
	uint64_t first_byte_us; /* pre-transfer to first byte */
	uint64_t total_us;      /* pre-transfer to the end */
	int overridden;         /* the request carried the override header */
	int warming;            /* isr: the round's first request, excluded from the cache check */
	int key;                /* version key index, or -1 */
};

/* Per-target, per-round memory of which middleware version each version key
 * saw. Zero it (agent_check_keys_init) at the start of each round. */
struct agent_check_keys {
	char seen[CANARY_MAX_VERSION_KEYS][CANARY_UUID_LEN];
	unsigned char violated[CANARY_MAX_VERSION_KEYS];
};

void agent_check_keys_init(struct agent_check_keys *k);

/* agent_check_response: judges r against target t, the expected versions e
 * (n_middleware == 0: versions are recorded, not checked) and the override o
 * (NULL or !enabled: none); every id in e and o is a UUID or "" (the probe
 * decoder and the command line make sure), adds the result to rep (sent, responses,
 * statuses, errors, latency, pairs, cache, violations, samples) and returns
 * the verdict bits. keys may be NULL when no version keys are used. */
unsigned agent_check_response(const struct canary_target *t, const struct canary_expect *e,
                              const struct canary_override *o, const struct agent_response *r,
                              struct agent_check_keys *keys, struct canary_target_report *rep);

#endif /* AGENT_CHECK_H */
