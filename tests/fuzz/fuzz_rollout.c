/*
 * fuzz_rollout.c: libFuzzer target for the rollout file reader
 * (controller/rollout.h: rollout_load, which also reads the two wrangler
 * configs the rollout file points to), and for what `plan` does with a
 * loaded rollout (plan_verify, plan_render, rollout_lint).
 *
 * rollout_load takes a path, so each input is written to a file in a
 * directory of this process (under /dev/shm when there is one, else
 * TMPDIR), made once at start-up with fixed wrangler configs beside it and
 * removed at exit. The first input byte picks the file the rest of the input
 * becomes:
 *   'm'  the middleware's wrangler config (a fixed rollout file points to it)
 *   's'  the server's wrangler config (likewise)
 *   else the rollout file, whose worker configs may name the fixed ones:
 *        wrangler/server.jsonc and wrangler/middleware.jsonc, or
 *        server.jsonc and middleware.jsonc (the example rollout's layout).
 * An input whose rollout file names a worker config outside the directory
 * (an absolute path, or "..") is skipped: the reader would open it, and
 * /dev or /proc files can block or act when opened.
 *
 * Promises checked, beyond "no crash, no leak, no undefined behaviour":
 *   - a rejection leaves *rp NULL and its message starts with a file of
 *     the directory; "FILE:LINE:COLUMN:" positions in the fuzzed file lie
 *     inside it;
 *   - an accepted rollout has its configs and state_dir resolved in the
 *     directory, 1..PLAN_MAX_STEPS steps that plan_verify accepts and whose
 *     names read back to the same steps, a plan_render text ending in
 *     last line "plan ok: ...", counts within their caps, each var found by its name;
 *     rollout_lint answers 0 or CANARY_ECONFIG naming a config.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fuzz_util.h"
#include "jsonc.h"
#include "limits.h"
#include "plan.h"
#include "rollout.h"

#define FUZZ_DIR_TEMPLATE  "canary-fuzz-rollout.XXXXXX"
#define FUZZ_ROLLOUT       "rollout.jsonc"
#define FUZZ_ROLLOUT_M     "rollout-m.jsonc" /* points to the fuzzed middleware config */
#define FUZZ_ROLLOUT_S     "rollout-s.jsonc" /* points to the fuzzed server config */
#define FUZZ_CONFIG        "fuzzed.jsonc"
#define FUZZ_PLAN_OK       "plan ok"
#define FUZZ_DIR_MODE      0755
#define FUZZ_MODE_MW       'm'
#define FUZZ_MODE_SERVER   's'
#define FUZZ_LOADED_CONFIG "wrangler/middleware.jsonc"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The directory of this process; "" until LLVMFuzzerInitialize. */
static char fuzz_dir[ROLLOUT_PATH_LEN / 2];

static const char fuzz_server_config[] =
    "// The server worker (the Next server).\n"
    "{\n"
    "  \"name\": \"main-server\",\n"
    "  \"main\": \"server.mjs\",\n"
    "  \"account_id\": \"0123456789abcdef0123456789abcdef\",\n"
    "  \"compatibility_date\": \"2025-04-14\",\n"
    "  \"version_metadata\": { \"binding\": \"CF_VERSION_METADATA\" },\n"
    "  \"vars\": { \"NEXT_PUBLIC_SITE\": \"docs\", \"FEATURES\": { \"beta\": true, }, "
    "\"RETRIES\": 3 },\n"
    "}\n";

static const char fuzz_middleware_config[] =
    "// The middleware worker: OpenNext routing, ISR cache hits, static assets.\n"
    "{\n"
    "  \"name\": \"middleware\",\n"
    "  \"main\": \"middleware.mjs\",\n"
    "  \"compatibility_date\": \"2025-04-14\",\n"
    "  \"version_metadata\": { \"binding\": \"CF_VERSION_METADATA\" },\n"
    "  \"vars\": { \"WORKER_VERSION_ID\": \"set-at-upload\" },\n"
    "  \"services\": [ { \"binding\": \"DEFAULT_WORKER\", \"service\": \"main-server\" } ],\n"
    "  \"migrations\": [ { \"tag\": \"v1\", \"new_sqlite_classes\": [\"DOQueueHandler\"] } ],\n"
    "}\n";

/* A rollout file with the worker configs given by %s, %s. */
static const char fuzz_rollout_fmt[] =
    "{\n"
    "  \"name\": \"fuzz\",\n"
    "  \"workers\": { \"server\": { \"config\": \"%s\" },\n"
    "               \"middleware\": { \"config\": \"%s\" } },\n"
    "  \"steps\": [\"server-0\", \"middleware-10\", \"middleware-100\", \"server-100\"],\n"
    "  \"probes\": { \"targets\": [ { \"id\": \"home\", \"url\": \"https://docs.example.com/\" "
    "} ] },\n"
    "  \"regions\": [ { \"name\": \"enam\" } ],\n"
    "  \"agents\": { \"listen\": [\"tcp://127.0.0.1:7400\"], \"insecure\": true }\n"
    "}\n";

static void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_rollout: %s: %s\n", what, detail);
	abort();
}

static void
fuzz_write_rollout(const char *name, const char *server, const char *middleware)
{
	char text[sizeof(fuzz_rollout_fmt) + 2 * ROLLOUT_NAME_LEN];
	int n = snprintf(text, sizeof(text), fuzz_rollout_fmt, server, middleware);

	if (n < 0 || (size_t)n >= sizeof(text)) {
		fuzz_die("fixed rollout", "does not fit");
	}
	fuzz_write_file(fuzz_dir, name, text, (size_t)n);
}

/* Every file and directory this target makes, children first. */
static const char *const fuzz_files[] = {FUZZ_ROLLOUT,
                                         FUZZ_ROLLOUT_M,
                                         FUZZ_ROLLOUT_S,
                                         FUZZ_CONFIG,
                                         "server.jsonc",
                                         "middleware.jsonc",
                                         "wrangler/server.jsonc",
                                         "wrangler/middleware.jsonc",
                                         "wrangler",
                                         NULL};

static void
fuzz_cleanup(void)
{
	char path[ROLLOUT_PATH_LEN];

	if (fuzz_dir[0] == '\0') {
		return;
	}
	for (int i = 0; fuzz_files[i] != NULL; i++) {
		snprintf(path, sizeof(path), "%s/%s", fuzz_dir, fuzz_files[i]);
		remove(path);
	}
	remove(fuzz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char sub[ROLLOUT_PATH_LEN];

	(void)argc;
	(void)argv;
	fuzz_scratch_dir(FUZZ_DIR_TEMPLATE, fuzz_dir, sizeof(fuzz_dir));
	atexit(fuzz_cleanup);
	snprintf(sub, sizeof(sub), "%s/wrangler", fuzz_dir);
	if (mkdir(sub, FUZZ_DIR_MODE) != 0) {
		fuzz_die(sub, strerror(errno));
	}
	fuzz_write_file(fuzz_dir, "wrangler/server.jsonc", fuzz_server_config,
	                strlen(fuzz_server_config));
	fuzz_write_file(fuzz_dir, "wrangler/middleware.jsonc", fuzz_middleware_config,
	                strlen(fuzz_middleware_config));
	fuzz_write_file(fuzz_dir, "server.jsonc", fuzz_server_config, strlen(fuzz_server_config));
	fuzz_write_file(fuzz_dir, "middleware.jsonc", fuzz_middleware_config,
	                strlen(fuzz_middleware_config));
	fuzz_write_rollout(FUZZ_ROLLOUT_M, "wrangler/server.jsonc", FUZZ_CONFIG);
	fuzz_write_rollout(FUZZ_ROLLOUT_S, FUZZ_CONFIG, FUZZ_LOADED_CONFIG);
	return 0;
}

/* fuzz_config_inside: 0 when the rollout text names a worker config that
 * may lie outside fuzz_dir. Text that is no JSONC is fine: rollout_load
 * then opens nothing else. */
static int
fuzz_config_inside(const char *text, size_t len)
{
	static const char *const roles[] = {"server", "middleware"};
	struct canary_jsonc *doc = NULL;
	char err[CANARY_ERRLEN];
	const cJSON *workers;
	int inside = 1;

	if (canary_jsonc_parse(text, len, CANARY_JSONC_MAX_DEPTH, &doc, err, sizeof(err)) != 0) {
		return 1;
	}
	workers = cJSON_GetObjectItemCaseSensitive(canary_jsonc_root(doc), "workers");
	for (int i = 0; i < 2; i++) {
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(workers, roles[i]);
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(w, "config");

		if (cJSON_IsString(c) &&
		    (c->valuestring[0] == '/' || strstr(c->valuestring, "..") != NULL)) {
			inside = 0;
		}
	}
	canary_jsonc_free(doc);
	return inside;
}

/* fuzz_in_dir: path is fuzz_dir/<something>. */
static int
fuzz_in_dir(const char *path)
{
	size_t n = strlen(fuzz_dir);

	return strncmp(path, fuzz_dir, n) == 0 && path[n] == '/' && path[n + 1] != '\0';
}

/* fuzz_check_error: err names a file of the directory; a position in the
 * fuzzed file lies inside it (lines counts its lines). */
static void
fuzz_check_error(const char *err, const char *fuzzed, size_t lines)
{
	size_t flen = strlen(fuzzed);
	const char *p;
	long line, col;
	char *end;

	if (!fuzz_in_dir(err)) {
		fuzz_die("error does not start with a file of the directory", err);
	}
	if (strncmp(err, fuzzed, flen) != 0 || err[flen] != ':') {
		return;
	}
	p = err + flen + 1;
	if (*p < '1' || *p > '9') {
		return; /* "FILE: reason" */
	}
	line = strtol(p, &end, 10);
	if (*end != ':') {
		return;
	}
	col = strtol(end + 1, &end, 10);
	if (*end != ':' || line < 1 || (size_t)line > lines || col < 1) {
		fuzz_die("error position outside the file", err);
	}
}

static void
fuzz_check_worker(const struct rollout_worker *w)
{
	if (!fuzz_in_dir(w->config) || w->name[0] == '\0') {
		fuzz_die("accepted worker", "config outside the directory or no name");
	}
	if (w->n_vars < 0 || w->n_vars > ROLLOUT_MAX_VARS || w->n_services < 0 ||
	    w->n_services > ROLLOUT_MAX_SERVICES) {
		fuzz_die("accepted worker", "counts out of range");
	}
	for (int i = 0; i < w->n_vars; i++) {
		if (rollout_worker_var(w, w->vars[i].name) != w->vars[i].value) {
			fuzz_die("rollout_worker_var does not find var", w->vars[i].name);
		}
	}
}

static void
fuzz_check_rollout(const struct rollout *r)
{
	char err[CANARY_ERRLEN], name[ROLLOUT_NAME_LEN];
	char *text = NULL;
	const char *last;
	size_t tl;
	int rv;

	fuzz_check_worker(&r->workers[PLAN_SERVER]);
	fuzz_check_worker(&r->workers[PLAN_MIDDLEWARE]);
	if (!fuzz_in_dir(r->state_dir) || r->name[0] == '\0') {
		fuzz_die("accepted rollout", "state_dir outside the directory or no name");
	}
	if (r->n_steps < 1 || r->n_steps > PLAN_MAX_STEPS || r->n_targets < 0 ||
	    r->n_targets > CANARY_MAX_TARGETS || r->n_regions < 0 ||
	    r->n_regions > ROLLOUT_MAX_REGIONS || r->deployer.n_command < 1 ||
	    r->deployer.n_command > ROLLOUT_MAX_ARGV) {
		fuzz_die("accepted rollout", "counts out of range");
	}
	if (plan_verify(r->steps, r->n_steps, NULL, err, sizeof(err)) != 0) {
		fuzz_die("accepted steps that plan_verify refuses", err);
	}
	for (int i = 0; i < r->n_steps; i++) {
		struct plan_step back;

		plan_step_name(&r->steps[i], name, sizeof(name));
		if (plan_step_parse(name, &back, err, sizeof(err)) != 0) {
			fuzz_die("a step name does not read back", err);
		}
		if (back.kind != r->steps[i].kind || back.percent != r->steps[i].percent) {
			fuzz_die("a step name reads back as another step", name);
		}
	}
	rv = plan_render(r->steps, r->n_steps, NULL, r->workers[PLAN_MIDDLEWARE].name,
	                 r->override_share, &text, err, sizeof(err));
	if (rv != 0 || text == NULL) {
		fuzz_die("plan_render refuses an accepted rollout", err);
	}
	tl = strlen(text);
	while (tl > 0 && text[tl - 1] == '\n') {
		tl--;
	}
	last = text + tl;
	while (last > text && last[-1] != '\n') {
		last--;
	}
	if (strncmp(last, FUZZ_PLAN_OK, strlen(FUZZ_PLAN_OK)) != 0) {
		fuzz_die("plan_render", "an accepted plan's last line is not \"plan ok...\"");
	}
	free(text);
	rv = rollout_lint(r, err, sizeof(err));
	if (rv != 0 && (rv != CANARY_ECONFIG || !fuzz_in_dir(err))) {
		fuzz_die("rollout_lint: a problem that names no config", err);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rollout *r = NULL;
	char err[CANARY_ERRLEN], path[ROLLOUT_PATH_LEN], fuzzed[ROLLOUT_PATH_LEN];
	const char *text, *load;
	size_t len, lines = 1;
	int rv;

	if (size == 0) {
		return 0;
	}
	text = (const char *)data + 1;
	len = size - 1;
	switch (data[0]) {
	case FUZZ_MODE_MW:
	case FUZZ_MODE_SERVER:
		fuzz_write_file(fuzz_dir, FUZZ_CONFIG, text, len);
		load = data[0] == FUZZ_MODE_MW ? FUZZ_ROLLOUT_M : FUZZ_ROLLOUT_S;
		snprintf(fuzzed, sizeof(fuzzed), "%s/%s", fuzz_dir, FUZZ_CONFIG);
		break;
	default:
		if (!fuzz_config_inside(text, len)) {
			return 0;
		}
		fuzz_write_file(fuzz_dir, FUZZ_ROLLOUT, text, len);
		load = FUZZ_ROLLOUT;
		snprintf(fuzzed, sizeof(fuzzed), "%s/%s", fuzz_dir, FUZZ_ROLLOUT);
		break;
	}
	for (size_t i = 0; i < len; i++) {
		lines += text[i] == '\n';
	}
	snprintf(path, sizeof(path), "%s/%s", fuzz_dir, load);
	rv = rollout_load(path, &r, err, sizeof(err));
	if (rv != 0) {
		if (r != NULL) {
			fuzz_die("rejected rollout", "left a struct behind");
		}
		fuzz_check_error(err, fuzzed, lines);
		return 0;
	}
	fuzz_check_rollout(r);
	rollout_free(r);
	return 0;
}
