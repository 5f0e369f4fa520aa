/*
 * fuzz_deployer_api.c: libFuzzer target for the `api` deployer's reading of
 * the platform's answers (controller/deployer_api.c): the envelope
 * {"success","errors","result"} and, inside it, the deployments list
 * (status), the deployment answered to a POST (deploy), the service's
 * migration tag and the new version's id (direct upload).
 *
 * Those readers are static; the public way in is the deployer itself, so
 * the target runs it as the controller does: deployer_api_new against an
 * evhttp server on 127.0.0.1 (port 0, read back) in the same libevent loop,
 * which answers every request with the input. The first input byte picks
 * the operation (byte % 4: status, deploy, migration tag, direct upload) and
 * the HTTP status (byte / 4 % 8 into fuzz_statuses: no 5xx or 429, which the
 * deployer retries after a backoff); the rest is the response body.
 *
 * Promises checked, beyond "no crash, no leak, no undefined behaviour":
 *   - the callback runs exactly once, never inside the starting call, and
 *     before a deadline;
 *   - success only on a 2xx answer whose body is exactly one JSON object
 *     with "success": true; then status gives a valid deployment, deploy the
 *     deployment asked for, upload a version uuid, migration_tag a string
 *     that fits;
 *   - a failure has a known code and a message that starts with the
 *     request ("GET http://127.0.0.1:...") and never holds the API token,
 *     even when the answer quotes it.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "deployer.h"
#include "err.h"
#include "fuzz_util.h"

#define FUZZ_ACCOUNT      "0123456789abcdef0123456789abcdef"
#define FUZZ_TOKEN        "fuzz-api-token-5f1c2e9a7b"
#define FUZZ_WORKER       "middleware"
#define FUZZ_VERSION      "d167ba04-1919-4cdb-b891-2726854266b0"
#define FUZZ_MODULE       "index.js"
#define FUZZ_MODULE_TEXT  "export default { fetch() { return new Response(\"ok\"); } };\n"
#define FUZZ_DIR_TEMPLATE "canary-fuzz-api.XXXXXX"
#define FUZZ_PATH_LEN     512
#define FUZZ_URL_LEN      128
#define FUZZ_TIMEOUT_S    5  /* one HTTP attempt of the deployer */
#define FUZZ_DEADLINE_S   20 /* the callback must have run by then */
#define FUZZ_N_OPS        4
#define FUZZ_N_STATUSES   8

enum fuzz_op { FUZZ_STATUS, FUZZ_DEPLOY, FUZZ_MIGRATION_TAG, FUZZ_UPLOAD };

static const int fuzz_statuses[FUZZ_N_STATUSES] = {200, 201, 302, 400, 401, 403, 404, 409};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Everything the target keeps between inputs; made once. */
static struct {
	struct event_base *base;
	struct evhttp *http;
	struct fuzz_op_run run; /* the operation in flight */
	struct deployer *d;
	char dir[FUZZ_PATH_LEN];    /* holds the module file of direct uploads */
	char module[FUZZ_PATH_LEN]; /* dir/index.js */
	/* The answer to the next request. */
	const char *body;
	size_t body_len;
	int status;
} fuzz;

static void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_deployer_api: %s: %s\n", what, detail);
	abort();
}

/* Every request gets the current answer. */
static void
fuzz_serve(struct evhttp_request *req, void *arg)
{
	struct evbuffer *out = evbuffer_new();

	(void)arg;
	if (out == NULL || evbuffer_add(out, fuzz.body, fuzz.body_len) != 0) {
		fuzz_die("evbuffer", "cannot hold the answer");
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evhttp_send_reply(req, fuzz.status, "Fuzz", out);
	evbuffer_free(out);
}

static void
fuzz_cleanup(void)
{
	deployer_free(fuzz.d);
	fuzz_op_free(&fuzz.run);
	if (fuzz.http != NULL) {
		evhttp_free(fuzz.http);
	}
	if (fuzz.base != NULL) {
		event_base_free(fuzz.base);
	}
	if (fuzz.module[0] != '\0') {
		remove(fuzz.module);
	}
	if (fuzz.dir[0] != '\0') {
		remove(fuzz.dir);
	}
}

/* fuzz_module_file: the bundled module a direct upload sends, in a
 * directory of this process (fuzz_scratch_dir). */
static void
fuzz_module_file(void)
{
	fuzz_scratch_dir(FUZZ_DIR_TEMPLATE, fuzz.dir, sizeof(fuzz.dir));
	fuzz_write_file(fuzz.dir, FUZZ_MODULE, FUZZ_MODULE_TEXT, strlen(FUZZ_MODULE_TEXT));
	snprintf(fuzz.module, sizeof(fuzz.module), "%s/%s", fuzz.dir, FUZZ_MODULE);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *files[1];
	struct deployer_api_modules mods;
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char url[FUZZ_URL_LEN], err[CANARY_ERRLEN];

	(void)argc;
	(void)argv;
	atexit(fuzz_cleanup);
	fuzz_module_file();
	fuzz.base = event_base_new();
	fuzz_op_init(&fuzz.run, fuzz.base);
	fuzz.http = evhttp_new(fuzz.base);
	if (fuzz.http == NULL) {
		fuzz_die("libevent", "no evhttp");
	}
	bs = evhttp_bind_socket_with_handle(fuzz.http, "127.0.0.1", 0);
	if (bs == NULL ||
	    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl) != 0) {
		fuzz_die("evhttp", "cannot listen on 127.0.0.1");
	}
	evhttp_set_gencb(fuzz.http, fuzz_serve, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/client/v4", ntohs(sin.sin_port));
	files[0] = fuzz.module;
	memset(&mods, 0, sizeof(mods));
	mods.worker = FUZZ_WORKER;
	mods.files = files;
	mods.n_files = 1;
	mods.compatibility_date = "2025-04-14";
	if (deployer_api_new(fuzz.base, url, FUZZ_ACCOUNT, FUZZ_TOKEN, NULL, 0, &mods, 1,
	                     FUZZ_TIMEOUT_S, &fuzz.d, err, sizeof(err)) != 0) {
		fuzz_die("deployer_api_new", err);
	}
	return 0;
}

/* fuzz_start: starts op; returns the start function's answer. */
static int
fuzz_start(enum fuzz_op op, const struct deployment *want)
{
	static const struct deployer_worker w = {FUZZ_WORKER, "wrangler.jsonc"};
	static const char *const vars[1][2] = {{"WORKER_VERSION_ID", FUZZ_VERSION}};
	struct deployer_upload up;
	int rv = CANARY_EINVAL;

	fuzz.run.starting = 1;
	switch (op) {
	case FUZZ_STATUS:
		rv = deployer_status(fuzz.d, &w, fuzz_op_done, &fuzz.run);
		break;
	case FUZZ_DEPLOY:
		rv = deployer_deploy(fuzz.d, &w, want, "fuzz", fuzz_op_done, &fuzz.run);
		break;
	case FUZZ_MIGRATION_TAG:
		rv = deployer_migration_tag(fuzz.d, &w, fuzz_op_done, &fuzz.run);
		break;
	case FUZZ_UPLOAD:
		memset(&up, 0, sizeof(up));
		up.worker = w;
		up.vars = vars;
		up.n_vars = 1;
		up.tag = "fuzz";
		rv = deployer_upload(fuzz.d, &up, fuzz_op_done, &fuzz.run);
		break;
	}
	fuzz.run.starting = 0;
	return rv;
}

/* fuzz_success_body: 1 when body is exactly one JSON object (nothing but
 * JSON whitespace after it) with "success": true, which any success must
 * have come from. */
static int
fuzz_success_body(const char *body, size_t len)
{
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	int ok =
	    cJSON_IsObject(doc) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "success"));

	for (size_t pos = ok ? (size_t)(end - body) : len; pos < len; pos++) {
		ok &=
		    body[pos] == ' ' || body[pos] == '\t' || body[pos] == '\n' || body[pos] == '\r';
	}
	cJSON_Delete(doc);
	return ok;
}

static void
fuzz_check_success(enum fuzz_op op, const struct deployment *want)
{
	const struct deployer_result *r = &fuzz.run.res;
	char why[CANARY_ERRLEN];

	if (fuzz.status < 200 || fuzz.status > 299 ||
	    !fuzz_success_body(fuzz.body, fuzz.body_len)) {
		fuzz_die("success", "from an answer that is no 2xx success envelope");
	}
	switch (op) {
	case FUZZ_STATUS:
		if (deployer_check_deployment(&r->deployment, why, sizeof(why)) != 0) {
			fuzz_die("status", why);
		}
		break;
	case FUZZ_DEPLOY:
		if (!deployer_deployment_equal(&r->deployment, want)) {
			fuzz_die("deploy", "success with another deployment than asked for");
		}
		break;
	case FUZZ_MIGRATION_TAG:
		if (memchr(r->migration_tag, '\0', sizeof(r->migration_tag)) == NULL) {
			fuzz_die("migration_tag", "unterminated");
		}
		break;
	case FUZZ_UPLOAD:
		if (!canary_is_uuid(r->version_id)) {
			fuzz_die("upload", "success without a version uuid");
		}
		break;
	}
}

static void
fuzz_check_failure(enum fuzz_op op)
{
	const struct deployer_result *r = &fuzz.run.res;
	const char *method = op == FUZZ_STATUS || op == FUZZ_MIGRATION_TAG ? "GET " : "POST ";
	char want[FUZZ_URL_LEN];

	switch (r->rv) {
	case CANARY_EPARSE:
	case CANARY_EHTTP:
	case CANARY_EAPI:
	case CANARY_ENOENT:
	case CANARY_EDRIFT:
	case CANARY_ETOOBIG:
		break;
	default:
		fprintf(stderr, "%s\n", r->err);
		fuzz_die("unexpected code", canary_strerror(r->rv));
	}
	snprintf(want, sizeof(want), "%shttp://127.0.0.1:", method);
	if (strncmp(r->err, want, strlen(want)) != 0) {
		fuzz_die("error does not start with the request", r->err);
	}
	if (strstr(r->err, FUZZ_TOKEN) != NULL) {
		fuzz_die("error holds the API token", r->err);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct deployment want;
	enum fuzz_op op;

	if (size == 0) {
		return 0;
	}
	op = (enum fuzz_op)(data[0] % FUZZ_N_OPS);
	fuzz.status = fuzz_statuses[(data[0] / FUZZ_N_OPS) % FUZZ_N_STATUSES];
	fuzz.body = (const char *)data + 1;
	fuzz.body_len = size - 1;
	fuzz_op_reset(&fuzz.run, &want, FUZZ_VERSION);
	if (fuzz_start(op, &want) != 0) {
		fuzz_die("the operation did not start", fuzz.d->err);
	}
	fuzz_op_wait(&fuzz.run, FUZZ_DEADLINE_S);
	if (fuzz.run.res.rv == 0) {
		fuzz_check_success(op, &want);
	} else {
		fuzz_check_failure(op);
	}
	return 0;
}
