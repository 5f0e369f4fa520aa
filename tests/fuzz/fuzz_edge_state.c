/*
 * fuzz_edge_state.c: libFuzzer target for what canary-edge builds its
 * platform state from (deploy/local-edge/edge_state.h, edge_route.h): the
 * JSON body of a deployment POST, the `metadata` part of a version upload
 * and the fault bindings it carries, the Cloudflare-Workers-Version-Overrides
 * header of a data-plane request, and the --state file read at start.
 *
 * Each input starts from the same state: the edge's seed (middleware and
 * main-server, one version each, deployed at 100%, ids from a fixed random
 * seed) plus a second main-server version FUZZ_S1. The first input byte
 * picks what the rest is (byte % 4): a deployment body (for main-server or,
 * with byte / 4 odd, the middleware), an upload's metadata (middleware), an
 * override header, or a state file. The JSON is read as canary-edge reads
 * request bodies (canary_jsonc_parse, EDGE_JSON_MAX_DEPTH).
 *
 * Promises checked, beyond "no crash, no leak, no undefined behaviour":
 *   - a refused change leaves a message and the state as it was;
 *   - an accepted deployment is the worker's current one: one or two
 *     distinct versions of that worker, integer percentages totalling 100,
 *     and its API JSON is read by the controller's deployer_deployment_parse
 *     as the same deployment (what the edge answers, the controller reads);
 *   - an accepted upload adds one version with the stamp's id and the next
 *     number; its fault bindings parse or are refused naming the binding;
 *   - an override found is a non-empty, terminated value that routing honours
 *     when it names a deployed version;
 *   - the state, after any of the above or read from a file, survives a
 *     restart: to_json, from_json, to_json gives the same text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "deployer.h"
#include "edge_const.h"
#include "edge_route.h"
#include "edge_state.h"
#include "err.h"
#include "jsonc.h"

#define FUZZ_MIDDLEWARE "middleware"
#define FUZZ_SERVER     "main-server"
#define FUZZ_RNG_SEED   42
#define FUZZ_NOW_MS     1795000000000LL
#define FUZZ_S1         "5f0c6a43-2b8e-4d1a-9c3f-7e6d5b4a3c21" /* the second server upload */
#define FUZZ_NEW_ID     "0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d" /* stamp of the fuzzed change */
#define FUZZ_S1_META                                                                               \
	"{\"main_module\":\"index.js\",\"compatibility_date\":\"2025-04-14\",\"bindings\":"        \
	"[{\"name\":\"CF_VERSION_METADATA\",\"type\":\"version_metadata\"}]}"
#define FUZZ_N_MODES 4

enum fuzz_mode { FUZZ_DEPLOY, FUZZ_UPLOAD, FUZZ_OVERRIDE, FUZZ_STATE_FILE };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_edge_state: %s: %s\n", what, detail);
	abort();
}

/* fuzz_state: the state every input starts from. Caller frees. */
static struct edge_state *
fuzz_state(void)
{
	struct edge_stamp stamp = {FUZZ_S1, FUZZ_NOW_MS, "wrangler"};
	struct edge_state *st = NULL;
	struct edge_version *v;
	struct edge_rng rng;
	char err[CANARY_ERRLEN];
	cJSON *meta;

	edge_rng_seed(&rng, FUZZ_RNG_SEED);
	if (edge_state_new(&st) != 0 || edge_state_seed(st, FUZZ_MIDDLEWARE, FUZZ_SERVER, &rng,
	                                                FUZZ_NOW_MS, err, sizeof(err)) != 0) {
		fuzz_die("seed state", st == NULL ? "out of memory" : err);
	}
	meta = cJSON_Parse(FUZZ_S1_META);
	if (meta == NULL ||
	    edge_state_upload(st, FUZZ_SERVER, meta, NULL, &stamp, &v, err, sizeof(err)) != 0) {
		fuzz_die("second server version", err);
	}
	cJSON_Delete(meta);
	return st;
}

/* fuzz_text: the state file text of st. Caller frees. */
static char *
fuzz_text(const struct edge_state *st)
{
	cJSON *j = edge_state_to_json(st);
	char *text;

	if (j == NULL) {
		fuzz_die("edge_state_to_json", "out of memory");
	}
	text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	if (text == NULL) {
		fuzz_die("cJSON_PrintUnformatted", "out of memory");
	}
	return text;
}

/* fuzz_restart: st written and read back is st. Returns st's text. */
static char *
fuzz_restart(const struct edge_state *st)
{
	struct edge_state *again = NULL;
	char err[CANARY_ERRLEN];
	char *text = fuzz_text(st), *text2;
	cJSON *j = cJSON_Parse(text);

	if (j == NULL || edge_state_from_json(j, &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", text);
		fuzz_die("the state does not read back", j == NULL ? "not JSON" : err);
	}
	cJSON_Delete(j);
	text2 = fuzz_text(again);
	if (strcmp(text, text2) != 0) {
		fprintf(stderr, "%s\n%s\n", text, text2);
		fuzz_die("restart", "the state read back differs");
	}
	cJSON_free(text2);
	edge_state_free(again);
	return text;
}

static void
fuzz_check_deployment(struct edge_worker *w, const struct edge_deployment *d)
{
	struct deployment back;
	char err[CANARY_ERRLEN];
	cJSON *j, *parsed;
	char *text;
	int total = 0;

	if (d != edge_state_current(w) || d->n < 1 || d->n > EDGE_DEPLOY_MAX_VERSIONS) {
		fuzz_die("deploy", "the new deployment is not current or has no versions");
	}
	for (int i = 0; i < d->n; i++) {
		if (edge_state_find_version(w, d->v[i].version_id) == NULL ||
		    d->v[i].percentage < 0 || d->v[i].percentage > 100 ||
		    (i > 0 && strcmp(d->v[i].version_id, d->v[0].version_id) == 0)) {
			fuzz_die("deploy", "a version unknown, repeated or out of range");
		}
		total += d->v[i].percentage;
	}
	if (total != 100) {
		fuzz_die("deploy", "percentages that do not total 100");
	}
	j = edge_state_deployment_json(d);
	text = j != NULL ? cJSON_PrintUnformatted(j) : NULL;
	parsed = text != NULL ? cJSON_Parse(text) : NULL;
	if (parsed == NULL) {
		fuzz_die("edge_state_deployment_json", "out of memory");
	}
	if (deployer_deployment_parse(parsed, "edge answer", &back, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", text);
		fuzz_die("the controller cannot read the edge's deployment", err);
	}
	if (strcmp(back.id, d->id) != 0 || back.n_versions != d->n) {
		fuzz_die("the controller reads another deployment", text);
	}
	for (int i = 0; i < d->n; i++) {
		if (strcmp(back.versions[i].version_id, d->v[i].version_id) != 0 ||
		    back.versions[i].percentage != d->v[i].percentage) {
			fuzz_die("the controller reads other versions", text);
		}
	}
	cJSON_Delete(parsed);
	cJSON_free(text);
	cJSON_Delete(j);
}

static void
fuzz_check_upload(struct edge_worker *w, int before, const struct edge_version *v)
{
	struct edge_faults f;
	char err[CANARY_ERRLEN];

	if (w->n_versions != before + 1 || v != &w->versions[w->n_versions - 1] ||
	    strcmp(v->id, FUZZ_NEW_ID) != 0 || v->number != w->versions[before - 1].number + 1 ||
	    !cJSON_IsArray(v->bindings)) {
		fuzz_die("upload", "not one new version with the stamp's id and the next number");
	}
	for (int k = 0; k < 2; k++) {
		int rv =
		    edge_faults_parse(v->bindings, k == 0 ? NULL : "enam", &f, err, sizeof(err));

		if (rv != 0 && (rv != CANARY_EINVAL || strncmp(err, "bindings.", 9) != 0)) {
			fuzz_die("edge_faults_parse: a refusal that names no binding", err);
		}
		if (rv == 0 && (f.error_rate < 0 || f.error_rate > 1 || f.latency_ms < 0 ||
		                (f.status != 0 && (f.status < 100 || f.status > 599)))) {
			fuzz_die("edge_faults_parse", "accepted faults out of range");
		}
	}
}

/* fuzz_override: the header is the whole rest of the input. */
static void
fuzz_override(struct edge_state *st, const char *text, size_t len)
{
	struct edge_worker *w = edge_state_worker(st, FUZZ_SERVER);
	const struct edge_deployment *cur = edge_state_current(w);
	struct edge_split split;
	char header[EDGE_OVERRIDE_HEADER_MAX + 1], out[EDGE_UUID_LEN];

	if (len > EDGE_OVERRIDE_HEADER_MAX || memchr(text, '\0', len) != NULL) {
		return;
	}
	memcpy(header, text, len);
	header[len] = '\0';
	if (edge_route_override(header, FUZZ_SERVER, out, sizeof(out)) != 1) {
		return;
	}
	if (memchr(out, '\0', sizeof(out)) == NULL || out[0] == '\0') {
		fuzz_die("edge_route_override", "an empty or unterminated value");
	}
	/* Routing: the override wins when it names a deployed version. */
	memset(&split, 0, sizeof(split));
	split.n = cur->n;
	for (int i = 0; i < cur->n; i++) {
		split.v[i].id = cur->v[i].version_id;
		split.v[i].percentage = cur->v[i].percentage;
		split.v[i].number = edge_state_find_version(w, cur->v[i].version_id)->number;
	}
	for (int i = 0; i < split.n; i++) {
		if (strcmp(out, split.v[i].id) == 0 &&
		    edge_route_pick(&split, out, NULL, (uint64_t)len) != i) {
			fuzz_die("edge_route_pick",
			         "ignores an override naming a deployed version");
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct edge_stamp stamp = {FUZZ_NEW_ID, FUZZ_NOW_MS + 1, "api"};
	struct edge_state *st, *loaded = NULL;
	struct canary_jsonc *doc = NULL;
	struct edge_worker *w;
	struct edge_version *v;
	const struct edge_deployment *d;
	const char *text, *worker;
	char err[CANARY_ERRLEN];
	char *before = NULL, *after = NULL;
	size_t len;
	int rv, n_before;

	if (size == 0) {
		return 0;
	}
	text = (const char *)data + 1;
	len = size - 1;
	st = fuzz_state();
	switch ((enum fuzz_mode)(data[0] % FUZZ_N_MODES)) {
	case FUZZ_OVERRIDE:
		fuzz_override(st, text, len);
		break;
	case FUZZ_DEPLOY:
	case FUZZ_UPLOAD:
		if (canary_jsonc_parse(text, len, EDGE_JSON_MAX_DEPTH, &doc, err, sizeof(err)) !=
		    0) {
			break;
		}
		before = fuzz_text(st);
		worker = data[0] % FUZZ_N_MODES == FUZZ_UPLOAD || (data[0] / FUZZ_N_MODES) % 2 == 1
		             ? FUZZ_MIDDLEWARE
		             : FUZZ_SERVER;
		w = edge_state_worker(st, worker);
		n_before = w->n_versions;
		if (data[0] % FUZZ_N_MODES == FUZZ_DEPLOY) {
			rv = edge_state_deploy(st, worker, canary_jsonc_root(doc), &stamp, &d, err,
			                       sizeof(err));
			if (rv == 0) {
				fuzz_check_deployment(w, d);
			}
		} else {
			rv = edge_state_upload(st, worker, canary_jsonc_root(doc), NULL, &stamp, &v,
			                       err, sizeof(err));
			if (rv == 0) {
				fuzz_check_upload(w, n_before, v);
			}
		}
		after = fuzz_restart(st);
		if (rv != 0 && (err[0] == '\0' || strcmp(before, after) != 0)) {
			fuzz_die("a refused change", "left no message or changed the state");
		}
		break;
	case FUZZ_STATE_FILE:
		if (canary_jsonc_parse(text, len, EDGE_JSON_MAX_DEPTH, &doc, err, sizeof(err)) !=
		    0) {
			break;
		}
		rv = edge_state_from_json(canary_jsonc_root(doc), &loaded, err, sizeof(err));
		if (rv != 0) {
			if (loaded != NULL || err[0] == '\0') {
				fuzz_die("a refused state file", "left a state or no message");
			}
			break;
		}
		after = fuzz_restart(loaded);
		break;
	}
	cJSON_free(before);
	cJSON_free(after);
	canary_jsonc_free(doc);
	edge_state_free(loaded);
	edge_state_free(st);
	return 0;
}
