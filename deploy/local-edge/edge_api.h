/*
 * edge_api.h: the Cloudflare REST API subset of canary-edge, on --api.
 *
 * Under /client/v4/accounts/{account}/workers:
 *   GET  /services/{script}               the worker (migration_tag); 404 10007 if unknown
 *   GET  /scripts                         every worker (wrangler 4.86 lists them)
 *   GET  /scripts/{script}/secrets        []
 *   GET  /scripts/{script}/settings       non-versioned settings
 *   GET  /scripts/{script}/versions       {items:[...]} newest first (?deployable=true)
 *   POST /scripts/{script}/versions       multipart upload: `metadata` part + modules
 *   GET  /scripts/{script}/versions/{id}  one version
 *   GET  /scripts/{script}/deployments    {deployments:[...]} newest first
 *   POST /scripts/{script}/deployments    a new deployment (reaches regions after their delay)
 *   GET  /scripts/{script}/deployments/{id}  one deployment
 *
 * Answers use Cloudflare's envelope {success, errors:[{code,message}],
 * messages, result}. With a token configured, `Authorization: Bearer TOKEN`
 * is required (401, code 10000). Unknown routes: 404 code 7000; a known route
 * with another method: 405 code 7001. A body over EDGE_API_MAX_BODY is read
 * and dropped, then answered 413 with the envelope (code EDGE_CF_TOO_MANY);
 * requests libevent itself refuses (a malformed request, a method it does not
 * serve) get the envelope too, with libevent's status. Paths under /__edge/
 * go to edge_admin. Runs on the loop thread.
 */
#ifndef CANARY_EDGE_API_H
#define CANARY_EDGE_API_H

#include <stddef.h>

#include <event2/http.h>

#include "edge_plane.h"
#include "edge_route.h"
#include "edge_state.h"

struct edge_api_config {
	const char *token;      /* NULL: no token checked */
	const char *account;    /* NULL: any account id */
	const char *state_path; /* NULL: state kept in memory only */
};

struct edge_api;

/* edge_api_new: serves the routes above on http (already bound). Everything
 * passed must outlive the api. */
int edge_api_new(struct evhttp *http, struct edge_state *st, struct edge_plane *plane,
                 struct edge_rng *rng, const struct edge_api_config *cfg, struct edge_api **ap,
                 char *err, size_t errlen);
void edge_api_free(struct edge_api *a);

#endif /* CANARY_EDGE_API_H */
