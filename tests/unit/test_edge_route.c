/*
 * test_edge_route.c: version picks, override parsing, ids and faults of
 * canary-edge's data plane.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "edge_route.h"
#include "err.h"

static const char *const A = "11111111-1111-4111-8111-111111111111"; /* older */
static const char *const B = "22222222-2222-4222-8222-222222222222"; /* newer */

static struct edge_split
split2(int pa, int pb)
{
	struct edge_split s = {.n = 2};

	s.v[0].id = A;
	s.v[0].percentage = pa;
	s.v[0].number = 1;
	s.v[1].id = B;
	s.v[1].percentage = pb;
	s.v[1].number = 2;
	return s;
}

static void
test_rng_reproducible_and_uuid_shape(void **state)
{
	struct edge_rng a, b;
	char u1[EDGE_UUID_LEN], u2[EDGE_UUID_LEN];

	(void)state;
	edge_rng_seed(&a, 42);
	edge_rng_seed(&b, 42);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(edge_rng_next(&a), edge_rng_next(&b));
	}
	edge_rng_uuid(&a, u1);
	edge_rng_uuid(&a, u2);
	assert_int_equal(strlen(u1), 36);
	assert_string_not_equal(u1, u2);
	assert_int_equal(u1[14], '4');
	assert_true(strchr("89ab", u1[19]) != NULL);
	assert_int_equal(u1[8], '-');
	assert_int_equal(u1[23], '-');
	for (int i = 0; i < 1000; i++) {
		double d = edge_rng_unit(&a);

		assert_true(d >= 0 && d < 1);
	}
}

static void
test_override_parse(void **state)
{
	char out[EDGE_UUID_LEN];

	(void)state;
	assert_int_equal(
	    edge_route_override("main-server=\"abc\"", "main-server", out, sizeof(out)), 1);
	assert_string_equal(out, "abc");
	/* Several members, spaces, parameters; the right key is picked. */
	assert_int_equal(edge_route_override("middleware=\"m1\";p=1, main-server=\"s1\"",
	                                     "main-server", out, sizeof(out)),
	                 1);
	assert_string_equal(out, "s1");
	assert_int_equal(edge_route_override("middleware=\"m1\", main-server=\"s1\"", "middleware",
	                                     out, sizeof(out)),
	                 1);
	assert_string_equal(out, "m1");
	/* The last duplicate wins. */
	assert_int_equal(edge_route_override("a=\"x\", a=\"y\"", "a", out, sizeof(out)), 1);
	assert_string_equal(out, "y");
	/* Escapes inside strings. */
	assert_int_equal(edge_route_override("a=\"x\\\"y\"", "a", out, sizeof(out)), 1);
	assert_string_equal(out, "x\"y");
	/* OpenNext's guide keys by "server": that is not the worker's name. */
	assert_int_equal(edge_route_override("server=\"s1\"", "main-server", out, sizeof(out)), 0);
	/* An invalid dictionary is ignored whole, even if the key is there. */
	assert_int_equal(
	    edge_route_override("main-server=\"s1\", Bad=1", "main-server", out, sizeof(out)), 0);
	assert_int_equal(
	    edge_route_override("main-server=\"s1\",", "main-server", out, sizeof(out)), 0);
	assert_int_equal(edge_route_override("main-server=\"s1", "main-server", out, sizeof(out)),
	                 0);
	assert_int_equal(edge_route_override("main-server=s1", "main-server", out, sizeof(out)), 0);
	assert_int_equal(edge_route_override("", "main-server", out, sizeof(out)), 0);
	assert_int_equal(edge_route_override(NULL, "main-server", out, sizeof(out)), 0);
	/* Other items are valid and skipped. */
	assert_int_equal(
	    edge_route_override("x=?1, y=(\"a\" b), z=:YWJj:, w=-1.5, main-server=\"s\"",
	                        "main-server", out, sizeof(out)),
	    1);
	assert_string_equal(out, "s");
	/* Numbers, byte sequences and spaces outside RFC 8941 make the whole
	 * dictionary invalid, so the override in it is ignored. */
	{
		static const char *const bad[] = {
		    "x=1.2.3, main-server=\"s\"",
		    "x=1., main-server=\"s\"",
		    "x=1.2345, main-server=\"s\"",
		    "x=1234567890123456, main-server=\"s\"",
		    "x=1234567890123.5, main-server=\"s\"",
		    "x=:a!b:, main-server=\"s\"",
		    "x=(\"a\"\t\"b\"), main-server=\"s\"",
		    "x;\tp=1, main-server=\"s\"",
		    "\tmain-server=\"s\"",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (edge_route_override(bad[i], "main-server", out, sizeof(out)) != 0) {
				fail_msg("accepted invalid dictionary %s", bad[i]);
			}
		}
		assert_int_equal(
		    edge_route_override("x=123456789012345, y=123456789012.123, "
		                        "z=( \"a\"  \"b\" ), w;  p=1,\tmain-server=\"s\"",
		                        "main-server", out, sizeof(out)),
		    1);
	}
	/* An empty string names no version: no override. */
	assert_int_equal(edge_route_override("main-server=\"\"", "main-server", out, sizeof(out)),
	                 0);
	/* A value that does not fit is not an override. */
	assert_int_equal(
	    edge_route_override("a=\"0123456789012345678901234567890123456789\"", "a", out, 8), 0);
}

static void
test_pick_override_only_for_deployed(void **state)
{
	struct edge_split s = split2(100, 0);

	(void)state;
	/* A deployed 0% version is reachable through an override. */
	for (uint64_t r = 0; r < 200; r++) {
		assert_int_equal(edge_route_pick(&s, B, NULL, r), 1);
	}
	/* A version outside the deployment: the split decides, silently. */
	for (uint64_t r = 0; r < 200; r++) {
		assert_int_equal(
		    edge_route_pick(&s, "33333333-3333-4333-8333-333333333333", NULL, r), 0);
	}
	{
		struct edge_split empty = {.n = 0};

		assert_int_equal(edge_route_pick(&empty, NULL, NULL, 1), -1);
	}
}

static void
test_version_key_sticky_as_percentage_grows(void **state)
{
	int prev[1000];
	int pcts[] = {0, 1, 10, 25, 50, 75, 99, 100};

	(void)state;
	for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++) {
		struct edge_split s = split2(100 - pcts[k], pcts[k]);
		int on_new = 0;

		for (int i = 0; i < 1000; i++) {
			char key[32];
			int v;

			snprintf(key, sizeof(key), "user-%d", i);
			v = edge_route_pick(&s, NULL, key, (uint64_t)i * 7919);
			/* The same key gives the same version, whatever the random input. */
			assert_int_equal(v, edge_route_pick(&s, NULL, key, 12345));
			if (k > 0 && prev[i] == 1) {
				assert_int_equal(v, 1); /* keys on the newer version stay */
			}
			prev[i] = v;
			on_new += v == 1;
		}
		/* Buckets are hashed evenly enough: within 6 points of the share. */
		assert_true(fabs(on_new / 10.0 - pcts[k]) <= 6.0);
	}
	/* The layout does not depend on the order versions are listed in. */
	{
		struct edge_split s = split2(70, 30);
		struct edge_split r = s;

		r.v[0] = s.v[1];
		r.v[1] = s.v[0];
		for (int i = 0; i < 1000; i++) {
			char key[32];

			snprintf(key, sizeof(key), "k%d", i);
			assert_string_equal(s.v[edge_route_pick(&s, NULL, key, 0)].id,
			                    r.v[edge_route_pick(&r, NULL, key, 0)].id);
		}
	}
}

static void
test_random_split_share_binomial(void **state)
{
	struct edge_rng rng;
	int pcts[] = {1, 10, 30, 50, 90};

	(void)state;
	edge_rng_seed(&rng, 7);
	for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++) {
		struct edge_split s = split2(100 - pcts[k], pcts[k]);
		const int n = 10000;
		double p = pcts[k] / 100.0;
		double sd = sqrt(n * p * (1 - p));
		int hits = 0;

		for (int i = 0; i < n; i++) {
			hits += edge_route_pick(&s, NULL, NULL, edge_rng_next(&rng)) == 1;
		}
		/* 99.9% two-sided: |z| < 3.29. */
		assert_true(fabs(hits - n * p) < 3.29 * sd);
	}
}

/* One versions array serves the API, the regions and the timeline. */
static void
test_versions_json(void **state)
{
	struct edge_split s = split2(90, 10);
	struct edge_split none = {.n = 0};
	cJSON *a = edge_route_versions_json(&s);
	char *text;

	(void)state;
	assert_non_null(a);
	text = cJSON_PrintUnformatted(a);
	assert_string_equal(text, "[{\"version_id\":\"11111111-1111-4111-8111-111111111111\","
	                          "\"percentage\":90},{\"version_id\":\"22222222-2222-4222-8222-"
	                          "222222222222\",\"percentage\":10}]");
	cJSON_free(text);
	cJSON_Delete(a);
	a = edge_route_versions_json(&none);
	assert_true(cJSON_IsArray(a));
	assert_int_equal(cJSON_GetArraySize(a), 0);
	cJSON_Delete(a);
}

static void
test_faults_parse(void **state)
{
	struct edge_faults f;
	char err[CANARY_ERRLEN];
	cJSON *b = cJSON_Parse(
	    "[{\"name\":\"CANARY_EDGE_ERROR_RATE\",\"type\":\"plain_text\",\"text\":\"0.25\"},"
	    "{\"name\":\"CANARY_EDGE_STATUS\",\"type\":\"plain_text\",\"text\":\"503\"},"
	    "{\"name\":\"CANARY_EDGE_LATENCY_MS\",\"type\":\"plain_text\",\"text\":\"120\"},"
	    "{\"name\":\"CANARY_EDGE_IGNORE_PIN\",\"type\":\"plain_text\",\"text\":\"1\"},"
	    "{\"name\":\"CANARY_EDGE_OVERRIDE_KEY\",\"type\":\"plain_text\",\"text\":\"server\"},"
	    "{\"name\":\"CANARY_EDGE_NO_CACHE\",\"type\":\"plain_text\",\"text\":\"true\"},"
	    "{\"name\":\"CANARY_EDGE_REGIONS\",\"type\":\"plain_text\",\"text\":\"enam, weur\"},"
	    "{\"name\":\"CANARY_EDGE_STATUS\",\"type\":\"secret_text\",\"text\":\"200\"}]");

	(void)state;
	assert_non_null(b);
	assert_int_equal(edge_faults_parse(b, "weur", &f, err, sizeof(err)), 0);
	assert_true(f.error_rate == 0.25);
	assert_int_equal(f.status, 503);
	assert_int_equal(f.latency_ms, 120);
	assert_int_equal(f.ignore_pin, 1);
	assert_string_equal(f.override_key, "server");
	assert_int_equal(f.no_cache, 1);
	/* A region not listed sees none of them. */
	assert_int_equal(edge_faults_parse(b, "apac", &f, err, sizeof(err)), 0);
	assert_int_equal(f.status, 0);
	assert_int_equal(f.latency_ms, 0);
	assert_int_equal(f.ignore_pin, 0);
	assert_true(f.error_rate == 0);
	cJSON_Delete(b);

	{
		static const char *const bad[] = {
		    "[{\"name\":\"CANARY_EDGE_ERROR_RATE\",\"type\":\"plain_text\",\"text\":\"1."
		    "5\"}]",
		    "[{\"name\":\"CANARY_EDGE_ERROR_RATE\",\"type\":\"plain_text\",\"text\":\"x\"}"
		    "]",
		    "[{\"name\":\"CANARY_EDGE_STATUS\",\"type\":\"plain_text\",\"text\":\"99\"}]",
		    "[{\"name\":\"CANARY_EDGE_STATUS\",\"type\":\"plain_text\",\"text\":\"50x\"}]",
		    "[{\"name\":\"CANARY_EDGE_LATENCY_MS\",\"type\":\"plain_text\",\"text\":\"-1\"}"
		    "]",
		    "[{\"name\":\"CANARY_EDGE_IGNORE_PIN\",\"type\":\"plain_text\",\"text\":"
		    "\"yes\"}]",
		    "[{\"name\":\"CANARY_EDGE_OVERRIDE_KEY\",\"type\":\"plain_text\",\"text\":\"\"}"
		    "]",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			b = cJSON_Parse(bad[i]);
			assert_int_equal(edge_faults_parse(b, NULL, &f, err, sizeof(err)),
			                 CANARY_EINVAL);
			assert_non_null(strstr(err, "bindings.CANARY_EDGE_"));
			cJSON_Delete(b);
		}
	}
	assert_int_equal(edge_faults_parse(NULL, NULL, &f, err, sizeof(err)), 0);
	assert_int_equal(f.status, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rng_reproducible_and_uuid_shape),
	    cmocka_unit_test(test_override_parse),
	    cmocka_unit_test(test_pick_override_only_for_deployed),
	    cmocka_unit_test(test_version_key_sticky_as_percentage_grows),
	    cmocka_unit_test(test_random_split_share_binomial),
	    cmocka_unit_test(test_versions_json),
	    cmocka_unit_test(test_faults_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
