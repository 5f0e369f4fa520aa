/*
 * test_rollout.c: the rollout file, the wrangler configs and the lint.
 *
 * CANARY_FIXTURES is tests/unit/fixtures/rollout; CANARY_SOURCE_DIR the
 * project root (for the example rollout users are given).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "rollout.h"

#define TEST_TEXT_MAX 8192

static char test_dir[] = "/tmp/canary-test-rollout-XXXXXX";
static int test_seq;

static int
test_setup(void **state)
{
	(void)state;
	return mkdtemp(test_dir) == NULL ? -1 : 0;
}

static int
test_teardown(void **state)
{
	char path[512];
	(void)state;
	for (int i = 0; i < test_seq; i++) {
		snprintf(path, sizeof(path), "%s/r%d.jsonc", test_dir, i);
		unlink(path);
	}
	return rmdir(test_dir);
}

/* Replaces every @W@ with the fixtures' wrangler directory of good/ and @L@
 * with lint/; writes the text to a new file; returns its path (static). */
static const char *
test_write(const char *text)
{
	static char path[512];
	char out[TEST_TEXT_MAX];
	size_t o = 0;
	FILE *f;

	for (const char *p = text; *p != '\0';) {
		const char *rep = NULL;
		if (strncmp(p, "@W@", 3) == 0) {
			rep = CANARY_FIXTURES "/good/wrangler";
		} else if (strncmp(p, "@L@", 3) == 0) {
			rep = CANARY_FIXTURES "/lint";
		} else if (strncmp(p, "@X@", 3) == 0) {
			rep = CANARY_FIXTURES "/wrangler";
		}
		if (rep != NULL) {
			size_t n = strlen(rep);
			assert_true(o + n < sizeof(out));
			memcpy(out + o, rep, n);
			o += n;
			p += 3;
		} else {
			assert_true(o + 1 < sizeof(out));
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	snprintf(path, sizeof(path), "%s/r%d.jsonc", test_dir, test_seq++);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(out, 1, o, f), o);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* The line:column where marker first appears in the written file's text. */
static void
test_where(const char *path, const char *marker, int *line, int *col)
{
	char buf[TEST_TEXT_MAX];
	FILE *f = fopen(path, "r");
	size_t n;
	const char *at, *p;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	at = strstr(buf, marker);
	if (at == NULL) {
		fail_msg("marker %s not in %s", marker, path);
	}
	*line = 1;
	*col = 1;
	for (p = buf; p < at; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* A valid rollout file, one key per line (lines 2..7), so a case can swap
 * one line: NAME WORKERS PROBES REGIONS AGENTS EXTRA. */
struct test_doc {
	const char *name, *workers, *probes, *regions, *agents, *extra;
};

static const char *
test_doc_text(const struct test_doc *d, char *buf, size_t len)
{
	snprintf(buf, len,
	         "{\n"
	         "%s\n"
	         "%s\n"
	         "%s\n"
	         "%s\n"
	         "%s\n"
	         "%s\n"
	         "}\n",
	         d->name ? d->name : "  \"name\": \"t\",",
	         d->workers ? d->workers
	                    : "  \"workers\": { \"server\": { \"config\": \"@W@/server.jsonc\" }, "
	                      "\"middleware\": { \"config\": \"@W@/middleware.jsonc\" } },",
	         d->probes ? d->probes
	                   : "  \"probes\": { \"targets\": [ { \"id\": \"home\", \"url\": "
	                     "\"https://docs.example.com/\" } ] },",
	         d->regions ? d->regions : "  \"regions\": [ { \"name\": \"enam\" } ],",
	         d->agents ? d->agents
	                   : "  \"agents\": { \"dial\": [\"tcp://127.0.0.1:7400\"], \"insecure\": "
	                     "true }",
	         d->extra ? d->extra : "");
	return buf;
}

static void
test_design_example(void **state)
{
	struct rollout *r = NULL;
	char err[CANARY_ERRLEN];
	const char *dir = CANARY_FIXTURES "/good";

	(void)state;
	if (rollout_load(CANARY_FIXTURES "/good/rollout.jsonc", &r, err, sizeof(err)) != 0) {
		fail_msg("%s", err);
	}
	assert_string_equal(r->name, "docs-site");
	assert_string_equal(r->dir, dir);
	assert_string_equal(r->workers[PLAN_SERVER].config,
	                    CANARY_FIXTURES "/good/wrangler/server.jsonc");
	assert_string_equal(r->workers[PLAN_SERVER].name, "main-server");
	assert_string_equal(r->workers[PLAN_SERVER].account_id, "0123456789abcdef0123456789abcdef");
	assert_string_equal(rollout_worker_var(&r->workers[PLAN_SERVER], "NEXT_PUBLIC_SITE"),
	                    "docs");
	/* JSON vars keep their JSON text. */
	assert_string_equal(rollout_worker_var(&r->workers[PLAN_SERVER], "FEATURES"),
	                    "{\"beta\":true}");
	assert_string_equal(rollout_worker_var(&r->workers[PLAN_SERVER], "RETRIES"), "3");
	assert_null(rollout_worker_var(&r->workers[PLAN_SERVER], "NOPE"));
	const struct rollout_worker *m = &r->workers[PLAN_MIDDLEWARE];
	assert_string_equal(m->name, "middleware");
	assert_string_equal(rollout_worker_var(m, "WORKER_VERSION_ID"), "set-at-upload");
	assert_int_equal(m->n_services, 2);
	assert_string_equal(m->services[1].binding, "DEFAULT_WORKER");
	assert_string_equal(m->services[1].service, "main-server");
	assert_string_equal(m->version_metadata, "CF_VERSION_METADATA");
	assert_string_equal(m->migration_tag, "v2");
	assert_string_equal(r->workers[PLAN_SERVER].migration_tag, "");
	assert_string_equal(m->compatibility_date, "2025-04-14");
	assert_string_equal(r->pin_var, "WORKER_VERSION_ID");

	assert_int_equal(r->deployer.kind, ROLLOUT_DEPLOYER_WRANGLER);
	assert_int_equal(r->deployer.n_command, 2);
	assert_string_equal(r->deployer.command[0], "npx");
	assert_string_equal(r->deployer.command[1], "wrangler");
	assert_int_equal(r->deployer.timeout_s, 300);
	/* api's account id falls back to the server config's. */
	assert_string_equal(r->deployer.account_id, "0123456789abcdef0123456789abcdef");

	assert_int_equal(r->n_steps, 4);
	assert_int_equal(r->steps[1].kind, PLAN_STEP_MIDDLEWARE_P);
	assert_int_equal(r->steps[1].percent, 10);
	assert_int_equal(r->steps[1].bake_s, -1);
	assert_int_equal(r->steps[3].kind, PLAN_STEP_SERVER_100);

	assert_int_equal(r->interval_s, 1);
	assert_int_equal(r->n_targets, 2);
	assert_string_equal(r->targets[0].id, "home");
	assert_string_equal(r->targets[0].url, "https://docs.example.com/");
	assert_int_equal(r->targets[0].requests, 20);
	assert_int_equal(r->targets[0].cache, CANARY_CACHE_ISR);
	assert_int_equal(r->targets[0].n_expect_status, 1);
	assert_int_equal(r->targets[0].expect_status[0], 200);
	assert_int_equal(r->targets[1].cache, CANARY_CACHE_NONE);
	assert_string_equal(r->targets[1].method, "GET");
	assert_string_equal(r->headers.middleware_version, "x-canary-middleware-version");
	assert_string_equal(r->headers.cache, "x-opennext-cache");

	assert_int_equal(r->n_regions, 3);
	assert_string_equal(r->regions[2].name, "apac");
	assert_int_equal(r->regions[2].min_agents, 1);

	assert_true(r->gates.max_error_rate == 0.01);
	assert_true(r->gates.max_p95_ms == 800);
	assert_true(r->gates.max_p99_ms == GATE_DEFAULT_MAX_P99_MS);
	assert_true(r->gates.max_latency_ratio == 1.5);
	assert_true(r->gates.min_isr_hit_ratio == 0.9);
	assert_int_equal(r->gates.failure_limit, 1);
	assert_int_equal(r->gates.inconclusive_limit, 3);
	assert_int_equal(r->gates.max_failed_regions, 0);
	assert_int_equal(r->bake_s, 60);
	assert_int_equal(r->converge_timeout_s, 30);

	assert_int_equal(r->agents.n_listen, 1);
	assert_string_equal(r->agents.listen[0], "tls+tcp://0.0.0.0:7400");
	assert_int_equal(r->agents.n_dial, 0);
	assert_string_equal(r->agents.cert, CANARY_FIXTURES "/good/controller.pem");
	assert_string_equal(r->agents.ca, CANARY_FIXTURES "/good/agents-ca.pem");
	assert_false(r->agents.insecure);
	assert_int_equal(r->agents.round_timeout_s, 5);
	assert_string_equal(r->state_dir, CANARY_FIXTURES "/good/.canary");
	assert_int_equal(r->propagation_s, ROLLOUT_DEFAULT_PROPAGATION_S);

	assert_int_equal(rollout_lint(r, err, sizeof(err)), 0);
	rollout_free(r);
	rollout_free(NULL);
}

static void
test_defaults(void **state)
{
	struct test_doc d = {0};
	struct rollout *r = NULL;
	char text[TEST_TEXT_MAX], err[CANARY_ERRLEN];
	const char *path;

	(void)state;
	path = test_write(test_doc_text(&d, text, sizeof(text)));
	if (rollout_load(path, &r, err, sizeof(err)) != 0) {
		fail_msg("%s", err);
	}
	assert_int_equal(r->n_steps, 3);
	assert_int_equal(r->steps[0].kind, PLAN_STEP_SERVER_0);
	assert_int_equal(r->steps[1].kind, PLAN_STEP_MIDDLEWARE_100);
	assert_int_equal(r->steps[2].kind, PLAN_STEP_SERVER_100);
	assert_int_equal(r->interval_s, ROLLOUT_DEFAULT_INTERVAL_S);
	assert_int_equal(r->targets[0].requests, ROLLOUT_DEFAULT_REQUESTS);
	assert_int_equal(r->targets[0].timeout_ms, ROLLOUT_DEFAULT_TIMEOUT_MS);
	assert_string_equal(r->targets[0].method, "GET");
	assert_int_equal(r->targets[0].expect_status[0], 200);
	assert_int_equal(r->targets[0].cache, CANARY_CACHE_NONE);
	assert_string_equal(r->targets[0].body_match, "");
	assert_string_equal(r->headers.middleware_version, ROLLOUT_DEFAULT_HEADER_MIDDLEWARE);
	assert_string_equal(r->headers.server_version, ROLLOUT_DEFAULT_HEADER_SERVER);
	assert_string_equal(r->headers.cache, ROLLOUT_DEFAULT_HEADER_CACHE);
	assert_int_equal(r->version_keys, 0);
	assert_true(r->override_share == ROLLOUT_DEFAULT_OVERRIDE_SHARE);
	assert_int_equal(r->regions[0].min_agents, 1);
	assert_true(r->gates.max_error_rate == GATE_DEFAULT_MAX_ERROR_RATE);
	assert_int_equal(r->gates.failure_limit, GATE_DEFAULT_FAILURE_LIMIT);
	assert_int_equal(r->gates.inconclusive_limit, GATE_DEFAULT_INCONCLUSIVE_LIMIT);
	assert_int_equal(r->gates.max_failed_regions, 0);
	assert_true(r->gates.share_z == GATE_DEFAULT_SHARE_Z);
	assert_true(r->gates.share_floor == GATE_DEFAULT_SHARE_FLOOR);
	assert_int_equal(r->bake_s, ROLLOUT_DEFAULT_BAKE_S);
	assert_int_equal(r->converge_timeout_s, ROLLOUT_DEFAULT_CONVERGE_TIMEOUT_S);
	assert_int_equal(r->deployer.kind, ROLLOUT_DEPLOYER_WRANGLER);
	assert_string_equal(r->deployer.command[0], "npx");
	assert_int_equal(r->deployer.timeout_s, ROLLOUT_DEFAULT_DEPLOYER_TIMEOUT_S);
	assert_string_equal(r->pin_var, ROLLOUT_DEFAULT_PIN_VAR);
	assert_true(r->agents.insecure);
	assert_int_equal(r->agents.round_timeout_s, ROLLOUT_DEFAULT_ROUND_TIMEOUT_S);
	assert_int_equal(r->propagation_s, ROLLOUT_DEFAULT_PROPAGATION_S);
	char want[512];
	snprintf(want, sizeof(want), "%s/%s", test_dir, ROLLOUT_DEFAULT_STATE_DIR);
	assert_string_equal(r->state_dir, want);
	rollout_free(r);
}

static void
test_full_options(void **state)
{
	struct test_doc d = {0};
	struct rollout *r = NULL;
	char text[TEST_TEXT_MAX], err[CANARY_ERRLEN];
	const char *path;

	(void)state;
	d.probes = "  \"probes\": { \"interval_s\": 2, \"version_keys\": 8, \"override_share\": 20,"
	           " \"targets\": [ { \"id\": \"a\", \"url\": \"http://x/\", \"method\": \"HEAD\","
	           " \"requests\": 5, \"timeout_ms\": 250, \"expect_status\": [200, 304],"
	           " \"body_match\": \"ok\" } ] },";
	d.extra =
	    "  , \"steps\": [\"server-0\", \"middleware-dark\", {\"step\": \"middleware-5\", "
	    "\"bake_s\": 120}, \"middleware-100\", {\"step\": \"server-100\"}],"
	    " \"deployer\": { \"kind\": \"api\", \"account_id\": \"acct\", \"base_url\": "
	    "\"http://127.0.0.1:9/client/v4\", \"token_env\": \"TOK\", \"upload_modules\": "
	    "{ \"server\": [\"dist/s.js\", \"/abs/s.map\"], \"middleware\": [\"dist/m.js\"] } },"
	    " \"gates\": { \"max_failed_regions\": 1, \"share_z\": 2.58, \"share_floor\": 0.05,"
	    " \"max_p99_ms\": 2000 },"
	    " \"state_dir\": \"/var/lib/canary\", \"propagation_s\": 0";
	d.agents = "  \"agents\": { \"listen\": [\"tls+tcp://127.0.0.1:0\"], \"dial\": "
	           "[\"tls+tcp://agent:7400\"], \"tls\": { \"cert\": \"/etc/c.pem\", \"key\": "
	           "\"k.key\", \"ca\": \"ca.pem\" }, \"round_timeout_s\": 9 }";
	path = test_write(test_doc_text(&d, text, sizeof(text)));
	if (rollout_load(path, &r, err, sizeof(err)) != 0) {
		fail_msg("%s", err);
	}
	assert_int_equal(r->interval_s, 2);
	assert_int_equal(r->version_keys, 8);
	assert_true(r->override_share == 20);
	assert_string_equal(r->targets[0].method, "HEAD");
	assert_int_equal(r->targets[0].requests, 5);
	assert_int_equal(r->targets[0].timeout_ms, 250);
	assert_int_equal(r->targets[0].n_expect_status, 2);
	assert_int_equal(r->targets[0].expect_status[1], 304);
	assert_string_equal(r->targets[0].body_match, "ok");
	assert_int_equal(r->n_steps, 5);
	assert_int_equal(r->steps[1].kind, PLAN_STEP_MIDDLEWARE_DARK);
	assert_int_equal(r->steps[2].percent, 5);
	assert_int_equal(r->steps[2].bake_s, 120);
	assert_int_equal(r->steps[4].bake_s, -1);
	assert_int_equal(r->deployer.kind, ROLLOUT_DEPLOYER_API);
	assert_string_equal(r->deployer.account_id, "acct");
	assert_string_equal(r->deployer.base_url, "http://127.0.0.1:9/client/v4");
	assert_string_equal(r->deployer.token_env, "TOK");
	assert_int_equal(r->deployer.n_modules[PLAN_SERVER], 2);
	assert_int_equal(r->deployer.n_modules[PLAN_MIDDLEWARE], 1);
	char want[512];
	snprintf(want, sizeof(want), "%s/dist/s.js", test_dir);
	assert_string_equal(r->deployer.modules[PLAN_SERVER][0], want);
	assert_string_equal(r->deployer.modules[PLAN_SERVER][1], "/abs/s.map");
	assert_int_equal(r->gates.max_failed_regions, 1);
	assert_true(r->gates.share_z == 2.58);
	assert_true(r->gates.share_floor == 0.05);
	assert_true(r->gates.max_p99_ms == 2000);
	assert_string_equal(r->state_dir, "/var/lib/canary");
	assert_int_equal(r->propagation_s, 0);
	assert_string_equal(r->agents.cert, "/etc/c.pem");
	snprintf(want, sizeof(want), "%s/k.key", test_dir);
	assert_string_equal(r->agents.key, want);
	assert_int_equal(r->agents.round_timeout_s, 9);
	assert_int_equal(r->agents.n_dial, 1);
	rollout_free(r);
}

/* One bad rollout file: the line to swap, the text that marks where the
 * error must point, and what the message must say after "FILE:L:C: ". */
struct test_bad {
	struct test_doc doc;
	const char *marker;  /* NULL: no position expected */
	const char *message; /* the part after the position */
	int rv;
};

static const struct test_bad test_bads[] = {
    {{.extra = "  , \"stat_dir\": \"x\""},
     "\"x\"",
     "stat_dir: expected one of the keys name, workers, deployer, steps, probes, regions, "
     "gates, agents, state_dir, propagation_s, got unknown key \"stat_dir\"",
     CANARY_ECONFIG},
    {{.name = "  \"name\": 5,"},
     "5,",
     "name: expected a non-empty string of at most 63 bytes, got 5",
     CANARY_ECONFIG},
    {{.name = "  \"name\": \"a b\","},
     "\"a b\"",
     "name: expected a name of letters, digits, '.', '_' and '-' (at most 63 bytes), got \"a b\"",
     CANARY_ECONFIG},
    {{.name = "  \"nam\": \"t\","}, "\"t\"", "nam: expected one of the keys", CANARY_ECONFIG},
    {{.workers = "  \"workers\": { \"server\": { \"config\": \"@W@/server.jsonc\" } },"},
     "{ \"server\"",
     "workers.middleware: expected key \"middleware\", got an object without it",
     CANARY_ECONFIG},
    {{.workers = "  \"workers\": { \"server\": { \"config\": \"@W@/server.jsonc\", \"pin_var\": "
                 "\"X\" }, \"middleware\": { \"config\": \"@W@/middleware.jsonc\" } },"},
     "\"X\"",
     "workers.server.pin_var: expected one of the keys config, got unknown key \"pin_var\"",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"targets\": [ { \"id\": \"home\", \"url\": \"ftp://x/\" } ] },"},
     "\"ftp",
     "probes.targets[0].url: expected an http:// or https:// URL with a host and no spaces, "
     "got \"ftp://x/\"",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"targets\": [ { \"id\": \"h\", \"url\": \"http://x/\", "
                "\"expect_status\": [200, 304, 200] } ] },"},
     "200] ",
     "probes.targets[0].expect_status[2]: expected a status not listed before, got 200 (also "
     "probes.targets[0].expect_status[0])",
     CANARY_ECONFIG},
    /* Refused at load, not when the first probe is encoded (its
     * deadline_ms is at most an hour). */
    {{.agents = "  \"agents\": { \"listen\": [\"tcp://127.0.0.1:0\"], \"insecure\": true, "
                "\"round_timeout_s\": 3601 }"},
     "3601",
     "agents.round_timeout_s: expected an integer 1..3600, got 3601",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"targets\": [ { \"id\": \"home\", \"url\": \"https://x/a b\" } "
                "] },"},
     "\"https",
     "probes.targets[0].url: expected an http:// or https:// URL with a host and no spaces, "
     "got \"https://x/a b\"",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"targets\": [ { \"id\": \"home\", \"url\": \"https:///x\" } ] "
                "},"},
     "\"https",
     "probes.targets[0].url: expected an http:// or https:// URL with a host and no spaces, "
     "got \"https:///x\"",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"targets\": [ { \"id\": \"h\", \"url\": \"http://x/\", "
                "\"expect_status\": [200, 700] } ] },"},
     "700",
     "probes.targets[0].expect_status[1]: expected an HTTP status 100..599, got 700",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"targets\": [ { \"id\": \"h\", \"url\": \"http://x/\", "
                "\"requests\": 0 } ] },"},
     "0 }",
     "probes.targets[0].requests: expected an integer 1..100000, got 0",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"targets\": [ { \"id\": \"h\", \"url\": \"http://x/\", "
                "\"requests\": 1.5 } ] },"},
     "1.5",
     "probes.targets[0].requests: expected an integer 1..100000, got 1.5",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"targets\": [ { \"id\": \"h\", \"url\": \"http://x/\" }, "
                "{ \"id\": \"h\", \"url\": \"http://y/\" } ] },"},
     "\"h\", \"url\": \"http://y",
     "probes.targets[1].id: expected a unique target id, got \"h\" (also probes.targets[0])",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"targets\": [] },"},
     "[]",
     "probes.targets: expected an array of 1..16 elements, got an array",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"targets\": [ { \"id\": \"h\", \"url\": \"http://x/\", "
                "\"cache\": \"ISR\" } ] },"},
     "\"ISR\"",
     "probes.targets[0].cache: expected \"isr\" or \"none\", got \"ISR\"",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"interval_s\": 0, \"targets\": [ { \"id\": \"h\", \"url\": "
                "\"http://x/\" } ] },"},
     "0,",
     "probes.interval_s: expected an integer 1..86400, got 0",
     CANARY_ECONFIG},
    {{.probes = "  \"probes\": { \"headers\": { \"cache\": \"x cache\" }, \"targets\": [ { "
                "\"id\": \"h\", \"url\": \"http://x/\" } ] },"},
     "\"x cache\"",
     "probes.headers.cache: expected an HTTP header name of at most 63 bytes, got \"x cache\"",
     CANARY_ECONFIG},
    {{.regions = "  \"regions\": [ { \"name\": \"enam\" }, { \"name\": \"enam\" } ],"},
     "\"enam\" } ]",
     "regions[1].name: expected a unique region name, got \"enam\" (also regions[0])",
     CANARY_ECONFIG},
    {{.regions = "  \"regions\": [ { \"name\": \"enam\", \"min_agents\": 0 } ],"},
     "0 }",
     "regions[0].min_agents: expected an integer 1..100000, got 0",
     CANARY_ECONFIG},
    {{.regions = "  \"regions\": { \"name\": \"enam\" },"},
     "{ \"name\"",
     "regions: expected an array of 1..32 elements, got an object",
     CANARY_ECONFIG},
    {{.extra = "  , \"gates\": { \"max_error_rate\": 2 }"},
     "2 }",
     "gates.max_error_rate: expected a number 0..1, got 2",
     CANARY_ECONFIG},
    {{.extra = "  , \"gates\": { \"max_error_rate\": 1.1 }"},
     "1.1 }",
     "gates.max_error_rate: expected a number 0..1, got 1.1",
     CANARY_ECONFIG},
    /* 47 ASCII bytes, then a 2-byte e-acute across the 48-byte quote:
     * the quote stops before it, not in its middle. */
    {{.name = "  \"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9zzzzz\","},
     "\"aaaaaaaaaa",
     "name: expected a name of letters, digits, '.', '_' and '-' (at most 63 bytes), got "
     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"",
     CANARY_ECONFIG},
    {{.extra = "  , \"gates\": { \"max_eror_rate\": 0.1 }"},
     "0.1 }",
     "gates.max_eror_rate: expected one of the keys max_error_rate,",
     CANARY_ECONFIG},
    {{.extra = "  , \"gates\": { \"max_latency_ratio\": 0.5 }"},
     "0.5",
     "gates.max_latency_ratio: expected 0 (off) or a ratio >= 1, got 0.5",
     CANARY_ECONFIG},
    {{.extra = "  , \"steps\": [\"server-0\", \"middleware-150\", \"middleware-100\", "
               "\"server-100\"]"},
     "\"middleware-150\"",
     "steps[1]: expected a step name (server-0, middleware-dark, middleware-P with P in 1..99, "
     "middleware-100, server-100), got \"middleware-150\"",
     CANARY_ECONFIG},
    {{.extra = "  , \"steps\": [\"server-0\", {\"step\": \"middleware-10\", \"bake_s\": -1}, "
               "\"middleware-100\", \"server-100\"]"},
     "-1}",
     "steps[1].bake_s: expected an integer 0..86400, got -1",
     CANARY_ECONFIG},
    {{.extra = "  , \"steps\": [\"server-0\", {\"step\": 10}, \"middleware-100\", "
               "\"server-100\"]"},
     "10}",
     "steps[1].step: expected a step name",
     CANARY_ECONFIG},
    {{.extra = "  , \"steps\": [\"server-0\", \"server-100\", \"middleware-100\"]"},
     "[\"server-0\", \"server-100\"",
     "steps: steps[1]: server-100: refused: skew: middleware version m0 (at 100%) pins server "
     "version s0, which is not in the server deployment {s1:100}",
     CANARY_ECONFIG},
    {{.extra = "  , \"steps\": [\"server-0\", \"middleware-50\", \"middleware-10\", "
               "\"middleware-100\", \"server-100\"]"},
     "[\"server-0\", \"middleware-50\"",
     "steps: steps[2]: middleware-10 after middleware-50: middleware percentages must increase",
     CANARY_ECONFIG},
    {{.agents = "  \"agents\": { \"dial\": [\"tls+tcp://a:1\"] }"},
     "{ \"dial\"",
     "agents.tls: expected {\"cert\", \"key\", \"ca\"} for the tls+tcp:// URLs, got no tls key",
     CANARY_ECONFIG},
    {{.agents = "  \"agents\": { \"dial\": [\"http://a:1\"], \"insecure\": true }"},
     "\"http://a",
     "agents.dial[0]: expected a tls+tcp://, tcp:// or ipc:// URL, got \"http://a:1\"",
     CANARY_ECONFIG},
    {{.agents = "  \"agents\": { \"listen\": [], \"insecure\": true }"},
     "{ \"listen\"",
     "agents: expected at least one URL in agents.listen or agents.dial, got none",
     CANARY_ECONFIG},
    {{.agents = "  \"agents\": { \"dial\": [\"tcp://a:1\"], \"insecure\": \"yes\" }"},
     "\"yes\"",
     "agents.insecure: expected true or false, got \"yes\"",
     CANARY_ECONFIG},
    {{.extra = "  , \"deployer\": { \"kind\": \"ssh\" }"},
     "\"ssh\"",
     "deployer.kind: expected \"wrangler\" or \"api\", got \"ssh\"",
     CANARY_ECONFIG},
    {{.extra = "  , \"deployer\": { \"kind\": \"wrangler\", \"base_url\": \"http://x\" }"},
     "\"http://x\"",
     "deployer.base_url: expected one of the keys kind, command, timeout_s, got unknown key "
     "\"base_url\"",
     CANARY_ECONFIG},
    {{.extra = "  , \"deployer\": { \"kind\": \"wrangler\", \"command\": [\"npx\", 3] }"},
     "3] }",
     "deployer.command[1]: expected a non-empty string of at most 1023 bytes, got 3",
     CANARY_ECONFIG},
    {{.extra = "  , \"deployer\": { \"kind\": \"api\", \"base_url\": \"ftp://x\" }"},
     "\"ftp://x\"",
     "deployer.base_url: expected an http:// or https:// URL with a host, no spaces and no query "
     "or fragment, got \"ftp://x\"",
     CANARY_ECONFIG},
    {{.extra = "  , \"deployer\": { \"kind\": \"api\", \"base_url\": \"http://x/v4?k=1\" }"},
     "\"http://x/v4?k=1\"",
     "deployer.base_url: expected an http:// or https:// URL with a host, no spaces and no query "
     "or fragment, got \"http://x/v4?k=1\"",
     CANARY_ECONFIG},
    {{.extra = "  , \"deployer\": { \"kind\": \"api\", \"upload_modules\": { \"server\": "
               "[\"s.js\"] } }"},
     "{ \"server\": [",
     "deployer.upload_modules.middleware: expected key \"middleware\", got an object without it",
     CANARY_ECONFIG},
    {{.extra = "  , \"propagation_s\": -1"},
     "-1",
     "propagation_s: expected an integer 0..86400, got -1",
     CANARY_ECONFIG},
    {{.extra = "  , \"state_dir\": \"\""},
     "\"\"",
     "state_dir: expected a non-empty string of at most 4095 bytes, got \"\"",
     CANARY_ECONFIG},
};

static void
test_errors_name_file_line_column(void **state)
{
	char text[TEST_TEXT_MAX], err[CANARY_ERRLEN], want[CANARY_ERRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(test_bads) / sizeof(test_bads[0]); i++) {
		const struct test_bad *b = &test_bads[i];
		struct rollout *r = (struct rollout *)1;
		const char *path = test_write(test_doc_text(&b->doc, text, sizeof(text)));
		int line, col, rv;

		rv = rollout_load(path, &r, err, sizeof(err));
		if (rv != b->rv) {
			fail_msg("case %zu: rv %d, want %d: %s", i, rv, b->rv, err);
		}
		assert_null(r);
		test_where(path, b->marker, &line, &col);
		snprintf(want, sizeof(want), "%s:%d:%d: %s", path, line, col, b->message);
		if (strncmp(err, want, strlen(want)) != 0) {
			fail_msg("case %zu:\n got  %s\n want %s", i, err, want);
		}
	}
}

static void
test_file_errors(void **state)
{
	struct test_doc d = {0};
	struct rollout *r = NULL;
	char text[TEST_TEXT_MAX], err[CANARY_ERRLEN], want[CANARY_ERRLEN];
	const char *path;
	int line, col;

	(void)state;
	/* No such rollout file. */
	assert_int_equal(rollout_load(CANARY_FIXTURES "/nope.jsonc", &r, err, sizeof(err)),
	                 CANARY_ENOENT);
	assert_non_null(strstr(err, CANARY_FIXTURES "/nope.jsonc"));
	assert_null(r);

	/* JSONC syntax: the reader's position, with the file name. */
	path = test_write("{\n  \"name\": \"t\"\n  \"workers\": {}\n}\n");
	assert_int_equal(rollout_load(path, &r, err, sizeof(err)), CANARY_EPARSE);
	snprintf(want, sizeof(want), "%s:3:", path);
	assert_memory_equal(err, want, strlen(want));

	/* The root must be an object. */
	path = test_write("[1, 2]\n");
	assert_int_equal(rollout_load(path, &r, err, sizeof(err)), CANARY_ECONFIG);
	snprintf(want, sizeof(want), "%s:1:1: (root): expected an object, got an array", path);
	assert_string_equal(err, want);

	/* A wrangler config that is not there. */
	d.workers = "  \"workers\": { \"server\": { \"config\": \"@W@/nope.jsonc\" }, "
	            "\"middleware\": { \"config\": \"@W@/middleware.jsonc\" } },";
	path = test_write(test_doc_text(&d, text, sizeof(text)));
	assert_int_equal(rollout_load(path, &r, err, sizeof(err)), CANARY_ENOENT);
	assert_non_null(strstr(err, CANARY_FIXTURES "/good/wrangler/nope.jsonc"));

	/* wrangler.toml is refused by name. */
	d.workers = "  \"workers\": { \"server\": { \"config\": \"@X@/wrangler.toml\" }, "
	            "\"middleware\": { \"config\": \"@W@/middleware.jsonc\" } },";
	path = test_write(test_doc_text(&d, text, sizeof(text)));
	assert_int_equal(rollout_load(path, &r, err, sizeof(err)), CANARY_ECONFIG);
	assert_non_null(strstr(err, CANARY_FIXTURES "/wrangler/wrangler.toml: a wrangler.toml "
	                                            "config is not read"));
	assert_non_null(strstr(err, "wrangler.jsonc"));

	/* A bad value inside a wrangler config: that file's line and column. */
	d.workers = "  \"workers\": { \"server\": { \"config\": \"@W@/server.jsonc\" }, "
	            "\"middleware\": { \"config\": \"@X@/bad-name.jsonc\" } },";
	path = test_write(test_doc_text(&d, text, sizeof(text)));
	assert_int_equal(rollout_load(path, &r, err, sizeof(err)), CANARY_ECONFIG);
	test_where(CANARY_FIXTURES "/wrangler/bad-name.jsonc", "42", &line, &col);
	snprintf(want, sizeof(want),
	         "%s:%d:%d: services[0].service: expected a non-empty string of at most 127 "
	         "bytes, got 42",
	         CANARY_FIXTURES "/wrangler/bad-name.jsonc", line, col);
	assert_string_equal(err, want);
	assert_null(r);

	/* A worker name that could not go into an API path or a header. */
	d.workers = "  \"workers\": { \"server\": { \"config\": \"@X@/bad-worker-name.jsonc\" }, "
	            "\"middleware\": { \"config\": \"@W@/middleware.jsonc\" } },";
	path = test_write(test_doc_text(&d, text, sizeof(text)));
	assert_int_equal(rollout_load(path, &r, err, sizeof(err)), CANARY_ECONFIG);
	test_where(CANARY_FIXTURES "/wrangler/bad-worker-name.jsonc", "\"main server\"", &line,
	           &col);
	snprintf(want, sizeof(want),
	         "%s:%d:%d: name: expected a worker name of 1..63 letters, digits, '_' and '-', "
	         "not starting with '-', got \"main server\"",
	         CANARY_FIXTURES "/wrangler/bad-worker-name.jsonc", line, col);
	assert_string_equal(err, want);
	assert_null(r);

	/* A compatibility date wrangler would refuse. */
	d.workers = "  \"workers\": { \"server\": { \"config\": \"@X@/bad-date.jsonc\" }, "
	            "\"middleware\": { \"config\": \"@W@/middleware.jsonc\" } },";
	path = test_write(test_doc_text(&d, text, sizeof(text)));
	assert_int_equal(rollout_load(path, &r, err, sizeof(err)), CANARY_ECONFIG);
	test_where(CANARY_FIXTURES "/wrangler/bad-date.jsonc", "\"2025-13-01\"", &line, &col);
	snprintf(want, sizeof(want),
	         "%s:%d:%d: compatibility_date: expected a date YYYY-MM-DD, got \"2025-13-01\"",
	         CANARY_FIXTURES "/wrangler/bad-date.jsonc", line, col);
	assert_string_equal(err, want);
	assert_null(r);
}

static void
test_lint(void **state)
{
	struct test_doc d = {0};
	struct rollout *r = NULL;
	char text[TEST_TEXT_MAX], err[4 * CANARY_ERRLEN], small[64];
	const char *path;

	(void)state;
	d.workers = "  \"workers\": { \"server\": { \"config\": \"@L@/server.jsonc\" }, "
	            "\"middleware\": { \"config\": \"@L@/middleware.jsonc\" } },";
	path = test_write(test_doc_text(&d, text, sizeof(text)));
	if (rollout_load(path, &r, err, sizeof(err)) != 0) {
		fail_msg("%s", err);
	}
	assert_int_equal(rollout_lint(r, err, sizeof(err)), CANARY_ECONFIG);
	assert_non_null(strstr(err, CANARY_FIXTURES "/lint/middleware.jsonc: vars: expected the "
	                                            "pin var WORKER_VERSION_ID"));
	assert_non_null(strstr(err, "services: expected a service binding to the server worker "
	                            "\"main-server\", got none"));
	assert_non_null(strstr(err, CANARY_FIXTURES "/lint/middleware.jsonc: version_metadata"));
	assert_non_null(strstr(err, CANARY_FIXTURES "/lint/server.jsonc: version_metadata"));
	/* A short or NULL buffer still gets the verdict, truncated. */
	assert_int_equal(rollout_lint(r, small, sizeof(small)), CANARY_ECONFIG);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(rollout_lint(r, NULL, 0), CANARY_ECONFIG);

	/* A custom pin var is what the lint looks for. */
	snprintf(r->pin_var, sizeof(r->pin_var), "SERVER_WORKER_NAME");
	assert_int_equal(rollout_lint(r, err, sizeof(err)), CANARY_ECONFIG);
	assert_null(strstr(err, "pin var"));
	rollout_free(r);

	/* Same worker twice. */
	d.workers = "  \"workers\": { \"server\": { \"config\": \"@W@/middleware.jsonc\" }, "
	            "\"middleware\": { \"config\": \"@W@/middleware.jsonc\" } },";
	path = test_write(test_doc_text(&d, text, sizeof(text)));
	assert_int_equal(rollout_load(path, &r, err, sizeof(err)), 0);
	assert_int_equal(rollout_lint(r, err, sizeof(err)), CANARY_ECONFIG);
	assert_non_null(strstr(err, "two different worker names"));
	rollout_free(r);
}

/* The example users are given must load and lint clean. */
static void
test_shipped_example(void **state)
{
	struct rollout *r = NULL;
	char err[CANARY_ERRLEN];

	(void)state;
	if (rollout_load(CANARY_SOURCE_DIR "/deploy/cloudflare/rollout.example.jsonc", &r, err,
	                 sizeof(err)) != 0) {
		fail_msg("%s", err);
	}
	if (rollout_lint(r, err, sizeof(err)) != 0) {
		fail_msg("%s", err);
	}
	assert_string_equal(r->workers[PLAN_SERVER].name, "main-server");
	rollout_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_design_example),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_full_options),
	    cmocka_unit_test(test_errors_name_file_line_column),
	    cmocka_unit_test(test_file_errors),
	    cmocka_unit_test(test_lint),
	    cmocka_unit_test(test_shipped_example),
	};
	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
