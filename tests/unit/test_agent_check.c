/*
 * test_agent_check.c: the per-response checks against canned responses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "err.h"

#define M0 "00000000-0000-4000-8000-0000000000a0"
#define M1 "00000000-0000-4000-8000-0000000000a1"
#define S0 "00000000-0000-4000-8000-0000000000b0"
#define S1 "00000000-0000-4000-8000-0000000000b1"

struct fixture {
	struct canary_target t;
	struct canary_expect e;
	struct canary_override o;
	struct agent_check_keys keys;
	struct canary_target_report rep;
};

static struct fixture fx;

/* A target expecting 200, versions m0+s0 (and m1 pinned to s1 at 0%). */
static int
setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	strcpy(fx.t.id, "home");
	strcpy(fx.t.url, "http://docs.example.com/");
	strcpy(fx.t.method, "GET");
	fx.t.requests = 10;
	fx.t.timeout_ms = 1000;
	fx.t.expect_status[0] = 200;
	fx.t.n_expect_status = 1;
	strcpy(fx.e.middleware[0].id, M0);
	fx.e.middleware[0].share = 100;
	strcpy(fx.e.pins[0], S0);
	fx.e.n_middleware = 1;
	strcpy(fx.e.server[0].id, S0);
	fx.e.server[0].share = 100;
	fx.e.n_server = 1;
	canary_hist_init(&fx.rep.latency);
	agent_check_keys_init(&fx.keys);
	return 0;
}

/* A canary step's expectation: m1 pinned to s1 beside m0 pinned to s0,
 * both servers deployed. */
static void
expect_both_pairs(void)
{
	strcpy(fx.e.middleware[1].id, M1);
	strcpy(fx.e.pins[1], S1);
	fx.e.n_middleware = 2;
	strcpy(fx.e.server[1].id, S1);
	fx.e.n_server = 2;
}

static struct agent_response
resp(int status, const char *mw, const char *srv, const char *cache)
{
	struct agent_response r;
	memset(&r, 0, sizeof(r));
	r.status = status;
	r.middleware = mw;
	r.server = srv;
	r.cache = cache;
	r.first_byte_us = 1500;
	r.total_us = 2000;
	r.key = -1;
	return r;
}

static unsigned
check(const struct agent_response *r)
{
	return agent_check_response(&fx.t, &fx.e, &fx.o, r, &fx.keys, &fx.rep);
}

static void
test_clean_response(void **state)
{
	(void)state;
	struct agent_response r = resp(200, M0, S0, NULL);
	assert_int_equal(check(&r), 0);
	assert_int_equal(fx.rep.sent, 1);
	assert_int_equal(fx.rep.responses, 1);
	assert_int_equal(fx.rep.n_statuses, 1);
	assert_int_equal(fx.rep.statuses[0].status, 200);
	assert_int_equal(fx.rep.n_pairs, 1);
	assert_string_equal(fx.rep.pairs[0].middleware, M0);
	assert_string_equal(fx.rep.pairs[0].server, S0);
	assert_int_equal(fx.rep.latency.count, 1);
	assert_int_equal(fx.rep.unknown_versions + fx.rep.affinity_violations, 0);
	assert_int_equal(fx.rep.n_samples, 0);
}

static void
test_unexpected_status_is_http_error(void **state)
{
	(void)state;
	struct agent_response r = resp(503, NULL, NULL, NULL);
	unsigned v = check(&r);
	assert_int_equal(v,
	                 AGENT_V_STATUS); /* an error page with no versions: no version verdict */
	assert_int_equal(fx.rep.errors[CANARY_ERRCLASS_HTTP], 1);
	assert_int_equal(fx.rep.unknown_versions, 0);
	assert_int_equal(fx.rep.n_samples, 1);
	assert_non_null(strstr(fx.rep.samples[0], "503"));
	/* A 500 from the server itself still has its versions checked. */
	r = resp(500, M1, S0, NULL);
	v = check(&r);
	assert_true(v & AGENT_V_STATUS);
	assert_true(v & AGENT_V_UNKNOWN);
	assert_int_equal(fx.rep.errors[CANARY_ERRCLASS_HTTP], 2);
	assert_int_equal(fx.rep.n_statuses, 2);
}

static void
test_transport_error(void **state)
{
	(void)state;
	struct agent_response r = resp(0, NULL, NULL, NULL);
	r.errclass = CANARY_ERRCLASS_TIMEOUT;
	r.error = "Operation timed out after 100 milliseconds";
	assert_int_equal(check(&r), AGENT_V_TRANSPORT);
	assert_int_equal(fx.rep.sent, 1);
	assert_int_equal(fx.rep.responses, 0);
	assert_int_equal(fx.rep.errors[CANARY_ERRCLASS_TIMEOUT], 1);
	assert_int_equal(fx.rep.latency.count, 0);
	assert_non_null(strstr(fx.rep.samples[0], "timeout"));
}

static void
test_missing_or_unknown_versions(void **state)
{
	(void)state;
	struct agent_response r = resp(200, NULL, S0, NULL);
	assert_true(check(&r) & AGENT_V_UNKNOWN);
	r = resp(200, M0, NULL, NULL); /* no server header and no hit */
	assert_true(check(&r) & AGENT_V_UNKNOWN);
	r = resp(200, "not-a-uuid", S0, NULL);
	assert_true(check(&r) & AGENT_V_UNKNOWN);
	r = resp(200, M0, S1, NULL); /* s1 is not deployed in this step */
	assert_true(check(&r) & AGENT_V_UNKNOWN);
	assert_int_equal(fx.rep.unknown_versions, 4);
	/* Non-UUID and missing versions are not recorded as pairs. */
	assert_int_equal(fx.rep.n_pairs, 1);
	assert_string_equal(fx.rep.pairs[0].server, S1);
}

static void
test_affinity_violation(void **state)
{
	(void)state;
	/* Canary step: m0:90 + m1:10, servers s0 and s1 both deployed. */
	expect_both_pairs();
	struct agent_response r = resp(200, M1, S1, NULL);
	assert_int_equal(check(&r), 0);
	r = resp(200, M1, S0, NULL); /* m1 served by s0: skew */
	unsigned v = check(&r);
	assert_int_equal(v, AGENT_V_AFFINITY);
	r = resp(200, M0, S1, NULL);
	assert_int_equal(check(&r), AGENT_V_AFFINITY);
	assert_int_equal(fx.rep.affinity_violations, 2);
	assert_int_equal(fx.rep.unknown_versions, 0);
	assert_int_equal(fx.rep.n_pairs, 3);
	assert_non_null(strstr(fx.rep.samples[0], "affinity"));
}

static void
test_hit_without_server_is_fine(void **state)
{
	(void)state;
	fx.t.cache = CANARY_CACHE_ISR;
	struct agent_response r = resp(200, M0, NULL, "HIT");
	assert_int_equal(check(&r), 0);
	assert_int_equal(fx.rep.cache_hit, 1);
	assert_int_equal(fx.rep.n_pairs, 1);
	assert_string_equal(fx.rep.pairs[0].server, "");
	/* A hit that does name a server is still held to the pin. */
	r = resp(200, M0, S1, "HIT");
	assert_true(check(&r) & AGENT_V_AFFINITY);
}

static void
test_isr_warming_then_hits(void **state)
{
	(void)state;
	fx.t.cache = CANARY_CACHE_ISR;
	struct agent_response r = resp(200, M0, S0, NULL);
	r.warming = 1;
	assert_int_equal(check(&r), 0);
	r = resp(200, M0, NULL, "STALE");
	assert_int_equal(check(&r), 0);
	r = resp(200, M0, S0, NULL); /* a miss after warming */
	assert_int_equal(check(&r), AGENT_V_CACHE_MISS);
	r = resp(200, M0, S0, "MISS");
	assert_int_equal(check(&r), AGENT_V_CACHE_MISS);
	assert_int_equal(fx.rep.cache_warmup, 1);
	assert_int_equal(fx.rep.cache_stale, 1);
	assert_int_equal(fx.rep.cache_miss, 2);
	assert_int_equal(fx.rep.cache_hit, 0);
}

static void
test_no_cache_check_on_plain_target(void **state)
{
	(void)state;
	struct agent_response r = resp(200, M0, S0, NULL);
	assert_int_equal(check(&r), 0);
	assert_int_equal(fx.rep.cache_miss + fx.rep.cache_hit, 0);
}

static void
test_body_match(void **state)
{
	(void)state;
	strcpy(fx.t.body_match, "<title>Docs</title>");
	const char *good = "<html><head><title>Docs</title></head></html>";
	const char *bad = "<html><head><title>Error</title></head></html>";
	struct agent_response r = resp(200, M0, S0, NULL);
	r.body = good;
	r.body_len = strlen(good);
	assert_int_equal(check(&r), 0);
	r.body = bad;
	r.body_len = strlen(bad);
	assert_int_equal(check(&r), AGENT_V_BODY);
	/* The needle cut by the body cap does not match. */
	r.body = good;
	r.body_len = 20;
	assert_int_equal(check(&r), AGENT_V_BODY);
	assert_int_equal(fx.rep.body_mismatches, 2);
}

static void
test_override(void **state)
{
	(void)state;
	/* Dark step: m0:100, m1 reached only through the override. */
	fx.o.enabled = 1;
	fx.o.share = 10;
	strcpy(fx.o.worker, "middleware");
	strcpy(fx.o.version_id, M1);
	strcpy(fx.o.pin, S1);
	struct agent_response r = resp(200, M1, S1, NULL);
	r.overridden = 1;
	assert_int_equal(check(&r), 0);
	r = resp(200, M0, S0, NULL); /* override silently ignored */
	r.overridden = 1;
	assert_int_equal(check(&r), AGENT_V_OVERRIDE);
	r = resp(200, M1, S0, NULL); /* override honoured, pin not */
	r.overridden = 1;
	unsigned v = check(&r);
	assert_true(v & AGENT_V_OVERRIDE);
	assert_true(v & AGENT_V_AFFINITY);
	r = resp(200, M1, S1, NULL); /* m1 without the override: not expected */
	assert_true(check(&r) & AGENT_V_UNKNOWN);
	assert_int_equal(fx.rep.override_sent, 3);
	assert_int_equal(fx.rep.override_violations, 2);
}

static void
test_version_keys(void **state)
{
	(void)state;
	expect_both_pairs();
	struct agent_response r = resp(200, M0, S0, NULL);
	r.key = 3;
	assert_int_equal(check(&r), 0);
	assert_int_equal(check(&r), 0);
	r = resp(200, M1, S1, NULL);
	r.key = 4;
	assert_int_equal(check(&r), 0);
	r.key = 3; /* key 3 moves to m1: a violation, counted once */
	assert_int_equal(check(&r), AGENT_V_KEY);
	r = resp(200, M0, S0, NULL);
	r.key = 3;
	assert_int_equal(check(&r), 0);
	assert_int_equal(fx.rep.key_violations, 1);
}

static void
test_unchecked_versions_are_recorded(void **state)
{
	(void)state;
	fx.e.n_middleware = 0; /* probe mode without --expect-* */
	fx.e.n_server = 0;
	struct agent_response r = resp(200, M1, S0, NULL);
	assert_int_equal(check(&r), 0);
	r = resp(200, NULL, NULL, NULL);
	assert_int_equal(check(&r), 0);
	assert_int_equal(fx.rep.n_pairs, 1);
	assert_int_equal(fx.rep.unknown_versions, 0);
}

static void
test_table_caps(void **state)
{
	(void)state;
	char mw[CANARY_UUID_LEN];
	fx.e.n_middleware = 0;
	fx.e.n_server = 0;
	for (int i = 0; i < CANARY_MAX_PAIRS + 3; i++) {
		snprintf(mw, sizeof(mw), "00000000-0000-4000-8000-%012d", i);
		struct agent_response r = resp(200 + (i % 2), mw, S0, NULL);
		check(&r);
	}
	for (int s = 0; s < CANARY_MAX_SEEN_STATUS + 4; s++) {
		struct agent_response r = resp(400 + s, NULL, NULL, NULL);
		check(&r);
	}
	assert_int_equal(fx.rep.n_pairs, CANARY_MAX_PAIRS);
	assert_int_equal(fx.rep.pairs_other, 3);
	assert_int_equal(fx.rep.n_statuses, CANARY_MAX_SEEN_STATUS);
	assert_int_equal(fx.rep.statuses_other, 6); /* 200, 201 and 400..419: 22 distinct */
	assert_int_equal(fx.rep.n_samples, CANARY_MAX_SAMPLES);
	assert_int_equal(fx.rep.responses, CANARY_MAX_PAIRS + 3 + CANARY_MAX_SEEN_STATUS + 4);
}

/* Version values are recognised as UUIDs by comparing with the expected
 * ids first: an empty expected id (no pin given) must not make an empty or
 * odd header value pass as one. */
static void
test_uuid_shortcut_keeps_rules(void **state)
{
	(void)state;
	fx.e.pins[0][0] = '\0'; /* probe --expect-middleware without --expect-server */
	fx.e.n_server = 0;
	struct agent_response r = resp(200, "", S0, NULL);
	assert_true(check(&r) & AGENT_V_UNKNOWN);
	assert_int_equal(fx.rep.n_pairs, 0);
	r = resp(200, M0, "", NULL);
	check(&r);
	assert_int_equal(fx.rep.n_pairs, 0); /* "" is no server version */
	r = resp(200, M0, "not-a-uuid", NULL);
	check(&r);
	assert_int_equal(fx.rep.n_pairs, 0);
	r = resp(200, M0, S1, NULL); /* unexpected, but a UUID: recorded */
	check(&r);
	assert_int_equal(fx.rep.n_pairs, 1);
	assert_string_equal(fx.rep.pairs[0].server, S1);
}

/* A status the wire form cannot carry (a server may answer 999) is an
 * answer with an http error, counted in statuses_other, and the report
 * still encodes. */
static void
test_status_outside_wire_range(void **state)
{
	struct canary_report rep;
	char err[CANARY_ERRLEN];
	char *text = NULL;
	(void)state;
	struct agent_response r = resp(999, M0, S0, NULL);
	unsigned v = check(&r);
	assert_true(v & AGENT_V_STATUS);
	assert_int_equal(fx.rep.responses, 1);
	assert_int_equal(fx.rep.errors[CANARY_ERRCLASS_HTTP], 1);
	assert_int_equal(fx.rep.n_statuses, 0);
	assert_int_equal(fx.rep.statuses_other, 1);
	assert_non_null(strstr(fx.rep.samples[0], "999"));
	r = resp(42, NULL, NULL, NULL);
	check(&r);
	assert_int_equal(fx.rep.statuses_other, 2);
	assert_int_equal(fx.rep.errors[CANARY_ERRCLASS_HTTP], 2);
	strcpy(fx.rep.id, "home");
	memset(&rep, 0, sizeof(rep));
	rep.proto_version = CANARY_PROTO_VERSION;
	strcpy(rep.agent_id, "a1");
	strcpy(rep.region, "enam");
	strcpy(rep.rollout_id, "r1");
	rep.targets = &fx.rep;
	rep.n_targets = 1;
	if (canary_report_encode(&rep, &text, NULL, err, sizeof(err)) != 0) {
		fail_msg("encode: %s", err);
	}
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_clean_response, setup),
	    cmocka_unit_test_setup(test_unexpected_status_is_http_error, setup),
	    cmocka_unit_test_setup(test_transport_error, setup),
	    cmocka_unit_test_setup(test_missing_or_unknown_versions, setup),
	    cmocka_unit_test_setup(test_affinity_violation, setup),
	    cmocka_unit_test_setup(test_hit_without_server_is_fine, setup),
	    cmocka_unit_test_setup(test_isr_warming_then_hits, setup),
	    cmocka_unit_test_setup(test_no_cache_check_on_plain_target, setup),
	    cmocka_unit_test_setup(test_body_match, setup),
	    cmocka_unit_test_setup(test_override, setup),
	    cmocka_unit_test_setup(test_version_keys, setup),
	    cmocka_unit_test_setup(test_unchecked_versions_are_recorded, setup),
	    cmocka_unit_test_setup(test_table_caps, setup),
	    cmocka_unit_test_setup(test_status_outside_wire_range, setup),
	    cmocka_unit_test_setup(test_uuid_shortcut_keeps_rules, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
