/*
 * edge_api.c: Cloudflare's REST routes for workers, versions, deployments.
 */
#include "edge_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>

#include "edge_admin.h"
#include "edge_multipart.h"
#include "err.h"
#include "jsonc.h"
#include "log.h"

#define API_PREFIX   "/client/v4/accounts/"
#define API_MAX_SEGS 8

/* libevent's own error pages: the header line that marks them (nothing the
 * edge writes on this listener is HTML), and how far a page's head may
 * reach. */
#define API_PAGE_MARK     "\r\nContent-Type: text/html\r\n"
#define API_PAGE_HEAD_MAX 1024
#define API_STATUS_MAX    64 /* "HTTP/1.1 413 Request Entity Too Large" */

struct edge_api {
	struct evhttp *http;
	struct edge_state *st;
	struct edge_plane *plane;
	struct edge_rng *rng;
	struct edge_api_config cfg;
	struct edge_api_faults faults; /* injected failures, set through the admin route */
};

/* api_send: the envelope; result is taken (NULL for errors). Without
 * memory for the envelope, a fixed 500 envelope is sent instead. */
static void
api_send(struct evhttp_request *req, int status, cJSON *result, int code, const char *message)
{
	cJSON *env = cJSON_CreateObject();
	cJSON *errors, *e;
	char *text = NULL;
	struct evbuffer *out = evhttp_request_get_output_buffer(req);

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	if (env == NULL) {
		goto out;
	}
	cJSON_AddBoolToObject(env, "success", code == 0);
	errors = cJSON_AddArrayToObject(env, "errors");
	if (code != 0 && errors != NULL && (e = cJSON_CreateObject()) != NULL) {
		cJSON_AddNumberToObject(e, "code", code);
		cJSON_AddStringToObject(e, "message", message);
		cJSON_AddItemToArray(errors, e);
	}
	cJSON_AddArrayToObject(env, "messages");
	if (result != NULL) {
		cJSON_AddItemToObject(env, "result", result);
		result = NULL; /* owned by env now */
	} else {
		cJSON_AddNullToObject(env, "result");
	}
	text = cJSON_PrintUnformatted(env);
out:
	if (text != NULL) {
		evbuffer_add(out, text, strlen(text));
	} else {
		status = HTTP_INTERNAL;
		evbuffer_add_printf(out,
		                    "{\"success\":false,\"errors\":[{\"code\":%d,\"message\":\"out "
		                    "of memory\"}],\"messages\":[],\"result\":null}",
		                    EDGE_CF_INTERNAL);
	}
	evhttp_send_reply(req, status, NULL, NULL);
	free(text);
	cJSON_Delete(result);
	cJSON_Delete(env);
}

static void
api_ok(struct evhttp_request *req, cJSON *result)
{
	if (result == NULL) {
		api_send(req, HTTP_INTERNAL, NULL, EDGE_CF_INTERNAL, "out of memory");
		return;
	}
	api_send(req, HTTP_OK, result, 0, NULL);
}

/* api_fail: maps a canary error from the state to Cloudflare's answer. */
static void
api_fail(struct evhttp_request *req, int rv, const char *err)
{
	switch (rv) {
	case CANARY_ENOENT:
		api_send(req, HTTP_NOTFOUND, NULL, EDGE_CF_NOT_FOUND, err);
		break;
	case CANARY_ENOMEM:
	case CANARY_EIO:
	case CANARY_EINTERNAL:
		api_send(req, HTTP_INTERNAL, NULL, EDGE_CF_INTERNAL, err);
		break;
	case CANARY_ETOOBIG:
		api_send(req, 413, NULL, EDGE_CF_TOO_MANY, err);
		break;
	default:
		api_send(req, HTTP_BADREQUEST, NULL, EDGE_CF_BAD_REQUEST, err);
		break;
	}
}

static void
api_method_not_allowed(struct evhttp_request *req, const char *allow)
{
	char msg[96];

	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	snprintf(msg, sizeof(msg), "Method not allowed for this route (allowed: %s)", allow);
	api_send(req, 405, NULL, EDGE_CF_METHOD, msg);
}

/* api_save: persists the state after a change. A failure is logged; the
 * caller takes the change back and reports it. */
static int
api_save(struct edge_api *a, char *err, size_t errlen)
{
	int rv;

	if (a->cfg.state_path == NULL) {
		return 0;
	}
	rv = edge_state_save(a->st, a->cfg.state_path, err, errlen);
	if (rv != 0) {
		canary_logf(CANARY_LOG_ERROR, "state_save", "%s", err);
	}
	return rv;
}

static const char *
api_source(struct evhttp_request *req)
{
	const char *ua = evhttp_find_header(evhttp_request_get_input_headers(req), "User-Agent");

	return ua != NULL && strncmp(ua, "wrangler", 8) == 0 ? "wrangler" : "api";
}

/* api_body: the whole request body as one contiguous, NUL-terminated
 * block inside the input buffer (already capped by EDGE_API_MAX_BODY). */
static const char *
api_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	unsigned char *p;

	*len = evbuffer_get_length(in);
	if (evbuffer_add(in, "", 1) != 0) {
		return NULL;
	}
	p = evbuffer_pullup(in, -1);
	return (const char *)p;
}

/* api_json: text[0..len) as the JSON document `what` ("body", "metadata").
 * Cloudflare takes strict JSON only, so comments, trailing commas or data
 * after the value are refused (400) here too; the depth is capped at
 * EDGE_JSON_MAX_DEPTH. */
static int
api_json(const char *text, size_t len, const char *what, struct canary_jsonc **doc, char *err,
         size_t errlen)
{
	char inner[CANARY_ERRLEN];
	cJSON *strict = NULL;
	int rv;

	if (len == 0) {
		return canary_errf(err, errlen, CANARY_EPARSE, "%s: expected JSON, found nothing",
		                   what);
	}
	/* The JSONC reader first, for its line:column errors and depth cap; then
	 * what it tolerates beyond JSON is refused. */
	rv = canary_jsonc_parse(text, len, EDGE_JSON_MAX_DEPTH, doc, inner, sizeof(inner));
	if (rv == 0 &&
	    (rv = canary_json_parse_exact(text, len, &strict, inner, sizeof(inner))) != 0) {
		canary_jsonc_free(*doc);
		*doc = NULL;
	}
	cJSON_Delete(strict);
	if (rv != 0) {
		return canary_errf(err, errlen, rv == CANARY_ENOMEM ? rv : CANARY_EPARSE,
		                   "%s: malformed JSON at %s", what, inner);
	}
	return 0;
}

static void
api_upload(struct edge_api *a, struct evhttp_request *req, struct edge_worker *w,
           const char *path_id)
{
	const char *script = w->name;
	char boundary[EDGE_MULTIPART_MAX_BOUNDARY + 1];
	char err[CANARY_ERRLEN];
	char id[EDGE_UUID_LEN];
	struct edge_part *parts = NULL;
	struct canary_jsonc *doc = NULL;
	cJSON *modules = NULL;
	const struct edge_part *meta;
	struct edge_version *v;
	struct edge_stamp stamp;
	const char *body, *main_module;
	size_t len;
	int n = 0, rv;

	(void)path_id; /* the route has none */
	rv = edge_multipart_boundary(
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type"), boundary,
	    sizeof(boundary), err, sizeof(err));
	if (rv != 0) {
		api_fail(req, rv, err);
		goto out;
	}
	body = api_body(req, &len);
	parts = calloc(EDGE_MULTIPART_MAX_PARTS, sizeof(*parts));
	if (body == NULL || parts == NULL) {
		api_fail(req, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	rv = edge_multipart_parse(body, len, boundary, parts, EDGE_MULTIPART_MAX_PARTS, &n, err,
	                          sizeof(err));
	if (rv != 0) {
		api_fail(req, rv == CANARY_ETOOBIG ? CANARY_EINVAL : rv, err);
		goto out;
	}
	meta = edge_multipart_find(parts, n, "metadata");
	if (meta == NULL) {
		api_fail(req, CANARY_EINVAL, "multipart: expected a part named \"metadata\"");
		goto out;
	}
	rv = api_json(meta->data, meta->len, "metadata", &doc, err, sizeof(err));
	if (rv != 0) {
		api_fail(req, rv, err);
		goto out;
	}
	if (n - 1 > EDGE_MAX_MODULES) {
		canary_errf(err, sizeof(err), CANARY_EINVAL, "multipart: more than %d modules",
		            EDGE_MAX_MODULES);
		api_fail(req, CANARY_EINVAL, err);
		goto out;
	}
	modules = cJSON_CreateArray();
	for (int i = 0; modules != NULL && i < n; i++) {
		cJSON *m;

		if (&parts[i] == meta) {
			continue;
		}
		m = cJSON_CreateObject();
		if (m == NULL) {
			break;
		}
		cJSON_AddStringToObject(m, "name", parts[i].name);
		cJSON_AddStringToObject(m, "type", parts[i].content_type);
		cJSON_AddNumberToObject(m, "size", (double)parts[i].len);
		cJSON_AddItemToArray(modules, m);
	}
	if (modules == NULL) {
		api_fail(req, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	{
		const cJSON *mm =
		    cJSON_GetObjectItemCaseSensitive(canary_jsonc_root(doc), "main_module");

		main_module = cJSON_IsString(mm) ? mm->valuestring : NULL;
	}
	if (main_module != NULL && (edge_multipart_find(parts, n, main_module) == NULL ||
	                            strcmp(main_module, "metadata") == 0)) {
		canary_errf(err, sizeof(err), CANARY_EINVAL,
		            "metadata.main_module: no module part named \"%.200s\"", main_module);
		api_fail(req, CANARY_EINVAL, err);
		goto out;
	}
	edge_rng_uuid(a->rng, id);
	stamp.id = id;
	stamp.now_ms = edge_plane_wall_ms();
	stamp.source = api_source(req);
	rv = edge_state_upload(a->st, script, canary_jsonc_root(doc), modules, &stamp, &v, err,
	                       sizeof(err));
	if (rv != 0) {
		api_fail(req, rv, err);
		goto out;
	}
	if (api_save(a, err, sizeof(err)) != 0) {
		/* Not kept: what the file does not hold would vanish on a restart. */
		edge_state_undo_upload(w);
		api_fail(req, CANARY_EIO, err);
		goto out;
	}
	{
		struct canary_log_line *l = canary_log_begin(CANARY_LOG_INFO, "upload");

		canary_log_str(l, "worker", script);
		canary_log_str(l, "version", v->id);
		canary_log_u64(l, "number", (uint64_t)v->number);
		canary_log_end(l);
	}
	api_ok(req, edge_state_version_json(v));
out:
	cJSON_Delete(modules);
	canary_jsonc_free(doc);
	free(parts);
}

static void
api_deploy(struct edge_api *a, struct evhttp_request *req, struct edge_worker *w,
           const char *path_id)
{
	const char *script = w->name;
	char err[CANARY_ERRLEN];
	char id[EDGE_UUID_LEN];
	struct canary_jsonc *doc = NULL;
	const struct edge_deployment *d;
	struct edge_stamp stamp;
	const char *body;
	size_t len;
	int rv;

	(void)path_id; /* the route has none */
	body = api_body(req, &len);
	rv = body != NULL ? api_json(body, len, "body", &doc, err, sizeof(err))
	                  : canary_errf(err, sizeof(err), CANARY_ENOMEM, "out of memory");
	if (rv != 0) {
		api_fail(req, rv, err);
		goto out;
	}
	edge_rng_uuid(a->rng, id);
	stamp.id = id;
	stamp.now_ms = edge_plane_wall_ms();
	stamp.source = api_source(req);
	rv = edge_state_deploy(a->st, script, canary_jsonc_root(doc), &stamp, &d, err, sizeof(err));
	if (rv != 0) {
		api_fail(req, rv, err);
		goto out;
	}
	if (api_save(a, err, sizeof(err)) != 0) {
		/* Not kept, and never shown to a region: after a restart it would be
		 * gone, and the regions would go back to the deployment before it. */
		edge_state_undo_deploy(w);
		api_fail(req, CANARY_EIO, err);
		goto out;
	}
	{
		/* One line per change, for people reading the edge's log. */
		struct canary_log_line *l = canary_log_begin(CANARY_LOG_INFO, "deploy");
		char versions[2 * (EDGE_UUID_LEN + 8)];
		size_t k = 0;

		for (int i = 0; i < d->n; i++) {
			k += (size_t)snprintf(versions + k, sizeof(versions) - k, "%s%s@%d",
			                      i > 0 ? "," : "", d->v[i].version_id,
			                      d->v[i].percentage);
		}
		canary_log_str(l, "worker", script);
		canary_log_str(l, "deployment", d->id);
		canary_log_str(l, "versions", versions);
		canary_log_end(l);
	}
	edge_plane_publish(a->plane, script);
	api_ok(req, edge_state_deployment_json(d));
out:
	canary_jsonc_free(doc);
}

static cJSON *
api_settings_json(struct edge_worker *w)
{
	cJSON *o = cJSON_CreateObject();
	const struct edge_deployment *d = edge_state_current(w);
	struct edge_version *v = d != NULL ? edge_state_find_version(w, d->v[0].version_id) : NULL;

	if (o == NULL) {
		return NULL;
	}
	cJSON_AddItemToObject(o, "bindings",
	                      v != NULL ? cJSON_Duplicate(v->bindings, 1) : cJSON_CreateArray());
	cJSON_AddFalseToObject(o, "logpush");
	cJSON_AddNullToObject(o, "tail_consumers");
	cJSON_AddNullToObject(o, "observability");
	cJSON_AddStringToObject(o, "usage_model", "standard");
	cJSON_AddItemToObject(o, "placement", cJSON_CreateObject());
	cJSON_AddItemToObject(o, "tags", cJSON_CreateArray());
	return o;
}

/* api_is_query_true: whether the query string has key=true. */
static int
api_query_true(struct evhttp_request *req, const char *key)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq kv;
	const char *v;
	int yes;

	if (q == NULL) {
		return 0;
	}
	/* evhttp_parse_query_str initialises kv itself. */
	if (evhttp_parse_query_str(q, &kv) != 0) {
		evhttp_clear_headers(&kv);
		return 0;
	}
	v = evhttp_find_header(&kv, key);
	yes = v != NULL && strcmp(v, "true") == 0;
	evhttp_clear_headers(&kv);
	return yes;
}

static void
api_no_route(struct evhttp_request *req)
{
	api_send(req, HTTP_NOTFOUND, NULL, EDGE_CF_NO_ROUTE, "No route for that URI");
}

static void
api_unknown_worker(struct evhttp_request *req, const char *name)
{
	char err[CANARY_ERRLEN];

	canary_errf(err, sizeof(err), CANARY_ENOENT,
	            "This Worker does not exist on your account. (worker \"%.64s\")", name);
	api_send(req, HTTP_NOTFOUND, NULL, EDGE_CF_NOT_FOUND, err);
}

/* ---- /scripts/{script}/{what}[/{id}] -------------------------------------
 * Each handler answers req for worker w (it exists); id is the last path
 * segment of the routes that have one, else NULL. */

static void
api_get_secrets(struct edge_api *a, struct evhttp_request *req, struct edge_worker *w,
                const char *id)
{
	(void)a;
	(void)w;
	(void)id;
	api_ok(req, cJSON_CreateArray());
}

static void
api_get_settings(struct edge_api *a, struct evhttp_request *req, struct edge_worker *w,
                 const char *id)
{
	(void)a;
	(void)id;
	api_ok(req, api_settings_json(w));
}

static void
api_get_versions(struct edge_api *a, struct evhttp_request *req, struct edge_worker *w,
                 const char *id)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *items = cJSON_AddArrayToObject(o, "items");
	int only = api_query_true(req, "deployable");
	int stop = only && w->n_versions > EDGE_DEPLOYABLE ? w->n_versions - EDGE_DEPLOYABLE : 0;

	(void)a;
	(void)id;
	for (int i = w->n_versions - 1; items != NULL && i >= stop; i--) {
		cJSON_AddItemToArray(items, edge_state_version_json(&w->versions[i]));
	}
	api_ok(req, o);
}

static void
api_get_version(struct edge_api *a, struct evhttp_request *req, struct edge_worker *w,
                const char *id)
{
	struct edge_version *v = edge_state_find_version(w, id);

	(void)a;
	if (v == NULL) {
		api_send(req, HTTP_NOTFOUND, NULL, EDGE_CF_NOT_FOUND,
		         "workers.api.error.version_not_found");
		return;
	}
	api_ok(req, edge_state_version_json(v));
}

static void
api_get_deployments(struct edge_api *a, struct evhttp_request *req, struct edge_worker *w,
                    const char *id)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *ds = cJSON_AddArrayToObject(o, "deployments");

	(void)a;
	(void)id;
	for (int i = w->n_deps - 1; ds != NULL && i >= 0; i--) {
		cJSON_AddItemToArray(ds, edge_state_deployment_json(&w->deps[i]));
	}
	api_ok(req, o);
}

static void
api_get_deployment(struct edge_api *a, struct evhttp_request *req, struct edge_worker *w,
                   const char *id)
{
	(void)a;
	for (int i = w->n_deps - 1; i >= 0; i--) {
		if (strcmp(w->deps[i].id, id) == 0) {
			api_ok(req, edge_state_deployment_json(&w->deps[i]));
			return;
		}
	}
	api_send(req, HTTP_NOTFOUND, NULL, EDGE_CF_NOT_FOUND,
	         "workers.api.error.deployment_not_found");
}

typedef void (*api_handler)(struct edge_api *, struct evhttp_request *, struct edge_worker *,
                            const char *);

/* The routes under /scripts/{script}/: the segment, whether an id follows,
 * and the handler of each method (NULL: not served). */
static const struct api_route {
	const char *what;
	int with_id;
	api_handler get, post;
} api_routes[] = {
    {"secrets", 0, api_get_secrets, NULL},
    {"settings", 0, api_get_settings, NULL},
    {"versions", 0, api_get_versions, api_upload},
    {"versions", 1, api_get_version, NULL},
    {"deployments", 0, api_get_deployments, api_deploy},
    {"deployments", 1, api_get_deployment, NULL},
};

/* api_workers: routes under /workers; segs[0] is the first segment after it. */
static void
api_workers(struct edge_api *a, struct evhttp_request *req, char **segs, int n)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const struct api_route *rt = NULL;
	struct edge_worker *w = NULL;
	api_handler fn;

	if (n == 2 && strcmp(segs[0], "services") == 0) {
		if (m != EVHTTP_REQ_GET) {
			api_method_not_allowed(req, "GET");
			return;
		}
		if ((w = edge_state_worker(a->st, segs[1])) == NULL) {
			api_unknown_worker(req, segs[1]);
			return;
		}
		api_ok(req, edge_state_service_json(w));
		return;
	}
	if (n < 1 || strcmp(segs[0], "scripts") != 0) {
		api_no_route(req);
		return;
	}
	if (n == 1) {
		cJSON *arr;

		if (m != EVHTTP_REQ_GET) {
			api_method_not_allowed(req, "GET");
			return;
		}
		arr = cJSON_CreateArray();
		for (int i = 0; arr != NULL && i < a->st->n_workers; i++) {
			cJSON_AddItemToArray(arr, edge_state_script_json(&a->st->workers[i]));
		}
		api_ok(req, arr);
		return;
	}
	if (n == 2 || n > 4) {
		api_no_route(req);
		return;
	}
	/* From here: /scripts/{script}/{what}[/{id}] */
	for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
		if (strcmp(api_routes[i].what, segs[2]) == 0 && api_routes[i].with_id == (n == 4)) {
			rt = &api_routes[i];
		}
	}
	if (rt == NULL) {
		api_no_route(req);
		return;
	}
	fn = m == EVHTTP_REQ_GET ? rt->get : m == EVHTTP_REQ_POST ? rt->post : NULL;
	if (fn == NULL) {
		api_method_not_allowed(req, rt->post != NULL ? "GET, POST" : "GET");
		return;
	}
	if ((w = edge_state_worker(a->st, segs[1])) == NULL) {
		api_unknown_worker(req, segs[1]);
		return;
	}
	fn(a, req, w, n == 4 ? segs[3] : NULL);
}

static int
api_token_ok(const struct edge_api *a, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");

	if (a->cfg.token == NULL) {
		return 1;
	}
	return h != NULL && strncasecmp(h, "Bearer ", 7) == 0 && strcmp(h + 7, a->cfg.token) == 0;
}

static int
api_account_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= EDGE_TAG_MAX) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '-' || c == '_')) {
			return 0;
		}
	}
	return 1;
}

static void
api_request(struct evhttp_request *req, void *arg)
{
	struct edge_api *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	char copy[EDGE_PATH_MAX];
	char *segs[API_MAX_SEGS + 1];
	char *save = NULL, *tok;
	int n = 0;

	if (path == NULL) {
		api_send(req, HTTP_BADREQUEST, NULL, EDGE_CF_NO_ROUTE, "No route for that URI");
		return;
	}
	if (strncmp(path, EDGE_ADMIN_PREFIX, strlen(EDGE_ADMIN_PREFIX)) == 0) {
		edge_admin_handle(req, path, a->st, a->plane, &a->faults);
		return;
	}
	if (strncmp(path, API_PREFIX, strlen(API_PREFIX)) != 0 || strlen(path) >= sizeof(copy)) {
		api_send(req, HTTP_NOTFOUND, NULL, EDGE_CF_NO_ROUTE, "No route for that URI");
		return;
	}
	if (a->faults.remaining > 0) {
		/* An injected failure, before authentication, as a rate limiter or a
		 * failing front end answers. */
		a->faults.remaining--;
		if (a->faults.status == 429) {
			char ra[16];

			snprintf(ra, sizeof(ra), "%d", a->faults.retry_after_s);
			evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
			                  ra);
			api_send(req, 429, NULL, EDGE_CF_RATE_LIMITED,
			         "Please wait and consider throttling your request speed");
		} else {
			api_send(req, a->faults.status, NULL, EDGE_CF_INJECTED,
			         "An injected failure of canary-edge (POST /__edge/api-faults)");
		}
		return;
	}
	if (!api_token_ok(a, req)) {
		api_send(req, 401, NULL, EDGE_CF_AUTH, "Authentication error");
		return;
	}
	snprintf(copy, sizeof(copy), "%s", path + strlen(API_PREFIX));
	for (tok = strtok_r(copy, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
		if (n == API_MAX_SEGS) {
			api_send(req, HTTP_NOTFOUND, NULL, EDGE_CF_NO_ROUTE,
			         "No route for that URI");
			return;
		}
		segs[n++] = tok;
	}
	if (n < 2 || strcmp(segs[1], "workers") != 0) {
		api_send(req, HTTP_NOTFOUND, NULL, EDGE_CF_NO_ROUTE, "No route for that URI");
		return;
	}
	if (!api_account_ok(segs[0]) ||
	    (a->cfg.account != NULL && strcmp(a->cfg.account, segs[0]) != 0)) {
		char msg[EDGE_TAG_MAX + 96];

		snprintf(msg, sizeof(msg),
		         "Could not route to /accounts/%.64s, perhaps your object identifier is "
		         "invalid?",
		         segs[0]);
		api_send(req, HTTP_NOTFOUND, NULL, EDGE_CF_ACCOUNT, msg);
		return;
	}
	api_workers(a, req, segs + 2, n - 2);
}

/* ---- libevent's own error pages, answered with the envelope --------------
 *
 * libevent 2.1 refuses some requests before any handler sees them (a body over
 * evhttp_set_max_body_size, a malformed request line, a method outside
 * evhttp_set_allowed_methods) and answers with an HTML page of its own; it has
 * no hook for that answer (evhttp_set_errorcb came with 2.2). Cloudflare answers
 * everything under /client/v4 with its JSON envelope, and API clients parse it,
 * so the output buffer of every API connection is watched: once a complete
 * HTML page is in it (libevent writes a whole answer on the loop thread before
 * the socket is written), the page is replaced by an envelope with the same
 * status. The edge itself never writes HTML on this listener. */

/* api_page_code: the Cloudflare error code for a status libevent chose. */
static int
api_page_code(int status)
{
	switch (status) {
	case 413:
		return EDGE_CF_TOO_MANY;
	case 405:
	case 501:
		return EDGE_CF_METHOD;
	default:
		return EDGE_CF_BAD_REQUEST;
	}
}

/* api_page_rewrite: if buf holds a complete libevent page, replaces it
 * (and only it) with the envelope. Returns 1 when it did. The buffer is
 * made contiguous to be searched. */
static int
api_page_rewrite(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	const char *p, *mark, *st = NULL, *head_end, *cl;
	char msg[CANARY_ERRLEN], body[CANARY_ERRLEN + 128], line[API_STATUS_MAX + 1];
	struct evbuffer *keep = NULL;
	size_t start, head_len, body_len;
	int status, n, frozen, done = 0;

	/* Contiguous bytes: libevent 2.1.12's evbuffer_ptr_set refuses offsets
	 * into a buffer drained before (a kept-alive connection's). */
	if (len < strlen(API_PAGE_MARK) || (p = (const char *)evbuffer_pullup(buf, -1)) == NULL ||
	    (mark = memmem(p, len, API_PAGE_MARK, strlen(API_PAGE_MARK))) == NULL) {
		return 0;
	}
	/* The status line ends where the mark starts: the last "HTTP/1." before it. */
	for (const char *k = mark - p > API_STATUS_MAX ? mark - API_STATUS_MAX : p; k + 7 <= mark;
	     k++) {
		if (memcmp(k, "HTTP/1.", 7) == 0) {
			st = k;
		}
	}
	if (st == NULL || (size_t)(mark - st) < 12) {
		return 0;
	}
	memcpy(line, st, (size_t)(mark - st));
	line[mark - st] = '\0';
	head_end = memmem(mark, len - (size_t)(mark - p), "\r\n\r\n", 4);
	if (sscanf(line + 8, " %d", &status) != 1 || head_end == NULL) {
		return 0; /* the head is not complete yet */
	}
	start = (size_t)(st - p);
	head_len = (size_t)(head_end + 4 - st);
	cl = memmem(st, head_len, "\r\nContent-Length: ", 18);
	if (head_len > API_PAGE_HEAD_MAX || cl == NULL || sscanf(cl + 18, "%zu", &body_len) != 1 ||
	    body_len > len || len - start - head_len < body_len) {
		return 0; /* no length, or the page is not complete yet */
	}
	if (status == 413) {
		snprintf(msg, sizeof(msg),
		         "request body larger than %d bytes, the most this edge accepts",
		         EDGE_API_MAX_BODY);
	} else {
		/* "HTTP/1.1 " is 9 bytes: the message keeps the status and reason. */
		snprintf(msg, sizeof(msg), "request refused: %s", line + 9);
	}
	n = snprintf(body, sizeof(body),
	             "{\"success\":false,\"errors\":[{\"code\":%d,\"message\":\"%s\"}],"
	             "\"messages\":[],\"result\":null}",
	             api_page_code(status), msg);
	/* Whatever precedes the page (an earlier answer not yet written) stays,
	 * and so does whatever follows it. The socket bufferevent may hold its
	 * output's start frozen (only the socket drains it; evbuffer_drain of 0
	 * bytes fails just then): the edit thaws it and freezes it again. */
	frozen = evbuffer_drain(buf, 0) != 0;
	if (frozen) {
		evbuffer_unfreeze(buf, 1);
	}
	keep = evbuffer_new();
	if (keep == NULL || evbuffer_remove_buffer(buf, keep, start) != (int)start ||
	    evbuffer_drain(buf, head_len + body_len) != 0 ||
	    evbuffer_add_printf(keep,
	                        "%s\r\nContent-Type: application/json\r\nConnection: close\r\n"
	                        "Content-Length: %d\r\n\r\n%s",
	                        line, n, body) < 0 ||
	    evbuffer_prepend_buffer(buf, keep) != 0) {
		goto out;
	}
	done = 1;
out:
	if (frozen) {
		evbuffer_freeze(buf, 1);
	}
	if (keep != NULL) {
		evbuffer_free(keep);
	}
	return done;
}

/* api_page_cb: watches an API connection's output buffer (see above). The
 * loop is single-threaded, so one flag keeps the rewrite from seeing its own
 * changes. */
static void
api_page_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	static int rewriting;

	(void)arg;
	if (rewriting || info->n_added == 0) {
		return;
	}
	rewriting = 1;
	(void)api_page_rewrite(buf);
	rewriting = 0;
}

/* api_bevcb: each API connection's bufferevent, with the watch above. On
 * failure libevent makes a plain one (NULL). */
static struct bufferevent *
api_bevcb(struct event_base *base, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	(void)arg;
	if (bev != NULL &&
	    evbuffer_add_cb(bufferevent_get_output(bev), api_page_cb, NULL) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	return bev;
}

int
edge_api_new(struct evhttp *http, struct edge_state *st, struct edge_plane *plane,
             struct edge_rng *rng, const struct edge_api_config *cfg, struct edge_api **ap,
             char *err, size_t errlen)
{
	struct edge_api *a = calloc(1, sizeof(*a));

	*ap = NULL;
	if (a == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	a->http = http;
	a->st = st;
	a->plane = plane;
	a->rng = rng;
	a->cfg = *cfg;
	evhttp_set_max_body_size(http, EDGE_API_MAX_BODY);
	/* An oversized body is read and dropped before the answer, so a client
	 * still sending it gets the answer rather than a reset. */
	evhttp_set_flags(http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_bevcb(http, api_bevcb, NULL);
	evhttp_set_max_headers_size(http, EDGE_API_MAX_HEADERS);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	                                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	                                     EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(http, api_request, a);
	*ap = a;
	return 0;
}

void
edge_api_free(struct edge_api *a)
{
	free(a);
}
