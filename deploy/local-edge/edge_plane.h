/*
 * edge_plane.h: the data plane of canary-edge: one HTTP listener per region.
 *
 * Per request a region picks the middleware version (override, version key,
 * or the split), applies that version's faults, answers ISR paths from its
 * own cache keyed by (build id, path) when it can (HIT, or STALE past the
 * revalidate time, which refreshes the entry; never for a server action,
 * an on-demand revalidation or draft mode), and otherwise forwards to the
 * server worker with an override built from the middleware's
 * WORKER_VERSION_ID, applied only when that server version is deployed.
 * Every answer carries x-canary-middleware-version, x-canary-server-version
 * when the server answered, and `cf-ray: <16 hex>-<region name>`.
 *
 * A deployment change reaches each region after that region's delay; each
 * change becomes a timeline event when it becomes visible there. A region
 * that is down answers every request with 503 (its listener stays open, so
 * probes see an HTTP failure from that region, not a connection error).
 *
 * Owned by the thread that runs the event_base; reads the state, never
 * changes it.
 */
#ifndef CANARY_EDGE_PLANE_H
#define CANARY_EDGE_PLANE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "edge_const.h"
#include "edge_route.h"
#include "edge_state.h"

struct edge_region_spec {
	char name[EDGE_NAME_MAX];
	char addr[EDGE_NAME_MAX]; /* numeric address, no brackets */
	int port;                 /* 0: any free port */
	int delay_ms;             /* how long a deployment change takes to get here */
};

struct edge_plane_config {
	const char *middleware; /* worker names */
	const char *server;
	const char *const *isr_paths; /* exact request paths the middleware caches */
	int n_isr;
	int revalidate_s; /* age after which a cached entry is STALE */
};

struct edge_plane;

/* edge_plane_new: binds every region (CANARY_EIO with the address in err
 * when a bind fails) and shows each region the current deployments at once.
 * st, rng and cfg's strings must outlive the plane. */
int edge_plane_new(struct event_base *base, struct edge_state *st, struct edge_rng *rng,
                   const struct edge_plane_config *cfg, const struct edge_region_spec *regions,
                   int n_regions, struct edge_plane **pp, char *err, size_t errlen);
void edge_plane_free(struct edge_plane *p);

/* edge_plane_wall_ms: the wall clock in ms since the epoch, the time base
 * of timeline events, upload and deployment times. */
int64_t edge_plane_wall_ms(void);

int edge_plane_n_regions(const struct edge_plane *p);
const char *edge_plane_region_name(const struct edge_plane *p, int i);
/* The port region i listens on (useful after binding port 0). */
int edge_plane_region_port(const struct edge_plane *p, int i);

/* edge_plane_publish: the current deployment of worker (if it is the
 * middleware or the server) reaches each region after its delay. */
void edge_plane_publish(struct edge_plane *p, const char *worker);

/* edge_plane_set_down: takes region name down (1) or up (0). CANARY_ENOENT
 * for an unknown region. */
int edge_plane_set_down(struct edge_plane *p, const char *name, int down);

/* Admin views; new trees owned by the caller, NULL when out of memory.
 * regions: [{name, port, down, delay_ms, pending, cache_entries,
 * deployments:{worker:{id, versions:[...]}}}]; timeline:
 * {"events":[{t_ms, region, worker, deployment_id, versions}], "dropped":N}. */
cJSON *edge_plane_regions_json(const struct edge_plane *p);
cJSON *edge_plane_timeline_json(const struct edge_plane *p);

#endif /* CANARY_EDGE_PLANE_H */
