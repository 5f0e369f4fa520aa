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
	int rv;                   /* 0 or a canary error */
	char err[CANARY_ERRLEN];  /* when rv != 0: what failed, quoting the CLI's stderr or the API error */
	char version_id[CANARY_UUID_LEN]; /* upload: the new version */
	struct deployment deployment;     /* deploy and status: the deployment now current */
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

#endif /* CANARY_DEPLOYER_H */
