/*
 * deployer_api.c: the `api` backend: the Cloudflare REST API through httpc,
 * with uploads through the wrangler backend or as a direct multipart
 * upload. See deployer.h for what each operation calls and returns.
 */
#include "deployer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "httpc.h"
#include "jsonc.h"

#define API_URL_MAX      2048
#define API_NAME_MAX     DEPLOYER_WORKER_NAME_MAX
#define API_QUOTE_MAX    160 /* bytes of one API error message quoted */
#define API_QUOTE_ERRORS 3   /* API errors quoted in one message */
#define API_AUTH_PREFIX  "Authorization: Bearer "
#define API_JSON_HEADER  "Content-Type: application/json"

enum api_kind { API_UPLOAD, API_DEPLOY, API_STATUS, API_MIGRATION_TAG };

struct api;

struct api_op {
	struct api *a;
	struct api_op *next;
	struct api_op **pprev;
	enum api_kind kind;
	deployer_cb cb;
	void *arg;
	struct httpc_xfer *x;        /* the request in flight, NULL when waiting on wrangler */
	char what[API_URL_MAX + 16]; /* "METHOD URL" for errors */
	char worker[API_NAME_MAX + 1];
	struct deployment want;
};

/* One worker's bundled modules, copied from struct deployer_api_modules. */
struct api_modset {
	char *worker;
	char **files;
	char **names; /* base names: part names and filenames */
	int n_files;
	char *main_module;
	char *compatibility_date;
	cJSON *bindings; /* array, or NULL */
};

struct api {
	struct deployer d;
	char *base_url; /* without a trailing '/' */
	char *account_id;
	char *token;
	char *auth; /* "Authorization: Bearer <token>" */
	int timeout_s;
	struct httpc *http;
	struct deployer *wrangler; /* uploads through the CLI, or NULL */
	struct api_modset *mods;
	int n_mods;
	struct api_op *ops;
};

static void
api_op_unlink(struct api_op *op)
{
	if (op->pprev != NULL) {
		*op->pprev = op->next;
		if (op->next != NULL) {
			op->next->pprev = op->pprev;
		}
		op->pprev = NULL;
	}
}

/* api_deliver: unlinks and frees op, then runs its callback once. */
static void
api_deliver(struct api_op *op, struct deployer_result *res)
{
	deployer_cb cb = op->cb;
	void *arg = op->arg;

	deployer_scrub(res->err, op->a->token);
	api_op_unlink(op);
	free(op);
	cb(res, arg);
}

static struct api_op *
api_op_new(struct api *a, enum api_kind kind, const char *worker, deployer_cb cb, void *arg)
{
	struct api_op *op = calloc(1, sizeof(*op));

	if (op == NULL) {
		return NULL;
	}
	op->a = a;
	op->kind = kind;
	op->cb = cb;
	op->arg = arg;
	snprintf(op->worker, sizeof(op->worker), "%s", worker);
	op->next = a->ops;
	if (a->ops != NULL) {
		a->ops->pprev = &op->next;
	}
	op->pprev = &a->ops;
	a->ops = op;
	return op;
}

/* api_quote: copies at most API_QUOTE_MAX bytes of s into dst, control
 * characters as spaces: API text goes into one-line messages. */
static void
api_quote(const char *s, char *dst, size_t dstlen)
{
	size_t i, w = 0;

	for (i = 0; s != NULL && s[i] != '\0' && w + 1 < dstlen && i < API_QUOTE_MAX; i++) {
		dst[w++] = (unsigned char)s[i] < 0x20 ? ' ' : s[i];
	}
	dst[w] = '\0';
}

/* api_envelope: checks an answer strictly: {"success":bool,"errors":[...],
 * "result":...}. On success (2xx and success true) *doc owns the parsed
 * body and *result points at its "result". Errors quote the API's codes and
 * messages. */
static int
api_envelope(const struct api_op *op, const struct httpc_response *r, cJSON **doc,
             const cJSON **result, char *err, size_t errlen)
{
	const cJSON *success, *errors, *e;
	char quoted[API_QUOTE_MAX + 1];
	char list[CANARY_ERRLEN];
	size_t w = 0;
	int n = 0;

	*doc = NULL;
	*result = NULL;
	if (r->rv != 0) {
		return canary_errf(err, errlen, r->rv, "%s", r->err);
	}
	if (canary_json_parse_exact(r->body, r->body_len, doc, NULL, 0) != 0 ||
	    !cJSON_IsObject(*doc)) {
		api_quote(r->body, quoted, sizeof(quoted));
		cJSON_Delete(*doc);
		*doc = NULL;
		return canary_errf(err, errlen,
		                   r->status >= 200 && r->status <= 299 ? CANARY_EPARSE
		                                                        : CANARY_EHTTP,
		                   "%s: HTTP %ld, expected a JSON envelope, found: %s", op->what,
		                   r->status, quoted);
	}
	success = cJSON_GetObjectItemCaseSensitive(*doc, "success");
	errors = cJSON_GetObjectItemCaseSensitive(*doc, "errors");
	if (!cJSON_IsBool(success) || !cJSON_IsArray(errors)) {
		cJSON_Delete(*doc);
		*doc = NULL;
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "%s: HTTP %ld: envelope without a boolean \"success\" and an "
		                   "\"errors\" array",
		                   op->what, r->status);
	}
	if (cJSON_IsTrue(success) && r->status >= 200 && r->status <= 299) {
		*result = cJSON_GetObjectItemCaseSensitive(*doc, "result");
		if (*result == NULL || cJSON_IsNull(*result)) {
			cJSON_Delete(*doc);
			*doc = NULL;
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "%s: success without a result", op->what);
		}
		return 0;
	}
	list[0] = '\0';
	cJSON_ArrayForEach(e, errors)
	{
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
		int k;

		if (n >= API_QUOTE_ERRORS) {
			break;
		}
		api_quote(cJSON_IsString(msg) ? msg->valuestring : "(no message)", quoted,
		          sizeof(quoted));
		k = snprintf(list + w, sizeof(list) - w, "%s[code %.0f] %s", n > 0 ? "; " : "",
		             cJSON_IsNumber(code) ? code->valuedouble : 0.0, quoted);
		if (k < 0 || (size_t)k >= sizeof(list) - w) {
			break;
		}
		w += (size_t)k;
		n++;
	}
	cJSON_Delete(*doc);
	*doc = NULL;
	return canary_errf(err, errlen, CANARY_EAPI, "%s: HTTP %ld: %s", op->what, r->status,
	                   n > 0 ? list : "success false and no error given");
}

static void
api_on_status(const struct httpc_response *r, void *arg)
{
	struct api_op *op = arg;
	struct deployer_result res;
	const cJSON *result, *deps;
	cJSON *doc;

	memset(&res, 0, sizeof(res));
	op->x = NULL;
	res.rv = api_envelope(op, r, &doc, &result, res.err, sizeof(res.err));
	if (res.rv == 0) {
		deps = cJSON_GetObjectItemCaseSensitive(result, "deployments");
		if (!cJSON_IsArray(deps)) {
			res.rv = canary_errf(res.err, sizeof(res.err), CANARY_EPARSE,
			                     "%s: result.deployments: expected an array", op->what);
		} else if (cJSON_GetArraySize(deps) == 0) {
			res.rv =
			    canary_errf(res.err, sizeof(res.err), CANARY_ENOENT,
			                "%s: worker %s has no deployment", op->what, op->worker);
		} else {
			/* Newest first: the first deployment is the one serving. */
			char where[API_URL_MAX + 64];

			snprintf(where, sizeof(where), "%s: result.deployments[0]", op->what);
			res.rv =
			    deployer_deployment_parse(cJSON_GetArrayItem(deps, 0), where,
			                              &res.deployment, res.err, sizeof(res.err));
		}
	}
	cJSON_Delete(doc);
	api_deliver(op, &res);
}

static void
api_on_deploy(const struct httpc_response *r, void *arg)
{
	struct api_op *op = arg;
	struct deployer_result res;
	const cJSON *result;
	cJSON *doc;
	char where[API_URL_MAX + 32];

	memset(&res, 0, sizeof(res));
	op->x = NULL;
	res.rv = api_envelope(op, r, &doc, &result, res.err, sizeof(res.err));
	if (res.rv == 0) {
		snprintf(where, sizeof(where), "%s: result", op->what);
		res.rv = deployer_deployment_parse(result, where, &res.deployment, res.err,
		                                   sizeof(res.err));
	}
	if (res.rv == 0 && !deployer_deployment_equal(&res.deployment, &op->want)) {
		char want[DEPLOYER_DEP_TEXT_LEN], got[DEPLOYER_DEP_TEXT_LEN];

		deployer_deployment_format(&op->want, want, sizeof(want));
		deployer_deployment_format(&res.deployment, got, sizeof(got));
		res.rv = canary_errf(res.err, sizeof(res.err), CANARY_EDRIFT,
		                     "%s: asked for %s, the platform answered with %s", op->what,
		                     want, got);
	}
	cJSON_Delete(doc);
	api_deliver(op, &res);
}

static void
api_on_upload(const struct httpc_response *r, void *arg)
{
	struct api_op *op = arg;
	struct deployer_result res;
	const cJSON *result, *id;
	cJSON *doc;

	memset(&res, 0, sizeof(res));
	op->x = NULL;
	res.rv = api_envelope(op, r, &doc, &result, res.err, sizeof(res.err));
	if (res.rv == 0) {
		id = cJSON_GetObjectItemCaseSensitive(result, "id");
		if (!cJSON_IsString(id) || !canary_is_uuid(id->valuestring)) {
			res.rv = canary_errf(res.err, sizeof(res.err), CANARY_EPARSE,
			                     "%s: result.id: expected a version uuid", op->what);
		} else {
			memcpy(res.version_id, id->valuestring, CANARY_UUID_LEN);
		}
	}
	cJSON_Delete(doc);
	api_deliver(op, &res);
}

static void
api_on_migration_tag(const struct httpc_response *r, void *arg)
{
	struct api_op *op = arg;
	struct deployer_result res;
	const cJSON *result, *env, *script, *tag;
	cJSON *doc;

	memset(&res, 0, sizeof(res));
	op->x = NULL;
	res.rv = api_envelope(op, r, &doc, &result, res.err, sizeof(res.err));
	if (res.rv == 0) {
		env = cJSON_GetObjectItemCaseSensitive(result, "default_environment");
		script = cJSON_GetObjectItemCaseSensitive(env, "script");
		tag = cJSON_GetObjectItemCaseSensitive(script, "migration_tag");
		if (!cJSON_IsObject(env) || !cJSON_IsObject(script)) {
			res.rv = canary_errf(
			    res.err, sizeof(res.err), CANARY_EPARSE,
			    "%s: result.default_environment.script: expected an object", op->what);
		} else if (tag != NULL && !cJSON_IsNull(tag) &&
		           (!cJSON_IsString(tag) ||
		            strlen(tag->valuestring) >= sizeof(res.migration_tag))) {
			res.rv = canary_errf(res.err, sizeof(res.err), CANARY_EPARSE,
			                     "%s: result.default_environment.script.migration_tag: "
			                     "expected a string of at most %zu bytes",
			                     op->what, sizeof(res.migration_tag) - 1);
		} else if (cJSON_IsString(tag)) {
			memcpy(res.migration_tag, tag->valuestring, strlen(tag->valuestring) + 1);
		}
	}
	cJSON_Delete(doc);
	api_deliver(op, &res);
}

/* api_request: starts one HTTP exchange for op with the token header. */
static int
api_request(struct api_op *op, const char *method, const char *url, const char *body,
            const struct httpc_part *parts, int n_parts, enum httpc_retry retry, httpc_cb cb)
{
	struct api *a = op->a;
	const char *headers[3] = {a->auth, NULL, NULL};
	struct httpc_request req;

	if (body != NULL) {
		headers[1] = API_JSON_HEADER;
	}
	snprintf(op->what, sizeof(op->what), "%s %s", method, url);
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = body != NULL ? strlen(body) : 0;
	req.parts = parts;
	req.n_parts = n_parts;
	req.timeout_ms = a->timeout_s * 1000;
	req.max_body = DEPLOYER_BODY_MAX;
	req.retry = retry;
	return httpc_start(a->http, &req, cb, op, &op->x, a->d.err, sizeof(a->d.err));
}

/* api_url: base/accounts/{acct}/workers/{kind}/{name}{suffix}. */
static int
api_url(struct api *a, const char *kind, const char *name, const char *suffix, char *url,
        size_t len)
{
	int n = snprintf(url, len, "%s/accounts/%s/workers/%s/%s%s", a->base_url, a->account_id,
	                 kind, name, suffix);

	if (n < 0 || (size_t)n >= len) {
		return canary_errf(a->d.err, sizeof(a->d.err), CANARY_EINVAL, "API URL too long");
	}
	return 0;
}

static int
api_check_worker(struct api *a, const struct deployer_worker *w, deployer_cb cb)
{
	if (cb == NULL) {
		return canary_errf(a->d.err, sizeof(a->d.err), CANARY_EINVAL, "api: no callback");
	}
	if (w == NULL || !deployer_name_ok(w->name, API_NAME_MAX)) {
		return canary_errf(a->d.err, sizeof(a->d.err), CANARY_EINVAL,
		                   "api: worker name \"%.64s\": expected 1 to %d of [A-Za-z0-9_-]",
		                   w != NULL && w->name != NULL ? w->name : "", API_NAME_MAX);
	}
	return 0;
}

/* api_get: a GET op on one of the worker's resources. */
static int
api_get(struct deployer *d, const struct deployer_worker *w, enum api_kind kind, const char *coll,
        const char *suffix, httpc_cb hcb, deployer_cb cb, void *arg)
{
	struct api *a = d->impl;
	struct api_op *op;
	char url[API_URL_MAX];
	int rv;

	rv = api_check_worker(a, w, cb);
	if (rv == 0) {
		rv = api_url(a, coll, w->name, suffix, url, sizeof(url));
	}
	if (rv != 0) {
		return rv;
	}
	op = api_op_new(a, kind, w->name, cb, arg);
	if (op == NULL) {
		return canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
	}
	rv = api_request(op, "GET", url, NULL, NULL, 0, HTTPC_RETRY_SAFE, hcb);
	if (rv != 0) {
		api_op_unlink(op);
		free(op);
	}
	return rv;
}

static int
api_status(struct deployer *d, const struct deployer_worker *w, deployer_cb cb, void *arg)
{
	return api_get(d, w, API_STATUS, "scripts", "/deployments", api_on_status, cb, arg);
}

static int
api_migration_tag(struct deployer *d, const struct deployer_worker *w, deployer_cb cb, void *arg)
{
	return api_get(d, w, API_MIGRATION_TAG, "services", "", api_on_migration_tag, cb, arg);
}

static int
api_deploy(struct deployer *d, const struct deployer_worker *w, const struct deployment *dep,
           const char *message, deployer_cb cb, void *arg)
{
	struct api *a = d->impl;
	struct api_op *op = NULL;
	cJSON *body = NULL, *versions, *ann, *v;
	char *text = NULL;
	char url[API_URL_MAX];
	int rv, i;

	rv = api_check_worker(a, w, cb);
	if (rv == 0) {
		rv = deployer_check_deployment(dep, d->err, sizeof(d->err));
	}
	if (rv == 0) {
		rv = api_url(a, "scripts", w->name, "/deployments", url, sizeof(url));
	}
	if (rv != 0) {
		return rv;
	}
	body = cJSON_CreateObject();
	if (body == NULL || cJSON_AddStringToObject(body, "strategy", "percentage") == NULL ||
	    (versions = cJSON_AddArrayToObject(body, "versions")) == NULL) {
		rv = canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < dep->n_versions; i++) {
		v = cJSON_CreateObject();
		if (v == NULL) {
			rv = canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
			goto out;
		}
		cJSON_AddItemToArray(versions, v);
		if (cJSON_AddStringToObject(v, "version_id", dep->versions[i].version_id) == NULL ||
		    cJSON_AddNumberToObject(v, "percentage", dep->versions[i].percentage) == NULL) {
			rv = canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
			goto out;
		}
	}
	/* As wrangler sends it: the message annotation always, "" for none. */
	ann = cJSON_AddObjectToObject(body, "annotations");
	if (ann == NULL ||
	    cJSON_AddStringToObject(ann, "workers/message", message != NULL ? message : "") ==
	        NULL ||
	    (text = cJSON_PrintUnformatted(body)) == NULL) {
		rv = canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
		goto out;
	}
	op = api_op_new(a, API_DEPLOY, w->name, cb, arg);
	if (op == NULL) {
		rv = canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
		goto out;
	}
	op->want = *dep;
	/* Creating a deployment is not idempotent: retried only when the
	 * platform cannot have acted on it (see httpc.h). */
	rv = api_request(op, "POST", url, text, NULL, 0, HTTPC_RETRY_UNSENT, api_on_deploy);
	if (rv != 0) {
		api_op_unlink(op);
		free(op);
	}
out:
	free(text);
	cJSON_Delete(body);
	return rv;
}

static const struct api_modset *
api_modset(const struct api *a, const char *worker)
{
	for (int i = 0; i < a->n_mods; i++) {
		if (strcmp(a->mods[i].worker, worker) == 0) {
			return &a->mods[i];
		}
	}
	return NULL;
}

static const char *
api_module_type(const char *name)
{
	static const struct {
		const char *ext;
		const char *type;
	} types[] = {
	    {".js", "application/javascript+module"},
	    {".mjs", "application/javascript+module"},
	    {".cjs", "application/javascript"},
	    {".map", "application/source-map"},
	    {".wasm", "application/wasm"},
	    {".txt", "text/plain"},
	    {".json", "application/json"},
	};
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t e = strlen(types[i].ext);

		if (n > e && strcmp(name + n - e, types[i].ext) == 0) {
			return types[i].type;
		}
	}
	return "application/octet-stream";
}

/* api_metadata: the `metadata` part of a direct upload. */
static char *
api_metadata(const struct api_modset *m, const struct deployer_upload *up)
{
	cJSON *md = cJSON_CreateObject(), *bindings, *ann, *b;
	char *text = NULL;
	int i, ok = md != NULL;

	ok = ok && cJSON_AddStringToObject(md, "main_module", m->main_module) != NULL;
	bindings = ok ? cJSON_AddArrayToObject(md, "bindings") : NULL;
	ok = ok && bindings != NULL;
	/* The worker's own bindings, minus those the upload's vars replace. */
	cJSON_ArrayForEach(b, m->bindings)
	{
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
		int replaced = 0;

		for (i = 0; ok && i < up->n_vars && cJSON_IsString(name); i++) {
			replaced |= strcmp(name->valuestring, up->vars[i][0]) == 0;
		}
		if (ok && !replaced) {
			cJSON *copy = cJSON_Duplicate(b, 1);

			ok = copy != NULL;
			if (ok) {
				cJSON_AddItemToArray(bindings, copy);
			}
		}
	}
	for (i = 0; ok && i < up->n_vars; i++) {
		cJSON *v = cJSON_CreateObject();

		ok = v != NULL;
		if (ok) {
			cJSON_AddItemToArray(bindings, v);
			ok = cJSON_AddStringToObject(v, "name", up->vars[i][0]) != NULL &&
			     cJSON_AddStringToObject(v, "type", "plain_text") != NULL &&
			     cJSON_AddStringToObject(v, "text", up->vars[i][1]) != NULL;
		}
	}
	ok = ok && cJSON_AddStringToObject(md, "compatibility_date", m->compatibility_date) != NULL;
	ann = ok ? cJSON_AddObjectToObject(md, "annotations") : NULL;
	ok = ok && ann != NULL;
	if (ok && up->message != NULL) {
		ok = cJSON_AddStringToObject(ann, "workers/message", up->message) != NULL;
	}
	if (ok && up->tag != NULL) {
		ok = cJSON_AddStringToObject(ann, "workers/tag", up->tag) != NULL;
	}
	if (ok) {
		text = cJSON_PrintUnformatted(md);
	}
	cJSON_Delete(md);
	return text;
}

static void
api_on_wrangler_upload(const struct deployer_result *wres, void *arg)
{
	struct api_op *op = arg;
	struct deployer_result res = *wres;

	api_deliver(op, &res);
}

static int
api_upload(struct deployer *d, const struct deployer_upload *up, deployer_cb cb, void *arg)
{
	struct api *a = d->impl;
	const struct api_modset *m;
	struct api_op *op;
	struct httpc_part parts[DEPLOYER_MAX_MODULES + 1];
	char url[API_URL_MAX];
	char *metadata = NULL;
	int rv, i;

	rv = api_check_worker(a, up != NULL ? &up->worker : NULL, cb);
	if (rv != 0) {
		return rv;
	}
	if (up->n_vars < 0 || up->n_vars > DEPLOYER_MAX_VARS || (up->n_vars > 0 && !up->vars)) {
		return canary_errf(d->err, sizeof(d->err), CANARY_EINVAL,
		                   "api upload: %d vars, expected 0..%d", up->n_vars,
		                   DEPLOYER_MAX_VARS);
	}
	for (i = 0; i < up->n_vars; i++) {
		if (up->vars[i][0] == NULL || up->vars[i][0][0] == '\0' || up->vars[i][1] == NULL) {
			return canary_errf(d->err, sizeof(d->err), CANARY_EINVAL,
			                   "api upload: var %d: expected a name and a value", i);
		}
	}
	m = api_modset(a, up->worker.name);
	if (m == NULL && a->wrangler == NULL) {
		return canary_errf(
		    d->err, sizeof(d->err), CANARY_ESTATE,
		    "api upload: worker %s: no upload command and no bundled modules "
		    "given",
		    up->worker.name);
	}
	op = api_op_new(a, API_UPLOAD, up->worker.name, cb, arg);
	if (op == NULL) {
		return canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
	}
	if (m == NULL) {
		/* wrangler bundles and uploads; its errors are its own. */
		rv = deployer_upload(a->wrangler, up, api_on_wrangler_upload, op);
		if (rv != 0) {
			snprintf(d->err, sizeof(d->err), "%s", a->wrangler->err);
		}
		goto out;
	}
	rv = api_url(a, "scripts", up->worker.name, "/versions?bindings_inherit=strict", url,
	             sizeof(url));
	if (rv != 0) {
		goto out;
	}
	metadata = api_metadata(m, up);
	if (metadata == NULL) {
		rv = canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
		goto out;
	}
	memset(parts, 0, sizeof(parts));
	parts[0].name = "metadata";
	parts[0].content_type = "application/json";
	parts[0].data = metadata;
	parts[0].len = strlen(metadata);
	for (i = 0; i < m->n_files; i++) {
		parts[i + 1].name = m->names[i];
		parts[i + 1].filename = m->names[i];
		parts[i + 1].content_type = api_module_type(m->names[i]);
		parts[i + 1].path = m->files[i];
	}
	/* A repeated upload makes at most a spare version: retried like a
	 * read, as wrangler does. */
	rv = api_request(op, "POST", url, NULL, parts, m->n_files + 1, HTTPC_RETRY_SAFE,
	                 api_on_upload);
out:
	free(metadata);
	if (rv != 0) {
		api_op_unlink(op);
		free(op);
	}
	return rv;
}

static void
api_modset_clear(struct api_modset *m)
{
	if (m->files != NULL) {
		for (int i = 0; i < m->n_files; i++) {
			free(m->files[i]);
		}
	}
	if (m->names != NULL) {
		for (int i = 0; i < m->n_files; i++) {
			free(m->names[i]);
		}
	}
	free(m->files);
	free(m->names);
	free(m->worker);
	free(m->main_module);
	free(m->compatibility_date);
	cJSON_Delete(m->bindings);
}

static void
api_destroy(struct api *a)
{
	if (a == NULL) {
		return;
	}
	deployer_free(a->wrangler);
	httpc_free(a->http);
	for (int i = 0; i < a->n_mods; i++) {
		api_modset_clear(&a->mods[i]);
	}
	free(a->mods);
	free(a->base_url);
	free(a->account_id);
	if (a->token != NULL) {
		memset(a->token, 0, strlen(a->token));
	}
	if (a->auth != NULL) {
		memset(a->auth, 0, strlen(a->auth));
	}
	free(a->token);
	free(a->auth);
	free(a);
}

static void
api_free(struct deployer *d)
{
	struct api *a;

	if (d == NULL) {
		return;
	}
	a = d->impl;
	/* HTTP operations first; then the wrangler backend, whose own
	 * cancellation answers the uploads waiting on it. */
	for (struct api_op *op = a->ops, *next; op != NULL; op = next) {
		next = op->next;
		if (op->x != NULL) {
			struct deployer_result res;

			httpc_cancel(op->x);
			op->x = NULL;
			memset(&res, 0, sizeof(res));
			res.rv = canary_errf(res.err, sizeof(res.err), CANARY_ECANCELED,
			                     "%s: canceled", op->what);
			api_deliver(op, &res);
		}
	}
	deployer_free(a->wrangler);
	a->wrangler = NULL;
	api_destroy(a);
}

static const struct deployer_ops api_ops = {
    .name = "api",
    .upload = api_upload,
    .deploy = api_deploy,
    .status = api_status,
    .migration_tag = api_migration_tag,
    .free = api_free,
};

static int
api_copy_modset(struct api_modset *dst, const struct deployer_api_modules *src, char *err,
                size_t errlen)
{
	struct stat st;
	int i;

	if (!deployer_name_ok(src->worker, API_NAME_MAX)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "api deployer: upload_modules: a worker name is missing or bad");
	}
	if (src->files == NULL || src->n_files < 1 || src->n_files > DEPLOYER_MAX_MODULES) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "api deployer: upload_modules.%s: expected 1 to %d files",
		                   src->worker, DEPLOYER_MAX_MODULES);
	}
	if (src->compatibility_date == NULL || strlen(src->compatibility_date) != 10 ||
	    src->compatibility_date[4] != '-' || src->compatibility_date[7] != '-') {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "api deployer: upload_modules.%s: compatibility_date: expected "
		                   "YYYY-MM-DD",
		                   src->worker);
	}
	dst->worker = strdup(src->worker);
	dst->compatibility_date = strdup(src->compatibility_date);
	dst->files = calloc((size_t)src->n_files, sizeof(char *));
	dst->names = calloc((size_t)src->n_files, sizeof(char *));
	if (dst->worker == NULL || dst->compatibility_date == NULL || dst->files == NULL ||
	    dst->names == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	dst->n_files = src->n_files;
	for (i = 0; i < src->n_files; i++) {
		const char *f = src->files[i], *base;

		if (f == NULL || stat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
			return canary_errf(
			    err, errlen, CANARY_ENOENT,
			    "api deployer: upload_modules.%s[%d]: %s: not a readable "
			    "file",
			    src->worker, i, f != NULL ? f : "(none)");
		}
		base = strrchr(f, '/');
		base = base != NULL ? base + 1 : f;
		dst->files[i] = strdup(f);
		dst->names[i] = strdup(base);
		if (dst->files[i] == NULL || dst->names[i] == NULL) {
			return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		}
	}
	dst->main_module = strdup(src->main_module != NULL ? src->main_module : dst->names[0]);
	if (dst->main_module == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	for (i = 0; i < dst->n_files; i++) {
		if (strcmp(dst->names[i], dst->main_module) == 0) {
			break;
		}
	}
	if (i == dst->n_files) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "api deployer: upload_modules.%s: main module %s is not one of "
		                   "the files",
		                   src->worker, dst->main_module);
	}
	if (src->bindings_json != NULL) {
		const cJSON *b;

		if (canary_json_parse_exact(src->bindings_json, strlen(src->bindings_json),
		                            &dst->bindings, NULL, 0) != 0 ||
		    !cJSON_IsArray(dst->bindings)) {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "api deployer: upload_modules.%s: bindings: expected a JSON "
			    "array",
			    src->worker);
		}
		cJSON_ArrayForEach(b, dst->bindings)
		{
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
			const cJSON *type = cJSON_GetObjectItemCaseSensitive(b, "type");

			if (!cJSON_IsString(name) || !cJSON_IsString(type)) {
				return canary_errf(
				    err, errlen, CANARY_EINVAL,
				    "api deployer: upload_modules.%s: bindings: each needs "
				    "a string name and type",
				    src->worker);
			}
		}
	}
	return 0;
}

int
deployer_api_new(struct event_base *base, const char *base_url, const char *account_id,
                 const char *token, const char *const *upload_argv, int upload_argc,
                 const struct deployer_api_modules *modules, int n_modules, int timeout_s,
                 struct deployer **dp, char *err, size_t errlen)
{
	struct api *a = NULL;
	size_t len;
	int rv = 0, i;

	*dp = NULL;
	if (base == NULL || !deployer_base_url_ok(base_url)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "api deployer: base_url: expected an http:// or https:// URL "
		                   "with a host and no query or fragment");
	}
	if (!deployer_name_ok(account_id, CANARY_ID_LEN - 1)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "api deployer: account_id: expected 1 to %d of [A-Za-z0-9_-], "
		                   "not starting with '-'",
		                   CANARY_ID_LEN - 1);
	}
	if (token == NULL || token[0] == '\0' || strpbrk(token, "\r\n") != NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "api deployer: the API token is empty or spans lines");
	}
	if (n_modules < 0 || (n_modules > 0 && modules == NULL) || upload_argc < 0 ||
	    (upload_argc > 0 && upload_argv == NULL) || timeout_s < 0) {
		return canary_errf(err, errlen, CANARY_EINVAL, "api deployer: bad arguments");
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	a->d.ops = &api_ops;
	a->d.base = base;
	a->d.impl = a;
	a->timeout_s = timeout_s > 0 ? timeout_s : DEPLOYER_HTTP_TIMEOUT_S_DEFAULT;
	a->base_url = strdup(base_url);
	a->account_id = strdup(account_id);
	a->token = strdup(token);
	len = strlen(API_AUTH_PREFIX) + strlen(token) + 1;
	a->auth = malloc(len);
	if (a->base_url == NULL || a->account_id == NULL || a->token == NULL || a->auth == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(a->auth, len, "%s%s", API_AUTH_PREFIX, token);
	len = strlen(a->base_url);
	while (len > 0 && a->base_url[len - 1] == '/') {
		a->base_url[--len] = '\0';
	}
	if (n_modules > 0) {
		a->mods = calloc((size_t)n_modules, sizeof(*a->mods));
		if (a->mods == NULL) {
			rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
			goto out;
		}
		for (i = 0; i < n_modules; i++) {
			a->n_mods = i + 1;
			rv = api_copy_modset(&a->mods[i], &modules[i], err, errlen);
			if (rv != 0) {
				goto out;
			}
		}
	}
	if (upload_argc > 0) {
		/* The CLI talks to the same API as we do, with the same token. */
		size_t n1 = strlen(a->base_url) + 32, n2 = strlen(account_id) + 32,
		       n3 = strlen(token) + 32;
		char *e1 = malloc(n1), *e2 = malloc(n2), *e3 = malloc(n3);
		const char *env[4] = {e1, e2, e3, NULL};

		if (e1 != NULL && e2 != NULL && e3 != NULL) {
			snprintf(e1, n1, "CLOUDFLARE_API_BASE_URL=%s", a->base_url);
			snprintf(e2, n2, "CLOUDFLARE_ACCOUNT_ID=%s", account_id);
			snprintf(e3, n3, "CLOUDFLARE_API_TOKEN=%s", token);
			rv = deployer_wrangler_new(base, upload_argv, upload_argc, timeout_s, env,
			                           &a->wrangler, err, errlen);
		} else {
			rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		}
		if (e3 != NULL) {
			memset(e3, 0, strlen(e3));
		}
		free(e1);
		free(e2);
		free(e3);
		if (rv != 0) {
			goto out;
		}
	}
	rv = httpc_new(base, &a->http, err, errlen);
	if (rv != 0) {
		goto out;
	}
	*dp = &a->d;
	a = NULL;
out:
	api_destroy(a);
	return rv;
}

int
deployer_api_env(const char *rollout_base_url, const char *token_env, const char **base_url,
                 const char **token, char *err, size_t errlen)
{
	const char *env_url = getenv("CLOUDFLARE_API_BASE_URL");
	const char *name = token_env != NULL ? token_env : DEPLOYER_TOKEN_ENV_DEFAULT;
	const char *t;

	*base_url = NULL;
	*token = NULL;
	if (env_url != NULL && env_url[0] != '\0') {
		if (!deployer_base_url_ok(env_url)) {
			return canary_errf(
			    err, errlen, CANARY_ECONFIG,
			    "CLOUDFLARE_API_BASE_URL: expected an http:// or https:// "
			    "URL with a host, no spaces and no query or fragment, got "
			    "\"%.200s\"",
			    env_url);
		}
		*base_url = env_url;
	} else if (rollout_base_url != NULL) {
		*base_url = rollout_base_url;
	} else {
		*base_url = DEPLOYER_API_BASE_DEFAULT;
	}
	t = getenv(name);
	if (t == NULL || t[0] == '\0') {
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "deployer.token_env: the environment variable %s is not set",
		                   name);
	}
	*token = t;
	return 0;
}
