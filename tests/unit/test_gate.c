/*
 * test_gate.c: merging a round's reports per region and the gate policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "gate.h"
#include "journal.h"

#define M0 "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define M1 "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define S0 "00000000-0000-4000-8000-000000000000"
#define S1 "11111111-1111-4111-8111-111111111111"

#define TEST_ROUND   7
#define TEST_ROLLOUT "docs-site"

static const char *const test_region_names[] = {"enam", "weur", "apac"};

struct test_ctx {
	struct canary_probe probe;
	struct canary_target targets[2];
	struct gate_region regions[3];
	struct gate_policy policy;
};

/* Probe: target "home" (isr) and "api", expecting middleware {m0:100-p,
 * m1:p} (p = 0: m0+s0 only; p = 100: m1+s1 only). */
static void
test_setup_probe(struct test_ctx *c, int p)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->targets[0].id, sizeof(c->targets[0].id), "home");
	snprintf(c->targets[0].url, sizeof(c->targets[0].url), "https://docs.example.com/");
	c->targets[0].cache = CANARY_CACHE_ISR;
	snprintf(c->targets[1].id, sizeof(c->targets[1].id), "api");
	snprintf(c->targets[1].url, sizeof(c->targets[1].url), "https://docs.example.com/api");
	for (int t = 0; t < 2; t++) {
		snprintf(c->targets[t].method, sizeof(c->targets[t].method), "GET");
		c->targets[t].requests = 100;
		c->targets[t].timeout_ms = 1000;
		c->targets[t].expect_status[0] = 200;
		c->targets[t].n_expect_status = 1;
	}
	c->probe.proto_version = CANARY_PROTO_VERSION;
	snprintf(c->probe.rollout_id, sizeof(c->probe.rollout_id), TEST_ROLLOUT);
	c->probe.round = TEST_ROUND;
	c->probe.phase = CANARY_PHASE_BAKE;
	c->probe.targets = c->targets;
	c->probe.n_targets = 2;
	struct canary_expect *e = &c->probe.expect;
	if (p == 0 || p == 100) {
		snprintf(e->middleware[0].id, sizeof(e->middleware[0].id), "%s", p ? M1 : M0);
		snprintf(e->server[0].id, sizeof(e->server[0].id), "%s", p ? S1 : S0);
		snprintf(e->pins[0], sizeof(e->pins[0]), "%s", p ? S1 : S0);
		e->middleware[0].share = e->server[0].share = 100;
		e->n_middleware = e->n_server = 1;
	} else {
		snprintf(e->middleware[0].id, sizeof(e->middleware[0].id), M0);
		snprintf(e->middleware[1].id, sizeof(e->middleware[1].id), M1);
		snprintf(e->server[0].id, sizeof(e->server[0].id), S0);
		snprintf(e->server[1].id, sizeof(e->server[1].id), S1);
		snprintf(e->pins[0], sizeof(e->pins[0]), S0);
		snprintf(e->pins[1], sizeof(e->pins[1]), S1);
		e->middleware[0].share = e->server[0].share = 100 - p;
		e->middleware[1].share = e->server[1].share = p;
		e->n_middleware = e->n_server = 2;
	}
	for (int i = 0; i < 3; i++) {
		snprintf(c->regions[i].name, sizeof(c->regions[i].name), "%s",
		         test_region_names[i]);
		c->regions[i].min_agents = 1;
	}
	gate_policy_default(&c->policy);
	c->policy.max_error_rate = 0.01;
	c->policy.max_p95_ms = 800;
	c->policy.max_p99_ms = 1500;
	c->policy.max_latency_ratio = 1.5;
	c->policy.min_isr_hit_ratio = 0.9;
}

/* A healthy target report: n requests, all 200, latency lat_ms each, pairs
 * split m1 = n * p / 100 (with pins), ISR hits on "home". */
static void
test_target(struct canary_target_report *tr, const char *id, uint64_t n, double lat_ms, int p)
{
	uint64_t n1 = n * (uint64_t)p / 100;

	memset(tr, 0, sizeof(*tr));
	snprintf(tr->id, sizeof(tr->id), "%s", id);
	tr->sent = tr->responses = n;
	tr->statuses[0].status = 200;
	tr->statuses[0].count = n;
	tr->n_statuses = 1;
	canary_hist_init(&tr->latency);
	for (uint64_t i = 0; i < n; i++) {
		canary_hist_record(&tr->latency, (uint64_t)(lat_ms * 1000));
	}
	if (n - n1 > 0) {
		snprintf(tr->pairs[tr->n_pairs].middleware, CANARY_UUID_LEN, M0);
		snprintf(tr->pairs[tr->n_pairs].server, CANARY_UUID_LEN, S0);
		tr->pairs[tr->n_pairs++].count = n - n1;
	}
	if (n1 > 0) {
		snprintf(tr->pairs[tr->n_pairs].middleware, CANARY_UUID_LEN, M1);
		snprintf(tr->pairs[tr->n_pairs].server, CANARY_UUID_LEN, S1);
		tr->pairs[tr->n_pairs++].count = n1;
	}
	if (strcmp(id, "home") == 0) {
		tr->cache_hit = n;
	}
}

/* A report of agent id in region with both targets healthy. Caller frees. */
static struct canary_report
test_report(const char *agent, const char *region, uint64_t n, double lat_ms, int p)
{
	struct canary_report r;

	memset(&r, 0, sizeof(r));
	r.proto_version = CANARY_PROTO_VERSION;
	snprintf(r.agent_id, sizeof(r.agent_id), "%s", agent);
	snprintf(r.region, sizeof(r.region), "%s", region);
	snprintf(r.rollout_id, sizeof(r.rollout_id), TEST_ROLLOUT);
	r.round = TEST_ROUND;
	r.targets = calloc(2, sizeof(r.targets[0]));
	assert_non_null(r.targets);
	r.n_targets = 2;
	test_target(&r.targets[0], "home", n, lat_ms, p);
	test_target(&r.targets[1], "api", n, lat_ms, p);
	return r;
}

static void
test_report_release(struct canary_report *r)
{
	free(r->targets);
	r->targets = NULL;
	r->n_targets = 0;
}

/* A round with one healthy agent per region; tweak(region index, report)
 * may change a report before it is added. */
static struct gate_round *
test_round(struct test_ctx *c, int p, double lat_ms, uint64_t n,
           void (*tweak)(int, struct canary_report *, void *), void *arg)
{
	struct gate_round *r = NULL;
	char err[CANARY_ERRLEN];

	assert_int_equal(gate_round_new(&c->probe, c->regions, 3, &r, err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++) {
		char agent[32];
		snprintf(agent, sizeof(agent), "agent-%d", i);
		struct canary_report rep = test_report(agent, test_region_names[i], n, lat_ms, p);
		if (tweak != NULL) {
			tweak(i, &rep, arg);
		}
		assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), 0);
		test_report_release(&rep);
	}
	return r;
}

static int
test_has_finding(const struct gate_verdict *v, const char *check, const char *region,
                 const char *target)
{
	for (int i = 0; i < v->n_findings; i++) {
		if (strcmp(v->findings[i].check, check) == 0 &&
		    strcmp(v->findings[i].region, region) == 0 &&
		    (target == NULL || strcmp(v->findings[i].target, target) == 0)) {
			return i + 1;
		}
	}
	return 0;
}

static void
test_healthy_round_passes(void **state)
{
	struct test_ctx c;
	struct gate_verdict v;
	struct gate_round *r;
	char line[512];

	(void)state;
	test_setup_probe(&c, 0);
	r = test_round(&c, 0, 50, 100, NULL, NULL);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	assert_int_equal(v.n_findings, 0);
	assert_int_equal(v.n_regions, 3);
	assert_int_equal(v.sent, 600);
	assert_true(v.p95_ms > 49.4 && v.p95_ms < 50.6);
	assert_true(v.regions[0].isr_hit_ratio == 1.0);
	assert_true(v.regions[0].m1_share < 0);
	gate_verdict_format(&v, line, sizeof(line));
	assert_non_null(strstr(line, "PASS regions=3 failed=0"));
	gate_round_free(r);
}

struct test_errors {
	int region;
	uint64_t bad;
};

static void
test_tweak_errors(int i, struct canary_report *rep, void *arg)
{
	struct test_errors *e = arg;
	if (i == e->region) {
		rep->targets[1].statuses[0].count -= e->bad;
		rep->targets[1].statuses[1].status = 503;
		rep->targets[1].statuses[1].count = e->bad;
		rep->targets[1].n_statuses = 2;
	}
}

static void
test_error_rate_limits(void **state)
{
	struct test_ctx c;
	struct gate_verdict v;
	struct gate_round *r;
	struct test_errors e = {.region = 1, .bad = 1};
	int f;

	(void)state;
	test_setup_probe(&c, 0);
	/* 1/100 = the limit: passes. */
	r = test_round(&c, 0, 50, 100, test_tweak_errors, &e);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	assert_int_equal(v.regions[1].failed, 1);
	gate_round_free(r);

	/* 2/100 > 0.01: fails, naming region, target and figures. */
	e.bad = 2;
	r = test_round(&c, 0, 50, 100, test_tweak_errors, &e);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	assert_false(v.critical);
	assert_int_equal(v.failed_regions, 1);
	assert_int_equal(v.regions[1].result, GATE_FAIL);
	assert_int_equal(v.regions[0].result, GATE_PASS);
	f = test_has_finding(&v, "error_rate", "weur", "api");
	assert_true(f > 0);
	assert_non_null(strstr(v.findings[f - 1].text, "0.0200 > 0.0100 (2/100"));
	assert_non_null(strstr(v.findings[f - 1].text, "region=weur target=api"));

	/* One failing region tolerated by max_failed_regions. */
	c.policy.max_failed_regions = 1;
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	assert_int_equal(v.failed_regions, 1);
	assert_true(test_has_finding(&v, "error_rate", "weur", "api") > 0);
	gate_round_free(r);
}

static void
test_tweak_no_response(int i, struct canary_report *rep, void *arg)
{
	(void)arg;
	if (i == 2) {
		/* Connection refused on every request. */
		rep->targets[0].responses = 0;
		rep->targets[0].n_statuses = 0;
		rep->targets[0].errors[CANARY_ERRCLASS_CONNECT] = rep->targets[0].sent;
	}
}

static void
test_errors_without_responses_fail(void **state)
{
	struct test_ctx c;
	struct gate_verdict v;
	struct gate_round *r;

	(void)state;
	test_setup_probe(&c, 0);
	r = test_round(&c, 0, 50, 100, test_tweak_no_response, NULL);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	assert_true(test_has_finding(&v, "error_rate", "apac", "home") > 0);
	assert_true(v.regions[2].error_rate == 0.5);
	gate_round_free(r);
}

static void
test_latency_absolute(void **state)
{
	struct test_ctx c;
	struct gate_verdict v;
	struct gate_round *r;

	(void)state;
	test_setup_probe(&c, 0);
	r = test_round(&c, 0, 700, 50, NULL, NULL);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	gate_round_free(r);

	r = test_round(&c, 0, 900, 50, NULL, NULL);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	assert_int_equal(v.failed_regions, 3);
	assert_true(test_has_finding(&v, "p95", "enam", "home") > 0);
	assert_false(test_has_finding(&v, "p99", "enam", "home") > 0);
	gate_round_free(r);

	c.policy.max_p95_ms = 0; /* off */
	r = test_round(&c, 0, 900, 50, NULL, NULL);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	gate_round_free(r);
}

static void
test_tweak_tail(int i, struct canary_report *rep, void *arg)
{
	(void)arg;
	if (i == 0) {
		struct canary_hist *h = &rep->targets[1].latency;
		canary_hist_init(h);
		for (int k = 0; k < 97; k++) {
			canary_hist_record(h, 20000);
		}
		for (int k = 0; k < 3; k++) {
			canary_hist_record(h, 2000000);
		}
	}
}

static void
test_latency_p99_tail(void **state)
{
	struct test_ctx c;
	struct gate_verdict v;
	struct gate_round *r;
	int f;

	(void)state;
	test_setup_probe(&c, 0);
	r = test_round(&c, 0, 20, 100, test_tweak_tail, NULL);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	f = test_has_finding(&v, "p99", "enam", "api");
	assert_true(f > 0);
	assert_non_null(strstr(v.findings[f - 1].text, "> 1500.0 ms"));
	assert_false(test_has_finding(&v, "p95", "enam", "api"));
	gate_round_free(r);
}

static void
test_latency_ratio(void **state)
{
	struct test_ctx c;
	struct gate_verdict v;
	struct gate_round *base, *r;

	(void)state;
	test_setup_probe(&c, 0);
	c.policy.max_p95_ms = c.policy.max_p99_ms = 0;
	base = test_round(&c, 0, 100, 100, NULL, NULL);

	r = test_round(&c, 0, 145, 100, NULL, NULL);
	gate_judge(r, base, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	gate_round_free(r);

	r = test_round(&c, 0, 160, 100, NULL, NULL);
	gate_judge(r, base, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	assert_true(test_has_finding(&v, "p95_ratio", "enam", "home") > 0);
	assert_true(test_has_finding(&v, "p99_ratio", "apac", "api") > 0);
	/* Without a baseline there is nothing to compare with. */
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	gate_round_free(r);
	gate_round_free(base);

	/* A fast baseline: 1 ms -> 5 ms is 5x but within the slack. */
	base = test_round(&c, 0, 1, 100, NULL, NULL);
	r = test_round(&c, 0, 5, 100, NULL, NULL);
	gate_judge(r, base, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	gate_round_free(r);
	r = test_round(&c, 0, 20, 100, NULL, NULL);
	gate_judge(r, base, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	gate_round_free(r);
	gate_round_free(base);
}

/* The baseline survives the journal: encoded, printed, parsed and decoded,
 * it judges a round exactly as the round it came from. */
static void
test_baseline_round_trip(void **state)
{
	struct test_ctx c;
	struct gate_verdict v1, v2;
	struct gate_round *base, *back = NULL, *r;
	char err[CANARY_ERRLEN];
	char *text;
	cJSON *j;

	(void)state;
	test_setup_probe(&c, 0);
	c.policy.max_p95_ms = c.policy.max_p99_ms = 0;
	base = test_round(&c, 0, 100, 100, NULL, NULL);
	j = gate_baseline_encode(base);
	assert_non_null(j);
	text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	j = cJSON_Parse(text);
	free(text);
	assert_int_equal(gate_baseline_decode(j, "baseline", &back, err, sizeof(err)), 0);
	cJSON_Delete(j);
	assert_int_equal(gate_round_n_regions(back), 3);

	r = test_round(&c, 0, 160, 100, NULL, NULL);
	gate_judge(r, base, &c.policy, &v1);
	gate_judge(r, back, &c.policy, &v2);
	assert_int_equal(v1.result, GATE_FAIL);
	assert_int_equal(v2.result, GATE_FAIL);
	assert_int_equal(v1.n_findings, v2.n_findings);
	for (int i = 0; i < v1.n_findings; i++) {
		assert_string_equal(v1.findings[i].text, v2.findings[i].text);
	}
	assert_true(test_has_finding(&v2, "p95_ratio", "weur", "api") > 0);
	gate_round_free(r);
	r = test_round(&c, 0, 145, 100, NULL, NULL);
	gate_judge(r, back, &c.policy, &v2);
	assert_int_equal(v2.result, GATE_PASS);
	gate_round_free(r);
	gate_round_free(back);
	gate_round_free(base);
}

/* The largest baseline a rollout file allows (every region, every target,
 * the longest names, values that need all 17 digits) fits a journal line
 * with room to spare, and a decoded baseline encodes to the same record. */
static void
test_baseline_largest_fits_the_journal(void **state)
{
	struct gate_round *r = NULL;
	char err[CANARY_ERRLEN];
	char *text, *again;
	cJSON *j = cJSON_CreateObject(), *regions = cJSON_AddArrayToObject(j, "regions"), *back;

	(void)state;
	for (int i = 0; i < GATE_MAX_REGIONS; i++) {
		cJSON *reg = cJSON_CreateObject(), *targets;
		char name[CANARY_ID_LEN];

		snprintf(name, sizeof(name), "%0*d", CANARY_ID_LEN - 1, i);
		cJSON_AddItemToArray(regions, reg);
		cJSON_AddStringToObject(reg, "name", name);
		targets = cJSON_AddArrayToObject(reg, "targets");
		for (int t = 0; t < CANARY_MAX_TARGETS; t++) {
			cJSON *to = cJSON_CreateObject();

			snprintf(name, sizeof(name), "%0*d", CANARY_ID_LEN - 1, t);
			cJSON_AddItemToArray(targets, to);
			cJSON_AddStringToObject(to, "id", name);
			cJSON_AddNumberToObject(to, "p95_ms", 12345.678901234567 + i + t);
			cJSON_AddNumberToObject(to, "p99_ms", 54321.123456789012 + i + t);
		}
	}
	text = cJSON_PrintUnformatted(j);
	assert_int_equal(gate_baseline_decode(j, "baseline", &r, err, sizeof(err)), 0);
	cJSON_Delete(j);
	back = gate_baseline_encode(r);
	assert_non_null(back);
	again = cJSON_PrintUnformatted(back);
	assert_string_equal(again, text);
	assert_true(strlen(text) < JOURNAL_MAX_LINE / 2);
	free(again);
	free(text);
	cJSON_Delete(back);
	gate_round_free(r);
}

/* A baseline record that does not decode is refused with its field path,
 * and nothing is returned. */
static void
test_baseline_decode_errors(void **state)
{
	static const struct {
		const char *json, *err;
	} cases[] = {
	    {"[]", "baseline: expected an object"},
	    {"{}", "baseline.regions: expected an array"},
	    {"{\"regions\": [7]}", "baseline.regions[0]: expected an object"},
	    {"{\"regions\": [{\"targets\": []}]}", "baseline.regions[0].name: expected a string"},
	    {"{\"regions\": [{\"name\": \"enam\", \"targets\": []}, {\"name\": \"enam\", "
	     "\"targets\": []}]}",
	     "baseline.regions[1].name: \"enam\" is also region 0"},
	    {"{\"regions\": [{\"name\": \"enam\", \"targets\": [{\"id\": \"home\"}]}]}",
	     "baseline.regions[0].targets[0].p95_ms: expected milliseconds 0..60000"},
	    {"{\"regions\": [{\"name\": \"enam\", \"targets\": [{\"id\": \"home\", "
	     "\"p95_ms\": 5, \"p99_ms\": -1}]}]}",
	     "baseline.regions[0].targets[0].p99_ms: expected milliseconds"},
	    {"{\"regions\": [{\"name\": \"enam\", \"targets\": [{\"id\": \"home\", "
	     "\"p95_ms\": 5, \"p99_ms\": 4}]}]}",
	     "baseline.regions[0].targets[0].p99_ms: 4 is below p95_ms 5"},
	    {"{\"regions\": [{\"name\": \"enam\", \"targets\": [{\"id\": \"a\", \"p95_ms\": 1, "
	     "\"p99_ms\": 1}, {\"id\": \"a\", \"p95_ms\": 1, \"p99_ms\": 1}]}]}",
	     "baseline.regions[0].targets[1].id: \"a\" is also target 0"},
	    {"{\"regions\": [{\"name\": \"enam\", \"targets\": [{\"id\": \"\"}]}]}",
	     "baseline.regions[0].targets[0].id: expected a string"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gate_round *r = (struct gate_round *)&r;
		char err[CANARY_ERRLEN] = "";
		cJSON *j = cJSON_Parse(cases[i].json);

		assert_non_null(j);
		assert_int_equal(gate_baseline_decode(j, "baseline", &r, err, sizeof(err)),
		                 CANARY_EINVAL);
		assert_null(r);
		if (strstr(err, cases[i].err) != err) {
			fail_msg("case %zu: got \"%s\", expected it to start with \"%s\"", i, err,
			         cases[i].err);
		}
		cJSON_Delete(j);
	}
}

enum test_crit { TC_AFFINITY, TC_UNKNOWN, TC_OVERRIDE, TC_KEY, TC_PAIR, TC_OTHER, TC_COUNT };

static void
test_tweak_critical(int i, struct canary_report *rep, void *arg)
{
	enum test_crit k = *(enum test_crit *)arg;
	struct canary_target_report *tr = &rep->targets[0];

	if (i != 1) {
		return;
	}
	switch (k) {
	case TC_AFFINITY:
		tr->affinity_violations = 1;
		break;
	case TC_UNKNOWN:
		tr->unknown_versions = 1;
		break;
	case TC_OVERRIDE:
		tr->override_sent = 10;
		tr->override_violations = 1;
		break;
	case TC_KEY:
		tr->key_violations = 1;
		break;
	case TC_PAIR:
		/* m0 answered by s1: skew the agent may not flag itself. */
		snprintf(tr->pairs[tr->n_pairs].middleware, CANARY_UUID_LEN, M0);
		snprintf(tr->pairs[tr->n_pairs].server, CANARY_UUID_LEN, S1);
		tr->pairs[tr->n_pairs++].count = 1;
		break;
	default:
		tr->pairs_other = 1;
		break;
	}
}

static void
test_critical_checks(void **state)
{
	static const char *const checks[TC_COUNT] = {"affinity",        "unknown_version",
	                                             "override",        "version_key",
	                                             "unexpected_pair", "unexpected_pair"};
	struct test_ctx c;
	struct gate_verdict v;
	struct gate_round *r;
	struct gate_step step;
	char why[256];

	(void)state;
	test_setup_probe(&c, 0);
	c.policy.max_failed_regions = 3; /* critical is never tolerated */
	c.policy.failure_limit = 5;
	for (enum test_crit k = 0; k < TC_COUNT; k++) {
		r = test_round(&c, 0, 50, 100, test_tweak_critical, &k);
		gate_judge(r, NULL, &c.policy, &v);
		assert_int_equal(v.result, GATE_FAIL);
		assert_true(v.critical);
		assert_true(v.regions[1].critical);
		assert_false(v.regions[0].critical);
		int f = test_has_finding(&v, checks[k], "weur", "home");
		if (f == 0) {
			fail_msg("check %s not found", checks[k]);
		}
		assert_true(v.findings[f - 1].critical);
		assert_non_null(strstr(v.findings[f - 1].text, "(critical)"));
		memset(&step, 0, sizeof(step));
		assert_int_equal(gate_step_record(&step, &c.policy, &v, why, sizeof(why)),
		                 GATE_ROLLBACK);
		gate_round_free(r);
	}
}

struct test_share {
	uint64_t m1;
};

static void
test_tweak_share(int i, struct canary_report *rep, void *arg)
{
	struct test_share *s = arg;
	(void)i;
	/* Only "api" carries pairs; n = 1000 responses per region. */
	struct canary_target_report *tr = &rep->targets[1];
	rep->targets[0].n_pairs = 0;
	tr->n_pairs = 2;
	snprintf(tr->pairs[0].middleware, CANARY_UUID_LEN, M0);
	snprintf(tr->pairs[0].server, CANARY_UUID_LEN, S0);
	tr->pairs[0].count = 1000 - s->m1;
	snprintf(tr->pairs[1].middleware, CANARY_UUID_LEN, M1);
	snprintf(tr->pairs[1].server, CANARY_UUID_LEN, S1);
	tr->pairs[1].count = s->m1;
}

static void
test_share_tolerance(void **state)
{
	struct test_ctx c;
	struct gate_verdict v;
	struct gate_round *r;
	struct test_share s;
	int f;

	(void)state;
	test_setup_probe(&c, 10);
	/* P = 10%, n = 1000: tolerance 3.29 * sqrt(0.09/1000) + 0.02 = 5.12 points. */
	s.m1 = 150;
	r = test_round(&c, 10, 50, 1000, test_tweak_share, &s);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	assert_true(v.regions[0].m1_share > 14.9 && v.regions[0].m1_share < 15.1);
	gate_round_free(r);
	s.m1 = 49;
	r = test_round(&c, 10, 50, 1000, test_tweak_share, &s);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	gate_round_free(r);

	s.m1 = 152;
	r = test_round(&c, 10, 50, 1000, test_tweak_share, &s);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	assert_false(v.critical);
	f = test_has_finding(&v, "share", "enam", NULL);
	assert_true(f > 0);
	assert_non_null(strstr(v.findings[f - 1].text, "15.2%, expected 10.0% +- 5.1"));
	gate_round_free(r);
	s.m1 = 47;
	r = test_round(&c, 10, 50, 1000, test_tweak_share, &s);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	gate_round_free(r);

	/* Nothing on m1 at all: a split that never happened. */
	s.m1 = 0;
	r = test_round(&c, 10, 50, 1000, test_tweak_share, &s);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	gate_round_free(r);

	/* Version keys: 4 keys x 1 agent are 4 draws, so 25% is within reach. */
	c.probe.version_keys = 4;
	s.m1 = 250;
	r = test_round(&c, 10, 50, 1000, test_tweak_share, &s);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	gate_round_free(r);
}

static void
test_tweak_isr(int i, struct canary_report *rep, void *arg)
{
	uint64_t hits = *(uint64_t *)arg;
	if (i == 2) {
		rep->targets[0].cache_hit = hits - 1;
		rep->targets[0].cache_stale = 1;
		rep->targets[0].cache_miss = 100 - hits;
		rep->targets[0].cache_warmup = 1;
	}
}

static void
test_isr_hit_ratio(void **state)
{
	struct test_ctx c;
	struct gate_verdict v;
	struct gate_round *r;
	uint64_t hits = 90;
	int f;

	(void)state;
	test_setup_probe(&c, 0);
	r = test_round(&c, 0, 50, 100, test_tweak_isr, &hits);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	assert_true(v.regions[2].isr_hit_ratio > 0.899 && v.regions[2].isr_hit_ratio < 0.901);
	gate_round_free(r);

	hits = 89;
	r = test_round(&c, 0, 50, 100, test_tweak_isr, &hits);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	f = test_has_finding(&v, "isr_hit_ratio", "apac", "home");
	assert_true(f > 0);
	assert_non_null(strstr(v.findings[f - 1].text, "0.890 < 0.900 (88 hit, 1 stale, 11 miss)"));
	/* The check only looks at isr targets: api has no cache answers. */
	assert_false(test_has_finding(&v, "isr_hit_ratio", "apac", "api"));
	gate_round_free(r);

	c.policy.min_isr_hit_ratio = 0;
	r = test_round(&c, 0, 50, 100, test_tweak_isr, &hits);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	gate_round_free(r);
}

static void
test_inconclusive_rounds(void **state)
{
	struct test_ctx c;
	struct gate_verdict v;
	struct gate_round *r = NULL;
	struct gate_step step;
	char err[CANARY_ERRLEN], why[256];

	(void)state;
	test_setup_probe(&c, 0);
	c.regions[0].min_agents = 2;
	c.policy.inconclusive_limit = 1;
	assert_int_equal(gate_round_new(&c.probe, c.regions, 3, &r, err, sizeof(err)), 0);
	/* enam: one agent of two; weur: healthy; apac: nobody. */
	struct canary_report a = test_report("a", "enam", 100, 50, 0);
	struct canary_report b = test_report("b", "weur", 100, 50, 0);
	assert_int_equal(gate_round_add(r, &a, err, sizeof(err)), 0);
	assert_int_equal(gate_round_add(r, &b, err, sizeof(err)), 0);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_INCONCLUSIVE);
	assert_int_equal(v.inconclusive_regions, 2);
	assert_int_equal(v.regions[0].result, GATE_INCONCLUSIVE);
	assert_int_equal(v.regions[1].result, GATE_PASS);
	assert_int_equal(v.regions[2].result, GATE_INCONCLUSIVE);
	int f = test_has_finding(&v, "agents", "enam", NULL);
	assert_true(f > 0);
	assert_non_null(strstr(v.findings[f - 1].text, "1 agents reported, 2 required"));
	assert_true(test_has_finding(&v, "agents", "apac", NULL) > 0);

	memset(&step, 0, sizeof(step));
	assert_int_equal(gate_step_record(&step, &c.policy, &v, why, sizeof(why)), GATE_CONTINUE);
	assert_int_equal(gate_step_record(&step, &c.policy, &v, why, sizeof(why)), GATE_ROLLBACK);
	assert_non_null(strstr(why, "2 inconclusive rounds > inconclusive_limit 1"));
	gate_round_free(r);

	/* An agent that reports but sent nothing: inconclusive, not a pass. */
	struct gate_round *r2 = NULL;
	assert_int_equal(gate_round_new(&c.probe, c.regions, 1, &r2, err, sizeof(err)), 0);
	struct canary_report none = test_report("n", "enam", 0, 0, 0);
	assert_int_equal(gate_round_add(r2, &none, err, sizeof(err)), 0);
	gate_judge(r2, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_INCONCLUSIVE);
	assert_true(test_has_finding(&v, "no_responses", "enam", NULL) > 0);
	test_report_release(&none);
	gate_round_free(r2);

	/* A report that leaves a target out: the healthy figures of the other
	 * target do not pass the region, whose "home" nobody probed. */
	c.regions[0].min_agents = 1;
	assert_int_equal(gate_round_new(&c.probe, c.regions, 1, &r2, err, sizeof(err)), 0);
	struct canary_report part = test_report("p", "enam", 100, 50, 0);
	part.targets[0] = part.targets[1]; /* "api" only */
	part.n_targets = 1;
	assert_int_equal(gate_round_add(r2, &part, err, sizeof(err)), 0);
	gate_judge(r2, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_INCONCLUSIVE);
	assert_int_equal(v.regions[0].result, GATE_INCONCLUSIVE);
	assert_true(test_has_finding(&v, "no_responses", "enam", "home") > 0);
	assert_false(test_has_finding(&v, "no_responses", "enam", "api"));
	test_report_release(&part);
	gate_round_free(r2);
	c.regions[0].min_agents = 2;

	/* A failing region outweighs an inconclusive one. */
	struct test_errors e = {.region = 1, .bad = 50};
	c.regions[0].min_agents = 1;
	r = test_round(&c, 0, 50, 100, test_tweak_errors, &e);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	test_report_release(&a);
	test_report_release(&b);
	gate_round_free(r);
}

static void
test_step_failure_limit(void **state)
{
	struct test_ctx c;
	struct gate_verdict pass, fail;
	struct gate_round *r;
	struct gate_step step;
	struct test_errors e = {.region = 0, .bad = 10};
	char why[256];

	(void)state;
	test_setup_probe(&c, 0);
	c.policy.failure_limit = 1;
	r = test_round(&c, 0, 50, 100, NULL, NULL);
	gate_judge(r, NULL, &c.policy, &pass);
	gate_round_free(r);
	r = test_round(&c, 0, 50, 100, test_tweak_errors, &e);
	gate_judge(r, NULL, &c.policy, &fail);
	gate_round_free(r);
	assert_int_equal(fail.result, GATE_FAIL);

	memset(&step, 0, sizeof(step));
	assert_int_equal(gate_step_record(&step, &c.policy, &pass, why, sizeof(why)),
	                 GATE_CONTINUE);
	assert_int_equal(gate_step_record(&step, &c.policy, &fail, why, sizeof(why)),
	                 GATE_CONTINUE);
	assert_int_equal(gate_step_record(&step, &c.policy, &pass, why, sizeof(why)),
	                 GATE_CONTINUE);
	assert_int_equal(gate_step_record(&step, &c.policy, &fail, why, sizeof(why)),
	                 GATE_ROLLBACK);
	assert_non_null(strstr(why, "2 failed rounds > failure_limit 1"));
	assert_int_equal(step.rounds, 4);

	c.policy.failure_limit = 0;
	memset(&step, 0, sizeof(step));
	assert_int_equal(gate_step_record(&step, &c.policy, &fail, why, sizeof(why)),
	                 GATE_ROLLBACK);
}

/* Three agents in one region merge into what one agent doing all their
 * requests would report. */
static void
test_merge_equals_one_report(void **state)
{
	struct test_ctx c;
	struct gate_round *many = NULL, *one = NULL;
	struct gate_verdict vm, vo;
	char err[CANARY_ERRLEN];
	const double lat[3] = {10, 40, 300};

	(void)state;
	test_setup_probe(&c, 0);
	assert_int_equal(gate_round_new(&c.probe, c.regions, 1, &many, err, sizeof(err)), 0);
	assert_int_equal(gate_round_new(&c.probe, c.regions, 1, &one, err, sizeof(err)), 0);
	struct canary_report big = test_report("big", "enam", 0, 0, 0);
	for (int k = 0; k < 3; k++) {
		char id[16];
		snprintf(id, sizeof(id), "a%d", k);
		struct canary_report rep = test_report(id, "enam", 100, lat[k], 0);
		rep.targets[1].statuses[1].status = 500;
		rep.targets[1].statuses[1].count = (uint64_t)k;
		rep.targets[1].statuses[0].count -= (uint64_t)k;
		rep.targets[1].n_statuses = 2;
		assert_int_equal(gate_round_add(many, &rep, err, sizeof(err)), 0);
		for (int t = 0; t < 2; t++) {
			canary_target_report_merge(&big.targets[t], &rep.targets[t]);
		}
		test_report_release(&rep);
	}
	assert_int_equal(gate_round_add(one, &big, err, sizeof(err)), 0);
	int agents = 0;
	const struct canary_report *m = gate_round_region(many, 0, &agents, NULL);
	const struct canary_report *o = gate_round_region(one, 0, NULL, NULL);
	assert_int_equal(agents, 3);
	for (int t = 0; t < 2; t++) {
		assert_int_equal(m->targets[t].sent, 300);
		assert_int_equal(m->targets[t].sent, o->targets[t].sent);
		assert_memory_equal(&m->targets[t].latency, &o->targets[t].latency,
		                    sizeof(struct canary_hist));
		assert_int_equal(m->targets[t].pairs[0].count, 300);
	}
	/* p95 of the merge is the 300 ms agent's, not an average of p95s. */
	c.policy.max_error_rate = 0.5;
	c.policy.max_p95_ms = c.policy.max_p99_ms = 0;
	gate_judge(many, NULL, &c.policy, &vm);
	gate_judge(one, NULL, &c.policy, &vo);
	assert_true(vm.p95_ms > 297 && vm.p95_ms < 303);
	assert_true(vm.p95_ms == vo.p95_ms && vm.p99_ms == vo.p99_ms);
	assert_int_equal(vm.failed, 3);
	assert_int_equal(vm.failed, vo.failed);
	assert_int_equal(vm.result, vo.result);
	test_report_release(&big);
	gate_round_free(many);
	gate_round_free(one);
}

static void
test_rejected_reports(void **state)
{
	struct test_ctx c;
	struct gate_round *r = NULL;
	struct gate_rejects rj;
	char err[CANARY_ERRLEN];
	struct canary_report rep;

	(void)state;
	test_setup_probe(&c, 0);
	assert_int_equal(gate_round_new(&c.probe, c.regions, 3, &r, err, sizeof(err)), 0);

	rep = test_report("a1", "enam", 10, 5, 0);
	assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), 0);
	/* The same agent again. */
	assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "a1"));
	test_report_release(&rep);

	rep = test_report("a2", "mars", 10, 5, 0);
	assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), CANARY_ENOENT);
	assert_non_null(strstr(err, "mars"));
	test_report_release(&rep);

	rep = test_report("a3", "weur", 10, 5, 0);
	rep.round = TEST_ROUND - 1;
	assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), CANARY_ESTATE);
	assert_non_null(strstr(err, "round 6"));
	rep.round = TEST_ROUND;
	snprintf(rep.error, sizeof(rep.error), "host not on the allowlist");
	assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), CANARY_ESTATE);
	assert_non_null(strstr(err, "allowlist"));
	rep.error[0] = '\0';
	snprintf(rep.targets[1].id, sizeof(rep.targets[1].id), "home");
	assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "twice"));
	snprintf(rep.targets[1].id, sizeof(rep.targets[1].id), "nope");
	assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "not in the probe"));
	rep.agent_id[0] = '\0';
	snprintf(rep.targets[1].id, sizeof(rep.targets[1].id), "api");
	assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), CANARY_EINVAL);
	/* After all that, a3 is still welcome: nothing of it was merged. */
	snprintf(rep.agent_id, sizeof(rep.agent_id), "a3");
	assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), 0);
	test_report_release(&rep);

	gate_round_rejects(r, &rj);
	assert_int_equal(rj.duplicate_agent, 1);
	assert_int_equal(rj.unknown_region, 1);
	assert_int_equal(rj.wrong_round, 1);
	assert_int_equal(rj.error_reports, 1);
	assert_int_equal(rj.bad_target, 2);
	assert_int_equal(rj.bad_agent, 1);
	assert_int_equal(rj.n_notes, 7);
	int agents = -1;
	const struct canary_report *w = gate_round_region(r, 1, &agents, NULL);
	assert_int_equal(agents, 1);
	assert_int_equal(w->targets[0].sent, 10);
	assert_null(gate_round_region(r, 3, NULL, NULL));
	gate_round_free(r);

	/* Bad region sets. */
	c.regions[1] = c.regions[0];
	assert_int_equal(gate_round_new(&c.probe, c.regions, 3, &r, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_null(r);
	assert_int_equal(gate_round_new(&c.probe, c.regions, 0, &r, err, sizeof(err)),
	                 CANARY_EINVAL);
	gate_round_free(NULL);
}

static void
test_many_agents(void **state)
{
	struct test_ctx c;
	struct gate_round *r = NULL;
	struct gate_verdict v;
	char err[CANARY_ERRLEN];

	(void)state;
	test_setup_probe(&c, 0);
	assert_int_equal(gate_round_new(&c.probe, c.regions, 3, &r, err, sizeof(err)), 0);
	struct canary_report rep = test_report("x", "enam", 2, 5, 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(rep.agent_id, sizeof(rep.agent_id), "agent-%04d", i);
		snprintf(rep.region, sizeof(rep.region), "%s", test_region_names[i % 3]);
		assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), 0);
	}
	for (int i = 0; i < 1000; i += 97) {
		snprintf(rep.agent_id, sizeof(rep.agent_id), "agent-%04d", i);
		assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), CANARY_EINVAL);
	}
	test_report_release(&rep);
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_PASS);
	assert_int_equal(v.sent, 4000);
	assert_int_equal(v.regions[0].agents, 334);
	gate_round_free(r);
}

static void
test_tweak_converge(int i, struct canary_report *rep, void *arg)
{
	(void)arg;
	if (i == 2) {
		/* apac still on m0+s0 while middleware-100 spreads. */
		struct canary_target_report *tr = &rep->targets[1];
		snprintf(tr->pairs[0].middleware, CANARY_UUID_LEN, M0);
		snprintf(tr->pairs[0].server, CANARY_UUID_LEN, S0);
	}
}

static void
test_convergence(void **state)
{
	struct test_ctx c;
	struct gate_round *r;
	int ok[3];
	char why[256];
	struct test_share s = {.m1 = 0};

	(void)state;
	test_setup_probe(&c, 100);
	r = test_round(&c, 100, 50, 100, NULL, NULL);
	assert_int_equal(gate_converged(r, ok, why, sizeof(why)), 1);
	assert_true(ok[0] && ok[1] && ok[2]);
	gate_round_free(r);

	r = test_round(&c, 100, 50, 100, test_tweak_converge, NULL);
	assert_int_equal(gate_converged(r, ok, why, sizeof(why)), 0);
	assert_true(ok[0] && ok[1] && !ok[2]);
	assert_non_null(strstr(why, "region apac"));
	assert_non_null(strstr(why, M0));
	gate_round_free(r);

	/* middleware-10 where m1 has not arrived: m0+s0 is allowed, but 100 of
	 * 1000 responses should have been m1. */
	test_setup_probe(&c, 10);
	r = test_round(&c, 10, 50, 1000, test_tweak_share, &s);
	assert_int_equal(gate_converged(r, ok, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "not seen yet"));
	gate_round_free(r);
	s.m1 = 90;
	r = test_round(&c, 10, 50, 1000, test_tweak_share, &s);
	assert_int_equal(gate_converged(r, NULL, why, sizeof(why)), 1);
	gate_round_free(r);

	/* A required region with no agent never converges. */
	struct gate_round *empty = NULL;
	assert_int_equal(gate_round_new(&c.probe, c.regions, 3, &empty, why, sizeof(why)), 0);
	assert_int_equal(gate_converged(empty, ok, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "0 agents reported"));
	gate_round_free(empty);
}

static void
test_tweak_dark(int i, struct canary_report *rep, void *arg)
{
	uint64_t bad = *(uint64_t *)arg;
	(void)i;
	/* 50 of 100 overridden: 50 answered by m1+s1 when the override works. */
	struct canary_target_report *tr = &rep->targets[1];
	tr->override_sent = 50;
	tr->override_violations = bad;
	tr->n_pairs = 2;
	tr->pairs[0].count = 50 + bad;
	snprintf(tr->pairs[1].middleware, CANARY_UUID_LEN, M1);
	snprintf(tr->pairs[1].server, CANARY_UUID_LEN, S1);
	tr->pairs[1].count = 50 - bad;
}

static void
test_dark_step(void **state)
{
	struct test_ctx c;
	struct gate_round *r;
	struct gate_verdict v;
	char why[256];
	uint64_t bad = 0;

	(void)state;
	test_setup_probe(&c, 50);
	/* The dark expectation: m0 100, m1 0, override to m1 pinned to s1. */
	c.probe.expect.middleware[0].share = c.probe.expect.server[0].share = 100;
	c.probe.expect.middleware[1].share = c.probe.expect.server[1].share = 0;
	c.probe.override.enabled = 1;
	c.probe.override.share = 50;
	snprintf(c.probe.override.worker, sizeof(c.probe.override.worker), "middleware");
	snprintf(c.probe.override.version_id, sizeof(c.probe.override.version_id), M1);
	snprintf(c.probe.override.pin, sizeof(c.probe.override.pin), S1);

	r = test_round(&c, 0, 50, 100, test_tweak_dark, &bad);
	assert_int_equal(gate_converged(r, NULL, why, sizeof(why)), 1);
	gate_judge(r, NULL, &c.policy, &v);
	/* Overridden m1 answers do not count against the live split of 0%. */
	assert_int_equal(v.result, GATE_PASS);
	assert_true(v.regions[0].m1_share == 0);
	gate_round_free(r);

	/* The override not honoured yet (region not converged). */
	bad = 50;
	r = test_round(&c, 0, 50, 100, test_tweak_dark, &bad);
	assert_int_equal(gate_converged(r, NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "overridden"));
	gate_judge(r, NULL, &c.policy, &v);
	assert_int_equal(v.result, GATE_FAIL);
	assert_true(v.critical);
	assert_true(test_has_finding(&v, "override", "enam", "api") > 0);
	gate_round_free(r);
}

/* A round of GATE_MAX_REGIONS regions ("r0".."r31"), one agent each, every
 * answer 5 s (over any latency limit); with last_affinity, the last
 * region's "api" target reports an affinity violation. */
static struct gate_round *
test_round_max_regions(struct test_ctx *c, int last_affinity)
{
	struct gate_round *r = NULL;
	struct gate_region regions[GATE_MAX_REGIONS];
	char err[CANARY_ERRLEN];

	test_setup_probe(c, 0);
	for (int i = 0; i < GATE_MAX_REGIONS; i++) {
		snprintf(regions[i].name, sizeof(regions[i].name), "r%d", i);
		regions[i].min_agents = 1;
	}
	assert_int_equal(gate_round_new(&c->probe, regions, GATE_MAX_REGIONS, &r, err, sizeof(err)),
	                 0);
	for (int i = 0; i < GATE_MAX_REGIONS; i++) {
		char id[16];
		snprintf(id, sizeof(id), "a%d", i);
		struct canary_report rep = test_report(id, regions[i].name, 10, 5000, 0);
		if (last_affinity && i == GATE_MAX_REGIONS - 1) {
			rep.targets[1].affinity_violations = 1;
		}
		assert_int_equal(gate_round_add(r, &rep, err, sizeof(err)), 0);
		test_report_release(&rep);
	}
	c->policy.max_failed_regions = GATE_MAX_REGIONS;
	return r;
}

static void
test_findings_cap(void **state)
{
	struct test_ctx c;
	struct gate_round *r;
	struct gate_verdict *v = malloc(sizeof(*v));

	(void)state;
	assert_non_null(v);
	r = test_round_max_regions(&c, 0);
	gate_judge(r, NULL, &c.policy, v);
	/* 32 regions x 2 targets x (p95 + p99) = 128 findings: 64 kept. */
	assert_int_equal(v->n_findings, GATE_MAX_FINDINGS);
	assert_int_equal(v->findings_dropped, 128 - GATE_MAX_FINDINGS);
	assert_int_equal(v->failed_regions, GATE_MAX_REGIONS);
	assert_int_equal(v->regions[GATE_MAX_REGIONS - 1].result, GATE_FAIL);
	gate_round_free(r);
	free(v);
}

/* The findings array full of latency findings from earlier regions: an
 * affinity violation in the last region is dropped from the list but must
 * still make the round critical (rolled back at once), even where
 * max_failed_regions tolerates every failing region. */
static void
test_dropped_critical_finding(void **state)
{
	struct test_ctx c;
	struct gate_round *r;
	struct gate_verdict *v = malloc(sizeof(*v));
	struct gate_step step = {0};
	char why[CANARY_ERRLEN], last[16];

	(void)state;
	assert_non_null(v);
	r = test_round_max_regions(&c, 1);
	snprintf(last, sizeof(last), "r%d", GATE_MAX_REGIONS - 1);
	gate_judge(r, NULL, &c.policy, v);
	assert_int_equal(v->n_findings, GATE_MAX_FINDINGS);
	assert_false(test_has_finding(v, "affinity", last, "api"));
	assert_int_equal(v->findings_dropped_critical, 1);
	assert_true(v->regions[GATE_MAX_REGIONS - 1].critical);
	assert_false(v->regions[GATE_MAX_REGIONS - 2].critical);
	assert_true(v->critical);
	assert_int_equal(v->result, GATE_FAIL);
	assert_int_equal(gate_step_record(&step, &c.policy, v, why, sizeof(why)), GATE_ROLLBACK);
	assert_non_null(strstr(why, "critical"));
	gate_round_free(r);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_healthy_round_passes),
	    cmocka_unit_test(test_error_rate_limits),
	    cmocka_unit_test(test_errors_without_responses_fail),
	    cmocka_unit_test(test_latency_absolute),
	    cmocka_unit_test(test_latency_p99_tail),
	    cmocka_unit_test(test_latency_ratio),
	    cmocka_unit_test(test_baseline_round_trip),
	    cmocka_unit_test(test_baseline_decode_errors),
	    cmocka_unit_test(test_baseline_largest_fits_the_journal),
	    cmocka_unit_test(test_critical_checks),
	    cmocka_unit_test(test_share_tolerance),
	    cmocka_unit_test(test_isr_hit_ratio),
	    cmocka_unit_test(test_inconclusive_rounds),
	    cmocka_unit_test(test_step_failure_limit),
	    cmocka_unit_test(test_merge_equals_one_report),
	    cmocka_unit_test(test_rejected_reports),
	    cmocka_unit_test(test_many_agents),
	    cmocka_unit_test(test_convergence),
	    cmocka_unit_test(test_dark_step),
	    cmocka_unit_test(test_findings_cap),
	    cmocka_unit_test(test_dropped_critical_finding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
