/*
 * deployer.h: the platform behind one ops table (upload, deploy, status).
 *
 * Backends: `wrangler` (the real CLI, spawned with an argv, never a shell)
 * and `api` (the Cloudflare REST API through libcurl). Every operation is
 * asynchronous on the controller's libevent loop: it starts work and returns
 * at once; the callback runs later on the loop thread, exactly once, never
 * from inside the starting call. Nothing here blocks the loop.
 *
 * Secrets (the API token) never appear in results, errors or logs.
 */
#ifndef CANARY_DEPLOYER_H
#define CANARY_DEPLOYER_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "err.h"
#include "msg.h"

/* A deployment as the platform holds it: one or two versions, percentages
 * totalling 100. */
struct deployment {
	char id[CANARY_ID_LEN]; /* the platform's deployment id; "" when not known */
	struct {
		char version_id[CANARY_UUID_LEN];
		int percentage; /* 0..100 */
	} versions[CANARY_MAX_VERSIONS];
	int n_versions; /* 1..2 */
};

/* One worker: its name on the platform and the wrangler config that builds it. */
struct deployer_worker {
	const char *name;
	const char *config; /* path to wrangler.jsonc / wrangler.toml */
};

struct deployer_upload {
	struct deployer_worker worker;
	/* Plain-text vars added to the upload (wrangler `--var NAME:VALUE`), e.g.
	 * {"WORKER_VERSION_ID", "<s1>"} on the middleware, so the user's config
	 * is never edited. */
	const char *const (*vars)[2];
	int n_vars;
	const char *tag;     /* may be NULL */
	const char *message; /* may be NULL */
};

struct deployer_result {
	int rv;                  /* 0 or a canary error */
	char err[CANARY_ERRLEN]; /* when rv != 0: what failed, quoting the CLI's stderr or the API
	                            error */
	char version_id[CANARY_UUID_LEN];  /* upload: the new version */
	struct deployment deployment;      /* deploy and status: the deployment now current */
	char migration_tag[CANARY_ID_LEN]; /* migration_tag: the worker's remote tag ("" none) */
};

/* Called once per operation on the loop thread. res is valid only during
 * the call. */
typedef void (*deployer_cb)(const struct deployer_result *res, void *arg);

struct deployer;

struct deployer_ops {
	const char *name; /* "wrangler" or "api" */
	int (*upload)(struct deployer *d, const struct deployer_upload *up, deployer_cb cb,
	              void *arg);
	int (*deploy)(struct deployer *d, const struct deployer_worker *w,
	              const struct deployment *dep, const char *message, deployer_cb cb, void *arg);
	int (*status)(struct deployer *d, const struct deployer_worker *w, deployer_cb cb,
	              void *arg);
	/* The Durable Object migration tag the platform holds for the worker.
	 * NULL when the backend cannot read it. */
	int (*migration_tag)(struct deployer *d, const struct deployer_worker *w, deployer_cb cb,
	                     void *arg);
	/* Cancels operations in flight (their callbacks run with
	 * CANARY_ECANCELED) and frees d. Accepts NULL. */
	void (*free)(struct deployer *d);
};

struct deployer {
	const struct deployer_ops *ops;
	struct event_base *base;
	void *impl;
	/* When a start function returns non-zero: what was wrong, for people. */
	char err[CANARY_ERRLEN];
};

/* The start functions return 0 when the operation started (the callback will
 * run), or a canary error (the callback will not run) with err filled. */
static inline int
deployer_upload(struct deployer *d, const struct deployer_upload *up, deployer_cb cb, void *arg)
{
	return d->ops->upload(d, up, cb, arg);
}

static inline int
deployer_deploy(struct deployer *d, const struct deployer_worker *w, const struct deployment *dep,
                const char *message, deployer_cb cb, void *arg)
{
	return d->ops->deploy(d, w, dep, message, cb, arg);
}

static inline int
deployer_status(struct deployer *d, const struct deployer_worker *w, deployer_cb cb, void *arg)
{
	return d->ops->status(d, w, cb, arg);
}

static inline void
deployer_free(struct deployer *d)
{
	if (d != NULL) {
		d->ops->free(d);
	}
}

/* deployer_migration_tag: starts a migration_tag read, or returns
 * CANARY_ESTATE (d->err says so) when the backend cannot read it. */
static inline int
deployer_migration_tag(struct deployer *d, const struct deployer_worker *w, deployer_cb cb,
                       void *arg)
{
	if (d->ops->migration_tag == NULL) {
		return canary_errf(d->err, sizeof(d->err), CANARY_ESTATE,
		                   "the %s deployer cannot read a worker's migration tag",
		                   d->ops->name);
	}
	return d->ops->migration_tag(d, w, cb, arg);
}

/* ---- backends ----------------------------------------------------------- */

#define DEPLOYER_TIMEOUT_S_DEFAULT      300 /* one CLI run (node start, bundling, upload) */
#define DEPLOYER_HTTP_TIMEOUT_S_DEFAULT 30  /* one HTTP attempt of the api backend */
#define DEPLOYER_STDERR_LINES           20  /* lines of a child's stderr quoted in errors */
#define DEPLOYER_OUTPUT_MAX             (1024 * 1024)     /* CLI stdout/stderr and NDJSON kept */
#define DEPLOYER_MAX_ARGS               32                /* words of the configured command */
#define DEPLOYER_MAX_ENV                64                /* extra KEY=VALUE entries */
#define DEPLOYER_MAX_VARS               64                /* --var entries of one upload */
#define DEPLOYER_MAX_MODULES            64                /* module files of one direct upload */
#define DEPLOYER_BODY_MAX               (4 * 1024 * 1024) /* API response bodies */
#define DEPLOYER_CMDLINE_LEN            256               /* the command quoted in an error */
#define DEPLOYER_DEP_TEXT_LEN           96 /* "A@100% B@0%": two uuids and percentages */
#define DEPLOYER_STDOUT_LINES           4  /* lines of stdout quoted when it cannot be read */
#define DEPLOYER_WORKER_NAME_MAX        63 /* bytes of a worker name on the platform */
#define DEPLOYER_API_BASE_DEFAULT       "https://api.cloudflare.com/client/v4"
#define DEPLOYER_TOKEN_ENV_DEFAULT      "CLOUDFLARE_API_TOKEN"

/* deployer_wrangler_new: the `wrangler` backend. command_argv[0..argc) is
 * the CLI (e.g. {"npx", "wrangler"}), run with posix_spawnp, never a shell;
 * each run is killed (whole process group) after timeout_s (0: the default).
 * env: extra "KEY=VALUE" entries for the child, NULL-terminated, may be NULL;
 * the child also inherits the process environment (CLOUDFLARE_API_TOKEN,
 * CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_BASE_URL flow through) and gets
 * WRANGLER_SEND_METRICS=false and WRANGLER_HIDE_BANNER=true. Environment
 * values are never printed. All arguments are copied.
 *   upload: `versions upload --config F [--var K:V]... [--tag T] [--message M]`
 *           with WRANGLER_OUTPUT_FILE_PATH on a temporary file; the version id
 *           comes from its NDJSON `version-upload` line, else from
 *           `Worker Version ID: <uuid>` on stdout.
 *   deploy: `versions deploy ID@P% [ID@P%] -y --config F [--message M]`, then
 *           a status read; the result is the deployment read back, and
 *           CANARY_EDRIFT when it is not the one asked for.
 *   status: `deployments status --config F --json`, parsed strictly.
 *   migration_tag: not available through the CLI (NULL op).
 * Errors quote the command line, the exit code or signal, and the last
 * DEPLOYER_STDERR_LINES lines of stderr with colour codes stripped. */
int deployer_wrangler_new(struct event_base *base, const char *const *command_argv, int argc,
                          int timeout_s, const char *const *env, struct deployer **dp, char *err,
                          size_t errlen);

/* Module files of one worker for the `api` backend's direct upload: already
 * bundled by the user's build, sent as they are. */
struct deployer_api_modules {
	const char *worker;             /* worker name on the platform */
	const char *const *files;       /* paths; the part name is the base name */
	int n_files;                    /* 1..DEPLOYER_MAX_MODULES */
	const char *main_module;        /* base name of the entry module; NULL: files[0] */
	const char *compatibility_date; /* "YYYY-MM-DD" */
	/* JSON array of the worker's bindings in Cloudflare's shape (services,
	 * Durable Objects, version metadata...), or NULL. The upload's vars
	 * are added as plain_text bindings, replacing same-named entries. */
	const char *bindings_json;
};

/* deployer_api_new: the `api` backend: the REST API at base_url (e.g.
 * "https://api.cloudflare.com/client/v4") for account_id, authenticated with
 * token (sent as a Bearer header, never logged or quoted). Uploads go through
 * the wrangler CLI upload_argv[0..upload_argc) when given (the child gets
 * CLOUDFLARE_API_BASE_URL, CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN set
 * to these values), or directly as a multipart upload for the workers listed
 * in modules[0..n_modules) (a worker in modules wins over upload_argv).
 * timeout_s bounds each HTTP attempt (0: DEPLOYER_HTTP_TIMEOUT_S_DEFAULT) and
 * each CLI run (0: DEPLOYER_TIMEOUT_S_DEFAULT).
 *   status: GET .../workers/scripts/{name}/deployments, the first (newest)
 *           deployment is the current one.
 *   deploy: POST .../workers/scripts/{name}/deployments; the result is the
 *           deployment the API answers with. Retried only on 429 and on a
 *           connection that never got through (the POST was not sent).
 *   upload: see above; direct: POST .../scripts/{name}/versions
 *           ?bindings_inherit=strict with a `metadata` part and one part per
 *           module.
 *   migration_tag: GET .../workers/services/{name} ->
 *           default_environment.script.migration_tag ("" when absent).
 * GETs are retried with backoff on 5xx, 429 (honouring Retry-After) and
 * network errors. All arguments are copied. */
int deployer_api_new(struct event_base *base, const char *base_url, const char *account_id,
                     const char *token, const char *const *upload_argv, int upload_argc,
                     const struct deployer_api_modules *modules, int n_modules, int timeout_s,
                     struct deployer **dp, char *err, size_t errlen);

/* deployer_api_env: where the `api` backend's settings come from:
 * *base_url is CLOUDFLARE_API_BASE_URL when set and non-empty, else
 * rollout_base_url when non-NULL, else DEPLOYER_API_BASE_DEFAULT; *token is
 * the value of the environment variable token_env (NULL:
 * DEPLOYER_TOKEN_ENV_DEFAULT). Returns 0 or CANARY_ECONFIG naming the
 * variable when it is unset or empty. The strings belong to the environment
 * or the caller. */
int deployer_api_env(const char *rollout_base_url, const char *token_env, const char **base_url,
                     const char **token, char *err, size_t errlen);

/* ---- shared helpers (pure) ---------------------------------------------- */

/* deployer_scrub: replaces, in place, every occurrence of token (NULL or
 * "": nothing) in the NUL-terminated s by "***" (by as many stars as it has
 * characters when shorter, so s never grows): a CLI, an API or a proxy that
 * echoes a request must not put the token in our messages. */
void deployer_scrub(char *s, const char *token);

/* deployer_name_ok: 1 when s is 1..max of [A-Za-z0-9_-], not starting
 * with '-': what a worker name (max DEPLOYER_WORKER_NAME_MAX) or an account
 * id must be. Both go into API paths, a worker name is the key of the
 * version override header, and both are command-line arguments of wrangler,
 * where a leading '-' would read as an option. */
int deployer_name_ok(const char *s, size_t max);

/* deployer_base_url_ok: 1 when s is an http:// or https:// URL with a host
 * (canary_is_url) and no query or fragment: API paths are appended to it. */
int deployer_base_url_ok(const char *s);

/* deployer_check_deployment: 0 when dep holds 1..CANARY_MAX_VERSIONS
 * distinct versions with uuid ids and percentages 0..100 totalling 100;
 * else CANARY_EINVAL saying which rule broke. */
int deployer_check_deployment(const struct deployment *dep, char *err, size_t errlen);

/* deployer_deployment_parse: strictly reads a deployment object as the API
 * and `wrangler deployments status --json` give it:
 * {"id":"...","versions":[{"version_id":"<uuid>","percentage":N},...],...}
 * (other members ignored; 1 or 2 distinct versions; percentage an integer
 * 0..100; totals of 100).
 * Errors (CANARY_EPARSE) start with where, then the member path. */
int deployer_deployment_parse(const cJSON *obj, const char *where, struct deployment *dep,
                              char *err, size_t errlen);

/* deployer_deployment_equal: 1 when a and b hold the same versions at the
 * same percentages, in any order (ids of the deployments not compared); 0
 * when a version count is outside 0..CANARY_MAX_VERSIONS. */
int deployer_deployment_equal(const struct deployment *a, const struct deployment *b);

/* deployer_deployment_json: {"id":..,"versions":[{"version_id","percentage"}]}
 * (the API's shape, also used by the journal). Caller owns the result; NULL
 * when out of memory. */
cJSON *deployer_deployment_json(const struct deployment *dep);

/* deployer_deployment_format: "A@100% B@0%" into buf (always terminated). */
void deployer_deployment_format(const struct deployment *dep, char *buf, size_t len);

#endif /* CANARY_DEPLOYER_H */
