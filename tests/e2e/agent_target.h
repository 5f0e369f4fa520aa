/*
 * agent_target.h: a small HTTP/1.1 target for the agent's tests, on raw
 * sockets (one thread per connection), so every misbehaviour is exact.
 * Listens on 127.0.0.1 on a port the kernel picks.
 *
 * Paths:
 *   /ok          200, version headers m0+s0, x-opennext-cache: HIT, "hello"
 *   /isr         200 m0+s0; no cache header on the first request, HIT after
 *   /isr-slow    like /isr, but the first answer takes 150 ms, and every
 *                request that arrives meanwhile is counted as "early"
 *   /override    200; m1+s1 when the request carries
 *                Cloudflare-Workers-Version-Overrides, else m0+s0
 *   /slow-head   the answer after 800 ms
 *   /reset       the connection reset (RST) after the request
 *   /slow-body   headers at once, then 10 body bytes 30 ms apart
 *   /big-headers 200 KiB of response headers
 *   /big-body    1 MiB body ending in "NEEDLE"
 *   /redirect    302 to /ok
 *   /status999   999 (outside HTTP's 100..599) with versions m0+s0
 *   /tricky-headers a 103 with a middleware header, then 200 with a longer
 *                header name first, the middleware header in capitals with
 *                spaces and tabs around m0, a second one, and s0 with no space
 *   anything else 404
 */
#ifndef AGENT_TARGET_H
#define AGENT_TARGET_H

#define AGENT_TARGET_M0 "00000000-0000-4000-8000-0000000000a0"
#define AGENT_TARGET_M1 "00000000-0000-4000-8000-0000000000a1"
#define AGENT_TARGET_S0 "00000000-0000-4000-8000-0000000000b0"
#define AGENT_TARGET_S1 "00000000-0000-4000-8000-0000000000b1"

#include <stdint.h>

#include "msg.h"

/* Starts the target; returns its port, or -1. One target per process. */
int agent_target_start(void);

/* Connections accepted and request heads read since the last call. */
void agent_target_counts(int *connections, int *requests);

/* Requests to /isr-slow that arrived while its first one was being
 * answered (the warming request must go alone). */
int agent_target_early(void);

/* Forgets that /isr and /isr-slow were warmed. */
void agent_target_cool(void);

void agent_target_stop(void);

/* agent_target_probe: a probe for the tests of rounds and of the agent:
 * rollout "docs-site", round 1, bake, deadline 3 s, one target "t0" at url
 * (GET, `requests` requests, 2 s timeout, 200 expected) in targets[0]
 * (the caller's array, zeroed with `n` entries), the default header names,
 * and m0 pinned to s0 at 100% expected. */
void agent_target_probe(struct canary_probe *p, struct canary_target *targets, size_t n,
                        const char *url, uint32_t requests);

#endif /* AGENT_TARGET_H */
