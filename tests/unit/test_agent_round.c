/*
 * test_agent_round.c: probe rounds on the engine against the local target
 * (tests/e2e/agent_target.c): the policy check, the warming request going
 * alone, the override spread, the budget ending a round with a partial
 * report, and the engine serving the next round after an aborted one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "agent_target.h"
#include "err.h"
#include "round.h"

static int port;
static struct canary_target targets[3];

static int
setup(void **state)
{
	(void)state;
	port = agent_target_start();
	return port > 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	agent_target_stop();
	return 0;
}

static void
probe_init(struct canary_probe *p, const char *path, uint32_t n)
{
	char url[CANARY_URL_LEN];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	agent_target_probe(p, targets, sizeof(targets) / sizeof(targets[0]), url, n);
}

struct ended {
	struct event_base *base;
	int calls;
};

static void
on_end(struct agent_round *r, void *arg)
{
	struct ended *e = arg;
	(void)r;
	e->calls++;
	event_base_loopbreak(e->base);
}

/* Runs p to its end on a fresh engine (or on *ep when given) and returns the
 * round; the caller frees it. */
static struct agent_round *
run_round(struct event_base *base, struct agent_engine *e, const struct canary_probe *p,
          uint32_t budget_ms, struct ended *end)
{
	struct agent_round_opts o = {
	    .allow = NULL, .max_requests = 1000, .follow = 0, .key_prefix = "k-"};
	struct agent_round *r = NULL;
	char err[CANARY_ERRLEN];

	end->base = base;
	end->calls = 0;
	if (agent_round_start(e, base, p, budget_ms, &o, on_end, end, &r, err, sizeof(err)) != 0) {
		fail_msg("round: %s", err);
	}
	assert_int_equal(event_base_dispatch(base), 0);
	assert_int_equal(end->calls, 1);
	return r;
}

static struct agent_engine *
engine_on(struct event_base *base, int concurrency)
{
	struct agent_engine_opts o = {.concurrency = concurrency, .body_cap = 1024};
	struct agent_engine *e = NULL;
	char err[CANARY_ERRLEN];
	assert_int_equal(agent_engine_new(base, &o, &e, err, sizeof(err)), 0);
	return e;
}

static void
test_policy(void **state)
{
	struct canary_probe p;
	struct agent_allow allow;
	struct agent_round_opts o = {.allow = &allow, .max_requests = 100};
	char err[CANARY_ERRLEN];

	(void)state;
	agent_allow_init(&allow);
	assert_int_equal(agent_allow_add(&allow, "*.example.com", err, sizeof(err)), 0);
	probe_init(&p, "/ok", 10);
	snprintf(targets[0].url, CANARY_URL_LEN, "https://docs.example.com/");
	assert_int_equal(agent_round_check(&p, &o, err, sizeof(err)), 0);

	snprintf(targets[0].url, CANARY_URL_LEN, "https://example.com.evil.net/");
	assert_int_equal(agent_round_check(&p, &o, err, sizeof(err)), CANARY_EDENIED);
	assert_non_null(strstr(err, "targets[0].url"));
	assert_non_null(strstr(err, "example.com.evil.net"));

	snprintf(targets[0].url, CANARY_URL_LEN, "ftp://docs.example.com/");
	assert_int_equal(agent_round_check(&p, &o, err, sizeof(err)), CANARY_EDENIED);
	assert_non_null(strstr(err, "http and https"));

	snprintf(targets[0].url, CANARY_URL_LEN, "not a url");
	assert_int_equal(agent_round_check(&p, &o, err, sizeof(err)), CANARY_EINVAL);

	/* A user:password@ or an odd port does not sneak past the host check. */
	snprintf(targets[0].url, CANARY_URL_LEN, "http://docs.example.com@evil.net:8080/");
	assert_int_equal(agent_round_check(&p, &o, err, sizeof(err)), CANARY_EDENIED);

	/* A host longer than any allowlist entry is not cut to fit one: with
	 * the longest entry there is, that entry plus one letter is refused. */
	char name[AGENT_HOST_LEN + 1];
	memset(name, 'a', AGENT_HOST_LEN - 1);
	name[AGENT_HOST_LEN - 1] = '\0';
	assert_int_equal(agent_allow_add(&allow, name, err, sizeof(err)), 0);
	snprintf(targets[0].url, CANARY_URL_LEN, "http://%s/", name);
	assert_int_equal(agent_round_check(&p, &o, err, sizeof(err)), 0);
	snprintf(targets[0].url, CANARY_URL_LEN, "http://%sb/", name);
	assert_int_equal(agent_round_check(&p, &o, err, sizeof(err)), CANARY_EDENIED);

	snprintf(targets[0].url, CANARY_URL_LEN, "https://docs.example.com/");
	o.follow = 1; /* a Location could lead off the allowlist */
	assert_int_equal(agent_round_check(&p, &o, err, sizeof(err)), CANARY_EDENIED);
	assert_non_null(strstr(err, "redirects"));
	o.follow = 0;

	snprintf(targets[0].method, sizeof(targets[0].method), "POST");
	assert_int_equal(agent_round_check(&p, &o, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "method"));

	snprintf(targets[0].method, sizeof(targets[0].method), "GET");
	targets[0].requests = 60;
	targets[1] = targets[0];
	snprintf(targets[1].id, CANARY_ID_LEN, "t1");
	p.n_targets = 2; /* 120 in all, over the cap of 100 */
	assert_int_equal(agent_round_check(&p, &o, err, sizeof(err)), CANARY_EDENIED);
	assert_non_null(strstr(err, "cap of 100"));
}

static void
test_warming_request_goes_alone(void **state)
{
	struct event_base *base = event_base_new();
	struct agent_engine *e = engine_on(base, 8);
	struct canary_probe p;
	struct ended end;
	struct agent_round *r;

	(void)state;
	agent_target_cool();
	probe_init(&p, "/isr-slow", 20);
	targets[0].cache = CANARY_CACHE_ISR;
	r = run_round(base, e, &p, 0, &end);
	const struct canary_target_report *t = &agent_round_report(r)->targets[0];
	assert_int_equal(agent_target_early(), 0); /* nothing overtook the warming request */
	assert_int_equal(t->cache_warmup, 1);
	assert_int_equal(t->cache_hit, 19);
	assert_int_equal(t->cache_miss, 0);
	assert_int_equal(agent_round_verdicts(r), 0);
	agent_round_free(r);
	agent_engine_free(e);
	event_base_free(base);
}

static void
test_override_spread(void **state)
{
	struct event_base *base = event_base_new();
	struct agent_engine *e = engine_on(base, 4);
	struct canary_probe p;
	struct ended end;
	const double shares[] = {0, 10, 50, 100};
	const uint64_t want[] = {0, 10, 50, 100};

	(void)state;
	for (size_t i = 0; i < sizeof(shares) / sizeof(shares[0]); i++) {
		probe_init(&p, "/override", 100);
		snprintf(p.expect.server[1].id, CANARY_UUID_LEN, AGENT_TARGET_S1);
		p.expect.n_server = 2;
		p.expect.server[0].share = 100;
		p.override.enabled = 1;
		p.override.share = shares[i];
		snprintf(p.override.worker, CANARY_ID_LEN, "middleware");
		snprintf(p.override.version_id, CANARY_UUID_LEN, AGENT_TARGET_M1);
		snprintf(p.override.pin, CANARY_UUID_LEN, AGENT_TARGET_S1);
		struct agent_round *r = run_round(base, e, &p, 0, &end);
		const struct canary_target_report *t = &agent_round_report(r)->targets[0];
		assert_int_equal(t->sent, 100);
		assert_int_equal(t->override_sent, want[i]);
		assert_int_equal(t->override_violations, 0);
		assert_int_equal(t->unknown_versions, 0);
		agent_round_free(r);
	}
	agent_engine_free(e);
	event_base_free(base);
}

static void
test_budget_then_next_round(void **state)
{
	struct event_base *base = event_base_new();
	struct agent_engine *e = engine_on(base, 4);
	struct canary_probe p;
	struct ended end;
	struct agent_round *r;

	(void)state;
	probe_init(&p, "/slow-head", 8);
	r = run_round(base, e, &p, 200, &end);
	assert_true(agent_round_report(r)->partial);
	assert_int_equal(agent_round_report(r)->targets[0].sent, 0); /* none finished */
	assert_int_equal(agent_engine_inflight(e), 0);
	agent_round_free(r);
	/* The same engine serves the next round. */
	probe_init(&p, "/ok", 30);
	r = run_round(base, e, &p, 0, &end);
	assert_false(agent_round_report(r)->partial);
	assert_int_equal(agent_round_report(r)->targets[0].sent, 30);
	assert_int_equal(agent_round_report(r)->targets[0].responses, 30);
	agent_round_free(r);
	agent_engine_free(e);
	event_base_free(base);
}

static void
test_free_while_running(void **state)
{
	struct event_base *base = event_base_new();
	struct agent_engine *e = engine_on(base, 4);
	struct agent_round_opts o = {.max_requests = 100};
	struct canary_probe p;
	struct agent_round *r = NULL;
	struct ended end = {.base = base};
	char err[CANARY_ERRLEN];

	(void)state;
	probe_init(&p, "/slow-head", 4);
	assert_int_equal(agent_round_start(e, base, &p, 0, &o, on_end, &end, &r, err, sizeof(err)),
	                 0);
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 0);
	assert_true(agent_engine_inflight(e) > 0);
	agent_round_free(r); /* drops the transfers; on_end is not called */
	assert_int_equal(agent_engine_inflight(e), 0);
	assert_int_equal(end.calls, 0);
	agent_engine_free(e);
	event_base_free(base);
}

/* Answers with a status outside 100..599 (999) end up as http errors in
 * statuses_other, and the round's report still encodes. */
static void
test_status_999_report_encodes(void **state)
{
	struct event_base *base = event_base_new();
	struct agent_engine *e = engine_on(base, 2);
	struct canary_probe p;
	struct ended end;
	struct canary_report *rep;
	char err[CANARY_ERRLEN];
	char *text = NULL;

	(void)state;
	probe_init(&p, "/status999", 6);
	struct agent_round *r = run_round(base, e, &p, 0, &end);
	rep = agent_round_report(r);
	assert_int_equal(rep->targets[0].sent, 6);
	assert_int_equal(rep->targets[0].responses, 6);
	assert_int_equal(rep->targets[0].statuses_other, 6);
	assert_int_equal(rep->targets[0].errors[CANARY_ERRCLASS_HTTP], 6);
	snprintf(rep->agent_id, sizeof(rep->agent_id), "a1");
	snprintf(rep->region, sizeof(rep->region), "enam");
	if (canary_report_encode(rep, &text, NULL, err, sizeof(err)) != 0) {
		fail_msg("encode: %s", err);
	}
	free(text);
	agent_round_free(r);
	agent_engine_free(e);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_warming_request_goes_alone),
	    cmocka_unit_test(test_override_spread),
	    cmocka_unit_test(test_budget_then_next_round),
	    cmocka_unit_test(test_free_while_running),
	    cmocka_unit_test(test_status_999_report_encodes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
