/*
 * test_hist.c: the latency histogram (proto/hist.c).
 *
 * Quantiles are compared with the exact quantiles of the samples themselves
 * (rank ceil(q * n) of the sorted samples, computed here with integers);
 * merges are compared bucket for bucket with a histogram of the union.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hist.h"

#define N_SAMPLES 100000
#define TEST_PI   3.14159265358979323846

/* splitmix64: a small, fixed-seed generator, the same on every machine. */
static uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static double
rng_unit(uint64_t *s)
{
	return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0; /* 2^53 */
}

static double
rng_normal(uint64_t *s)
{
	double u1 = rng_unit(s), u2 = rng_unit(s);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * TEST_PI * u2);
}

/* Uniform 1..100 ms. */
static uint64_t
dist_uniform(uint64_t *s)
{
	return 1000 + rng_next(s) % 99001;
}

/* Lognormal with median 20 ms. */
static uint64_t
dist_lognormal(uint64_t *s)
{
	return (uint64_t)llround(exp(log(20000.0) + 0.6 * rng_normal(s)));
}

/* 85%: a tight mode around 4 ms; 15%: an exponential tail (mean 800 ms)
 * cut at 10 s, the shape of a cache that misses now and then. */
static uint64_t
dist_bimodal(uint64_t *s)
{
	double v;

	if (rng_next(s) % 100 < 85) {
		v = 4000.0 + 600.0 * rng_normal(s);
		return v < 150.0 ? 150 : (uint64_t)v;
	}
	v = 20000.0 - 800000.0 * log(rng_unit(s));
	return v > 10e6 ? 10000000 : (uint64_t)v;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The exact quantile of sorted[0..n): the sample of rank ceil(permille * n / 1000). */
static uint64_t
exact_quantile(const uint64_t *sorted, size_t n, unsigned permille)
{
	size_t rank = (n * permille + 999) / 1000;

	if (rank < 1) {
		rank = 1;
	}
	return sorted[rank - 1];
}

static void
assert_within_1pct(uint64_t got, uint64_t want, const char *what)
{
	double rel = fabs((double)got - (double)want) / (double)want;

	if (rel > 0.01) {
		fail_msg("%s: got %llu, exact %llu (%.3f%% off)", what, (unsigned long long)got,
		         (unsigned long long)want, rel * 100.0);
	}
}

static void
check_distribution(uint64_t (*gen)(uint64_t *), uint64_t seed, const char *name)
{
	uint64_t *v = malloc(N_SAMPLES * sizeof(*v));
	struct canary_hist *h = malloc(sizeof(*h));
	static const unsigned qs[3] = {500, 950, 990};
	char what[64];

	assert_non_null(v);
	assert_non_null(h);
	canary_hist_init(h);
	for (size_t i = 0; i < N_SAMPLES; i++) {
		v[i] = gen(&seed);
		canary_hist_record(h, v[i]);
	}
	qsort(v, N_SAMPLES, sizeof(*v), cmp_u64);
	assert_int_equal(h->count, N_SAMPLES);
	assert_int_equal(h->min_us, v[0]);
	assert_int_equal(h->max_us, v[N_SAMPLES - 1]);
	for (int i = 0; i < 3; i++) {
		snprintf(what, sizeof(what), "%s p%u", name, qs[i] / 10);
		assert_within_1pct(canary_hist_quantile(h, qs[i] / 1000.0),
		                   exact_quantile(v, N_SAMPLES, qs[i]), what);
	}
	assert_int_equal(canary_hist_quantile(h, 1.0), v[N_SAMPLES - 1]);
	assert_int_equal(canary_hist_quantile(h, 0.0), v[0]);
	free(v);
	free(h);
}

static void
test_quantile_uniform(void **state)
{
	(void)state;
	check_distribution(dist_uniform, 1, "uniform 1-100 ms");
}

static void
test_quantile_lognormal(void **state)
{
	(void)state;
	check_distribution(dist_lognormal, 2, "lognormal 20 ms");
}

static void
test_quantile_bimodal(void **state)
{
	(void)state;
	check_distribution(dist_bimodal, 3, "bimodal with a 10 s tail");
}

/* Every whole microsecond value in range is reported within 1% by its
 * bucket, and the buckets are in value order with no gaps. */
static void
test_bucket_error_bound_exhaustive(void **state)
{
	int prev = 0;

	(void)state;
	assert_int_equal(canary_hist_bucket(CANARY_HIST_MIN_US), 0);
	for (uint64_t v = CANARY_HIST_MIN_US; v <= CANARY_HIST_MAX_US; v++) {
		int b = canary_hist_bucket(v);
		uint64_t r;

		if (b != prev) {
			assert_int_equal(b, prev + 1);
			prev = b;
		}
		r = canary_hist_bucket_value(b);
		if ((r > v ? r - v : v - r) * 100 > v) {
			fail_msg("value %llu: bucket %d reports %llu", (unsigned long long)v, b,
			         (unsigned long long)r);
		}
	}
	assert_true(prev < CANARY_HIST_NBUCKETS);
	assert_int_equal(canary_hist_bucket_value(-1), 0);
	assert_int_equal(canary_hist_bucket_value(CANARY_HIST_NBUCKETS), 0);
}

/* The rank is ceil(q * n): with 100 samples 1..100 ms, p95 is the 95th. */
static void
test_quantile_rank_definition(void **state)
{
	struct canary_hist h;

	(void)state;
	canary_hist_init(&h);
	for (uint64_t i = 1; i <= 100; i++) {
		canary_hist_record(&h, i * 1000);
	}
	assert_int_equal(canary_hist_bucket(canary_hist_quantile(&h, 0.95)),
	                 canary_hist_bucket(95000));
	assert_int_equal(canary_hist_bucket(canary_hist_quantile(&h, 0.5)),
	                 canary_hist_bucket(50000));
	assert_int_equal(canary_hist_bucket(canary_hist_quantile(&h, 0.501)),
	                 canary_hist_bucket(51000));
	assert_int_equal(canary_hist_bucket(canary_hist_quantile(&h, 0.001)),
	                 canary_hist_bucket(1000));
	assert_int_equal(canary_hist_quantile(&h, 1.0), 100000);
	assert_int_equal(canary_hist_quantile(&h, 2.0), 100000);
	assert_int_equal(canary_hist_quantile(&h, -1.0), 1000);
	assert_int_equal(canary_hist_quantile(&h, NAN), 1000);
}

/* The middle of a bucket is clamped to the exact min and max. */
static void
test_quantile_clamped_to_min_max(void **state)
{
	struct canary_hist h;

	(void)state;
	canary_hist_init(&h);
	for (int i = 0; i < 10; i++) {
		canary_hist_record(&h, 5000);
	}
	assert_int_equal(canary_hist_quantile(&h, 0.5), 5000);
	assert_int_equal(canary_hist_quantile(&h, 0.99), 5000);
}

static void
test_merge_equals_union(void **state)
{
	struct canary_hist *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct canary_hist *all = calloc(1, sizeof(*all)), *empty = calloc(1, sizeof(*empty));
	uint64_t seed = 7;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(all);
	assert_non_null(empty);
	for (int i = 0; i < N_SAMPLES; i++) {
		uint64_t v = i % 3 == 0 ? dist_bimodal(&seed) : dist_lognormal(&seed);

		canary_hist_record(i < N_SAMPLES / 2 ? a : b, v);
		canary_hist_record(all, v);
	}
	canary_hist_merge(a, b);
	assert_int_equal(a->count, all->count);
	assert_int_equal(a->min_us, all->min_us);
	assert_int_equal(a->max_us, all->max_us);
	assert_int_equal(a->sum_us, all->sum_us);
	for (int i = 0; i < CANARY_HIST_NBUCKETS; i++) {
		if (a->buckets[i] != all->buckets[i]) {
			fail_msg("bucket %d: merged %u, union %u", i, a->buckets[i],
			         all->buckets[i]);
		}
	}
	/* Merging into an empty histogram copies; merging an empty one is a no-op
	 * (an empty histogram's min 0 must not become the minimum). */
	canary_hist_merge(empty, all);
	assert_memory_equal(empty, all, sizeof(*all));
	canary_hist_init(b);
	canary_hist_merge(all, b);
	assert_memory_equal(empty, all, sizeof(*all));
	free(a);
	free(b);
	free(all);
	free(empty);
}

static void
test_merge_saturates(void **state)
{
	struct canary_hist a, b;

	(void)state;
	canary_hist_init(&a);
	canary_hist_init(&b);
	a.count = 10;
	a.min_us = a.max_us = 200;
	a.buckets[canary_hist_bucket(200)] = UINT32_MAX - 1;
	a.sum_us = CANARY_HIST_INT_MAX - 1;
	canary_hist_record(&b, 200);
	canary_hist_record(&b, 200);
	canary_hist_merge(&a, &b);
	assert_int_equal(a.buckets[canary_hist_bucket(200)], UINT32_MAX);
	assert_int_equal(a.sum_us, CANARY_HIST_INT_MAX);
	assert_int_equal(a.count, 12);
}

static void
test_clamping(void **state)
{
	struct canary_hist h;
	int last = canary_hist_bucket(CANARY_HIST_MAX_US);

	(void)state;
	assert_int_equal(canary_hist_bucket(0), 0);
	assert_int_equal(canary_hist_bucket(99), 0);
	assert_int_equal(canary_hist_bucket(UINT64_MAX), last);
	assert_int_equal(canary_hist_bucket(CANARY_HIST_MAX_US + 1), last);
	assert_true(canary_hist_bucket(CANARY_HIST_MAX_US - 1000000) < last);
	canary_hist_init(&h);
	canary_hist_record(&h, 5);
	canary_hist_record(&h, 90000000);
	assert_int_equal(h.buckets[0], 1);
	assert_int_equal(h.buckets[last], 1);
	assert_int_equal(h.min_us, 5);
	assert_int_equal(h.max_us, 90000000);
	assert_int_equal(canary_hist_quantile(&h, 0.0), 5);
	assert_int_equal(canary_hist_quantile(&h, 1.0), 90000000);
	/* The first bucket stands for ~100 us, clamped into [min, max]. */
	assert_int_equal(canary_hist_quantile(&h, 0.5), canary_hist_bucket_value(0));
	/* Rank 2 of 2 lands in the last bucket, reported as its middle. */
	assert_int_equal(canary_hist_quantile(&h, 0.75), canary_hist_bucket_value(last));
}

static void
test_empty(void **state)
{
	struct canary_hist h, back;
	cJSON *j;
	char *text, err[CANARY_ERRLEN];

	(void)state;
	canary_hist_init(&h);
	assert_int_equal(canary_hist_quantile(&h, 0.5), 0);
	assert_int_equal(canary_hist_quantile(&h, 1.0), 0);
	assert_int_equal(canary_hist_quantile(&h, 0.0), 0);
	j = canary_hist_encode(&h);
	assert_non_null(j);
	text = cJSON_PrintUnformatted(j);
	assert_string_equal(text, "{\"n\":0,\"min\":0,\"max\":0,\"sum\":0,\"b\":[]}");
	memset(&back, 0xff, sizeof(back));
	assert_int_equal(canary_hist_decode(j, "latency", &back, err, sizeof(err)), 0);
	assert_memory_equal(&back, &h, sizeof(h));
	cJSON_free(text);
	cJSON_Delete(j);
}

static void
test_encode_exact_text(void **state)
{
	struct canary_hist h;
	cJSON *j;
	char *text, want[128];

	(void)state;
	canary_hist_init(&h);
	canary_hist_record(&h, 100);
	canary_hist_record(&h, 100);
	canary_hist_record(&h, 250);
	j = canary_hist_encode(&h);
	assert_non_null(j);
	text = cJSON_PrintUnformatted(j);
	snprintf(want, sizeof(want),
	         "{\"n\":3,\"min\":100,\"max\":250,\"sum\":450,\"b\":[0,2,%d,1]}",
	         canary_hist_bucket(250));
	assert_string_equal(text, want);
	cJSON_free(text);
	cJSON_Delete(j);
}

static void
test_round_trip(void **state)
{
	struct canary_hist *h = calloc(1, sizeof(*h)), *back = calloc(1, sizeof(*back));
	char err[CANARY_ERRLEN], *text;
	uint64_t seed = 11;
	cJSON *j, *parsed;

	(void)state;
	assert_non_null(h);
	assert_non_null(back);
	for (int i = 0; i < 5000; i++) {
		canary_hist_record(h, dist_bimodal(&seed));
	}
	canary_hist_record(h, 3);          /* clamped low */
	canary_hist_record(h, 200000000);  /* clamped high */
	canary_hist_record(h, UINT64_MAX); /* beyond what a JSON number holds */
	assert_int_equal(h->max_us, CANARY_HIST_INT_MAX);
	j = canary_hist_encode(h);
	assert_non_null(j);
	text = cJSON_PrintUnformatted(j);
	assert_non_null(text);
	parsed = cJSON_Parse(text);
	assert_non_null(parsed);
	assert_int_equal(canary_hist_decode(parsed, "t.latency", back, err, sizeof(err)), 0);
	assert_memory_equal(back, h, sizeof(*h));
	cJSON_Delete(parsed);
	cJSON_Delete(j);
	cJSON_free(text);
	free(h);
	free(back);
}

struct reject_case {
	const char *json;
	const char *msg; /* the whole error message */
};

/* One sample of 250 us lies in bucket 80 (octave 1: 200..400 us, part 16). */
static const struct reject_case reject_cases[] = {
    {"[]", "lat: expected an object, got []"},
    {"{\"min\":250,\"max\":250,\"sum\":250,\"b\":[80,1]}", "lat.n: required field is missing"},
    {"{\"n\":1,\"max\":250,\"sum\":250,\"b\":[80,1]}", "lat.min: required field is missing"},
    {"{\"n\":1,\"min\":250,\"sum\":250,\"b\":[80,1]}", "lat.max: required field is missing"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"b\":[80,1]}", "lat.sum: required field is missing"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"sum\":250}", "lat.b: required field is missing"},
    {"{\"n\":1,\"n\":1,\"min\":250,\"max\":250,\"sum\":250,\"b\":[80,1]}",
     "lat.n: field appears twice"},
    {"{\"n\":\"1\",\"min\":250,\"max\":250,\"sum\":250,\"b\":[80,1]}",
     "lat.n: expected an integer 0..4503599627370495, got \"1\""},
    {"{\"n\":-1,\"min\":250,\"max\":250,\"sum\":250,\"b\":[80,1]}",
     "lat.n: expected an integer 0..4503599627370495, got -1"},
    {"{\"n\":1.5,\"min\":250,\"max\":250,\"sum\":250,\"b\":[80,1]}",
     "lat.n: expected an integer 0..4503599627370495, got 1.5"},
    {"{\"n\":1,\"min\":1e300,\"max\":250,\"sum\":250,\"b\":[80,1]}",
     "lat.min: expected an integer 0..4503599627370495, got 1e+300"},
    {"{\"n\":1,\"min\":250,\"max\":null,\"sum\":250,\"b\":[80,1]}",
     "lat.max: expected an integer 0..4503599627370495, got null"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"sum\":true,\"b\":[80,1]}",
     "lat.sum: expected an integer 0..4503599627370495, got true"},
    {"{\"n\":1,\"min\":300,\"max\":250,\"sum\":250,\"b\":[80,1]}", "lat.min: 300 is above max 250"},
    {"{\"n\":0,\"min\":0,\"max\":5,\"sum\":0,\"b\":[]}",
     "lat: an empty histogram (n 0) must have min, max and sum 0"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"sum\":250,\"b\":{}}", "lat.b: expected an array, got {}"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"sum\":250,\"b\":[80]}",
     "lat.b: expected index,count pairs, got an odd length 1"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"sum\":250,\"b\":[80,0]}",
     "lat.b[1]: expected an integer 1..4294967295, got 0"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"sum\":250,\"b\":[80,4294967296]}",
     "lat.b[1]: expected an integer 1..4294967295, got 4294967296"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"sum\":250,\"b\":[-1,1]}",
     "lat.b[0]: expected an integer 0..1225, got -1"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"sum\":250,\"b\":[1226,1]}",
     "lat.b[0]: expected an integer 0..1225, got 1226"},
    {"{\"n\":2,\"min\":250,\"max\":250,\"sum\":500,\"b\":[80,1,80,1]}",
     "lat.b[2]: expected an integer 81..1225, got 80"},
    {"{\"n\":2,\"min\":250,\"max\":250,\"sum\":500,\"b\":[80,1,\"x\",1]}",
     "lat.b[2]: expected an integer 81..1225, got \"x\""},
    {"{\"n\":2,\"min\":250,\"max\":250,\"sum\":500,\"b\":[80,1]}",
     "lat.b: bucket counts total 1, but n is 2"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"sum\":250,\"b\":[]}",
     "lat.b: bucket counts total 0, but n is 1"},
    {"{\"n\":1,\"min\":100,\"max\":250,\"sum\":250,\"b\":[80,1]}",
     "lat.min: 100 lies in bucket 0, but the first bucket is 80"},
    {"{\"n\":1,\"min\":250,\"max\":1000,\"sum\":250,\"b\":[80,1]}",
     "lat.max: 1000 lies in bucket 208, but the last bucket is 80"},
    {"{\"n\":1,\"min\":250,\"max\":250,\"sum\":250,\"b\":[80,1],\"x\":1}", NULL},
};

static void
test_decode_rejections(void **state)
{
	char err[CANARY_ERRLEN];
	struct canary_hist h;

	(void)state;
	assert_int_equal(canary_hist_bucket(250), 80);
	assert_int_equal(canary_hist_bucket(1000), 208);
	for (size_t i = 0; i < sizeof(reject_cases) / sizeof(reject_cases[0]); i++) {
		const struct reject_case *c = &reject_cases[i];
		cJSON *j = cJSON_Parse(c->json);
		int rv;

		assert_non_null(j);
		memset(&h, 0x5a, sizeof(h));
		err[0] = '\0';
		rv = canary_hist_decode(j, "lat", &h, err, sizeof(err));
		cJSON_Delete(j);
		if (c->msg == NULL) { /* unknown fields are ignored */
			assert_int_equal(rv, 0);
			assert_int_equal(h.count, 1);
			continue;
		}
		if (rv != CANARY_EINVAL || strcmp(err, c->msg) != 0) {
			fail_msg("case %zu %s: rv %d, err \"%s\", want \"%s\"", i, c->json, rv, err,
			         c->msg);
		}
		/* h is only written on success. */
		assert_int_equal(h.count, 0x5a5a5a5a5a5a5a5aULL);
	}
}

/* A long offending value is shown cut short. */
static void
test_decode_error_value_truncated(void **state)
{
	char err[CANARY_ERRLEN], want[CANARY_ERRLEN];
	struct canary_hist h;
	cJSON *j =
	    cJSON_Parse("{\"n\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
	                "\"min\":0,\"max\":0,\"sum\":0,\"b\":[]}");

	(void)state;
	assert_non_null(j);
	assert_int_equal(canary_hist_decode(j, "lat", &h, err, sizeof(err)), CANARY_EINVAL);
	snprintf(want, sizeof(want),
	         "lat.n: expected an integer 0..4503599627370495, got \"%.39s...",
	         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_string_equal(err, want);
	cJSON_Delete(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quantile_uniform),
	    cmocka_unit_test(test_quantile_lognormal),
	    cmocka_unit_test(test_quantile_bimodal),
	    cmocka_unit_test(test_bucket_error_bound_exhaustive),
	    cmocka_unit_test(test_quantile_rank_definition),
	    cmocka_unit_test(test_quantile_clamped_to_min_max),
	    cmocka_unit_test(test_merge_equals_union),
	    cmocka_unit_test(test_merge_saturates),
	    cmocka_unit_test(test_clamping),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_encode_exact_text),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_decode_rejections),
	    cmocka_unit_test(test_decode_error_value_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
