/*
 * edge_admin.h: the admin routes of canary-edge, on the API listener.
 *
 *   GET  /__edge/state               workers, versions with bindings, deployments
 *                                    (newest first), and what each region sees now
 *   GET  /__edge/timeline            every deployment change as it became visible
 *                                    in each region, in order, with wall-clock ms
 *   POST /__edge/regions/NAME/down   the region answers 503 until ...
 *   POST /__edge/regions/NAME/up     ... it is brought back
 *   POST /__edge/api-faults          {"status":429,"count":2,"retry_after_s":1}: the next
 *                                    `count` requests under /client/v4 answer `status`
 *                                    (400..599) with an error envelope, and with
 *                                    Retry-After on a 429, so API clients' retries can
 *                                    be tested; GET shows what is left
 *
 * Plain JSON (no Cloudflare envelope); no token: loopback test tooling.
 * t_ms are wall-clock milliseconds since the epoch. The timeline lives in
 * memory from the process start (its first events are what each region
 * sees at start); after a restart, changes still waiting for a region's
 * delay are not replayed: every region starts on the current deployments.
 * Runs on the loop thread.
 */
#ifndef CANARY_EDGE_ADMIN_H
#define CANARY_EDGE_ADMIN_H

#include <event2/http.h>

#include "edge_plane.h"
#include "edge_state.h"

#define EDGE_ADMIN_PREFIX "/__edge/"

/* Failures the API injects before anything else (set through the admin
 * route above, consumed by edge_api). */
struct edge_api_faults {
	int status;        /* 400..599 */
	int remaining;     /* requests still to fail; 0: none */
	int retry_after_s; /* Retry-After on a 429 */
};

/* edge_admin_handle: answers req, whose path starts with EDGE_ADMIN_PREFIX.
 * faults is the API's, changed by POST /__edge/api-faults. */
void edge_admin_handle(struct evhttp_request *req, const char *path, struct edge_state *st,
                       struct edge_plane *plane, struct edge_api_faults *faults);

#endif /* CANARY_EDGE_ADMIN_H */
