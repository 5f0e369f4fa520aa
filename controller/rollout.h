/*
 * rollout.h: the rollout file (JSONC, DESIGN.md "A rollout file") and the
 * two wrangler configs it points to, read into one struct rollout.
 *
 * Strict: unknown keys, wrong types and out-of-range values are errors, each
 * as "FILE:LINE:COLUMN: FIELD.PATH: expected ..., got ...", so a typo in a
 * release config never passes silently. Keys left out take the defaults of
 * limits.h. Relative paths (worker configs, TLS files, state_dir,
 * upload_modules) are resolved against the rollout file's directory.
 *
 * The wrangler configs are read as JSONC (.json / .jsonc); a .toml config is
 * refused with a message saying so. From each: `name`, `account_id`, `vars`,
 * `services`, `version_metadata`, `compatibility_date`, the last `migrations` tag (top level only;
 * `env` sections are not read). Other wrangler keys are wrangler's business
 * and are ignored there.
 *
 * Ownership: rollout_load allocates the struct; rollout_free frees it
 * (accepts NULL). Everything in it is inline (fixed buffers), so it may be
 * read from any thread once loaded, and copied with memcpy.
 */
#ifndef CANARY_ROLLOUT_H
#define CANARY_ROLLOUT_H

#include <stddef.h>

#include "gate.h"
#include "limits.h"
#include "msg.h"
#include "plan.h"

struct rollout_var {
	char name[ROLLOUT_NAME_LEN];
	char value[ROLLOUT_VALUE_LEN]; /* a string var's text; other JSON values as JSON text */
};

struct rollout_service {
	char binding[ROLLOUT_NAME_LEN];
	char service[ROLLOUT_NAME_LEN]; /* the worker it binds to */
};

/* One worker, from its wrangler config. */
struct rollout_worker {
	char config[ROLLOUT_PATH_LEN];     /* resolved path of the wrangler config */
	char name[CANARY_ID_LEN];          /* the worker's name on the platform */
	char account_id[ROLLOUT_NAME_LEN]; /* "" when the config has none */
	struct rollout_var vars[ROLLOUT_MAX_VARS];
	int n_vars;
	struct rollout_service services[ROLLOUT_MAX_SERVICES];
	int n_services;
	char version_metadata[ROLLOUT_NAME_LEN];   /* the binding's name; "" none */
	char migration_tag[ROLLOUT_NAME_LEN];      /* last migrations[].tag; "" none */
	char compatibility_date[ROLLOUT_DATE_LEN]; /* YYYY-MM-DD; "" when the config has none */
};

enum rollout_deployer_kind {
	ROLLOUT_DEPLOYER_WRANGLER = 0,
	ROLLOUT_DEPLOYER_API,
};

struct rollout_deployer {
	enum rollout_deployer_kind kind;
	/* wrangler: "command" (default ["npx","wrangler"]); api: "upload_command"
	 * (default ["npx","wrangler"]) used when upload_modules is absent. */
	char command[ROLLOUT_MAX_ARGV][ROLLOUT_ARG_LEN];
	int n_command;
	int timeout_s; /* per CLI run or API call sequence */
	/* api only */
	char base_url[CANARY_URL_LEN];     /* default ROLLOUT_DEFAULT_API_BASE_URL */
	char account_id[ROLLOUT_NAME_LEN]; /* default: the server config's account_id, else "" */
	char token_env[ROLLOUT_NAME_LEN]; /* env var holding the token; the token is never read here
	                                   */
	/* upload_modules, indexed by enum plan_worker; resolved paths; both 0
	 * when uploads go through upload_command. */
	char modules[2][ROLLOUT_MAX_MODULES][ROLLOUT_PATH_LEN];
	int n_modules[2];
};

struct rollout_agents {
	char listen[ROLLOUT_MAX_LINKS][CANARY_URL_LEN];
	int n_listen;
	char dial[ROLLOUT_MAX_LINKS][CANARY_URL_LEN];
	int n_dial;
	char cert[ROLLOUT_PATH_LEN], key[ROLLOUT_PATH_LEN], ca[ROLLOUT_PATH_LEN]; /* "" none */
	int insecure; /* "insecure": true allows tcp:// and ipc:// without TLS */
	int round_timeout_s;
};

struct rollout {
	char path[ROLLOUT_PATH_LEN]; /* the rollout file as given */
	char dir[ROLLOUT_PATH_LEN];  /* its directory, base of relative paths */
	char name[CANARY_ID_LEN];
	struct rollout_worker workers[2]; /* indexed by enum plan_worker */
	char pin_var[ROLLOUT_NAME_LEN];   /* workers.middleware.pin_var */
	struct rollout_deployer deployer;
	struct plan_step steps[PLAN_MAX_STEPS];
	int n_steps;
	/* probes */
	struct canary_target targets[CANARY_MAX_TARGETS];
	int n_targets;
	struct canary_header_names headers;
	int interval_s;
	uint32_t version_keys;
	double override_share; /* percent, dark step */
	struct gate_region regions[ROLLOUT_MAX_REGIONS];
	int n_regions;
	/* gates */
	struct gate_policy gates;
	int bake_s;             /* default bake per step */
	int converge_timeout_s; /* per step */
	struct rollout_agents agents;
	char state_dir[ROLLOUT_PATH_LEN]; /* resolved */
	int propagation_s;
};

/* rollout_load: reads and validates the rollout file at path and the two
 * wrangler configs. On success *rp owns a new struct rollout and 0 is
 * returned. On failure *rp is NULL and err holds one line:
 *   FILE:LINE:COLUMN: FIELD.PATH: expected ..., got ...
 * (for a missing key, the position of the object that lacks it; for a file
 * that cannot be read, "FILE: <reason>"). Returns CANARY_ECONFIG (bad
 * content), CANARY_EPARSE / CANARY_ETOODEEP (not JSONC), CANARY_ETOOBIG
 * (file over ROLLOUT_MAX_FILE_BYTES), CANARY_ENOENT / CANARY_EIO (cannot
 * read), CANARY_ENOMEM. The step order is checked with plan_verify. */
int rollout_load(const char *path, struct rollout **rp, char *err, size_t errlen);

void rollout_free(struct rollout *r);

/* rollout_lint: the preflight config lint of DESIGN.md on the loaded
 * wrangler configs: the middleware has the pin var; it has a service binding
 * to the server worker's name; both have a version metadata binding; the
 * two workers have different names. Returns 0 or CANARY_ECONFIG with every
 * problem found, "; "-separated, each naming the config file. */
int rollout_lint(const struct rollout *r, char *err, size_t errlen);

/* rollout_worker_var: the value of var name in w, or NULL. */
const char *rollout_worker_var(const struct rollout_worker *w, const char *name);

#endif /* CANARY_ROLLOUT_H */
