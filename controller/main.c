/*
 * main.c: canary-controller, the command line.
 *
 *   canary-controller plan|run|resume|status|rollback|check -f ROLLOUT.jsonc
 *       [--state-dir DIR] [--log-format text|json] [--log-level debug|info|warn|error]
 *       [--insecure] [--json]
 *
 * Sets up what the driver (run.h) needs: the rollout file, the state
 * directory with its lock and journal, the deployer, the survey socket and
 * the SIGINT/SIGTERM handlers; then hands over to one run_* function and
 * exits with its code.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "deployer.h"
#include "err.h"
#include "journal.h"
#include "log.h"
#include "plan.h"
#include "rollout.h"
#include "run.h"
#include "survey.h"

#define MAIN_USAGE                                                                                 \
	"usage: canary-controller plan|run|resume|status|rollback|check -f ROLLOUT.jsonc\n"        \
	"           [--state-dir DIR] [--log-format text|json]\n"                                  \
	"           [--log-level debug|info|warn|error] [--insecure] [--json]\n"                   \
	"  plan      lint the wrangler configs as run does (exit 1 when they fail), then print\n"  \
	"            the steps, what probes must see, the skew invariant proof\n"                  \
	"  run       run the rollout: preflight, uploads, steps, bake, rollback on failure\n"      \
	"  resume    continue (or roll back) the rollout its journal describes; one stopped\n"     \
	"            before anything reached production exits 2 (nothing changed: run again)\n"    \
	"  status    where the rollout stands, from its journal (--json for machines)\n"           \
	"  rollback  the skew-safe rollback by hand, from what the platform holds\n"               \
	"  check     one probe round from every region against what serves now (exit 0/1)\n"       \
	"exit codes: 0 promoted/healthy, 1 usage or config error, 2 refused by preflight or\n"     \
	"            nothing to resume (nothing changed either way),\n"                            \
	"            3 rolled back, 4 rollback failed or unverified, 5 stopped on drift\n"

enum main_cmd { CMD_PLAN, CMD_RUN, CMD_RESUME, CMD_STATUS, CMD_ROLLBACK, CMD_CHECK };

struct main_args {
	enum main_cmd cmd;
	const char *file;
	const char *state_dir;
	enum canary_log_format format;
	enum canary_log_level level;
	int insecure;
	int json;
};

static volatile sig_atomic_t main_stop;

static int
main_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "canary-controller: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", MAIN_USAGE);
	return RUN_EXIT_USAGE;
}

static int
main_parse(int argc, char **argv, struct main_args *a)
{
	static const char *const cmds[] = {"plan", "run", "resume", "status", "rollback", "check"};
	int i;

	memset(a, 0, sizeof(*a));
	a->format = CANARY_LOG_TEXT;
	a->level = CANARY_LOG_INFO;
	if (argc < 2) {
		return main_usage("%s", "expected a command");
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(MAIN_USAGE, stdout);
		return -2;
	}
	for (i = 0; i < (int)(sizeof(cmds) / sizeof(cmds[0])); i++) {
		if (strcmp(argv[1], cmds[i]) == 0) {
			a->cmd = (enum main_cmd)i;
			break;
		}
	}
	if (i == (int)(sizeof(cmds) / sizeof(cmds[0]))) {
		return main_usage("unknown command \"%s\"", argv[1]);
	}
	for (i = 2; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--insecure") == 0) {
			a->insecure = 1;
			continue;
		}
		if (strcmp(o, "--json") == 0) {
			a->json = 1;
			continue;
		}
		if (strcmp(o, "-f") != 0 && strcmp(o, "--file") != 0 &&
		    strcmp(o, "--state-dir") != 0 && strcmp(o, "--log-format") != 0 &&
		    strcmp(o, "--log-level") != 0) {
			return main_usage("unknown option \"%s\"", o);
		}
		if (v == NULL || v[0] == '\0') {
			return main_usage("%s: expected a value", o);
		}
		i++;
		if (strcmp(o, "-f") == 0 || strcmp(o, "--file") == 0) {
			a->file = v;
		} else if (strcmp(o, "--state-dir") == 0) {
			a->state_dir = v;
		} else if (strcmp(o, "--log-format") == 0) {
			if (canary_log_parse_format(v, &a->format) != 0) {
				return main_usage("--log-format: expected text or json, got \"%s\"",
				                  v);
			}
		} else {
			if (strcmp(v, "debug") == 0) {
				a->level = CANARY_LOG_DEBUG;
			} else if (strcmp(v, "info") == 0) {
				a->level = CANARY_LOG_INFO;
			} else if (strcmp(v, "warn") == 0) {
				a->level = CANARY_LOG_WARN;
			} else if (strcmp(v, "error") == 0) {
				a->level = CANARY_LOG_ERROR;
			} else {
				return main_usage(
				    "--log-level: expected debug, info, warn or error, "
				    "got \"%s\"",
				    v);
			}
		}
	}
	if (a->file == NULL) {
		return main_usage("%s", "-f ROLLOUT.jsonc is required");
	}
	if (a->json && a->cmd != CMD_STATUS) {
		return main_usage("%s", "--json is for status (use --log-format json elsewhere)");
	}
	return 0;
}

static void
main_on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (!main_stop) {
		canary_logf(CANARY_LOG_WARN, "signal",
		            "%s: stopping, rolling back what was changed",
		            sig == SIGINT ? "SIGINT" : "SIGTERM");
	}
	main_stop = 1;
}

/* main_add_binding: appends {"name", "type"[, key: value]} to arr (key
 * NULL for none). Returns 0, or -1 when out of memory. */
static int
main_add_binding(cJSON *arr, const char *name, const char *type, const char *key, const char *value)
{
	cJSON *b = cJSON_CreateObject();

	if (b == NULL) {
		return -1;
	}
	if (!cJSON_AddItemToArray(arr, b)) {
		cJSON_Delete(b);
		return -1;
	}
	if (cJSON_AddStringToObject(b, "name", name) == NULL ||
	    cJSON_AddStringToObject(b, "type", type) == NULL ||
	    (key != NULL && cJSON_AddStringToObject(b, key, value) == NULL)) {
		return -1;
	}
	return 0;
}

/* main_bindings_json: the worker's bindings in Cloudflare's shape, for a
 * direct module upload: its vars (plain_text), services and version
 * metadata from the wrangler config. Caller frees. */
static char *
main_bindings_json(const struct rollout_worker *w)
{
	cJSON *arr = cJSON_CreateArray();
	char *out = NULL;

	if (arr == NULL) {
		return NULL;
	}
	for (int i = 0; i < w->n_vars; i++) {
		if (main_add_binding(arr, w->vars[i].name, "plain_text", "text",
		                     w->vars[i].value) != 0) {
			goto out;
		}
	}
	for (int i = 0; i < w->n_services; i++) {
		if (main_add_binding(arr, w->services[i].binding, "service", "service",
		                     w->services[i].service) != 0) {
			goto out;
		}
	}
	if (w->version_metadata[0] != '\0' &&
	    main_add_binding(arr, w->version_metadata, "version_metadata", NULL, NULL) != 0) {
		goto out;
	}
	out = cJSON_PrintUnformatted(arr);
out:
	cJSON_Delete(arr);
	return out;
}

/* Everything main sets up, freed in one place. */
struct main_ctx {
	struct event_base *base;
	struct rollout *ro;
	struct deployer *dep;
	struct survey *survey;
	struct journal *journal;
	struct event *sig_int, *sig_term;
	char *bindings[2];
};

static int
main_make_deployer(struct main_ctx *c, char *err, size_t errlen)
{
	const struct rollout_deployer *rd = &c->ro->deployer;
	const char *argv_[ROLLOUT_MAX_ARGV];
	const char *files[2][ROLLOUT_MAX_MODULES];
	struct deployer_api_modules mods[2];
	const char *base_url, *token;
	int n_mods = 0, rv;

	for (int i = 0; i < rd->n_command; i++) {
		argv_[i] = rd->command[i];
	}
	if (rd->kind == ROLLOUT_DEPLOYER_WRANGLER) {
		return deployer_wrangler_new(c->base, argv_, rd->n_command, rd->timeout_s, NULL,
		                             &c->dep, err, errlen);
	}
	if ((rv = deployer_api_env(rd->base_url, rd->token_env, &base_url, &token, err, errlen)) !=
	    0) {
		return rv;
	}
	memset(mods, 0, sizeof(mods));
	for (int w = 0; w < 2; w++) {
		if (rd->n_modules[w] == 0) {
			continue;
		}
		for (int i = 0; i < rd->n_modules[w]; i++) {
			files[w][i] = rd->modules[w][i];
		}
		c->bindings[w] = main_bindings_json(&c->ro->workers[w]);
		if (c->bindings[w] == NULL) {
			return canary_errf(err, errlen, CANARY_ENOMEM, "bindings: out of memory");
		}
		mods[n_mods].worker = c->ro->workers[w].name;
		mods[n_mods].files = files[w];
		mods[n_mods].n_files = rd->n_modules[w];
		/* A direct upload sends the date the worker was built for, as
		 * wrangler would from the same config. */
		if (c->ro->workers[w].compatibility_date[0] == '\0') {
			return canary_errf(
			    err, errlen, CANARY_ECONFIG,
			    "%s: compatibility_date: expected a date YYYY-MM-DD "
			    "(deployer.upload_modules sends it with the upload), got none",
			    c->ro->workers[w].config);
		}
		mods[n_mods].compatibility_date = c->ro->workers[w].compatibility_date;
		mods[n_mods].bindings_json = c->bindings[w];
		n_mods++;
	}
	return deployer_api_new(c->base, base_url, rd->account_id, token, argv_, rd->n_command,
	                        mods, n_mods, rd->timeout_s, &c->dep, err, errlen);
}

static int
main_make_survey(struct main_ctx *c, int insecure, char *err, size_t errlen)
{
	const struct rollout_agents *ag = &c->ro->agents;
	const char *listen[ROLLOUT_MAX_LINKS], *dial[ROLLOUT_MAX_LINKS];
	struct survey_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	for (int i = 0; i < ag->n_listen; i++) {
		listen[i] = ag->listen[i];
	}
	for (int i = 0; i < ag->n_dial; i++) {
		dial[i] = ag->dial[i];
	}
	cfg.listen = listen;
	cfg.n_listen = ag->n_listen;
	cfg.dial = dial;
	cfg.n_dial = ag->n_dial;
	cfg.insecure = insecure || ag->insecure;
	cfg.tls.cert = ag->cert[0] ? ag->cert : NULL;
	cfg.tls.key = ag->key[0] ? ag->key : NULL;
	cfg.tls.ca = ag->ca[0] ? ag->ca : NULL;
	return survey_new(c->base, &cfg, &c->survey, err, errlen);
}

static void
main_ctx_free(struct main_ctx *c)
{
	survey_free(c->survey);
	deployer_free(c->dep);
	journal_close(c->journal);
	if (c->sig_int != NULL) {
		event_free(c->sig_int);
	}
	if (c->sig_term != NULL) {
		event_free(c->sig_term);
	}
	if (c->base != NULL) {
		event_base_free(c->base);
	}
	free(c->bindings[0]);
	free(c->bindings[1]);
	rollout_free(c->ro);
}

/* main_plan: the plan of ro printed; refused (RUN_EXIT_USAGE) when the
 * wrangler configs fail the lint `run` refuses them for in preflight, so
 * a plan that prints is one `run` will not refuse for its configs. */
static int
main_plan(const struct rollout *ro)
{
	char *text = NULL;
	char err[CANARY_ERRLEN] = "";
	int rv;

	if (rollout_lint(ro, err, sizeof(err)) != 0) {
		fprintf(stderr, "canary-controller: %s: plan refused: %s\n", ro->path, err);
		return RUN_EXIT_USAGE;
	}
	rv = plan_render(ro->steps, ro->n_steps, NULL, ro->workers[PLAN_MIDDLEWARE].name,
	                 ro->override_share, &text, err, sizeof(err));
	if (text != NULL) {
		fputs(text, stdout);
		free(text);
	}
	if (rv != 0) {
		fprintf(stderr, "canary-controller: %s: plan refused: %s\n", ro->path, err);
		return RUN_EXIT_USAGE;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct main_args a;
	struct main_ctx c;
	struct run_env env;
	char err[CANARY_ERRLEN] = "";
	int rv, code = RUN_EXIT_USAGE;

	memset(&c, 0, sizeof(c));
	rv = main_parse(argc, argv, &a);
	if (rv == -2) {
		return 0;
	}
	if (rv != 0) {
		return rv;
	}
	canary_log_setup(stderr, a.format, a.level);
	if ((rv = rollout_load(a.file, &c.ro, err, sizeof(err))) != 0) {
		fprintf(stderr, "canary-controller: %s\n", err);
		return RUN_EXIT_USAGE;
	}
	if (a.state_dir != NULL) {
		if (strlen(a.state_dir) >= sizeof(c.ro->state_dir)) {
			fprintf(stderr, "canary-controller: --state-dir: path too long\n");
			goto out;
		}
		snprintf(c.ro->state_dir, sizeof(c.ro->state_dir), "%s", a.state_dir);
	}
	if (a.cmd == CMD_PLAN) {
		code = main_plan(c.ro);
		goto out;
	}
	if (a.cmd == CMD_STATUS) {
		code = run_status(c.ro, a.json, stdout);
		goto out;
	}
	/* check only reads: it may run beside a rollout that holds the lock. */
	if (a.cmd != CMD_CHECK &&
	    (rv = journal_open(c.ro->state_dir, &c.journal, err, sizeof(err))) != 0) {
		fprintf(stderr, "canary-controller: %s\n", err);
		goto out;
	}
	/* nng threads wake the loop through event_active (survey.h). */
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "canary-controller: libevent: no thread support\n");
		goto out;
	}
	c.base = event_base_new();
	if (c.base == NULL) {
		fprintf(stderr, "canary-controller: libevent: cannot create the loop\n");
		goto out;
	}
	c.sig_int = evsignal_new(c.base, SIGINT, main_on_signal, NULL);
	c.sig_term = evsignal_new(c.base, SIGTERM, main_on_signal, NULL);
	if (c.sig_int == NULL || c.sig_term == NULL || evsignal_add(c.sig_int, NULL) != 0 ||
	    evsignal_add(c.sig_term, NULL) != 0) {
		fprintf(stderr, "canary-controller: cannot install signal handlers\n");
		goto out;
	}
	if ((rv = main_make_deployer(&c, err, sizeof(err))) != 0) {
		fprintf(stderr, "canary-controller: deployer: %s\n", err);
		goto out;
	}
	if ((rv = main_make_survey(&c, a.insecure, err, sizeof(err))) != 0) {
		fprintf(stderr, "canary-controller: agents: %s\n", err);
		goto out;
	}
	env.base = c.base;
	env.ro = c.ro;
	env.dep = c.dep;
	env.survey = c.survey;
	env.journal = c.journal;
	env.stop = &main_stop;
	switch (a.cmd) {
	case CMD_RUN:
		code = run_rollout(&env);
		break;
	case CMD_RESUME:
		code = run_resume(&env);
		break;
	case CMD_ROLLBACK:
		code = run_rollback(&env);
		break;
	case CMD_CHECK:
		code = run_check(&env);
		break;
	default:
		break;
	}
out:
	main_ctx_free(&c);
	return code;
}
