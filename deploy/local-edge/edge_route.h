/*
 * edge_route.h: the routing decisions of the data plane, as pure functions.
 *
 * Which version of a worker answers a request: a version override for this
 * worker naming a deployed version wins; else a version key, hashed, picks a
 * bucket; else a random bucket. Buckets 0..99 are laid out newest version
 * first, so a key that landed on the newer version stays there while that
 * version's percentage grows (Cloudflare's version affinity).
 *
 * Also here: the seedable random source (reproducible tests with --seed),
 * version ids, and the faults read from a version's plain-text bindings.
 * Nothing here touches sockets, files or clocks.
 */
#ifndef CANARY_EDGE_ROUTE_H
#define CANARY_EDGE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "edge_const.h"

/* splitmix64: small, fast, and the same sequence for the same seed. */
struct edge_rng {
	uint64_t s;
};

void edge_rng_seed(struct edge_rng *r, uint64_t seed);
uint64_t edge_rng_next(struct edge_rng *r);
/* A uniform double in [0, 1). */
double edge_rng_unit(struct edge_rng *r);
/* A random RFC 4122 version 4 UUID, lower-case, into out (EDGE_UUID_LEN). */
void edge_rng_uuid(struct edge_rng *r, char out[EDGE_UUID_LEN]);

/* A deployment as the router sees it: versions with their percentages and
 * upload numbers (a higher number is a newer upload). Ids point into storage
 * owned by the caller. */
struct edge_split {
	int n; /* 0 (worker not deployed), 1 or 2 */
	struct {
		const char *id;
		int percentage;
		int number;
	} v[EDGE_DEPLOY_MAX_VERSIONS];
};

/* edge_route_versions_json: the split as Cloudflare's versions array
 * [{"version_id","percentage"}], a new tree the caller owns (NULL when out of
 * memory). Deployments in the API, regions and the timeline share it. */
cJSON *edge_route_versions_json(const struct edge_split *split);

/* edge_route_override: finds worker's entry in an RFC 8941 dictionary
 * (`name="version-id", other="..."`), the value of a
 * Cloudflare-Workers-Version-Overrides header. Copies the version id into
 * out (outlen bytes) and returns 1; returns 0 when the header is NULL, names
 * no such worker, is not a valid dictionary (then Cloudflare ignores it
 * whole), or the value is empty or does not fit. */
int edge_route_override(const char *header, const char *worker, char *out, size_t outlen);

/* edge_route_key_bucket: the bucket 0..99 a version key hashes to. */
int edge_route_key_bucket(const char *key);

/* edge_route_pick: the index into split->v of the version that answers.
 * override_id (may be NULL) wins when it names a version of split; else key
 * (may be NULL or "") picks by its bucket; else random (any 64-bit value)
 * picks a bucket. Returns -1 only when split->n is 0. */
int edge_route_pick(const struct edge_split *split, const char *override_id, const char *key,
                    uint64_t random);

/* Faults a version carries in its plain_text bindings (DESIGN.md). */
struct edge_faults {
	double error_rate;                /* 0..1: share of answers replaced by 500 */
	int status;                       /* 0 or 100..599: every answer gets this status */
	int latency_ms;                   /* added before answering */
	int ignore_pin;                   /* middleware sends no override to the server */
	char override_key[EDGE_NAME_MAX]; /* "" or the key the middleware uses instead of the
	                                     server's name */
	int no_cache;                     /* middleware never answers from the ISR cache */
};

/* edge_faults_parse: reads the CANARY_EDGE_* plain_text bindings out of
 * bindings (a Cloudflare bindings array; NULL means none). When region is not
 * NULL and CANARY_EDGE_REGIONS is set without naming it, the faults are
 * cleared (they apply elsewhere). Returns 0, or CANARY_EINVAL with
 * "bindings.NAME: expected ..., found ..." in err for a malformed value. */
int edge_faults_parse(const cJSON *bindings, const char *region, struct edge_faults *f, char *err,
                      size_t errlen);

/* edge_binding_text: the text of the plain_text binding called name, or NULL. */
const char *edge_binding_text(const cJSON *bindings, const char *name);

#endif /* CANARY_EDGE_ROUTE_H */
