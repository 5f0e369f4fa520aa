/*
 * deployer_wrangler.c: the `wrangler` backend: every operation is one or two
 * runs of the real CLI through proc (argv, never a shell). See deployer.h
 * for what each operation runs and returns.
 */
#include "deployer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonc.h"
#include "proc.h"

#define WR_TMP_TEMPLATE "canary-wrangler-XXXXXX"
#define WR_PATH_MAX     4096
#define WR_ENV_FIXED    3 /* WRANGLER_SEND_METRICS, _HIDE_BANNER, _OUTPUT_FILE_PATH */
#define WR_ARG_MAX      (DEPLOYER_MAX_ARGS + 2 * DEPLOYER_MAX_VARS + 16)
#define WR_UUID_MARK    "Worker Version ID:"
#define WR_NOISE_BUG    "If you think this is a bug"
#define WR_NOISE_LOGS   "Logs were written to"

enum wr_kind { WR_UPLOAD, WR_DEPLOY, WR_STATUS };

struct wr;

/* One operation in flight: owns its child process, its temp file and its copies. */
struct wr_op {
	struct wr *w;
	struct wr_op *next;
	struct wr_op **pprev;
	enum wr_kind kind;
	int readback; /* deploy: the status run after the deploy run */
	deployer_cb cb;
	void *arg;
	struct proc *sp;
	char *config;
	char outfile[WR_PATH_MAX]; /* upload: WRANGLER_OUTPUT_FILE_PATH, "" none */
	char cmdline[DEPLOYER_CMDLINE_LEN];
	struct deployment want; /* deploy: what was asked for */
};

struct wr {
	struct deployer d;
	char **cmd; /* NULL-terminated copy of the command words */
	int ncmd;
	char **env; /* NULL-terminated: the caller's extras, then ours */
	int nenv;
	int timeout_s;
	struct wr_op *ops;
};

static void
wr_strv_free(char **v)
{
	if (v == NULL) {
		return;
	}
	for (char **p = v; *p != NULL; p++) {
		free(*p);
	}
	free(v);
}

static void
wr_op_free(struct wr_op *op)
{
	if (op == NULL) {
		return;
	}
	if (op->pprev != NULL) {
		*op->pprev = op->next;
		if (op->next != NULL) {
			op->next->pprev = op->pprev;
		}
	}
	proc_cancel(op->sp);
	if (op->outfile[0] != '\0') {
		(void)unlink(op->outfile);
	}
	free(op->config);
	free(op);
}

/* wr_cmdline: the command for people: words joined by spaces, a word with a
 * space or quote shown in single quotes. Never holds secrets: they only
 * travel in the environment. */
static void
wr_cmdline(const char *const *argv, char *buf, size_t len)
{
	size_t w = 0;
	int n;

	buf[0] = '\0';
	for (int i = 0; argv[i] != NULL; i++) {
		int quote = argv[i][0] == '\0' || strpbrk(argv[i], " \t'\"") != NULL;

		n = snprintf(buf + w, len - w, "%s%s%s%s", i > 0 ? " " : "", quote ? "'" : "",
		             argv[i], quote ? "'" : "");
		if (n < 0 || (size_t)n >= len - w) {
			return;
		}
		w += (size_t)n;
	}
}

/* wr_token: the API token the child sees: our extra CLOUDFLARE_API_TOKEN
 * entry, else the one it inherits; NULL when there is none. */
static const char *
wr_token(const struct wr *w)
{
	static const char key[] = DEPLOYER_TOKEN_ENV_DEFAULT "=";

	for (int i = 0; i < w->nenv; i++) {
		if (strncmp(w->env[i], key, sizeof(key) - 1) == 0) {
			return w->env[i] + sizeof(key) - 1;
		}
	}
	return getenv(DEPLOYER_TOKEN_ENV_DEFAULT);
}

/* wr_deliver: unlinks op, kills its child if one still runs (op->sp is
 * NULL when called from the child's own callback), frees op, then runs the
 * callback once. The callback may free the deployer. */
static void
wr_deliver(struct wr_op *op, struct deployer_result *res)
{
	deployer_cb cb = op->cb;
	void *arg = op->arg;

	/* The CLI's stderr and stdout are quoted: the token it was given
	 * must not come back through them. */
	deployer_scrub(res->err, wr_token(op->w));
	wr_op_free(op);
	cb(res, arg);
}

static void wr_on_exit(const struct proc_result *sr, void *arg);

/* wr_run: builds argv = command words + args and starts the child. */
static int
wr_run(struct wr_op *op, const char *const *args, int nargs, char *err, size_t errlen)
{
	struct wr *w = op->w;
	const char *argv[WR_ARG_MAX + 1];
	const char *env[DEPLOYER_MAX_ENV + WR_ENV_FIXED + 2];
	char outenv[WR_PATH_MAX + 32];
	struct proc_opts so;
	int n = 0, i, ne = 0;

	if (w->ncmd + nargs > WR_ARG_MAX) {
		return canary_errf(err, errlen, CANARY_ETOOBIG,
		                   "wrangler: %d arguments, at most %d", w->ncmd + nargs,
		                   WR_ARG_MAX);
	}
	for (i = 0; i < w->ncmd; i++) {
		argv[n++] = w->cmd[i];
	}
	for (i = 0; i < nargs; i++) {
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	for (i = 0; i < w->nenv; i++) {
		env[ne++] = w->env[i];
	}
	if (op->outfile[0] != '\0') {
		snprintf(outenv, sizeof(outenv), "WRANGLER_OUTPUT_FILE_PATH=%s", op->outfile);
		env[ne++] = outenv;
	}
	env[ne] = NULL;
	wr_cmdline(argv, op->cmdline, sizeof(op->cmdline));
	memset(&so, 0, sizeof(so));
	so.argv = argv;
	so.env = env;
	so.timeout_ms = w->timeout_s * 1000;
	so.max_output = DEPLOYER_OUTPUT_MAX;
	return proc_start(w->d.base, &so, wr_on_exit, op, &op->sp, err, errlen);
}

static int
wr_run_status(struct wr_op *op, char *err, size_t errlen)
{
	const char *args[] = {"deployments", "status", "--config", op->config, "--json"};

	return wr_run(op, args, 5, err, errlen);
}

/* wr_drop_boilerplate: removes, in place, the lines wrangler prints after
 * every error (where its log went, where to file a bug): they would take
 * the room of the lines that say what failed. */
static void
wr_drop_boilerplate(char *s)
{
	static const char *const noise[] = {WR_NOISE_BUG, WR_NOISE_LOGS};
	char *r = s, *w = s;

	while (*r != '\0') {
		char *nl = strchr(r, '\n');
		size_t len = nl != NULL ? (size_t)(nl - r) + 1 : strlen(r);
		int drop = 0;

		for (size_t i = 0; i < sizeof(noise) / sizeof(noise[0]); i++) {
			const char *hit = strstr(r, noise[i]);

			drop |= hit != NULL && hit < r + len;
		}
		if (!drop) {
			memmove(w, r, len);
			w += len;
		}
		r += len;
	}
	*w = '\0';
}

/* wr_child_failed: 0 when the child exited 0; else the error for people:
 * the command, how it ended, and the end of its stderr without colours. */
static int
wr_child_failed(const struct wr_op *op, const struct proc_result *sr, char *err, size_t errlen)
{
	char *stderr_copy;
	char tail[CANARY_ERRLEN];
	int timeout_s = op->w->timeout_s;

	if (sr->exited && sr->exit_code == 0 && !sr->timed_out) {
		return 0;
	}
	tail[0] = '\0';
	stderr_copy = strdup(sr->err);
	if (stderr_copy != NULL) {
		proc_strip_ansi(stderr_copy);
		wr_drop_boilerplate(stderr_copy);
		proc_tail_lines(stderr_copy, DEPLOYER_STDERR_LINES, tail, sizeof(tail));
		free(stderr_copy);
	}
	if (sr->timed_out) {
		return canary_errf(err, errlen, CANARY_ETIMEDOUT,
		                   "`%s`: no answer after %d s, killed%s%s", op->cmdline, timeout_s,
		                   tail[0] != '\0' ? "; stderr: " : "", tail);
	}
	if (!sr->exited) {
		return canary_errf(err, errlen, CANARY_EEXIT, "`%s`: killed by signal %d%s%s",
		                   op->cmdline, sr->signal, tail[0] != '\0' ? "; stderr: " : "",
		                   tail);
	}
	return canary_errf(err, errlen, CANARY_EEXIT, "`%s`: exit code %d%s%s", op->cmdline,
	                   sr->exit_code, tail[0] != '\0' ? "; stderr: " : ": no stderr", tail);
}

/* wr_stdout_tail: the last lines of the CLI's stdout for an error message,
 * without colour codes (wrangler colours them even with NO_COLOR=1). */
static void
wr_stdout_tail(const char *out, char *tail, size_t n)
{
	char *copy = strdup(out);

	tail[0] = '\0';
	if (copy == NULL) {
		return;
	}
	proc_strip_ansi(copy);
	proc_tail_lines(copy, DEPLOYER_STDOUT_LINES, tail, n);
	free(copy);
}

/* wr_read_capped: reads at most cap bytes of path into a new NUL-terminated
 * buffer. A file over the cap is an error, never silently cut. */
static int
wr_read_capped(const char *path, size_t cap, char **bufp, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;
	int rv = 0;

	*bufp = NULL;
	if (f == NULL) {
		return canary_errf(err, errlen, CANARY_EIO, "%s: %s", path, strerror(errno));
	}
	buf = malloc(cap + 1);
	if (buf == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	n = fread(buf, 1, cap + 1, f);
	if (ferror(f)) {
		rv = canary_errf(err, errlen, CANARY_EIO, "%s: read error", path);
		goto out;
	}
	if (n > cap) {
		rv = canary_errf(err, errlen, CANARY_ETOOBIG, "%s: more than %zu bytes", path, cap);
		goto out;
	}
	buf[n] = '\0';
	*bufp = buf;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return rv;
}

/* wr_id_from_ndjson: the version id of the last `version-upload` record.
 * Other record types (wrangler-session...) and unparsable lines are
 * skipped: the file is wrangler's, not ours. Returns 0, CANARY_ENOENT (no
 * such record) or CANARY_EPARSE (a record whose version_id is no uuid). */
static int
wr_id_from_ndjson(char *text, char *id, char *err, size_t errlen)
{
	char *line = text, *nl;
	int rv = CANARY_ENOENT;
	int lineno = 0;

	while (line != NULL && *line != '\0') {
		cJSON *rec, *type, *vid;

		lineno++;
		nl = strchr(line, '\n');
		if (nl != NULL) {
			*nl = '\0';
		}
		/* A line that is not one JSON value is not a record (rec NULL). */
		(void)canary_json_parse_exact(line, strlen(line), &rec, NULL, 0);
		type = cJSON_GetObjectItemCaseSensitive(rec, "type");
		if (cJSON_IsString(type) && strcmp(type->valuestring, "version-upload") == 0) {
			vid = cJSON_GetObjectItemCaseSensitive(rec, "version_id");
			if (cJSON_IsString(vid) && canary_is_uuid(vid->valuestring)) {
				memcpy(id, vid->valuestring, CANARY_UUID_LEN);
				rv = 0;
			} else {
				rv = canary_errf(
				    err, errlen, CANARY_EPARSE,
				    "WRANGLER_OUTPUT_FILE_PATH line %d: version-upload record "
				    "without a version uuid",
				    lineno);
			}
		}
		cJSON_Delete(rec);
		line = nl != NULL ? nl + 1 : NULL;
	}
	return rv;
}

/* wr_id_from_stdout: `Worker Version ID: <uuid>` on stdout (colours
 * stripped), the fallback when the output file has no record. */
static int
wr_id_from_stdout(const char *out, char *id)
{
	char *copy = strdup(out), *p, *q;
	int rv = CANARY_ENOENT;

	if (copy == NULL) {
		return CANARY_ENOMEM;
	}
	proc_strip_ansi(copy);
	p = strstr(copy, WR_UUID_MARK);
	if (p != NULL) {
		p += strlen(WR_UUID_MARK);
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		q = p;
		while (*q != '\0' && *q != '\n' && *q != '\r' && *q != ' ') {
			q++;
		}
		*q = '\0';
		if (canary_is_uuid(p)) {
			memcpy(id, p, CANARY_UUID_LEN);
			rv = 0;
		} else {
			rv = CANARY_EPARSE;
		}
	}
	free(copy);
	return rv;
}

static void
wr_finish_upload(struct wr_op *op, const struct proc_result *sr, struct deployer_result *res)
{
	char *text = NULL;
	char tail[CANARY_ERRLEN / 2];
	int rv;

	rv = wr_read_capped(op->outfile, DEPLOYER_OUTPUT_MAX, &text, res->err, sizeof(res->err));
	if (rv == 0) {
		rv = wr_id_from_ndjson(text, res->version_id, res->err, sizeof(res->err));
	}
	free(text);
	if (rv == 0) {
		return;
	}
	if (rv != CANARY_ENOENT && rv != CANARY_EIO) {
		res->rv = rv;
		return;
	}
	rv = wr_id_from_stdout(sr->out, res->version_id);
	if (rv == 0) {
		return;
	}
	wr_stdout_tail(sr->out, tail, sizeof(tail));
	res->rv = canary_errf(res->err, sizeof(res->err), CANARY_EPARSE,
	                      "`%s`: exit code 0 but no version id: no version-upload record in "
	                      "WRANGLER_OUTPUT_FILE_PATH and no valid \"%s <uuid>\" on stdout; "
	                      "stdout ends: %s",
	                      op->cmdline, WR_UUID_MARK, tail);
}

static void
wr_finish_status(struct wr_op *op, const struct proc_result *sr, struct deployer_result *res)
{
	cJSON *doc;
	char where[DEPLOYER_CMDLINE_LEN + 8];
	char tail[CANARY_ERRLEN / 2];

	snprintf(where, sizeof(where), "`%s`", op->cmdline);
	if (canary_json_parse_exact(sr->out, sr->out_len, &doc, NULL, 0) != 0) {
		wr_stdout_tail(sr->out, tail, sizeof(tail));
		res->rv =
		    canary_errf(res->err, sizeof(res->err), CANARY_EPARSE,
		                "%s: stdout is not one JSON deployment object: %s", where, tail);
		return;
	}
	res->rv =
	    deployer_deployment_parse(doc, where, &res->deployment, res->err, sizeof(res->err));
	cJSON_Delete(doc);
	if (res->rv != 0 || op->kind != WR_DEPLOY) {
		return;
	}
	if (!deployer_deployment_equal(&res->deployment, &op->want)) {
		char want[DEPLOYER_DEP_TEXT_LEN], got[DEPLOYER_DEP_TEXT_LEN];

		deployer_deployment_format(&op->want, want, sizeof(want));
		deployer_deployment_format(&res->deployment, got, sizeof(got));
		res->rv = canary_errf(res->err, sizeof(res->err), CANARY_EDRIFT,
		                      "deployed %s but the platform now holds %s (deployment %s)",
		                      want, got, res->deployment.id);
	}
}

static void
wr_on_exit(const struct proc_result *sr, void *arg)
{
	struct wr_op *op = arg;
	struct deployer_result res;
	int rv;

	memset(&res, 0, sizeof(res));
	op->sp = NULL; /* proc frees itself after this callback */
	res.rv = wr_child_failed(op, sr, res.err, sizeof(res.err));
	if (res.rv != 0) {
		wr_deliver(op, &res);
		return;
	}
	switch (op->kind) {
	case WR_UPLOAD:
		wr_finish_upload(op, sr, &res);
		break;
	case WR_DEPLOY:
		if (!op->readback) {
			/* Deployed: read back what the platform now holds. */
			op->readback = 1;
			rv = wr_run_status(op, res.err, sizeof(res.err));
			if (rv == 0) {
				return;
			}
			res.rv = rv;
			break;
		}
		wr_finish_status(op, sr, &res);
		break;
	case WR_STATUS:
		wr_finish_status(op, sr, &res);
		break;
	}
	wr_deliver(op, &res);
}

static struct wr_op *
wr_op_new(struct wr *w, enum wr_kind kind, const char *config, deployer_cb cb, void *arg)
{
	struct wr_op *op = calloc(1, sizeof(*op));

	if (op == NULL) {
		return NULL;
	}
	op->config = strdup(config);
	if (op->config == NULL) {
		free(op);
		return NULL;
	}
	op->w = w;
	op->kind = kind;
	op->cb = cb;
	op->arg = arg;
	op->next = w->ops;
	if (w->ops != NULL) {
		w->ops->pprev = &op->next;
	}
	op->pprev = &w->ops;
	w->ops = op;
	return op;
}

static int
wr_check_worker(struct wr *w, const struct deployer_worker *wk, deployer_cb cb)
{
	if (wk == NULL || wk->config == NULL || wk->config[0] == '\0') {
		return canary_errf(w->d.err, sizeof(w->d.err), CANARY_EINVAL,
		                   "wrangler: no wrangler config given for the worker");
	}
	if (cb == NULL) {
		return canary_errf(w->d.err, sizeof(w->d.err), CANARY_EINVAL,
		                   "wrangler: no callback given");
	}
	return 0;
}

static int
wr_upload(struct deployer *d, const struct deployer_upload *up, deployer_cb cb, void *arg)
{
	struct wr *w = d->impl;
	struct wr_op *op = NULL;
	const char *args[8 + 2 * DEPLOYER_MAX_VARS];
	char *vars[DEPLOYER_MAX_VARS];
	int n = 0, i, nv = 0, rv, fd;
	const char *tmpdir = getenv("TMPDIR");

	rv = wr_check_worker(w, up != NULL ? &up->worker : NULL, cb);
	if (rv != 0) {
		return rv;
	}
	if (up->n_vars < 0 || up->n_vars > DEPLOYER_MAX_VARS || (up->n_vars > 0 && !up->vars)) {
		return canary_errf(d->err, sizeof(d->err), CANARY_EINVAL,
		                   "wrangler upload: %d vars, expected 0..%d", up->n_vars,
		                   DEPLOYER_MAX_VARS);
	}
	for (i = 0; i < up->n_vars; i++) {
		const char *k = up->vars[i][0], *v = up->vars[i][1];

		/* wrangler splits --var at the first ':', so a name must not
		 * hold one; the value may. */
		if (k == NULL || k[0] == '\0' || strchr(k, ':') != NULL || v == NULL) {
			return canary_errf(
			    d->err, sizeof(d->err), CANARY_EINVAL,
			    "wrangler upload: var %d: expected a name without ':' and "
			    "a value",
			    i);
		}
	}
	op = wr_op_new(w, WR_UPLOAD, up->worker.config, cb, arg);
	if (op == NULL) {
		return canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
	}
	if (tmpdir == NULL || tmpdir[0] == '\0') {
		tmpdir = "/tmp";
	}
	snprintf(op->outfile, sizeof(op->outfile), "%s/%s", tmpdir, WR_TMP_TEMPLATE);
	fd = mkstemp(op->outfile);
	if (fd < 0) {
		rv = canary_errf(d->err, sizeof(d->err), CANARY_EIO,
		                 "wrangler upload: temporary file in %s: %s", tmpdir,
		                 strerror(errno));
		op->outfile[0] = '\0';
		goto out;
	}
	close(fd);
	args[n++] = "versions";
	args[n++] = "upload";
	args[n++] = "--config";
	args[n++] = up->worker.config;
	for (i = 0; i < up->n_vars; i++) {
		size_t len = strlen(up->vars[i][0]) + strlen(up->vars[i][1]) + 2;

		vars[nv] = malloc(len);
		if (vars[nv] == NULL) {
			rv = canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
			goto out;
		}
		snprintf(vars[nv], len, "%s:%s", up->vars[i][0], up->vars[i][1]);
		args[n++] = "--var";
		args[n++] = vars[nv++];
	}
	if (up->tag != NULL) {
		args[n++] = "--tag";
		args[n++] = up->tag;
	}
	if (up->message != NULL) {
		args[n++] = "--message";
		args[n++] = up->message;
	}
	rv = wr_run(op, args, n, d->err, sizeof(d->err));
out:
	for (i = 0; i < nv; i++) {
		free(vars[i]);
	}
	if (rv != 0) {
		wr_op_free(op);
	}
	return rv;
}

static int
wr_deploy(struct deployer *d, const struct deployer_worker *wk, const struct deployment *dep,
          const char *message, deployer_cb cb, void *arg)
{
	struct wr *w = d->impl;
	struct wr_op *op;
	char specs[CANARY_MAX_VERSIONS][CANARY_UUID_LEN + 8];
	const char *args[16];
	int n = 0, i, rv;

	rv = wr_check_worker(w, wk, cb);
	if (rv != 0) {
		return rv;
	}
	rv = deployer_check_deployment(dep, d->err, sizeof(d->err));
	if (rv != 0) {
		return rv;
	}
	op = wr_op_new(w, WR_DEPLOY, wk->config, cb, arg);
	if (op == NULL) {
		return canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
	}
	op->want = *dep;
	args[n++] = "versions";
	args[n++] = "deploy";
	for (i = 0; i < dep->n_versions; i++) {
		snprintf(specs[i], sizeof(specs[i]), "%s@%d%%", dep->versions[i].version_id,
		         dep->versions[i].percentage);
		args[n++] = specs[i];
	}
	args[n++] = "-y";
	args[n++] = "--config";
	args[n++] = wk->config;
	if (message != NULL) {
		args[n++] = "--message";
		args[n++] = message;
	}
	rv = wr_run(op, args, n, d->err, sizeof(d->err));
	if (rv != 0) {
		wr_op_free(op);
	}
	return rv;
}

static int
wr_status(struct deployer *d, const struct deployer_worker *wk, deployer_cb cb, void *arg)
{
	struct wr *w = d->impl;
	struct wr_op *op;
	int rv;

	rv = wr_check_worker(w, wk, cb);
	if (rv != 0) {
		return rv;
	}
	op = wr_op_new(w, WR_STATUS, wk->config, cb, arg);
	if (op == NULL) {
		return canary_errf(d->err, sizeof(d->err), CANARY_ENOMEM, "out of memory");
	}
	rv = wr_run_status(op, d->err, sizeof(d->err));
	if (rv != 0) {
		wr_op_free(op);
	}
	return rv;
}

static void
wr_free(struct deployer *d)
{
	struct wr *w;

	if (d == NULL) {
		return;
	}
	w = d->impl;
	/* Each pending callback hears CANARY_ECANCELED; a callback must not
	 * free the deployer again. */
	while (w->ops != NULL) {
		struct deployer_result res;

		memset(&res, 0, sizeof(res));
		res.rv = canary_errf(res.err, sizeof(res.err), CANARY_ECANCELED,
		                     "`%s`: canceled, child killed", w->ops->cmdline);
		wr_deliver(w->ops, &res);
	}
	wr_strv_free(w->cmd);
	wr_strv_free(w->env);
	free(w);
}

static const struct deployer_ops wr_ops = {
    .name = "wrangler",
    .upload = wr_upload,
    .deploy = wr_deploy,
    .status = wr_status,
    .migration_tag = NULL,
    .free = wr_free,
};

int
deployer_wrangler_new(struct event_base *base, const char *const *command_argv, int argc,
                      int timeout_s, const char *const *env, struct deployer **dp, char *err,
                      size_t errlen)
{
	static const char *const fixed[] = {"WRANGLER_SEND_METRICS=false",
	                                    "WRANGLER_HIDE_BANNER=true"};
	struct wr *w = NULL;
	int i, n_env = 0, rv = 0;

	*dp = NULL;
	if (base == NULL || command_argv == NULL || argc < 1 || argc > DEPLOYER_MAX_ARGS) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "wrangler deployer: expected a command of 1 to %d words",
		                   DEPLOYER_MAX_ARGS);
	}
	for (i = 0; i < argc; i++) {
		if (command_argv[i] == NULL || (i == 0 && command_argv[i][0] == '\0')) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "wrangler deployer: command word %d is empty", i);
		}
	}
	if (timeout_s < 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "wrangler deployer: timeout_s %d is negative", timeout_s);
	}
	while (env != NULL && env[n_env] != NULL) {
		if (n_env >= DEPLOYER_MAX_ENV) {
			return canary_errf(err, errlen, CANARY_ETOOBIG,
			                   "wrangler deployer: more than %d environment entries",
			                   DEPLOYER_MAX_ENV);
		}
		if (strchr(env[n_env], '=') == NULL) {
			/* Do not quote it: it may be a secret. */
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "wrangler deployer: environment entry %d: expected KEY=VALUE", n_env);
		}
		n_env++;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	w->d.ops = &wr_ops;
	w->d.base = base;
	w->d.impl = w;
	w->timeout_s = timeout_s > 0 ? timeout_s : DEPLOYER_TIMEOUT_S_DEFAULT;
	w->cmd = calloc((size_t)argc + 1, sizeof(char *));
	w->env = calloc((size_t)n_env + 3, sizeof(char *));
	if (w->cmd == NULL || w->env == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < argc; i++) {
		w->cmd[i] = strdup(command_argv[i]);
		if (w->cmd[i] == NULL) {
			rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
			goto out;
		}
	}
	w->ncmd = argc;
	for (i = 0; i < n_env + 2; i++) {
		w->env[i] = strdup(i < n_env ? env[i] : fixed[i - n_env]);
		if (w->env[i] == NULL) {
			rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
			goto out;
		}
	}
	w->nenv = n_env + 2;
	*dp = &w->d;
	w = NULL;
out:
	if (w != NULL) {
		wr_strv_free(w->cmd);
		wr_strv_free(w->env);
		free(w);
	}
	return rv;
}
