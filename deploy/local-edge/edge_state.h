/*
 * edge_state.h: what the platform holds: workers, their uploaded versions
 * (bindings, annotations, module sizes) and their deployment history.
 *
 * The rules are Cloudflare's: a worker must exist before an upload; a
 * deployment holds one or two distinct versions of that worker with integer
 * percentages 0..100 totalling 100; only the newest EDGE_DEPLOYABLE uploads
 * can be deployed; deployments are listed newest first.
 *
 * Everything but edge_state_save/edge_state_load is pure: ids and times are
 * passed in. The state is owned by one thread (the edge's libevent loop).
 */
#ifndef CANARY_EDGE_STATE_H
#define CANARY_EDGE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "edge_const.h"
#include "edge_route.h"

struct edge_version {
	char id[EDGE_UUID_LEN];
	int number; /* 1, 2, ... per worker, in upload order */
	int64_t created_ms;
	/* The stored record (state-file shape: id, number, created_ms, source,
	 * bindings, annotations, main_module, compatibility_date,
	 * compatibility_flags, modules), owned. */
	cJSON *rec;
	const cJSON *bindings; /* the array inside rec */
};

struct edge_deployment {
	char id[EDGE_UUID_LEN];
	int64_t created_ms;
	char source[EDGE_NAME_MAX]; /* "wrangler", "api", "canary-edge" */
	cJSON *annotations;         /* owned object */
	int n;                      /* 1 or 2 */
	struct {
		char version_id[EDGE_UUID_LEN];
		int percentage;
	} v[EDGE_DEPLOY_MAX_VERSIONS];
};

struct edge_worker {
	char name[EDGE_NAME_MAX];
	char migration_tag[EDGE_TAG_MAX]; /* "" when none */
	int64_t created_ms;
	struct edge_version *versions; /* oldest first */
	int n_versions, cap_versions;
	struct edge_deployment *deps; /* oldest first; the last is current */
	int n_deps, cap_deps;
};

struct edge_state {
	struct edge_worker workers[EDGE_MAX_WORKERS];
	int n_workers;
};

/* A new deployment's or version's identity and origin, chosen by the caller. */
struct edge_stamp {
	const char *id;     /* a UUID */
	int64_t now_ms;     /* wall-clock ms since the epoch */
	const char *source; /* "wrangler", "api", ... */
};

int edge_state_new(struct edge_state **stp);
/* Frees st and everything it owns. Accepts NULL. */
void edge_state_free(struct edge_state *st);

/* edge_state_worker: the worker called name, or NULL. */
struct edge_worker *edge_state_worker(struct edge_state *st, const char *name);
/* edge_state_valid_name: whether s is a Cloudflare worker name: 1..63 of
 * lower-case letters, digits, '-' and '_', not starting with '-'. */
int edge_state_valid_name(const char *s);
/* edge_state_add_worker: a new worker without versions. CANARY_EINVAL for a
 * bad or taken name, CANARY_ETOOBIG past EDGE_MAX_WORKERS. */
int edge_state_add_worker(struct edge_state *st, const char *name, int64_t now_ms, char *err,
                          size_t errlen);

/* edge_state_seed: adds the server and middleware workers with one version
 * each, deployed at 100%; the middleware's WORKER_VERSION_ID is the server
 * version's id. Both carry a version metadata binding, as an upload of the
 * project's worker configs would. Ids come from rng. */
int edge_state_seed(struct edge_state *st, const char *middleware, const char *server,
                    struct edge_rng *rng, int64_t now_ms, char *err, size_t errlen);

/* edge_state_find_version: the version of w with that id, or NULL. */
struct edge_version *edge_state_find_version(struct edge_worker *w, const char *id);
/* edge_state_current: w's current deployment, or NULL when never deployed. */
const struct edge_deployment *edge_state_current(const struct edge_worker *w);

/* edge_state_upload: adds a version of worker from an upload's metadata
 * (Cloudflare's multipart `metadata` part, parsed; not taken) and modules
 * (an array of {name, type, size}; may be NULL; not taken). Errors:
 * CANARY_ENOENT unknown worker, CANARY_EINVAL bad metadata (err names the
 * field), CANARY_ETOOBIG over a cap, CANARY_ENOMEM. On success *vp points at
 * the new version (valid until the next upload to that worker). */
int edge_state_upload(struct edge_state *st, const char *worker, const cJSON *metadata,
                      const cJSON *modules, const struct edge_stamp *stamp,
                      struct edge_version **vp, char *err, size_t errlen);

/* edge_state_deploy: adds a deployment from Cloudflare's request body
 * ({"strategy":"percentage","versions":[{"version_id","percentage"}],
 * "annotations":{...}}; not taken). Errors: CANARY_ENOENT unknown worker or
 * version (err starts "workers.api.error.version_not_found" for a version),
 * CANARY_EINVAL a broken rule (err names it), CANARY_ENOMEM. On success *dp
 * points at the new current deployment (valid until the next deployment). */
int edge_state_deploy(struct edge_state *st, const char *worker, const cJSON *body,
                      const struct edge_stamp *stamp, const struct edge_deployment **dp, char *err,
                      size_t errlen);

/* edge_state_undo_upload, edge_state_undo_deploy: take back w's newest
 * version or deployment (the API's, when the state file could not be written
 * after it). A deployment that pushed the oldest one out of the history at
 * EDGE_MAX_DEPLOYMENTS does not bring it back. */
void edge_state_undo_upload(struct edge_worker *w);
void edge_state_undo_deploy(struct edge_worker *w);

/* JSON in Cloudflare's shapes. Each returns a new tree the caller owns, or
 * NULL when out of memory. */
cJSON *edge_state_version_json(const struct edge_version *v);
cJSON *edge_state_deployment_json(const struct edge_deployment *d);
cJSON *edge_state_service_json(const struct edge_worker *w);
cJSON *edge_state_script_json(const struct edge_worker *w);

/* edge_state_iso: ms since the epoch as "2026-11-27T20:01:51.215000Z". */
void edge_state_iso(int64_t ms, char *buf, size_t n);

/* The state file: edge_state_to_json gives the whole state as one tree
 * (NULL when out of memory); edge_state_from_json checks and rebuilds it
 * (CANARY_EPARSE with the field path in err when anything is wrong). */
cJSON *edge_state_to_json(const struct edge_state *st);
int edge_state_from_json(const cJSON *root, struct edge_state **stp, char *err, size_t errlen);

/* edge_state_save: writes st to path atomically: path.tmp, fsync, rename,
 * fsync of the directory. CANARY_EIO with the path and reason in err.
 * edge_state_load: reads path (CANARY_ENOENT when it does not exist). */
int edge_state_save(const struct edge_state *st, const char *path, char *err, size_t errlen);
int edge_state_load(const char *path, struct edge_state **stp, char *err, size_t errlen);

#endif /* CANARY_EDGE_STATE_H */
