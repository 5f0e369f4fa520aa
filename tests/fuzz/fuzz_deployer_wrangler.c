/*
 * fuzz_deployer_wrangler.c: libFuzzer target for the `wrangler` deployer's
 * reading of what the CLI leaves behind (controller/deployer_wrangler.c):
 * the NDJSON file named by WRANGLER_OUTPUT_FILE_PATH, stdout (the
 * `deployments status --json` object, the `Worker Version ID:` fallback)
 * and, when the CLI fails, stderr (colour codes and wrangler's boilerplate
 * lines dropped before it is quoted).
 *
 * Those readers are static; the public way in is the deployer itself, run
 * as the controller runs it, with `sh -c SCRIPT DIR` as the CLI: the script
 * copies DIR/ndjson to WRANGLER_OUTPUT_FILE_PATH (when set), prints
 * DIR/out and DIR/err and exits with DIR/code. DIR is a directory of this
 * process (under /dev/shm when there is one, else TMPDIR). The first input
 * byte picks the operation (byte % 3: status, upload, deploy) and the exit
 * code (byte / 3 % 2: 0 or 1); the rest is NDJSON, NUL, stdout, NUL, stderr.
 * Each input runs one or two children, so this target is slow (hundreds of
 * runs per second): it is here for the parsers no other target reaches.
 *
 * Promises checked, beyond "no crash, no leak, no undefined behaviour":
 *   - the callback runs exactly once, never inside the starting call, and
 *     before a deadline;
 *   - a failed CLI gives CANARY_EEXIT quoting the command, with no escape
 *     byte and none of wrangler's boilerplate lines left in the message;
 *   - success only from a CLI that exited 0; then status (and deploy's
 *     read-back) came from a stdout of exactly one JSON value and gives a
 *     valid deployment, deploy the one asked for, upload a version uuid that,
 *     when the NDJSON holds no JSON escapes and stdout no colour codes, is
 *     written in one of them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "deployer.h"
#include "err.h"
#include "fuzz_util.h"

#define FUZZ_DIR_TEMPLATE "canary-fuzz-wrangler.XXXXXX"
#define FUZZ_PATH_LEN     512
#define FUZZ_VERSION      "2a9eda0d-85e2-4c68-9ed7-d3330f77f3be"
#define FUZZ_TIMEOUT_S    10 /* one CLI run */
#define FUZZ_DEADLINE_S   30 /* the callback must have run by then */
#define FUZZ_N_OPS        3
#define FUZZ_N_CODES      2
/* The lines wrangler prints after every error, which the deployer drops
 * (deployer_wrangler.c: WR_NOISE_BUG, WR_NOISE_LOGS). */
#define FUZZ_NOISE_BUG  "If you think this is a bug"
#define FUZZ_NOISE_LOGS "Logs were written to"

/* $0 is DIR: `sh -c SCRIPT DIR versions upload ...`. */
#define FUZZ_SCRIPT                                                                                \
	"if [ -n \"$WRANGLER_OUTPUT_FILE_PATH\" ]; then "                                          \
	"cat \"$0/ndjson\" >>\"$WRANGLER_OUTPUT_FILE_PATH\"; fi; "                                 \
	"cat \"$0/out\"; cat \"$0/err\" >&2; read c <\"$0/code\"; exit \"$c\""

enum fuzz_op { FUZZ_STATUS, FUZZ_UPLOAD, FUZZ_DEPLOY };

static const char *const fuzz_files[] = {"ndjson", "out", "err", "code", NULL};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Everything the target keeps between inputs; made once. */
static struct {
	struct event_base *base;
	struct fuzz_op_run run; /* the operation in flight */
	struct deployer *d;
	char dir[FUZZ_PATH_LEN];
} fuzz;

static void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_deployer_wrangler: %s: %s\n", what, detail);
	abort();
}

static void
fuzz_cleanup(void)
{
	char path[FUZZ_PATH_LEN + 16];

	deployer_free(fuzz.d);
	fuzz_op_free(&fuzz.run);
	if (fuzz.base != NULL) {
		event_base_free(fuzz.base);
	}
	if (fuzz.dir[0] == '\0') {
		return;
	}
	for (int i = 0; fuzz_files[i] != NULL; i++) {
		snprintf(path, sizeof(path), "%s/%s", fuzz.dir, fuzz_files[i]);
		remove(path);
	}
	remove(fuzz.dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *cmd[4];
	char err[CANARY_ERRLEN];

	(void)argc;
	(void)argv;
	atexit(fuzz_cleanup);
	fuzz_scratch_dir(FUZZ_DIR_TEMPLATE, fuzz.dir, sizeof(fuzz.dir));
	fuzz.base = event_base_new();
	fuzz_op_init(&fuzz.run, fuzz.base);
	cmd[0] = "sh";
	cmd[1] = "-c";
	cmd[2] = FUZZ_SCRIPT;
	cmd[3] = fuzz.dir;
	if (deployer_wrangler_new(fuzz.base, cmd, 4, FUZZ_TIMEOUT_S, NULL, &fuzz.d, err,
	                          sizeof(err)) != 0) {
		fuzz_die("deployer_wrangler_new", err);
	}
	return 0;
}

static int
fuzz_start(enum fuzz_op op, const struct deployment *want)
{
	static const struct deployer_worker w = {"middleware", "wrangler.jsonc"};
	static const char *const vars[1][2] = {{"WORKER_VERSION_ID", FUZZ_VERSION}};
	struct deployer_upload up;
	int rv = CANARY_EINVAL;

	fuzz.run.starting = 1;
	switch (op) {
	case FUZZ_STATUS:
		rv = deployer_status(fuzz.d, &w, fuzz_op_done, &fuzz.run);
		break;
	case FUZZ_UPLOAD:
		memset(&up, 0, sizeof(up));
		up.worker = w;
		up.vars = vars;
		up.n_vars = 1;
		rv = deployer_upload(fuzz.d, &up, fuzz_op_done, &fuzz.run);
		break;
	case FUZZ_DEPLOY:
		rv = deployer_deploy(fuzz.d, &w, want, NULL, fuzz_op_done, &fuzz.run);
		break;
	}
	fuzz.run.starting = 0;
	return rv;
}

/* fuzz_mentions: id is written in text[0..len) (case aside: a uuid's hex
 * may be either). */
static int
fuzz_mentions(const char *text, size_t len, const char *id)
{
	size_t n = strlen(id);

	for (size_t i = 0; i + n <= len; i++) {
		if (strncasecmp(text + i, id, n) == 0) {
			return 1;
		}
	}
	return 0;
}

static void
fuzz_check_success(enum fuzz_op op, const struct deployment *want, const char *ndjson, size_t nlen,
                   const char *out, size_t olen)
{
	const struct deployer_result *r = &fuzz.run.res;
	char why[CANARY_ERRLEN];

	if ((op == FUZZ_STATUS || op == FUZZ_DEPLOY) && !fuzz_one_json_value(out, olen)) {
		fuzz_die("status", "read from stdout that is not exactly one JSON value");
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
	case FUZZ_UPLOAD:
		if (!canary_is_uuid(r->version_id)) {
			fuzz_die("upload", "success without a version uuid");
		}
		if (memchr(ndjson, '\\', nlen) == NULL && memchr(out, '\x1b', olen) == NULL &&
		    !fuzz_mentions(ndjson, nlen, r->version_id) &&
		    !fuzz_mentions(out, olen, r->version_id)) {
			fuzz_die("upload: a version id the CLI never wrote", r->version_id);
		}
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct deployment want;
	const char *p, *end, *ndjson, *out, *errt, *z;
	size_t nlen, olen, elen;
	enum fuzz_op op;
	int code;

	if (size == 0) {
		return 0;
	}
	op = (enum fuzz_op)(data[0] % FUZZ_N_OPS);
	code = (data[0] / FUZZ_N_OPS) % FUZZ_N_CODES;
	p = (const char *)data + 1;
	end = (const char *)data + size;
	/* NDJSON, NUL, stdout, NUL, stderr; missing parts are empty. */
	ndjson = p;
	z = memchr(p, '\0', (size_t)(end - p));
	nlen = z != NULL ? (size_t)(z - p) : (size_t)(end - p);
	out = z != NULL ? z + 1 : end;
	z = memchr(out, '\0', (size_t)(end - out));
	olen = z != NULL ? (size_t)(z - out) : (size_t)(end - out);
	errt = z != NULL ? z + 1 : end;
	elen = (size_t)(end - errt);
	fuzz_write_file(fuzz.dir, "ndjson", ndjson, nlen);
	fuzz_write_file(fuzz.dir, "out", out, olen);
	fuzz_write_file(fuzz.dir, "err", errt, elen);
	fuzz_write_file(fuzz.dir, "code", code == 0 ? "0\n" : "1\n", 2);

	fuzz_op_reset(&fuzz.run, &want, FUZZ_VERSION);
	if (fuzz_start(op, &want) != 0) {
		fuzz_die("the operation did not start", fuzz.d->err);
	}
	fuzz_op_wait(&fuzz.run, FUZZ_DEADLINE_S);
	if (code != 0) {
		const char *e = fuzz.run.res.err;

		if (fuzz.run.res.rv != CANARY_EEXIT || strncmp(e, "`sh -c ", 7) != 0) {
			fprintf(stderr, "%s\n", e);
			fuzz_die("a failed CLI", "not CANARY_EEXIT quoting the command");
		}
		if (strchr(e, '\x1b') != NULL || strstr(e, FUZZ_NOISE_BUG) != NULL ||
		    strstr(e, FUZZ_NOISE_LOGS) != NULL) {
			fuzz_die("stderr quoted with escapes or boilerplate", e);
		}
		return 0;
	}
	if (fuzz.run.res.rv == 0) {
		fuzz_check_success(op, &want, ndjson, nlen, out, olen);
	} else if (fuzz.run.res.err[0] == '\0' || fuzz.run.res.rv == CANARY_EEXIT ||
	           fuzz.run.res.rv == CANARY_ETIMEDOUT) {
		fprintf(stderr, "%s\n", fuzz.run.res.err);
		fuzz_die("a CLI that exited 0", "failed without a message, or as a failed run");
	}
	return 0;
}
