/*
 * edge_state.c: workers, versions and deployments, with Cloudflare's rules.
 */
#include "edge_state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "jsonc.h"

#define STATE_FORMAT           1
#define STATE_BINDING_NAME_MAX 256
#define STATE_ACCOUNT_ID       "00000000000000000000000000000000"
#define STATE_CPU_MS           30000

int
edge_state_new(struct edge_state **stp)
{
	*stp = calloc(1, sizeof(**stp));
	return *stp == NULL ? CANARY_ENOMEM : 0;
}

static void
state_worker_clear(struct edge_worker *w)
{
	for (int i = 0; i < w->n_versions; i++) {
		cJSON_Delete(w->versions[i].rec);
	}
	for (int i = 0; i < w->n_deps; i++) {
		cJSON_Delete(w->deps[i].annotations);
	}
	free(w->versions);
	free(w->deps);
	memset(w, 0, sizeof(*w));
}

void
edge_state_free(struct edge_state *st)
{
	if (st == NULL) {
		return;
	}
	for (int i = 0; i < st->n_workers; i++) {
		state_worker_clear(&st->workers[i]);
	}
	free(st);
}

struct edge_worker *
edge_state_worker(struct edge_state *st, const char *name)
{
	for (int i = 0; i < st->n_workers; i++) {
		if (strcmp(st->workers[i].name, name) == 0) {
			return &st->workers[i];
		}
	}
	return NULL;
}

int
edge_state_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= EDGE_NAME_MAX || s[0] == '-') {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
			return 0;
		}
	}
	return 1;
}

int
edge_state_add_worker(struct edge_state *st, const char *name, int64_t now_ms, char *err,
                      size_t errlen)
{
	struct edge_worker *w;

	if (!edge_state_valid_name(name)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "worker name \"%s\": expected 1..%d of a-z, 0-9, '-', '_'", name,
		                   EDGE_NAME_MAX - 1);
	}
	if (edge_state_worker(st, name) != NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "worker \"%s\" exists already",
		                   name);
	}
	if (st->n_workers >= EDGE_MAX_WORKERS) {
		return canary_errf(err, errlen, CANARY_ETOOBIG, "more than %d workers",
		                   EDGE_MAX_WORKERS);
	}
	w = &st->workers[st->n_workers++];
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->created_ms = now_ms;
	return 0;
}

struct edge_version *
edge_state_find_version(struct edge_worker *w, const char *id)
{
	for (int i = w->n_versions - 1; i >= 0; i--) {
		if (strcmp(w->versions[i].id, id) == 0) {
			return &w->versions[i];
		}
	}
	return NULL;
}

const struct edge_deployment *
edge_state_current(const struct edge_worker *w)
{
	return w->n_deps > 0 ? &w->deps[w->n_deps - 1] : NULL;
}

void
edge_state_iso(int64_t ms, char *buf, size_t n)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char day[24]; /* "YYYY-MM-DDTHH:MM:SS" */

	gmtime_r(&secs, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%03d000Z", day, (int)(ms % 1000));
}

/* ---- checks shared by uploads and the state file -------------------------- */

static int
state_check_bindings(const cJSON *b, const char *where, char *err, size_t errlen)
{
	const cJSON *x;
	int i = 0;
	int rv;

	if (!cJSON_IsArray(b)) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s.bindings: expected an array",
		                   where);
	}
	if (cJSON_GetArraySize(b) > EDGE_MAX_BINDINGS) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s.bindings: more than %d bindings",
		                   where, EDGE_MAX_BINDINGS);
	}
	cJSON_ArrayForEach(x, b)
	{
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(x, "name");
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(x, "type");
		const cJSON *y;
		int j = 0;

		if (!cJSON_IsObject(x)) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "%s.bindings[%d]: expected an object", where, i);
		}
		if (!cJSON_IsString(name) || name->valuestring[0] == '\0' ||
		    strlen(name->valuestring) >= STATE_BINDING_NAME_MAX) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "%s.bindings[%d].name: expected a string of 1..%d bytes",
			                   where, i, STATE_BINDING_NAME_MAX - 1);
		}
		if (!cJSON_IsString(type) || type->valuestring[0] == '\0') {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "%s.bindings[%d].type: expected a string", where, i);
		}
		if (strcmp(type->valuestring, "plain_text") == 0) {
			const cJSON *text = cJSON_GetObjectItemCaseSensitive(x, "text");

			if (!cJSON_IsString(text) ||
			    strlen(text->valuestring) >= EDGE_BINDING_TEXT_MAX) {
				return canary_errf(err, errlen, CANARY_EINVAL,
				                   "%s.bindings[%d].text: expected a string of at "
				                   "most %d bytes for plain_text binding %s",
				                   where, i, EDGE_BINDING_TEXT_MAX - 1,
				                   name->valuestring);
			}
		}
		cJSON_ArrayForEach(y, b)
		{
			const cJSON *n2 = cJSON_GetObjectItemCaseSensitive(y, "name");

			if (j < i && cJSON_IsString(n2) &&
			    strcmp(n2->valuestring, name->valuestring) == 0) {
				return canary_errf(err, errlen, CANARY_EINVAL,
				                   "%s.bindings[%d].name: \"%s\" is bound twice",
				                   where, i, name->valuestring);
			}
			j++;
		}
		i++;
	}
	{
		struct edge_faults f;
		char ferr[CANARY_ERRLEN];

		rv = edge_faults_parse(b, NULL, &f, ferr, sizeof(ferr));
		if (rv != 0) {
			return canary_errf(err, errlen, rv, "%s.%s", where, ferr);
		}
	}
	return 0;
}

static int
state_check_annotations(const cJSON *a, const char *where, char *err, size_t errlen)
{
	const cJSON *x;

	if (!cJSON_IsObject(a)) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s.annotations: expected an object",
		                   where);
	}
	if (cJSON_GetArraySize(a) > EDGE_MAX_ANNOTATIONS) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s.annotations: more than %d annotations", where,
		                   EDGE_MAX_ANNOTATIONS);
	}
	cJSON_ArrayForEach(x, a)
	{
		if (!cJSON_IsString(x) || strlen(x->valuestring) >= EDGE_MESSAGE_MAX) {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "%s.annotations.%s: expected a string of at most %d bytes", where,
			    x->string, EDGE_MESSAGE_MAX - 1);
		}
	}
	return 0;
}

static int
state_check_strings(const cJSON *a, const char *where, const char *field, char *err, size_t errlen)
{
	const cJSON *x;

	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > EDGE_MAX_BINDINGS) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s.%s: expected an array of at most %d strings", where, field,
		                   EDGE_MAX_BINDINGS);
	}
	cJSON_ArrayForEach(x, a)
	{
		if (!cJSON_IsString(x) || strlen(x->valuestring) >= EDGE_TAG_MAX) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "%s.%s: expected strings of at most %d bytes", where,
			                   field, EDGE_TAG_MAX - 1);
		}
	}
	return 0;
}

static int
state_opt_string(const cJSON *obj, const char *field, size_t max, const char *where, char *err,
                 size_t errlen)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, field);

	if (x != NULL && (!cJSON_IsString(x) || strlen(x->valuestring) >= max)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s.%s: expected a string of at most %zu bytes", where, field,
		                   max - 1);
	}
	return 0;
}

/* state_check_migrations: a version upload cannot apply Durable Object
 * migrations on Cloudflare (they go through a full deploy), so metadata
 * that would move the worker's migration tag, or carries steps, is refused.
 * m may be NULL (no migrations). */
static int
state_check_migrations(const struct edge_worker *w, const cJSON *m, char *err, size_t errlen)
{
	const cJSON *steps, *new_tag;

	if (m == NULL) {
		return 0;
	}
	if (!cJSON_IsObject(m)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "metadata.migrations: expected an object");
	}
	steps = cJSON_GetObjectItemCaseSensitive(m, "steps");
	new_tag = cJSON_GetObjectItemCaseSensitive(m, "new_tag");
	if (new_tag != NULL && !cJSON_IsString(new_tag)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "metadata.migrations.new_tag: expected a string");
	}
	if (cJSON_GetArraySize(steps) > 0 ||
	    (new_tag != NULL && strcmp(new_tag->valuestring, w->migration_tag) != 0)) {
		return canary_errf(
		    err, errlen, CANARY_EINVAL,
		    "metadata.migrations: a version upload cannot apply Durable Object "
		    "migrations (worker %s is at migration tag \"%s\", the upload "
		    "moves it to \"%.64s\"); apply them with a full deploy first",
		    w->name, w->migration_tag, new_tag != NULL ? new_tag->valuestring : "");
	}
	return 0;
}

/* state_version_push: appends a version record (taken). */
static int
state_version_push(struct edge_worker *w, cJSON *rec, char *err, size_t errlen)
{
	struct edge_version *v;

	if (w->n_versions >= EDGE_MAX_VERSIONS) {
		cJSON_Delete(rec);
		return canary_errf(err, errlen, CANARY_ETOOBIG,
		                   "worker %s has %d versions, the most this edge keeps", w->name,
		                   EDGE_MAX_VERSIONS);
	}
	if (w->n_versions == w->cap_versions) {
		int cap = w->cap_versions == 0 ? 8 : w->cap_versions * 2;
		struct edge_version *nv = realloc(w->versions, (size_t)cap * sizeof(*nv));

		if (nv == NULL) {
			cJSON_Delete(rec);
			return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		}
		w->versions = nv;
		w->cap_versions = cap;
	}
	v = &w->versions[w->n_versions++];
	memset(v, 0, sizeof(*v));
	snprintf(v->id, sizeof(v->id), "%s",
	         cJSON_GetObjectItemCaseSensitive(rec, "id")->valuestring);
	v->number = cJSON_GetObjectItemCaseSensitive(rec, "number")->valueint;
	v->created_ms = (int64_t)cJSON_GetObjectItemCaseSensitive(rec, "created_ms")->valuedouble;
	v->rec = rec;
	v->bindings = cJSON_GetObjectItemCaseSensitive(rec, "bindings");
	return 0;
}

static int
state_valid_uuid(const char *s)
{
	if (strlen(s) != EDGE_UUID_LEN - 1) {
		return 0;
	}
	for (int i = 0; i < EDGE_UUID_LEN - 1; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		char c = s[i];

		if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

int
edge_state_upload(struct edge_state *st, const char *worker, const cJSON *metadata,
                  const cJSON *modules, const struct edge_stamp *stamp, struct edge_version **vp,
                  char *err, size_t errlen)
{
	struct edge_worker *w = edge_state_worker(st, worker);
	const cJSON *b, *a, *f;
	cJSON *rec = NULL, *ann = NULL;
	int rv;

	*vp = NULL;
	if (w == NULL) {
		return canary_errf(err, errlen, CANARY_ENOENT,
		                   "This Worker does not exist on your account. (worker \"%s\")",
		                   worker);
	}
	if (!cJSON_IsObject(metadata)) {
		return canary_errf(err, errlen, CANARY_EINVAL, "metadata: expected a JSON object");
	}
	b = cJSON_GetObjectItemCaseSensitive(metadata, "bindings");
	if (b != NULL && (rv = state_check_bindings(b, "metadata", err, errlen)) != 0) {
		return rv;
	}
	a = cJSON_GetObjectItemCaseSensitive(metadata, "annotations");
	if (a != NULL && (rv = state_check_annotations(a, "metadata", err, errlen)) != 0) {
		return rv;
	}
	f = cJSON_GetObjectItemCaseSensitive(metadata, "compatibility_flags");
	if (f != NULL &&
	    (rv = state_check_strings(f, "metadata", "compatibility_flags", err, errlen)) != 0) {
		return rv;
	}
	if ((rv = state_opt_string(metadata, "main_module", EDGE_PATH_MAX, "metadata", err,
	                           errlen)) != 0 ||
	    (rv = state_opt_string(metadata, "body_part", EDGE_PATH_MAX, "metadata", err,
	                           errlen)) != 0 ||
	    (rv = state_opt_string(metadata, "compatibility_date", EDGE_TAG_MAX, "metadata", err,
	                           errlen)) != 0) {
		return rv;
	}
	if ((rv = state_check_migrations(
	         w, cJSON_GetObjectItemCaseSensitive(metadata, "migrations"), err, errlen)) != 0) {
		return rv;
	}
	if (!state_valid_uuid(stamp->id) || edge_state_find_version(w, stamp->id) != NULL) {
		return canary_errf(err, errlen, CANARY_EINTERNAL, "version id %s is not fresh",
		                   stamp->id);
	}
	rv = CANARY_ENOMEM; /* until the version is pushed */
	rec = cJSON_CreateObject();
	ann = a != NULL ? cJSON_Duplicate(a, 1) : cJSON_CreateObject();
	if (rec == NULL || ann == NULL) {
		goto out;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(ann, "workers/triggered_by");
	if (cJSON_AddStringToObject(ann, "workers/triggered_by", "upload") == NULL ||
	    cJSON_AddStringToObject(rec, "id", stamp->id) == NULL ||
	    cJSON_AddNumberToObject(rec, "number",
	                            w->n_versions > 0 ? w->versions[w->n_versions - 1].number + 1
	                                              : 1) == NULL ||
	    cJSON_AddNumberToObject(rec, "created_ms", (double)stamp->now_ms) == NULL ||
	    cJSON_AddStringToObject(rec, "source", stamp->source) == NULL) {
		goto out;
	}
	cJSON_AddItemToObject(rec, "annotations", ann);
	ann = NULL;
	if (!cJSON_AddItemToObject(rec, "bindings",
	                           b != NULL ? cJSON_Duplicate(b, 1) : cJSON_CreateArray())) {
		goto out;
	}
	{
		static const char *const copy[] = {"main_module", "compatibility_date",
		                                   "compatibility_flags"};

		for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
			const cJSON *x = cJSON_GetObjectItemCaseSensitive(metadata, copy[i]);

			if (x != NULL &&
			    !cJSON_AddItemToObject(rec, copy[i], cJSON_Duplicate(x, 1))) {
				goto out;
			}
		}
	}
	if (!cJSON_AddItemToObject(rec, "modules",
	                           modules != NULL ? cJSON_Duplicate(modules, 1)
	                                           : cJSON_CreateArray())) {
		goto out;
	}
	rv = state_version_push(w, rec, err, errlen); /* takes rec */
	rec = NULL;
	if (rv == 0) {
		*vp = &w->versions[w->n_versions - 1];
	}
out:
	cJSON_Delete(rec);
	cJSON_Delete(ann);
	if (rv == CANARY_ENOMEM) {
		canary_errf(err, errlen, rv, "out of memory");
	}
	return rv;
}

/* state_dep_push: appends d (its annotations taken), dropping the oldest
 * deployment past EDGE_MAX_DEPLOYMENTS. */
static int
state_dep_push(struct edge_worker *w, const struct edge_deployment *d, char *err, size_t errlen)
{
	if (w->n_deps == EDGE_MAX_DEPLOYMENTS) {
		cJSON_Delete(w->deps[0].annotations);
		memmove(&w->deps[0], &w->deps[1], (size_t)(w->n_deps - 1) * sizeof(w->deps[0]));
		w->n_deps--;
	}
	if (w->n_deps == w->cap_deps) {
		int cap = w->cap_deps == 0 ? 8 : w->cap_deps * 2;
		struct edge_deployment *nd;

		if (cap > EDGE_MAX_DEPLOYMENTS) {
			cap = EDGE_MAX_DEPLOYMENTS;
		}
		nd = realloc(w->deps, (size_t)cap * sizeof(*nd));
		if (nd == NULL) {
			cJSON_Delete(d->annotations);
			return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		}
		w->deps = nd;
		w->cap_deps = cap;
	}
	w->deps[w->n_deps++] = *d;
	return 0;
}

/* state_parse_versions: the versions array of a deployment body or record
 * into d, checking Cloudflare's rules against w. */
static int
state_parse_versions(struct edge_worker *w, const cJSON *vs, const char *where,
                     int check_deployable, struct edge_deployment *d, char *err, size_t errlen)
{
	const cJSON *x;
	int total = 0;

	if (!cJSON_IsArray(vs)) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s.versions: expected an array",
		                   where);
	}
	d->n = cJSON_GetArraySize(vs);
	if (d->n < 1 || d->n > EDGE_DEPLOY_MAX_VERSIONS) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s.versions: a deployment holds one or two versions, found %d",
		                   where, d->n);
	}
	for (int i = 0; i < d->n; i++) {
		const cJSON *id, *pct;
		struct edge_version *v;

		x = cJSON_GetArrayItem(vs, i);
		id = cJSON_GetObjectItemCaseSensitive(x, "version_id");
		pct = cJSON_GetObjectItemCaseSensitive(x, "percentage");
		if (!cJSON_IsObject(x) || !cJSON_IsString(id)) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "%s.versions[%d].version_id: expected a string", where,
			                   i);
		}
		if (!cJSON_IsNumber(pct) || !isfinite(pct->valuedouble) || pct->valuedouble < 0 ||
		    pct->valuedouble > 100 || pct->valuedouble != floor(pct->valuedouble)) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "%s.versions[%d].percentage: expected a whole number "
			                   "0..100",
			                   where, i);
		}
		v = strlen(id->valuestring) < EDGE_UUID_LEN
		        ? edge_state_find_version(w, id->valuestring)
		        : NULL;
		if (v == NULL) {
			return canary_errf(err, errlen, CANARY_ENOENT,
			                   "workers.api.error.version_not_found: %s.versions[%d]: "
			                   "\"%.40s\" is not a version of %s",
			                   where, i, id->valuestring, w->name);
		}
		if (check_deployable && v - w->versions < w->n_versions - EDGE_DEPLOYABLE) {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "%s.versions[%d]: version %s is older than the newest %d "
			    "uploads and cannot be deployed",
			    where, i, v->id, EDGE_DEPLOYABLE);
		}
		if (i == 1 && strcmp(d->v[0].version_id, v->id) == 0) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "%s.versions[1]: version %s is listed twice", where,
			                   v->id);
		}
		snprintf(d->v[i].version_id, sizeof(d->v[i].version_id), "%s", v->id);
		d->v[i].percentage = (int)pct->valuedouble;
		total += d->v[i].percentage;
	}
	if (total != 100) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s.versions: percentages must total 100, found %d", where,
		                   total);
	}
	return 0;
}

int
edge_state_deploy(struct edge_state *st, const char *worker, const cJSON *body,
                  const struct edge_stamp *stamp, const struct edge_deployment **dp, char *err,
                  size_t errlen)
{
	struct edge_worker *w = edge_state_worker(st, worker);
	struct edge_deployment d;
	const cJSON *strategy, *a;
	int rv;

	*dp = NULL;
	if (w == NULL) {
		return canary_errf(err, errlen, CANARY_ENOENT,
		                   "This Worker does not exist on your account. (worker \"%s\")",
		                   worker);
	}
	if (!cJSON_IsObject(body)) {
		return canary_errf(err, errlen, CANARY_EINVAL, "body: expected a JSON object");
	}
	memset(&d, 0, sizeof(d));
	strategy = cJSON_GetObjectItemCaseSensitive(body, "strategy");
	if (strategy != NULL &&
	    (!cJSON_IsString(strategy) || strcmp(strategy->valuestring, "percentage") != 0)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "body.strategy: expected \"percentage\"");
	}
	rv = state_parse_versions(w, cJSON_GetObjectItemCaseSensitive(body, "versions"), "body", 1,
	                          &d, err, errlen);
	if (rv != 0) {
		return rv;
	}
	a = cJSON_GetObjectItemCaseSensitive(body, "annotations");
	if (a != NULL && (rv = state_check_annotations(a, "body", err, errlen)) != 0) {
		return rv;
	}
	d.annotations = a != NULL ? cJSON_Duplicate(a, 1) : cJSON_CreateObject();
	if (d.annotations == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	snprintf(d.id, sizeof(d.id), "%s", stamp->id);
	snprintf(d.source, sizeof(d.source), "%s", stamp->source);
	d.created_ms = stamp->now_ms;
	rv = state_dep_push(w, &d, err, errlen);
	if (rv == 0) {
		*dp = edge_state_current(w);
	}
	return rv;
}

void
edge_state_undo_upload(struct edge_worker *w)
{
	if (w->n_versions > 0) {
		cJSON_Delete(w->versions[--w->n_versions].rec);
	}
}

void
edge_state_undo_deploy(struct edge_worker *w)
{
	if (w->n_deps > 0) {
		cJSON_Delete(w->deps[--w->n_deps].annotations);
	}
}

int
edge_state_seed(struct edge_state *st, const char *middleware, const char *server,
                struct edge_rng *rng, int64_t now_ms, char *err, size_t errlen)
{
	const char *names[2] = {server, middleware};
	char sid[EDGE_UUID_LEN];
	int rv = 0;

	for (int i = 0; i < 2; i++) {
		struct edge_stamp stamp = {.now_ms = now_ms, .source = "canary-edge"};
		char vid[EDGE_UUID_LEN], did[EDGE_UUID_LEN];
		struct edge_version *v;
		const struct edge_deployment *d;
		cJSON *meta = NULL, *body = NULL;
		char text[512];

		if ((rv = edge_state_add_worker(st, names[i], now_ms, err, errlen)) != 0) {
			return rv;
		}
		if (i == 0) {
			snprintf(text, sizeof(text),
			         "{\"main_module\":\"index.js\",\"bindings\":[{\"name\":"
			         "\"CF_VERSION_METADATA\",\"type\":\"version_metadata\"}],"
			         "\"compatibility_date\":\"2025-04-14\",\"compatibility_flags\":"
			         "[\"nodejs_compat\"],\"annotations\":{\"workers/message\":\"seed "
			         "version\"}}");
		} else {
			snprintf(
			    text, sizeof(text),
			    "{\"main_module\":\"index.js\",\"bindings\":[{\"name\":\"%s\","
			    "\"type\":\"plain_text\",\"text\":\"%s\"},{\"name\":"
			    "\"DEFAULT_WORKER\",\"type\":\"service\",\"service\":\"%s\"},"
			    "{\"name\":\"CF_VERSION_METADATA\",\"type\":\"version_metadata\"}],"
			    "\"compatibility_date\":\"2025-04-14\",\"compatibility_flags\":"
			    "[\"nodejs_compat\"],\"annotations\":{\"workers/message\":\"seed "
			    "version\"}}",
			    EDGE_PIN_VAR, sid, server);
		}
		edge_rng_uuid(rng, vid);
		edge_rng_uuid(rng, did);
		meta = cJSON_Parse(text);
		if (meta == NULL) {
			return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		}
		stamp.id = vid;
		rv = edge_state_upload(st, names[i], meta, NULL, &stamp, &v, err, errlen);
		cJSON_Delete(meta);
		if (rv != 0) {
			return rv;
		}
		if (i == 0) {
			memcpy(sid, vid, sizeof(sid));
		}
		snprintf(text, sizeof(text),
		         "{\"strategy\":\"percentage\",\"versions\":[{\"version_id\":\"%s\","
		         "\"percentage\":100}],\"annotations\":{\"workers/message\":\"seed\"}}",
		         vid);
		body = cJSON_Parse(text);
		if (body == NULL) {
			return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		}
		stamp.id = did;
		rv = edge_state_deploy(st, names[i], body, &stamp, &d, err, errlen);
		cJSON_Delete(body);
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

/* ---- Cloudflare's shapes ------------------------------------------------ */

cJSON *
edge_state_version_json(const struct edge_version *v)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *meta, *res, *script, *rt, *limits;
	const cJSON *x;
	char when[40];
	char etag[33];

	if (o == NULL) {
		return NULL;
	}
	edge_state_iso(v->created_ms, when, sizeof(when));
	/* An etag-like hex string derived from the id: stable across restarts. */
	{
		size_t k = 0;

		for (const char *p = v->id; *p != '\0' && k < sizeof(etag) - 1; p++) {
			if (*p != '-') {
				etag[k++] = *p;
			}
		}
		etag[k] = '\0';
	}
	cJSON_AddStringToObject(o, "id", v->id);
	cJSON_AddNumberToObject(o, "number", v->number);
	meta = cJSON_AddObjectToObject(o, "metadata");
	if (meta != NULL) {
		x = cJSON_GetObjectItemCaseSensitive(v->rec, "source");
		cJSON_AddStringToObject(meta, "author_email", EDGE_AUTHOR_EMAIL);
		cJSON_AddStringToObject(meta, "author_id", STATE_ACCOUNT_ID);
		cJSON_AddStringToObject(meta, "created_on", when);
		cJSON_AddStringToObject(meta, "modified_on", when);
		cJSON_AddStringToObject(meta, "source", cJSON_IsString(x) ? x->valuestring : "api");
		cJSON_AddFalseToObject(meta, "has_preview");
		cJSON_AddFalseToObject(meta, "hasPreview");
	}
	x = cJSON_GetObjectItemCaseSensitive(v->rec, "annotations");
	cJSON_AddItemToObject(o, "annotations",
	                      x != NULL ? cJSON_Duplicate(x, 1) : cJSON_CreateObject());
	res = cJSON_AddObjectToObject(o, "resources");
	if (res != NULL) {
		cJSON_AddItemToObject(res, "bindings", cJSON_Duplicate(v->bindings, 1));
		script = cJSON_AddObjectToObject(res, "script");
		if (script != NULL) {
			cJSON *h = cJSON_AddArrayToObject(script, "handlers");

			cJSON_AddStringToObject(script, "etag", etag);
			if (h != NULL) {
				cJSON_AddItemToArray(h, cJSON_CreateString("fetch"));
			}
			cJSON_AddStringToObject(script, "last_deployed_from", "wrangler");
		}
		rt = cJSON_AddObjectToObject(res, "script_runtime");
		if (rt != NULL) {
			x = cJSON_GetObjectItemCaseSensitive(v->rec, "compatibility_date");
			if (cJSON_IsString(x)) {
				cJSON_AddStringToObject(rt, "compatibility_date", x->valuestring);
			}
			x = cJSON_GetObjectItemCaseSensitive(v->rec, "compatibility_flags");
			cJSON_AddItemToObject(rt, "compatibility_flags",
			                      x != NULL ? cJSON_Duplicate(x, 1)
			                                : cJSON_CreateArray());
			cJSON_AddStringToObject(rt, "usage_model", "standard");
			limits = cJSON_AddObjectToObject(rt, "limits");
			if (limits != NULL) {
				cJSON_AddNumberToObject(limits, "cpu_ms", STATE_CPU_MS);
			}
		}
	}
	cJSON_AddNumberToObject(o, "startup_time_ms", 0);
	return o;
}

cJSON *
edge_state_deployment_json(const struct edge_deployment *d)
{
	cJSON *o = cJSON_CreateObject();
	struct edge_split split = {.n = d->n};
	char when[40];

	if (o == NULL) {
		return NULL;
	}
	for (int i = 0; i < d->n; i++) {
		split.v[i].id = d->v[i].version_id;
		split.v[i].percentage = d->v[i].percentage;
	}
	edge_state_iso(d->created_ms, when, sizeof(when));
	cJSON_AddStringToObject(o, "id", d->id);
	cJSON_AddStringToObject(o, "source", d->source);
	cJSON_AddStringToObject(o, "strategy", "percentage");
	cJSON_AddStringToObject(o, "author_email", EDGE_AUTHOR_EMAIL);
	cJSON_AddStringToObject(o, "created_on", when);
	cJSON_AddItemToObject(o, "annotations", cJSON_Duplicate(d->annotations, 1));
	cJSON_AddItemToObject(o, "versions", edge_route_versions_json(&split));
	return o;
}

cJSON *
edge_state_script_json(const struct edge_worker *w)
{
	cJSON *o = cJSON_CreateObject();
	char when[40], mod[40];
	int64_t last = w->n_deps > 0 ? w->deps[w->n_deps - 1].created_ms : w->created_ms;

	if (o == NULL) {
		return NULL;
	}
	edge_state_iso(w->created_ms, when, sizeof(when));
	edge_state_iso(last, mod, sizeof(mod));
	cJSON_AddStringToObject(o, "id", w->name);
	cJSON_AddStringToObject(o, "tag", w->name);
	cJSON_AddNullToObject(o, "tags");
	cJSON_AddStringToObject(o, "etag", w->name);
	cJSON_AddItemToObject(o, "handlers", cJSON_CreateStringArray((const char *[]){"fetch"}, 1));
	cJSON_AddStringToObject(o, "created_on", when);
	cJSON_AddStringToObject(o, "modified_on", mod);
	cJSON_AddStringToObject(o, "usage_model", "standard");
	cJSON_AddStringToObject(o, "last_deployed_from", "wrangler");
	if (w->migration_tag[0] != '\0') {
		cJSON_AddStringToObject(o, "migration_tag", w->migration_tag);
	}
	cJSON_AddFalseToObject(o, "has_assets");
	cJSON_AddFalseToObject(o, "has_modules");
	return o;
}

cJSON *
edge_state_service_json(const struct edge_worker *w)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *env;
	char when[40];

	if (o == NULL) {
		return NULL;
	}
	edge_state_iso(w->created_ms, when, sizeof(when));
	cJSON_AddStringToObject(o, "id", w->name);
	cJSON_AddStringToObject(o, "created_on", when);
	cJSON_AddStringToObject(o, "modified_on", when);
	env = cJSON_AddObjectToObject(o, "default_environment");
	if (env != NULL) {
		cJSON_AddStringToObject(env, "environment", "production");
		cJSON_AddStringToObject(env, "created_on", when);
		cJSON_AddStringToObject(env, "modified_on", when);
		cJSON_AddItemToObject(env, "script", edge_state_script_json(w));
	}
	return o;
}

/* ---- the state file ------------------------------------------------------ */

cJSON *
edge_state_to_json(const struct edge_state *st)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *ws, *result = NULL;

	if (root == NULL || cJSON_AddNumberToObject(root, "format", STATE_FORMAT) == NULL ||
	    (ws = cJSON_AddArrayToObject(root, "workers")) == NULL) {
		goto out;
	}
	for (int i = 0; i < st->n_workers; i++) {
		const struct edge_worker *w = &st->workers[i];
		cJSON *o = cJSON_CreateObject(), *vs, *ds;

		if (o == NULL) {
			goto out;
		}
		cJSON_AddItemToArray(ws, o);
		if (cJSON_AddStringToObject(o, "name", w->name) == NULL ||
		    cJSON_AddStringToObject(o, "migration_tag", w->migration_tag) == NULL ||
		    cJSON_AddNumberToObject(o, "created_ms", (double)w->created_ms) == NULL ||
		    (vs = cJSON_AddArrayToObject(o, "versions")) == NULL ||
		    (ds = cJSON_AddArrayToObject(o, "deployments")) == NULL) {
			goto out;
		}
		for (int j = 0; j < w->n_versions; j++) {
			cJSON *x = cJSON_Duplicate(w->versions[j].rec, 1);

			if (x == NULL) {
				goto out;
			}
			cJSON_AddItemToArray(vs, x);
		}
		for (int j = 0; j < w->n_deps; j++) {
			cJSON *x = edge_state_deployment_json(&w->deps[j]);

			if (x == NULL ||
			    cJSON_AddNumberToObject(x, "created_ms",
			                            (double)w->deps[j].created_ms) == NULL) {
				cJSON_Delete(x);
				goto out;
			}
			cJSON_AddItemToArray(ds, x);
		}
	}
	result = root;
	root = NULL;
out:
	cJSON_Delete(root);
	return result;
}

static int
state_get_string(const cJSON *o, const char *field, size_t max, const char *where, const char **out,
                 char *err, size_t errlen)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, field);

	if (!cJSON_IsString(x) || strlen(x->valuestring) >= max) {
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "%s.%s: expected a string of at most %zu bytes", where, field,
		                   max - 1);
	}
	*out = x->valuestring;
	return 0;
}

static int
state_get_ms(const cJSON *o, const char *field, const char *where, int64_t *out, char *err,
             size_t errlen)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, field);

	if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < 0 ||
	    x->valuedouble > 9e15) {
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "%s.%s: expected milliseconds since the epoch", where, field);
	}
	*out = (int64_t)x->valuedouble;
	return 0;
}

static int
state_load_version(struct edge_worker *w, const cJSON *x, const char *where, char *err,
                   size_t errlen)
{
	const char *id = NULL, *s = NULL;
	const cJSON *num = cJSON_GetObjectItemCaseSensitive(x, "number");
	const cJSON *y;
	int64_t ms = 0;
	int rv;
	int last = w->n_versions > 0 ? w->versions[w->n_versions - 1].number : 0;

	if ((rv = state_get_string(x, "id", EDGE_UUID_LEN, where, &id, err, errlen)) != 0 ||
	    (rv = state_get_string(x, "source", EDGE_NAME_MAX, where, &s, err, errlen)) != 0 ||
	    (rv = state_get_ms(x, "created_ms", where, &ms, err, errlen)) != 0) {
		return rv;
	}
	if (!state_valid_uuid(id) || edge_state_find_version(w, id) != NULL) {
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "%s.id: expected a fresh lower-case UUID, found \"%s\"", where,
		                   id);
	}
	if (!cJSON_IsNumber(num) || num->valuedouble != (double)num->valueint ||
	    num->valueint <= last) {
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "%s.number: expected a whole number above %d", where, last);
	}
	y = cJSON_GetObjectItemCaseSensitive(x, "bindings");
	if (state_check_bindings(y, where, err, errlen) != 0 ||
	    state_check_annotations(cJSON_GetObjectItemCaseSensitive(x, "annotations"), where, err,
	                            errlen) != 0) {
		return CANARY_EPARSE;
	}
	y = cJSON_GetObjectItemCaseSensitive(x, "modules");
	if (!cJSON_IsArray(y) || cJSON_GetArraySize(y) > EDGE_MAX_MODULES) {
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "%s.modules: expected an array of at most %d modules", where,
		                   EDGE_MAX_MODULES);
	}
	y = cJSON_Duplicate(x, 1);
	if (y == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	return state_version_push(w, (cJSON *)y, err, errlen);
}

static int
state_load_deployment(struct edge_worker *w, const cJSON *x, const char *where, char *err,
                      size_t errlen)
{
	struct edge_deployment d;
	const char *id = NULL, *source = NULL;
	const cJSON *a;
	int rv;

	memset(&d, 0, sizeof(d));
	if ((rv = state_get_string(x, "id", EDGE_UUID_LEN, where, &id, err, errlen)) != 0 ||
	    (rv = state_get_string(x, "source", EDGE_NAME_MAX, where, &source, err, errlen)) != 0 ||
	    (rv = state_get_ms(x, "created_ms", where, &d.created_ms, err, errlen)) != 0) {
		return rv;
	}
	if (state_parse_versions(w, cJSON_GetObjectItemCaseSensitive(x, "versions"), where, 0, &d,
	                         err, errlen) != 0) {
		return CANARY_EPARSE;
	}
	a = cJSON_GetObjectItemCaseSensitive(x, "annotations");
	if (state_check_annotations(a, where, err, errlen) != 0) {
		return CANARY_EPARSE;
	}
	snprintf(d.id, sizeof(d.id), "%s", id);
	snprintf(d.source, sizeof(d.source), "%s", source);
	d.annotations = cJSON_Duplicate(a, 1);
	if (d.annotations == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	return state_dep_push(w, &d, err, errlen);
}

int
edge_state_from_json(const cJSON *root, struct edge_state **stp, char *err, size_t errlen)
{
	struct edge_state *st = NULL;
	const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
	const cJSON *ws = cJSON_GetObjectItemCaseSensitive(root, "workers");
	const cJSON *w;
	int rv = 0;
	int i = 0;

	*stp = NULL;
	if (!cJSON_IsNumber(fmt) || fmt->valueint != STATE_FORMAT) {
		return canary_errf(err, errlen, CANARY_EPARSE, "format: expected %d", STATE_FORMAT);
	}
	if (!cJSON_IsArray(ws)) {
		return canary_errf(err, errlen, CANARY_EPARSE, "workers: expected an array");
	}
	if ((rv = edge_state_new(&st)) != 0) {
		return canary_errf(err, errlen, rv, "out of memory");
	}
	cJSON_ArrayForEach(w, ws)
	{
		char where[96];
		const char *name = NULL, *tag = NULL;
		int64_t ms = 0;
		struct edge_worker *wk;
		const cJSON *x;
		int j = 0;

		snprintf(where, sizeof(where), "workers[%d]", i);
		if ((rv = state_get_string(w, "name", EDGE_NAME_MAX, where, &name, err, errlen)) !=
		        0 ||
		    (rv = state_get_string(w, "migration_tag", EDGE_TAG_MAX, where, &tag, err,
		                           errlen)) != 0 ||
		    (rv = state_get_ms(w, "created_ms", where, &ms, err, errlen)) != 0) {
			goto out;
		}
		if ((rv = edge_state_add_worker(st, name, ms, err, errlen)) != 0) {
			rv = CANARY_EPARSE;
			goto out;
		}
		wk = &st->workers[st->n_workers - 1];
		snprintf(wk->migration_tag, sizeof(wk->migration_tag), "%s", tag);
		x = cJSON_GetObjectItemCaseSensitive(w, "versions");
		if (!cJSON_IsArray(x) ||
		    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(w, "deployments"))) {
			rv = canary_errf(err, errlen, CANARY_EPARSE,
			                 "%s: expected arrays versions and deployments", where);
			goto out;
		}
		cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(w, "versions"))
		{
			snprintf(where, sizeof(where), "workers[%d].versions[%d]", i, j++);
			if ((rv = state_load_version(wk, x, where, err, errlen)) != 0) {
				goto out;
			}
		}
		j = 0;
		cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(w, "deployments"))
		{
			snprintf(where, sizeof(where), "workers[%d].deployments[%d]", i, j++);
			if ((rv = state_load_deployment(wk, x, where, err, errlen)) != 0) {
				goto out;
			}
		}
		i++;
	}
	*stp = st;
	st = NULL;
out:
	edge_state_free(st);
	return rv;
}

int
edge_state_save(const struct edge_state *st, const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	char dir[4096];
	cJSON *root = NULL;
	char *text = NULL;
	int fd = -1;
	int dfd = -1;
	int created = 0;
	int rv = 0;
	size_t len, off = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s: path too long", path);
	}
	root = edge_state_to_json(st);
	text = root != NULL ? cJSON_PrintUnformatted(root) : NULL;
	if (text == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	created = 1;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			rv = canary_errf(err, errlen, CANARY_EIO, "%s: write: %s", tmp,
			                 strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "%s: fsync: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rv = canary_errf(err, errlen, CANARY_EIO, "%s: close: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "rename %s to %s: %s", tmp, path,
		                 strerror(errno));
		goto out;
	}
	/* The rename is durable only once the directory is synced. */
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	if (rv != 0 && created) {
		unlink(tmp); /* the old file, if any, is left as it was */
	}
	free(text);
	cJSON_Delete(root);
	return rv;
}

int
edge_state_load(const char *path, struct edge_state **stp, char *err, size_t errlen)
{
	struct canary_jsonc *doc = NULL;
	struct stat sb;
	char inner[CANARY_ERRLEN];
	int rv;

	*stp = NULL;
	if (stat(path, &sb) != 0 && errno == ENOENT) {
		return canary_errf(err, errlen, CANARY_ENOENT, "%s: no such file", path);
	}
	rv = canary_jsonc_read_file(path, EDGE_STATE_MAX_BYTES, &doc, err, errlen);
	if (rv != 0) {
		return rv;
	}
	rv = edge_state_from_json(canary_jsonc_root(doc), stp, inner, sizeof(inner));
	if (rv != 0) {
		canary_errf(err, errlen, rv, "%s: %s", path, inner);
	}
	canary_jsonc_free(doc);
	return rv;
}
