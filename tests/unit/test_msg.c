/*
 * test_msg.c: the probe and report messages (proto/msg.c).
 *
 * Round trips compare every field. Rejections start from a valid message
 * (encoded from a struct with every field set), change one thing at a field
 * path, and assert the error code and the whole error message, so a wrong
 * path, a wrong range or a silently accepted value all fail here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "msg.h"

#define M0 "0a5c1f3e-1111-4b2a-9c3d-aaaaaaaaaaaa"
#define M1 "0a5c1f3e-2222-4b2a-9c3d-BBBBBBBBBBBB"
#define S0 "5e7d9f10-3333-4c4d-8e5f-cccccccccccc"
#define S1 "5e7d9f10-4444-4c4d-8e5f-dddddddddddd"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixtures ------------------------------------------------------------ */

/* A probe with every field set (3 targets, two versions per worker, an
 * override and version keys). p->targets is malloc'd. */
static void
make_probe(struct canary_probe *p)
{
	struct canary_target *t;

	memset(p, 0, sizeof(*p));
	p->proto_version = CANARY_PROTO_VERSION;
	snprintf(p->rollout_id, sizeof(p->rollout_id), "docs-site-20261127");
	p->round = 1099511627776ULL; /* 2^40: beyond 32 bits */
	p->phase = CANARY_PHASE_BAKE;
	p->deadline_ms = 4500;
	p->n_targets = 3;
	p->targets = calloc(3, sizeof(*p->targets));
	assert_non_null(p->targets);
	t = &p->targets[0];
	snprintf(t->id, sizeof(t->id), "home");
	snprintf(t->url, sizeof(t->url), "https://docs.example.com/");
	snprintf(t->method, sizeof(t->method), "GET");
	t->requests = 20;
	t->timeout_ms = 10000;
	t->expect_status[0] = 200;
	t->expect_status[1] = 304;
	t->n_expect_status = 2;
	t->cache = CANARY_CACHE_ISR;
	snprintf(t->body_match, sizeof(t->body_match), "<title>Docs \"v2\"</title>");
	t = &p->targets[1];
	snprintf(t->id, sizeof(t->id), "api");
	snprintf(t->url, sizeof(t->url), "http://docs.example.com:8080/api/health?x=1");
	snprintf(t->method, sizeof(t->method), "HEAD");
	t->requests = 100000;
	t->timeout_ms = 600000;
	t->expect_status[0] = 204;
	t->n_expect_status = 1;
	t->cache = CANARY_CACHE_NONE;
	t = &p->targets[2];
	snprintf(t->id, sizeof(t->id), "blog");
	snprintf(t->url, sizeof(t->url), "https://docs.example.com/blog");
	snprintf(t->method, sizeof(t->method), "GET");
	t->requests = 1;
	t->timeout_ms = 1;
	for (int i = 0; i < CANARY_MAX_STATUSES; i++) {
		t->expect_status[i] = 200 + i;
	}
	t->n_expect_status = CANARY_MAX_STATUSES;
	snprintf(p->headers.middleware_version, CANARY_HEADER_NAME_LEN,
	         "x-canary-middleware-version");
	snprintf(p->headers.server_version, CANARY_HEADER_NAME_LEN, "x-canary-server-version");
	snprintf(p->headers.cache, CANARY_HEADER_NAME_LEN, "x-opennext-cache");
	snprintf(p->expect.middleware[0].id, CANARY_UUID_LEN, "%s", M0);
	p->expect.middleware[0].share = 90.0;
	snprintf(p->expect.middleware[1].id, CANARY_UUID_LEN, "%s", M1);
	p->expect.middleware[1].share = 10.0;
	p->expect.n_middleware = 2;
	snprintf(p->expect.server[0].id, CANARY_UUID_LEN, "%s", S0);
	p->expect.server[0].share = 100.0 / 3.0; /* not a round number: must travel exactly */
	snprintf(p->expect.server[1].id, CANARY_UUID_LEN, "%s", S1);
	p->expect.server[1].share = 100.0 - 100.0 / 3.0;
	p->expect.n_server = 2;
	snprintf(p->expect.pins[0], CANARY_UUID_LEN, "%s", S0);
	snprintf(p->expect.pins[1], CANARY_UUID_LEN, "%s", S1);
	p->override.enabled = 1;
	p->override.share = 12.5;
	snprintf(p->override.worker, CANARY_ID_LEN, "middleware");
	snprintf(p->override.version_id, CANARY_UUID_LEN, "%s", M1);
	snprintf(p->override.pin, CANARY_UUID_LEN, "%s", S1);
	p->version_keys = 8;
}

/* Fills target report t with counts that all differ, derived from k, and
 * agree the way an agent's do: statuses and statuses_other total
 * responses; pairs, pairs_other and the cache answers at most that;
 * override_violations <= override_sent <= sent. */
static void
make_target_report(struct canary_target_report *t, const char *id, int k)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", id);
	t->sent = 1000 + k;
	t->responses = 900 + k;
	t->statuses[0].status = 200;
	t->statuses[0].count = 800 + k;
	t->statuses[1].status = 503;
	t->statuses[1].count = 60;
	t->statuses[2].status = 404;
	t->statuses[2].count = 38;
	t->n_statuses = 3;
	t->statuses_other = 2;
	for (int c = 0; c < CANARY_ERRCLASS_COUNT; c++) {
		t->errors[c] = (uint64_t)(10 * c + k);
	}
	for (int i = 0; i < 900 + k; i++) {
		canary_hist_record(&t->latency, (uint64_t)(150 + 37 * i * (k + 1)));
	}
	snprintf(t->pairs[0].middleware, CANARY_UUID_LEN, "%s", M0);
	snprintf(t->pairs[0].server, CANARY_UUID_LEN, "%s", S0);
	t->pairs[0].count = 697;
	snprintf(t->pairs[1].middleware, CANARY_UUID_LEN, "%s", M1);
	snprintf(t->pairs[1].server, CANARY_UUID_LEN, "%s", S1);
	t->pairs[1].count = 150;
	snprintf(t->pairs[2].middleware, CANARY_UUID_LEN, "%s", M1);
	t->pairs[2].server[0] = '\0'; /* an ISR hit the middleware answered alone */
	t->pairs[2].count = 50 + (uint64_t)k;
	t->n_pairs = 3;
	t->pairs_other = 3;
	t->cache_hit = 11;
	t->cache_stale = 12;
	t->cache_miss = 13;
	t->cache_warmup = 1;
	t->affinity_violations = 14;
	t->unknown_versions = 15;
	t->body_mismatches = 16;
	t->override_sent = 18;
	t->override_violations = 17;
	t->key_violations = 19;
	snprintf(t->samples[0], CANARY_SAMPLE_LEN, "GET / -> 503 from %s+%s", M1, S0);
	snprintf(t->samples[1], CANARY_SAMPLE_LEN, "body: \"\\ \t\n\x01 \xc3\xa9\"");
	t->n_samples = 2;
}

static void
make_report(struct canary_report *r)
{
	memset(r, 0, sizeof(*r));
	r->proto_version = CANARY_PROTO_VERSION;
	snprintf(r->agent_id, sizeof(r->agent_id), "agent-enam-1");
	snprintf(r->region, sizeof(r->region), "enam");
	snprintf(r->rollout_id, sizeof(r->rollout_id), "docs-site-20261127");
	r->round = 42;
	r->n_targets = 3;
	r->targets = calloc(3, sizeof(*r->targets));
	assert_non_null(r->targets);
	make_target_report(&r->targets[0], "home", 0);
	make_target_report(&r->targets[1], "api", 1);
	make_target_report(&r->targets[2], "blog", 2);
}

/* ---- field-by-field comparisons ---------------------------------------- */

static void
assert_probe_equal(const struct canary_probe *a, const struct canary_probe *b)
{
	assert_int_equal(a->proto_version, b->proto_version);
	assert_string_equal(a->rollout_id, b->rollout_id);
	assert_int_equal(a->round, b->round);
	assert_int_equal(a->phase, b->phase);
	assert_int_equal(a->deadline_ms, b->deadline_ms);
	assert_int_equal(a->n_targets, b->n_targets);
	for (int i = 0; i < a->n_targets; i++) {
		const struct canary_target *x = &a->targets[i], *y = &b->targets[i];

		assert_string_equal(x->id, y->id);
		assert_string_equal(x->url, y->url);
		assert_string_equal(x->method, y->method);
		assert_int_equal(x->requests, y->requests);
		assert_int_equal(x->timeout_ms, y->timeout_ms);
		assert_int_equal(x->n_expect_status, y->n_expect_status);
		for (int j = 0; j < x->n_expect_status; j++) {
			assert_int_equal(x->expect_status[j], y->expect_status[j]);
		}
		assert_int_equal(x->cache, y->cache);
		assert_string_equal(x->body_match, y->body_match);
	}
	assert_string_equal(a->headers.middleware_version, b->headers.middleware_version);
	assert_string_equal(a->headers.server_version, b->headers.server_version);
	assert_string_equal(a->headers.cache, b->headers.cache);
	assert_int_equal(a->expect.n_middleware, b->expect.n_middleware);
	assert_int_equal(a->expect.n_server, b->expect.n_server);
	for (int i = 0; i < a->expect.n_middleware; i++) {
		assert_string_equal(a->expect.middleware[i].id, b->expect.middleware[i].id);
		assert_true(a->expect.middleware[i].share == b->expect.middleware[i].share);
		assert_string_equal(a->expect.pins[i], b->expect.pins[i]);
	}
	for (int i = 0; i < a->expect.n_server; i++) {
		assert_string_equal(a->expect.server[i].id, b->expect.server[i].id);
		assert_true(a->expect.server[i].share == b->expect.server[i].share);
	}
	assert_int_equal(a->override.enabled, b->override.enabled);
	if (a->override.enabled) {
		assert_true(a->override.share == b->override.share);
		assert_string_equal(a->override.worker, b->override.worker);
		assert_string_equal(a->override.version_id, b->override.version_id);
		assert_string_equal(a->override.pin, b->override.pin);
	}
	assert_int_equal(a->version_keys, b->version_keys);
}

static void
assert_target_report_equal(const struct canary_target_report *x,
                           const struct canary_target_report *y)
{
	assert_string_equal(x->id, y->id);
	assert_int_equal(x->sent, y->sent);
	assert_int_equal(x->responses, y->responses);
	assert_int_equal(x->n_statuses, y->n_statuses);
	for (int j = 0; j < x->n_statuses; j++) {
		assert_int_equal(x->statuses[j].status, y->statuses[j].status);
		assert_int_equal(x->statuses[j].count, y->statuses[j].count);
	}
	assert_int_equal(x->statuses_other, y->statuses_other);
	for (int c = 0; c < CANARY_ERRCLASS_COUNT; c++) {
		assert_int_equal(x->errors[c], y->errors[c]);
	}
	assert_memory_equal(&x->latency, &y->latency, sizeof(x->latency));
	assert_int_equal(x->n_pairs, y->n_pairs);
	for (int j = 0; j < x->n_pairs; j++) {
		assert_string_equal(x->pairs[j].middleware, y->pairs[j].middleware);
		assert_string_equal(x->pairs[j].server, y->pairs[j].server);
		assert_int_equal(x->pairs[j].count, y->pairs[j].count);
	}
	assert_int_equal(x->pairs_other, y->pairs_other);
	assert_int_equal(x->cache_hit, y->cache_hit);
	assert_int_equal(x->cache_stale, y->cache_stale);
	assert_int_equal(x->cache_miss, y->cache_miss);
	assert_int_equal(x->cache_warmup, y->cache_warmup);
	assert_int_equal(x->affinity_violations, y->affinity_violations);
	assert_int_equal(x->unknown_versions, y->unknown_versions);
	assert_int_equal(x->body_mismatches, y->body_mismatches);
	assert_int_equal(x->override_sent, y->override_sent);
	assert_int_equal(x->override_violations, y->override_violations);
	assert_int_equal(x->key_violations, y->key_violations);
	assert_int_equal(x->n_samples, y->n_samples);
	for (int j = 0; j < x->n_samples; j++) {
		assert_string_equal(x->samples[j], y->samples[j]);
	}
}

static void
assert_report_equal(const struct canary_report *a, const struct canary_report *b)
{
	assert_int_equal(a->proto_version, b->proto_version);
	assert_string_equal(a->agent_id, b->agent_id);
	assert_string_equal(a->region, b->region);
	assert_string_equal(a->rollout_id, b->rollout_id);
	assert_int_equal(a->round, b->round);
	assert_int_equal(a->partial, b->partial);
	assert_string_equal(a->error, b->error);
	assert_int_equal(a->n_targets, b->n_targets);
	for (int i = 0; i < a->n_targets; i++) {
		assert_target_report_equal(&a->targets[i], &b->targets[i]);
	}
}

static void
assert_all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		if (b[i] != 0) {
			fail_msg("byte %zu of the struct is 0x%02x after a failed decode", i, b[i]);
		}
	}
}

/* ---- round trips ------------------------------------------------------- */

static void
probe_round_trip(const struct canary_probe *p)
{
	struct canary_probe back;
	char err[CANARY_ERRLEN], *text = NULL;
	size_t len = 0;
	int rv;

	rv = canary_probe_encode(p, &text, &len, err, sizeof(err));
	if (rv != 0) {
		fail_msg("encode: %s", err);
	}
	assert_int_equal(len, strlen(text));
	rv = canary_probe_decode(text, len, &back, err, sizeof(err));
	if (rv != 0) {
		fail_msg("decode: %s", err);
	}
	assert_probe_equal(p, &back);
	canary_probe_free(&back);
	free(text);
}

static void
report_round_trip(const struct canary_report *r)
{
	struct canary_report back;
	char err[CANARY_ERRLEN], *text = NULL;
	size_t len = 0;
	int rv;

	rv = canary_report_encode(r, &text, &len, err, sizeof(err));
	if (rv != 0) {
		fail_msg("encode: %s", err);
	}
	rv = canary_report_decode(text, len, &back, err, sizeof(err));
	if (rv != 0) {
		fail_msg("decode: %s", err);
	}
	assert_report_equal(r, &back);
	canary_report_free(&back);
	free(text);
}

static void
test_probe_round_trip_full(void **state)
{
	struct canary_probe p;

	(void)state;
	make_probe(&p);
	probe_round_trip(&p);
	for (int ph = 0; ph < CANARY_PHASE_COUNT; ph++) {
		p.phase = (enum canary_phase)ph;
		probe_round_trip(&p);
	}
	p.override.enabled = 0;
	p.version_keys = 0;
	p.n_targets = 1;
	p.expect.n_middleware = 1;
	p.expect.middleware[0].share = 100.0;
	probe_round_trip(&p);
	canary_probe_free(&p);
	assert_null(p.targets);
	assert_int_equal(p.n_targets, 0);
}

/* The wire text itself: field names and the omitted override. */
static void
test_probe_wire_names(void **state)
{
	struct canary_probe p;
	char err[CANARY_ERRLEN], *text;

	(void)state;
	make_probe(&p);
	p.n_targets = 1;
	p.targets[0].n_expect_status = 1;
	p.expect.n_middleware = 1;
	p.expect.middleware[0].share = 100;
	p.expect.n_server = 1;
	p.expect.server[0].share = 100;
	p.override.enabled = 0;
	p.round = 7;
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), 0);
	assert_string_equal(
	    text,
	    "{\"v\":1,\"type\":\"probe\",\"rollout_id\":\"docs-site-20261127\",\"round\":7,"
	    "\"phase\":\"bake\",\"deadline_ms\":4500,\"targets\":[{\"id\":\"home\",\"url\":"
	    "\"https://docs.example.com/\",\"method\":\"GET\",\"requests\":20,\"timeout_ms\":"
	    "10000,\"expect_status\":[200],\"cache\":\"isr\",\"body_match\":\"<title>Docs "
	    "\\\"v2\\\"</title>\"}],\"headers\":{\"middleware_version\":\"x-canary-middleware-"
	    "version\",\"server_version\":\"x-canary-server-version\",\"cache\":\"x-opennext-"
	    "cache\"},\"expect\":{\"middleware\":[{\"id\":\"" M0 "\",\"share\":100}],"
	    "\"server\":[{\"id\":\"" S0 "\",\"share\":100}],\"pins\":[\"" S0 "\"]},"
	    "\"version_keys\":8}");
	free(text);
	canary_probe_free(&p);
}

/* Optional fields left out get their documented defaults. */
static void
test_probe_defaults(void **state)
{
	static const char text[] =
	    "{\"v\":1,\"type\":\"probe\",\"rollout_id\":\"r\",\"round\":0,\"phase\":\"converge\","
	    "\"deadline_ms\":1,\"targets\":[{\"id\":\"t\",\"url\":\"http://h\",\"requests\":1,"
	    "\"timeout_ms\":5,\"expect_status\":[599]}],\"headers\":{\"middleware_version\":\"a\","
	    "\"server_version\":\"b\",\"cache\":\"c\"},\"expect\":{\"middleware\":[{\"id\":"
	    "\"" M0 "\",\"share\":100}],\"server\":[{\"id\":\"" S0 "\",\"share\":100.0}],"
	    "\"pins\":[\"" S0 "\"]},\"future_field\":{\"x\":[1,2]}}";
	struct canary_probe p;
	char err[CANARY_ERRLEN];

	(void)state;
	assert_int_equal(canary_probe_decode(text, sizeof(text) - 1, &p, err, sizeof(err)), 0);
	assert_int_equal(p.phase, CANARY_PHASE_CONVERGE);
	assert_string_equal(p.targets[0].method, "GET");
	assert_int_equal(p.targets[0].cache, CANARY_CACHE_NONE);
	assert_string_equal(p.targets[0].body_match, "");
	assert_int_equal(p.override.enabled, 0);
	assert_int_equal(p.version_keys, 0);
	assert_int_equal(p.targets[0].expect_status[0], 599);
	canary_probe_free(&p);
}

static void
test_report_round_trip_full(void **state)
{
	struct canary_report r;

	(void)state;
	make_report(&r);
	report_round_trip(&r);
	/* Tables full to their caps. */
	for (int i = 0; i < CANARY_MAX_SEEN_STATUS; i++) {
		r.targets[0].statuses[i].status = 100 + 31 * i;
		r.targets[0].statuses[i].count = (uint64_t)i;
	}
	r.targets[0].n_statuses = CANARY_MAX_SEEN_STATUS;
	r.targets[0].statuses_other = r.targets[0].responses - 120; /* 0 + 1 + ... + 15 */
	for (int i = 0; i < CANARY_MAX_PAIRS; i++) {
		snprintf(r.targets[0].pairs[i].middleware, CANARY_UUID_LEN,
		         "0a5c1f3e-1111-4b2a-9c3d-%012d", i);
		snprintf(r.targets[0].pairs[i].server, CANARY_UUID_LEN, "%s", S1);
	}
	r.targets[0].n_pairs = CANARY_MAX_PAIRS;
	for (int i = 0; i < CANARY_MAX_SAMPLES; i++) {
		memset(r.targets[0].samples[i], 'a' + i, CANARY_SAMPLE_LEN - 1);
		r.targets[0].samples[i][CANARY_SAMPLE_LEN - 1] = '\0';
	}
	r.targets[0].n_samples = CANARY_MAX_SAMPLES;
	r.targets[1].sent = CANARY_MSG_INT_MAX;
	report_round_trip(&r);
	canary_report_free(&r);
	assert_null(r.targets);
}

static void
test_report_round_trip_partial(void **state)
{
	struct canary_report r;

	(void)state;
	make_report(&r);
	r.partial = 1;
	r.targets[2].sent = 5;
	r.targets[2].responses = 0;
	r.targets[2].n_statuses = 0;
	r.targets[2].statuses_other = 0;
	r.targets[2].n_pairs = 0;
	r.targets[2].pairs_other = 0;
	r.targets[2].cache_hit = r.targets[2].cache_stale = 0;
	r.targets[2].cache_miss = r.targets[2].cache_warmup = 0;
	r.targets[2].override_sent = r.targets[2].override_violations = 0;
	r.targets[2].n_samples = 0;
	canary_hist_init(&r.targets[2].latency);
	report_round_trip(&r);
	canary_report_free(&r);
}

/* An agent that could not run the survey: an error, no targets, and no
 * rollout id when it could not read one. */
static void
test_report_round_trip_error(void **state)
{
	struct canary_report r;
	char err[CANARY_ERRLEN], *text;
	struct canary_report back;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.proto_version = CANARY_PROTO_VERSION;
	snprintf(r.agent_id, sizeof(r.agent_id), "agent-weur-2");
	snprintf(r.region, sizeof(r.region), "weur");
	snprintf(r.error, sizeof(r.error),
	         "targets[0].url: host evil.example.net is not on this agent's allowlist");
	report_round_trip(&r);
	assert_int_equal(canary_report_encode(&r, &text, NULL, err, sizeof(err)), 0);
	assert_int_equal(canary_report_decode(text, strlen(text), &back, err, sizeof(err)), 0);
	assert_null(back.targets);
	assert_int_equal(back.n_targets, 0);
	assert_string_equal(back.rollout_id, "");
	free(text);
	canary_report_free(&back);
}

/* ---- names -------------------------------------------------------------- */

static void
test_names(void **state)
{
	static const char *const phases[] = {"baseline", "converge", "bake", "rollback-verify",
	                                     "check"};
	static const char *const classes[] = {"dns", "connect", "tls", "timeout", "http"};
	enum canary_phase ph;
	enum canary_errclass ec;
	enum canary_cache_kind ck;

	(void)state;
	for (int i = 0; i < CANARY_PHASE_COUNT; i++) {
		assert_string_equal(canary_phase_name((enum canary_phase)i), phases[i]);
		assert_int_equal(canary_phase_from_name(phases[i], &ph), 0);
		assert_int_equal(ph, i);
	}
	for (int i = 0; i < CANARY_ERRCLASS_COUNT; i++) {
		assert_string_equal(canary_errclass_name((enum canary_errclass)i), classes[i]);
		assert_int_equal(canary_errclass_from_name(classes[i], &ec), 0);
		assert_int_equal(ec, i);
	}
	assert_string_equal(canary_cache_kind_name(CANARY_CACHE_NONE), "none");
	assert_string_equal(canary_cache_kind_name(CANARY_CACHE_ISR), "isr");
	assert_int_equal(canary_cache_kind_from_name("isr", &ck), 0);
	assert_int_equal(ck, CANARY_CACHE_ISR);
	assert_string_equal(canary_phase_name(CANARY_PHASE_COUNT), "unknown");
	assert_string_equal(canary_phase_name((enum canary_phase) - 1), "unknown");
	assert_string_equal(canary_errclass_name(CANARY_ERRCLASS_COUNT), "unknown");
	assert_string_equal(canary_cache_kind_name((enum canary_cache_kind)7), "unknown");
	ph = CANARY_PHASE_BAKE;
	assert_int_equal(canary_phase_from_name("Bake", &ph), CANARY_EINVAL);
	assert_int_equal(canary_phase_from_name(NULL, &ph), CANARY_EINVAL);
	assert_int_equal(ph, CANARY_PHASE_BAKE);
	assert_int_equal(canary_errclass_from_name("", &ec), CANARY_EINVAL);
	assert_int_equal(canary_cache_kind_from_name("ISR", &ck), CANARY_EINVAL);
}

static void
test_is_uuid(void **state)
{
	(void)state;
	assert_true(canary_is_uuid(M0));
	assert_true(canary_is_uuid(M1)); /* upper case */
	assert_true(canary_is_uuid("00000000-0000-0000-0000-000000000000"));
	assert_false(canary_is_uuid(NULL));
	assert_false(canary_is_uuid(""));
	assert_false(canary_is_uuid("0a5c1f3e-1111-4b2a-9c3d-aaaaaaaaaaa"));   /* short */
	assert_false(canary_is_uuid("0a5c1f3e-1111-4b2a-9c3d-aaaaaaaaaaaaa")); /* long */
	assert_false(canary_is_uuid("0a5c1f3e-1111-4b2a-9c3d-aaaaaaaaaaag"));  /* not hex */
	assert_false(canary_is_uuid("0a5c1f3e11111-4b2a-9c3d-aaaaaaaaaaaa"));  /* dash moved */
	assert_false(canary_is_uuid("0a5c1f3e-1111-4b2a-9c3d_aaaaaaaaaaaa"));
	assert_false(canary_is_uuid("{a5c1f3e-1111-4b2a-9c3d-aaaaaaaaaaa}"));
	assert_false(canary_is_uuid("0a5c1f3e-1111-4b2a-9c3d-aaaaaaaaaaa "));
}

/* ---- rejections: one change to a valid message --------------------------- */

enum mut_op {
	MUT_DEL, /* remove the value at path */
	MUT_SET, /* replace (or add) the value at path with json */
	MUT_DUP, /* add a second member with the name at path */
};

struct mut_case {
	const char *path;
	enum mut_op op;
	const char *json;
	int code;        /* 0: must decode */
	const char *msg; /* the whole error message */
};

/* Finds path ("a.b[2].c") under root; the last step is left in *parent and
 * key (NULL for an index) / *idx so the caller can change it. */
static cJSON *
walk(cJSON *root, const char *path, cJSON **parent, char *key, size_t keylen, int *idx)
{
	cJSON *cur = root;
	const char *s = path;

	*parent = NULL;
	while (*s != '\0') {
		*parent = cur;
		if (*s == '.') {
			s++;
		}
		if (*s == '[') {
			*idx = atoi(s + 1);
			key[0] = '\0';
			cur = cJSON_GetArrayItem(cur, *idx);
			s = strchr(s, ']') + 1;
		} else {
			size_t n = strcspn(s, ".[");

			assert_true(n < keylen);
			memcpy(key, s, n);
			key[n] = '\0';
			cur = cJSON_GetObjectItemCaseSensitive(cur, key);
			s += n;
		}
		if (*s != '\0') {
			assert_non_null(cur);
		}
	}
	return cur;
}

/* base with one change, printed; the caller frees. */
static char *
mutate(const char *base, const struct mut_case *c)
{
	cJSON *root = cJSON_Parse(base), *parent, *cur, *v = NULL;
	char key[64], *out;
	int idx = -1;

	assert_non_null(root);
	cur = walk(root, c->path, &parent, key, sizeof(key), &idx);
	if (c->op != MUT_DEL) {
		/* Raw: the text goes out as written (cJSON would reprint
		 * 4503599627370496 as 9.00719925474099e+15). */
		v = cJSON_CreateRaw(c->json);
		assert_non_null(v);
	}
	switch (c->op) {
	case MUT_DEL:
		assert_non_null(cur);
		if (key[0] != '\0') {
			cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
		} else {
			cJSON_DeleteItemFromArray(parent, idx);
		}
		break;
	case MUT_SET:
		if (key[0] == '\0') {
			assert_true(cJSON_ReplaceItemInArray(parent, idx, v));
		} else if (cur != NULL) {
			assert_true(cJSON_ReplaceItemInObjectCaseSensitive(parent, key, v));
		} else {
			assert_true(cJSON_AddItemToObject(parent, key, v));
		}
		break;
	case MUT_DUP:
		assert_true(cJSON_AddItemToObject(parent, key, v));
		break;
	}
	out = cJSON_PrintUnformatted(root);
	assert_non_null(out);
	cJSON_Delete(root);
	return out;
}

static char *
encoded_probe(void)
{
	struct canary_probe p;
	char err[CANARY_ERRLEN], *text;

	make_probe(&p);
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), 0);
	canary_probe_free(&p);
	return text;
}

static char *
encoded_report(void)
{
	struct canary_report r;
	char err[CANARY_ERRLEN], *text;

	make_report(&r);
	assert_int_equal(canary_report_encode(&r, &text, NULL, err, sizeof(err)), 0);
	canary_report_free(&r);
	return text;
}

static void
run_probe_case(const char *base, const struct mut_case *c)
{
	char *text = mutate(base, c), err[CANARY_ERRLEN] = "";
	struct canary_probe p;
	int rv;

	memset(&p, 0xa5, sizeof(p));
	rv = canary_probe_decode(text, strlen(text), &p, err, sizeof(err));
	if (rv != c->code || (c->msg != NULL && strcmp(err, c->msg) != 0)) {
		fail_msg("probe %s (%s): rv %d \"%s\", want %d \"%s\"", c->path,
		         c->json ? c->json : "delete", rv, err, c->code, c->msg ? c->msg : "");
	}
	if (rv != 0) {
		assert_all_zero(&p, sizeof(p));
	}
	canary_probe_free(&p);
	free(text);
}

static void
run_report_case(const char *base, const struct mut_case *c)
{
	char *text = mutate(base, c), err[CANARY_ERRLEN] = "";
	struct canary_report r;
	int rv;

	memset(&r, 0xa5, sizeof(r));
	rv = canary_report_decode(text, strlen(text), &r, err, sizeof(err));
	if (rv != c->code || (c->msg != NULL && strcmp(err, c->msg) != 0)) {
		fail_msg("report %s (%s): rv %d \"%s\", want %d \"%s\"", c->path,
		         c->json ? c->json : "delete", rv, err, c->code, c->msg ? c->msg : "");
	}
	if (rv != 0) {
		assert_all_zero(&r, sizeof(r));
	}
	canary_report_free(&r);
	free(text);
}

static const char *const probe_required[] = {
    "rollout_id",
    "round",
    "phase",
    "deadline_ms",
    "targets",
    "headers",
    "expect",
    "targets[1].id",
    "targets[1].url",
    "targets[1].requests",
    "targets[1].timeout_ms",
    "targets[1].expect_status",
    "headers.middleware_version",
    "headers.server_version",
    "headers.cache",
    "expect.middleware",
    "expect.server",
    "expect.pins",
    "expect.middleware[1].id",
    "expect.middleware[1].share",
    "expect.server[0].id",
    "expect.server[0].share",
    "override.share",
    "override.worker",
    "override.version_id",
    "override.pin",
};

static const char *const probe_optional[] = {
    "targets[0].method", "targets[0].cache", "targets[0].body_match", "override", "version_keys",
};

static void
test_probe_missing_fields(void **state)
{
	char *base = encoded_probe(), msg[CANARY_ERRLEN];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(probe_required); i++) {
		struct mut_case c = {probe_required[i], MUT_DEL, NULL, CANARY_EINVAL, msg};

		snprintf(msg, sizeof(msg), "%s: required field is missing", probe_required[i]);
		run_probe_case(base, &c);
	}
	for (size_t i = 0; i < ARRAY_LEN(probe_optional); i++) {
		struct mut_case c = {probe_optional[i], MUT_DEL, NULL, 0, NULL};

		run_probe_case(base, &c);
	}
	free(base);
}

#define LONG64                                                                                     \
	"\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"" /* 64 bytes         \
	                                                                        */
#define GOT64  "got \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."
#define INTMAX "4503599627370495"

static const struct mut_case probe_cases[] = {
    /* protocol version and type */
    {"v", MUT_DEL, NULL, CANARY_EPROTO, "v: required field is missing"},
    {"v", MUT_SET, "2", CANARY_EPROTO, "v: expected protocol version 1, got 2"},
    {"v", MUT_SET, "0", CANARY_EPROTO, "v: expected protocol version 1, got 0"},
    {"v", MUT_SET, "\"1\"", CANARY_EPROTO, "v: expected protocol version 1, got \"1\""},
    {"v", MUT_DUP, "1", CANARY_EPROTO, "v: field appears twice"},
    {"type", MUT_DEL, NULL, CANARY_EPROTO, "type: required field is missing"},
    {"type", MUT_SET, "\"report\"", CANARY_EPROTO, "type: expected \"probe\", got \"report\""},
    {"type", MUT_SET, "5", CANARY_EPROTO, "type: expected \"probe\", got 5"},
    /* wrong types and ranges */
    {"rollout_id", MUT_SET, "5", CANARY_EINVAL, "rollout_id: expected a string, got 5"},
    {"rollout_id", MUT_SET, "\"\"", CANARY_EINVAL,
     "rollout_id: expected a non-empty string with no control characters, got \"\""},
    {"rollout_id", MUT_SET, "\"a\\u0001b\"", CANARY_EINVAL,
     "rollout_id: expected a non-empty string with no control characters, got \"a\\u0001b\""},
    {"rollout_id", MUT_SET, LONG64, CANARY_EINVAL,
     "rollout_id: expected a string of at most 63 bytes (it has 64), " GOT64},
    /* the shown value is cut before a UTF-8 sequence, not inside it */
    {"rollout_id", MUT_SET,
     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9"
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"",
     CANARY_EINVAL,
     "rollout_id: expected a string of at most 63 bytes (it has 70), got "
     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."},
    {"rollout_id", MUT_DUP, "\"x\"", CANARY_EINVAL, "rollout_id: field appears twice"},
    {"round", MUT_SET, "-1", CANARY_EINVAL, "round: expected an integer 0.." INTMAX ", got -1"},
    {"round", MUT_SET, "1.5", CANARY_EINVAL, "round: expected an integer 0.." INTMAX ", got 1.5"},
    {"round", MUT_SET, "1e300", CANARY_EINVAL,
     "round: expected an integer 0.." INTMAX ", got 1e+300"},
    {"round", MUT_SET, "4503599627370496", CANARY_EINVAL,
     "round: expected an integer 0.." INTMAX ", got 4503599627370496"},
    {"round", MUT_SET, "\"abc\"", CANARY_EINVAL,
     "round: expected an integer 0.." INTMAX ", got \"abc\""},
    {"round", MUT_SET, "null", CANARY_EINVAL, "round: expected an integer 0.." INTMAX ", got null"},
    {"round", MUT_SET, INTMAX, 0, NULL},
    {"phase", MUT_SET, "\"deploy\"", CANARY_EINVAL,
     "phase: expected one of \"baseline\", \"converge\", \"bake\", \"rollback-verify\", "
     "\"check\", got \"deploy\""},
    {"phase", MUT_SET, "2", CANARY_EINVAL,
     "phase: expected one of \"baseline\", \"converge\", \"bake\", \"rollback-verify\", "
     "\"check\", got 2"},
    {"deadline_ms", MUT_SET, "0", CANARY_EINVAL,
     "deadline_ms: expected an integer 1..3600000, got 0"},
    {"deadline_ms", MUT_SET, "3600001", CANARY_EINVAL,
     "deadline_ms: expected an integer 1..3600000, got 3600001"},
    {"targets", MUT_SET, "{}", CANARY_EINVAL, "targets: expected an array, got {}"},
    {"targets", MUT_SET, "[]", CANARY_EINVAL, "targets: expected 1..16 entries, got 0"},
    {"targets[0]", MUT_SET, "\"x\"", CANARY_EINVAL, "targets[0]: expected an object, got \"x\""},
    {"targets[1].id", MUT_SET, "\"home\"", CANARY_EINVAL,
     "targets[1].id: \"home\" repeats targets[0].id"},
    {"targets[2].id", MUT_SET, "\"api\"", CANARY_EINVAL,
     "targets[2].id: \"api\" repeats targets[1].id"},
    {"targets[0].id", MUT_SET, "\"\"", CANARY_EINVAL,
     "targets[0].id: expected a non-empty string with no control characters, got \"\""},
    {"targets[0].url", MUT_SET, "\"ftp://x\"", CANARY_EINVAL,
     "targets[0].url: expected an http:// or https:// URL with a host and no spaces, got "
     "\"ftp://x\""},
    {"targets[0].url", MUT_SET, "\"https://\"", CANARY_EINVAL,
     "targets[0].url: expected an http:// or https:// URL with a host and no spaces, got "
     "\"https://\""},
    {"targets[0].url", MUT_SET, "\"http://a b/\"", CANARY_EINVAL,
     "targets[0].url: expected an http:// or https:// URL with a host and no spaces, got "
     "\"http://a b/\""},
    {"targets[0].url", MUT_SET, "[\"http://a\"]", CANARY_EINVAL,
     "targets[0].url: expected a string, got [\"http://a\"]"},
    {"targets[0].method", MUT_SET, "\"POST\"", CANARY_EINVAL,
     "targets[0].method: expected one of \"GET\", \"HEAD\", got \"POST\""},
    {"targets[0].requests", MUT_SET, "0", CANARY_EINVAL,
     "targets[0].requests: expected an integer 1..100000, got 0"},
    {"targets[0].requests", MUT_SET, "100001", CANARY_EINVAL,
     "targets[0].requests: expected an integer 1..100000, got 100001"},
    {"targets[0].requests", MUT_SET, "20.5", CANARY_EINVAL,
     "targets[0].requests: expected an integer 1..100000, got 20.5"},
    {"targets[0].requests", MUT_SET, "2e1", 0, NULL}, /* integral: fine */
    {"targets[1].timeout_ms", MUT_SET, "600001", CANARY_EINVAL,
     "targets[1].timeout_ms: expected an integer 1..600000, got 600001"},
    {"targets[2].expect_status[0]", MUT_SET, "\"abc\"", CANARY_EINVAL,
     "targets[2].expect_status[0]: expected an integer 100..599, got \"abc\""},
    {"targets[2].expect_status[7]", MUT_SET, "600", CANARY_EINVAL,
     "targets[2].expect_status[7]: expected an integer 100..599, got 600"},
    {"targets[0].expect_status[1]", MUT_SET, "99", CANARY_EINVAL,
     "targets[0].expect_status[1]: expected an integer 100..599, got 99"},
    {"targets[0].expect_status[1]", MUT_SET, "200", CANARY_EINVAL,
     "targets[0].expect_status[1]: status 200 repeats targets[0].expect_status[0]"},
    {"targets[0].expect_status", MUT_SET, "[]", CANARY_EINVAL,
     "targets[0].expect_status: expected 1..8 entries, got 0"},
    {"targets[0].expect_status", MUT_SET, "[200,201,202,203,204,205,206,207,208]", CANARY_EINVAL,
     "targets[0].expect_status: expected 1..8 entries, got 9"},
    {"targets[0].expect_status", MUT_SET, "200", CANARY_EINVAL,
     "targets[0].expect_status: expected an array, got 200"},
    {"targets[0].cache", MUT_SET, "\"disk\"", CANARY_EINVAL,
     "targets[0].cache: expected one of \"none\", \"isr\", got \"disk\""},
    {"targets[0].body_match", MUT_SET, "5", CANARY_EINVAL,
     "targets[0].body_match: expected a string, got 5"},
    {"targets[0].url", MUT_DUP, "\"http://x\"", CANARY_EINVAL,
     "targets[0].url: field appears twice"},
    {"headers", MUT_SET, "\"x\"", CANARY_EINVAL, "headers: expected an object, got \"x\""},
    {"headers.cache", MUT_SET, "\"x y\"", CANARY_EINVAL,
     "headers.cache: expected an HTTP header name, got \"x y\""},
    {"headers.server_version", MUT_SET, "\"\"", CANARY_EINVAL,
     "headers.server_version: expected an HTTP header name, got \"\""},
    {"headers.middleware_version", MUT_SET, "\"x:y\"", CANARY_EINVAL,
     "headers.middleware_version: expected an HTTP header name, got \"x:y\""},
    {"headers.middleware_version", MUT_SET, LONG64, CANARY_EINVAL,
     "headers.middleware_version: expected a string of at most 63 bytes (it has 64), " GOT64},
    {"expect", MUT_SET, "[]", CANARY_EINVAL, "expect: expected an object, got []"},
    {"expect.middleware[0].id", MUT_SET, "\"not-a-uuid\"", CANARY_EINVAL,
     "expect.middleware[0].id: expected a UUID (8-4-4-4-12 hex digits), got \"not-a-uuid\""},
    {"expect.server[1].id", MUT_SET, "\"5e7d9f10-4444-4c4d-8e5f-ddddddddddxd\"", CANARY_EINVAL,
     "expect.server[1].id: expected a UUID (8-4-4-4-12 hex digits), got "
     "\"5e7d9f10-4444-4c4d-8e5f-ddddddddddxd\""},
    {"expect.middleware[0].share", MUT_SET, "101", CANARY_EINVAL,
     "expect.middleware[0].share: expected a number 0..100, got 101"},
    {"expect.middleware[0].share", MUT_SET, "-1", CANARY_EINVAL,
     "expect.middleware[0].share: expected a number 0..100, got -1"},
    {"expect.middleware[0].share", MUT_SET, "\"90\"", CANARY_EINVAL,
     "expect.middleware[0].share: expected a number 0..100, got \"90\""},
    {"expect.middleware[0].share", MUT_SET, "80", CANARY_EINVAL,
     "expect.middleware: shares total 90, expected 100"},
    {"expect.middleware[0].share", MUT_SET, "90.00001", CANARY_EINVAL,
     "expect.middleware: shares total 100.00001, expected 100"},
    {"expect.middleware[0].share", MUT_SET, "90.0000005", 0, NULL}, /* within 1e-6 */
    {"expect.server[0].share", MUT_SET, "0", CANARY_EINVAL,
     "expect.server: shares total 66.6666667, expected 100"},
    {"expect.middleware[1].id", MUT_SET, "\"" M0 "\"", CANARY_EINVAL,
     "expect.middleware[1].id: \"" M0 "\" repeats expect.middleware[0].id"},
    {"expect.middleware", MUT_SET,
     "[{\"id\":\"" M0 "\",\"share\":50},{\"id\":\"" M1 "\",\"share\":25},"
     "{\"id\":\"" S0 "\",\"share\":25}]",
     CANARY_EINVAL, "expect.middleware: expected 1..2 entries, got 3"},
    {"expect.server", MUT_SET, "[]", CANARY_EINVAL, "expect.server: expected 1..2 entries, got 0"},
    {"expect.server[0]", MUT_SET, "7", CANARY_EINVAL,
     "expect.server[0]: expected an object, got 7"},
    {"expect.pins", MUT_SET, "[\"" S0 "\"]", CANARY_EINVAL,
     "expect.pins: expected 2 entries, got 1"},
    {"expect.pins[1]", MUT_SET, "\"x\"", CANARY_EINVAL,
     "expect.pins[1]: expected a UUID (8-4-4-4-12 hex digits), got \"x\""},
    {"expect.pins[1]", MUT_SET, "\"\"", CANARY_EINVAL,
     "expect.pins[1]: expected a UUID (8-4-4-4-12 hex digits), got \"\""},
    {"override", MUT_SET, "\"yes\"", CANARY_EINVAL, "override: expected an object, got \"yes\""},
    {"override.share", MUT_SET, "150", CANARY_EINVAL,
     "override.share: expected a number 0..100, got 150"},
    {"override.worker", MUT_SET, "\"\"", CANARY_EINVAL,
     "override.worker: expected a non-empty string with no control characters, got \"\""},
    {"override.version_id", MUT_SET, "\"m1\"", CANARY_EINVAL,
     "override.version_id: expected a UUID (8-4-4-4-12 hex digits), got \"m1\""},
    {"override.pin", MUT_SET, "3", CANARY_EINVAL, "override.pin: expected a string, got 3"},
    {"version_keys", MUT_SET, "65", CANARY_EINVAL,
     "version_keys: expected an integer 0..64, got 65"},
    {"version_keys", MUT_SET, "64", 0, NULL},
    /* unknown fields are ignored */
    {"zzz", MUT_SET, "{\"a\":[1,2,{\"b\":null}]}", 0, NULL},
    {"targets[0].zzz", MUT_SET, "1", 0, NULL},
};

static void
test_probe_rejections(void **state)
{
	char *base = encoded_probe();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(probe_cases); i++) {
		run_probe_case(base, &probe_cases[i]);
	}
	free(base);
}

/* 17 targets, the 17th a copy of the first under a new id. */
static void
test_probe_too_many_targets(void **state)
{
	char *base = encoded_probe(), *text, err[CANARY_ERRLEN];
	cJSON *root = cJSON_Parse(base), *arr;
	struct canary_probe p;

	(void)state;
	assert_non_null(root);
	arr = cJSON_GetObjectItemCaseSensitive(root, "targets");
	for (int i = 3; i <= CANARY_MAX_TARGETS; i++) {
		cJSON *t = cJSON_Duplicate(cJSON_GetArrayItem(arr, 0), 1);
		char id[16];

		snprintf(id, sizeof(id), "t%d", i);
		cJSON_ReplaceItemInObjectCaseSensitive(t, "id", cJSON_CreateString(id));
		cJSON_AddItemToArray(arr, t);
		text = cJSON_PrintUnformatted(root);
		if (i < CANARY_MAX_TARGETS) {
			assert_int_equal(
			    canary_probe_decode(text, strlen(text), &p, err, sizeof(err)), 0);
			assert_int_equal(p.n_targets, i + 1);
			canary_probe_free(&p);
		} else {
			assert_int_equal(
			    canary_probe_decode(text, strlen(text), &p, err, sizeof(err)),
			    CANARY_EINVAL);
			assert_string_equal(err, "targets: expected 1..16 entries, got 17");
		}
		free(text);
	}
	cJSON_Delete(root);
	free(base);
}

static const char *const report_required[] = {
    "agent_id",
    "region",
    "rollout_id",
    "round",
    "targets",
    "targets[1].id",
    "targets[1].sent",
    "targets[1].responses",
    "targets[1].statuses",
    "targets[1].statuses[2].status",
    "targets[1].statuses[2].count",
    "targets[1].statuses_other",
    "targets[1].errors",
    "targets[1].errors.dns",
    "targets[1].errors.connect",
    "targets[1].errors.tls",
    "targets[1].errors.timeout",
    "targets[1].errors.http",
    "targets[1].latency",
    "targets[1].latency.n",
    "targets[1].latency.b",
    "targets[1].pairs",
    "targets[1].pairs[0].middleware",
    "targets[1].pairs[0].server",
    "targets[1].pairs[0].count",
    "targets[1].pairs_other",
    "targets[1].cache_hit",
    "targets[1].cache_stale",
    "targets[1].cache_miss",
    "targets[1].cache_warmup",
    "targets[1].affinity_violations",
    "targets[1].unknown_versions",
    "targets[1].body_mismatches",
    "targets[1].override_sent",
    "targets[1].override_violations",
    "targets[1].key_violations",
    "targets[1].samples",
};

static const char *const report_optional[] = {"partial", "error"};

static void
test_report_missing_fields(void **state)
{
	char *base = encoded_report(), msg[CANARY_ERRLEN];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(report_required); i++) {
		struct mut_case c = {report_required[i], MUT_DEL, NULL, CANARY_EINVAL, msg};

		snprintf(msg, sizeof(msg), "%s: required field is missing", report_required[i]);
		run_report_case(base, &c);
	}
	for (size_t i = 0; i < ARRAY_LEN(report_optional); i++) {
		struct mut_case c = {report_optional[i], MUT_DEL, NULL, 0, NULL};

		run_report_case(base, &c);
	}
	free(base);
}

#define TEXT636                                                                                    \
	"\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxx"                                                                                     \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxx"                                                                                      \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxx"                                                                                      \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxx"                                                                                      \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxx"                                                                                      \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxx"                                                                                      \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxx"                                                                                      \
	"\""
#define GOTX "got \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."

static const struct mut_case report_cases[] = {
    {"v", MUT_SET, "2", CANARY_EPROTO, "v: expected protocol version 1, got 2"},
    {"v", MUT_DEL, NULL, CANARY_EPROTO, "v: required field is missing"},
    {"type", MUT_SET, "\"probe\"", CANARY_EPROTO, "type: expected \"report\", got \"probe\""},
    {"type", MUT_DEL, NULL, CANARY_EPROTO, "type: required field is missing"},
    {"agent_id", MUT_SET, "\"\"", CANARY_EINVAL,
     "agent_id: expected a non-empty string with no control characters, got \"\""},
    {"region", MUT_SET, LONG64, CANARY_EINVAL,
     "region: expected a string of at most 63 bytes (it has 64), " GOT64},
    {"region", MUT_SET, "false", CANARY_EINVAL, "region: expected a string, got false"},
    {"rollout_id", MUT_SET, "\"\"", CANARY_EINVAL,
     "rollout_id: expected a non-empty string with no control characters, got \"\""},
    {"round", MUT_SET, "-3", CANARY_EINVAL, "round: expected an integer 0.." INTMAX ", got -3"},
    {"partial", MUT_SET, "\"yes\"", CANARY_EINVAL, "partial: expected true or false, got \"yes\""},
    {"partial", MUT_SET, "1", CANARY_EINVAL, "partial: expected true or false, got 1"},
    {"partial", MUT_SET, "true", 0, NULL},
    {"error", MUT_SET, TEXT636, CANARY_EINVAL,
     "error: expected a string of at most 255 bytes (it has 636), " GOTX},
    {"targets", MUT_SET, "null", CANARY_EINVAL, "targets: expected an array, got null"},
    {"targets", MUT_SET, "[]", 0, NULL},
    {"targets[2]", MUT_SET, "[]", CANARY_EINVAL, "targets[2]: expected an object, got []"},
    {"targets[2].id", MUT_SET, "\"home\"", CANARY_EINVAL,
     "targets[2].id: \"home\" repeats targets[0].id"},
    {"targets[0].sent", MUT_SET, "-1", CANARY_EINVAL,
     "targets[0].sent: expected an integer 0.." INTMAX ", got -1"},
    {"targets[0].sent", MUT_SET, "899", CANARY_EINVAL,
     "targets[0].responses: 900 is more than sent (899)"},
    {"targets[0].responses", MUT_SET, "1e300", CANARY_EINVAL,
     "targets[0].responses: expected an integer 0.." INTMAX ", got 1e+300"},
    {"targets[0].statuses", MUT_SET, "{}", CANARY_EINVAL,
     "targets[0].statuses: expected an array, got {}"},
    {"targets[0].statuses[0]", MUT_SET, "200", CANARY_EINVAL,
     "targets[0].statuses[0]: expected an object, got 200"},
    {"targets[0].statuses[0].status", MUT_SET, "\"abc\"", CANARY_EINVAL,
     "targets[0].statuses[0].status: expected an integer 100..599, got \"abc\""},
    {"targets[0].statuses[0].status", MUT_SET, "600", CANARY_EINVAL,
     "targets[0].statuses[0].status: expected an integer 100..599, got 600"},
    {"targets[0].statuses[2].status", MUT_SET, "200", CANARY_EINVAL,
     "targets[0].statuses[2].status: 200 repeats targets[0].statuses[0].status"},
    {"targets[0].statuses[1].count", MUT_SET, "0.5", CANARY_EINVAL,
     "targets[0].statuses[1].count: expected an integer 0.." INTMAX ", got 0.5"},
    {"targets[0].statuses_other", MUT_SET, "-2", CANARY_EINVAL,
     "targets[0].statuses_other: expected an integer 0.." INTMAX ", got -2"},
    {"targets[0].errors", MUT_SET, "[]", CANARY_EINVAL,
     "targets[0].errors: expected an object, got []"},
    {"targets[0].errors.tls", MUT_SET, "\"3\"", CANARY_EINVAL,
     "targets[0].errors.tls: expected an integer 0.." INTMAX ", got \"3\""},
    {"targets[0].errors.tls", MUT_DUP, "3", CANARY_EINVAL,
     "targets[0].errors.tls: field appears twice"},
    {"targets[0].errors.quic", MUT_SET, "3", 0, NULL},
    {"targets[0].latency", MUT_SET, "[]", CANARY_EINVAL,
     "targets[0].latency: expected an object, got []"},
    {"targets[0].latency.n", MUT_SET, "1.5", CANARY_EINVAL,
     "targets[0].latency.n: expected an integer 0.." INTMAX ", got 1.5"},
    {"targets[2].latency.b[0]", MUT_SET, "5000", CANARY_EINVAL,
     "targets[2].latency.b[0]: expected an integer 0..1225, got 5000"},
    {"targets[0].latency.n", MUT_SET, "1", CANARY_EINVAL,
     "targets[0].latency.b: bucket counts total 900, but n is 1"},
    {"targets[0].pairs", MUT_SET, "7", CANARY_EINVAL, "targets[0].pairs: expected an array, got 7"},
    {"targets[0].pairs[0]", MUT_SET, "7", CANARY_EINVAL,
     "targets[0].pairs[0]: expected an object, got 7"},
    {"targets[0].pairs[0].middleware", MUT_SET, "\"m1\"", CANARY_EINVAL,
     "targets[0].pairs[0].middleware: expected a UUID (8-4-4-4-12 hex digits), got \"m1\""},
    {"targets[0].pairs[0].middleware", MUT_SET, "\"\"", CANARY_EINVAL,
     "targets[0].pairs[0].middleware: expected a UUID (8-4-4-4-12 hex digits), got \"\""},
    {"targets[0].pairs[1].server", MUT_SET, "\"nope\"", CANARY_EINVAL,
     "targets[0].pairs[1].server: expected \"\" or a UUID (8-4-4-4-12 hex digits), got "
     "\"nope\""},
    {"targets[0].pairs[0].server", MUT_SET, "\"\"", 0, NULL},
    {"targets[0].pairs[2].server", MUT_SET, "\"" S1 "\"", CANARY_EINVAL,
     "targets[0].pairs[2]: the pair repeats targets[0].pairs[1]"},
    {"targets[0].pairs[2].count", MUT_SET, "-5", CANARY_EINVAL,
     "targets[0].pairs[2].count: expected an integer 0.." INTMAX ", got -5"},
    {"targets[1].pairs_other", MUT_SET, "true", CANARY_EINVAL,
     "targets[1].pairs_other: expected an integer 0.." INTMAX ", got true"},
    {"targets[1].cache_hit", MUT_SET, "-1", CANARY_EINVAL,
     "targets[1].cache_hit: expected an integer 0.." INTMAX ", got -1"},
    {"targets[1].key_violations", MUT_SET, "1e16", CANARY_EINVAL,
     "targets[1].key_violations: expected an integer 0.." INTMAX ", got 1e+16"},
    {"targets[0].samples", MUT_SET, "\"s\"", CANARY_EINVAL,
     "targets[0].samples: expected an array, got \"s\""},
    {"targets[0].samples", MUT_SET, "[\"a\",\"b\",\"c\",\"d\",\"e\"]", CANARY_EINVAL,
     "targets[0].samples: expected 0..4 entries, got 5"},
    {"targets[0].samples[1]", MUT_SET, TEXT636, CANARY_EINVAL,
     "targets[0].samples[1]: expected a string of at most 255 bytes (it has 636), " GOTX},
    {"targets[0].samples[0]", MUT_SET, "5", CANARY_EINVAL,
     "targets[0].samples[0]: expected a string, got 5"},
    /* Counts that disagree: 200s claimed beyond the responses received,
     * pairs or cache answers beyond them, violations beyond overrides. */
    {"targets[0].statuses[0].count", MUT_SET, "900", CANARY_EINVAL,
     "targets[0].statuses: counts and statuses_other total 1000, expected responses (900)"},
    {"targets[0].statuses_other", MUT_SET, "1", CANARY_EINVAL,
     "targets[0].statuses: counts and statuses_other total 899, expected responses (900)"},
    {"targets[0].pairs_other", MUT_SET, "4", CANARY_EINVAL,
     "targets[0].pairs: counts and pairs_other total 901, more than responses (900)"},
    {"targets[0].pairs_other", MUT_SET, "0", 0, NULL},
    {"targets[1].cache_miss", MUT_SET, "878", CANARY_EINVAL,
     "targets[1].cache_hit: cache_hit, cache_stale, cache_miss and cache_warmup total 902, "
     "more than responses (901)"},
    {"targets[0].override_violations", MUT_SET, "19", CANARY_EINVAL,
     "targets[0].override_violations: expected override_violations (19) <= override_sent (18) "
     "<= sent (1000)"},
    {"targets[0].override_sent", MUT_SET, "1001", CANARY_EINVAL,
     "targets[0].override_violations: expected override_violations (17) <= override_sent "
     "(1001) <= sent (1000)"},
};

static void
test_report_rejections(void **state)
{
	char *base = encoded_report();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(report_cases); i++) {
		run_report_case(base, &report_cases[i]);
	}
	free(base);
}

/* Arrays one over their caps: targets, statuses, pairs. */
static void
test_report_caps(void **state)
{
	char *base = encoded_report(), *text, err[CANARY_ERRLEN], buf[256];
	cJSON *root = cJSON_Parse(base), *arr, *t0, *a;
	struct canary_report r;

	(void)state;
	assert_non_null(root);
	arr = cJSON_GetObjectItemCaseSensitive(root, "targets");
	t0 = cJSON_GetArrayItem(arr, 0);

	a = cJSON_CreateArray();
	for (int i = 0; i <= CANARY_MAX_SEEN_STATUS; i++) {
		snprintf(buf, sizeof(buf), "{\"status\":%d,\"count\":1}", 200 + i);
		cJSON_AddItemToArray(a, cJSON_Parse(buf));
	}
	cJSON_ReplaceItemInObjectCaseSensitive(t0, "statuses", a);
	text = cJSON_PrintUnformatted(root);
	assert_int_equal(canary_report_decode(text, strlen(text), &r, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_string_equal(err, "targets[0].statuses: expected 0..16 entries, got 17");
	free(text);
	cJSON_DeleteItemFromArray(a, 0); /* 16: fits */
	/* 16 responses itemised, the other 884 of 900 in statuses_other. */
	cJSON_ReplaceItemInObjectCaseSensitive(t0, "statuses_other", cJSON_CreateNumber(884));
	text = cJSON_PrintUnformatted(root);
	assert_int_equal(canary_report_decode(text, strlen(text), &r, err, sizeof(err)), 0);
	assert_int_equal(r.targets[0].n_statuses, 16);
	canary_report_free(&r);
	free(text);

	a = cJSON_CreateArray();
	for (int i = 0; i <= CANARY_MAX_PAIRS; i++) {
		snprintf(buf, sizeof(buf),
		         "{\"middleware\":\"0a5c1f3e-1111-4b2a-9c3d-%012d\",\"server\":\"\","
		         "\"count\":1}",
		         i);
		cJSON_AddItemToArray(a, cJSON_Parse(buf));
	}
	cJSON_ReplaceItemInObjectCaseSensitive(t0, "pairs", a);
	text = cJSON_PrintUnformatted(root);
	assert_int_equal(canary_report_decode(text, strlen(text), &r, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_string_equal(err, "targets[0].pairs: expected 0..8 entries, got 9");
	free(text);
	cJSON_DeleteItemFromArray(a, 0);

	for (int i = 3; i <= CANARY_MAX_TARGETS; i++) {
		cJSON *t = cJSON_Duplicate(t0, 1);

		snprintf(buf, sizeof(buf), "t%d", i);
		cJSON_ReplaceItemInObjectCaseSensitive(t, "id", cJSON_CreateString(buf));
		cJSON_AddItemToArray(arr, t);
	}
	text = cJSON_PrintUnformatted(root);
	assert_int_equal(canary_report_decode(text, strlen(text), &r, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_string_equal(err, "targets: expected 0..16 entries, got 17");
	free(text);
	cJSON_DeleteItemFromArray(arr, 16);
	text = cJSON_PrintUnformatted(root);
	assert_int_equal(canary_report_decode(text, strlen(text), &r, err, sizeof(err)), 0);
	assert_int_equal(r.n_targets, 16);
	canary_report_free(&r);
	free(text);
	cJSON_Delete(root);
	free(base);
}

/* The rollout id may be empty only in an error report. */
static void
test_report_error_without_rollout(void **state)
{
	static const char ok[] = "{\"v\":1,\"type\":\"report\",\"agent_id\":\"a\",\"region\":\"r\","
	                         "\"rollout_id\":\"\",\"round\":0,\"error\":\"bad survey\","
	                         "\"targets\":[]}";
	static const char bad[] =
	    "{\"v\":1,\"type\":\"report\",\"agent_id\":\"a\",\"region\":\"r\","
	    "\"rollout_id\":\"\",\"round\":0,\"targets\":[]}";
	struct canary_report r;
	char err[CANARY_ERRLEN];

	(void)state;
	assert_int_equal(canary_report_decode(ok, sizeof(ok) - 1, &r, err, sizeof(err)), 0);
	assert_string_equal(r.error, "bad survey");
	assert_int_equal(r.partial, 0);
	canary_report_free(&r);
	assert_int_equal(canary_report_decode(bad, sizeof(bad) - 1, &r, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_string_equal(
	    err, "rollout_id: expected a non-empty string with no control characters, got \"\"");
}

/* ---- rejections of the text itself --------------------------------------- */

struct text_case {
	const char *text;
	size_t len; /* 0: strlen */
	int code;
	const char *msg;
};

static const struct text_case text_cases[] = {
    {"", 0, CANARY_EPARSE, "message: empty"},
    {"hello", 0, CANARY_EPARSE, "byte 0: not valid JSON"},
    {"{\"v\":1,", 0, CANARY_EPARSE, "byte 6: not valid JSON"},
    {"{\"v\":1}x", 0, CANARY_EPARSE, "byte 7: unexpected data after the JSON value"},
    {"{\"v\":1} \n {}", 0, CANARY_EPARSE, "byte 10: unexpected data after the JSON value"},
    {"[1,2]", 0, CANARY_EINVAL, "message: expected an object, got [1,2]"},
    {"\"probe\"", 0, CANARY_EINVAL, "message: expected an object, got \"probe\""},
    {"{\"v\":1}\0", 8, CANARY_EPARSE, "byte 7: unexpected control character 0x00"},
    {"{\"v\":\"a\0b\"}", 11, CANARY_EPARSE, "byte 7: control character 0x00 in a string"},
    {"{\"v\":\"a\nb\"}", 0, CANARY_EPARSE, "byte 7: control character 0x0a in a string"},
    {"{\"v\":\"a\\\nb\"}", 0, CANARY_EPARSE, "byte 8: control character 0x0a in a string"},
    {"{\"v\":\x01 1}", 0, CANARY_EPARSE, "byte 5: unexpected control character 0x01"},
    {"{\"type\":\"probe\\u0000x\"}", 0, CANARY_EPARSE,
     "byte 14: \\u0000 is not allowed in a string"},
    {"{\"v\":[1,2}", 0, CANARY_EPARSE, "byte 9: not valid JSON"},
    {"{}", 0, CANARY_EPROTO, "v: required field is missing"},
    {"{\"v\":1}", 0, CANARY_EPROTO, "type: required field is missing"},
    /* depth: the root object is level 1 */
    {"{\"x\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]],\"v\":2}", 0, CANARY_EPROTO,
     "v: expected protocol version 1, got 2"},
    {"{\"x\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}", 0, CANARY_ETOODEEP,
     "byte 20: nested deeper than 16 levels"},
    {"{\"x\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[{{{{{{{{{{{{{{{{{{{{\",\"v\":2}", 0,
     CANARY_EPROTO, "v: expected protocol version 1, got 2"},
};

static void
test_text_rejections(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(text_cases); i++) {
		const struct text_case *c = &text_cases[i];
		size_t len = c->len ? c->len : strlen(c->text);
		char err[CANARY_ERRLEN] = "";
		struct canary_probe p;
		struct canary_report r;
		int rv;

		memset(&p, 0x5a, sizeof(p));
		rv = canary_probe_decode(c->text, len, &p, err, sizeof(err));
		if (rv != c->code || strcmp(err, c->msg) != 0) {
			fail_msg("case %zu: rv %d \"%s\", want %d \"%s\"", i, rv, err, c->code,
			         c->msg);
		}
		assert_all_zero(&p, sizeof(p));
		memset(&r, 0x5a, sizeof(r));
		err[0] = '\0';
		rv = canary_report_decode(c->text, len, &r, err, sizeof(err));
		if (rv != c->code || strcmp(err, c->msg) != 0) {
			fail_msg("case %zu (report): rv %d \"%s\", want %d \"%s\"", i, rv, err,
			         c->code, c->msg);
		}
		assert_all_zero(&r, sizeof(r));
	}
}

/* A valid message padded with spaces to exactly the cap decodes; one byte
 * more is refused before any parsing. The buffer is not NUL-terminated. */
static void
test_size_cap(void **state)
{
	char *base = encoded_probe(), *buf, err[CANARY_ERRLEN];
	size_t n = strlen(base);
	struct canary_probe p;

	(void)state;
	buf = malloc(CANARY_MSG_MAX_BYTES + 1);
	assert_non_null(buf);
	memset(buf, ' ', CANARY_MSG_MAX_BYTES + 1);
	memcpy(buf, base, n);
	assert_int_equal(canary_probe_decode(buf, CANARY_MSG_MAX_BYTES, &p, err, sizeof(err)), 0);
	canary_probe_free(&p);
	assert_int_equal(canary_probe_decode(buf, CANARY_MSG_MAX_BYTES + 1, &p, err, sizeof(err)),
	                 CANARY_ETOOBIG);
	assert_string_equal(err, "message: 1048577 bytes, over the 1048576-byte cap");
	free(buf);
	free(base);
}

/* The decoder must not read past len: a message followed by garbage that
 * is not part of it. */
static void
test_decode_respects_len(void **state)
{
	char *base = encoded_report(), *buf, err[CANARY_ERRLEN];
	size_t n = strlen(base);
	struct canary_report r;

	(void)state;
	buf = malloc(n + 4);
	assert_non_null(buf);
	memcpy(buf, base, n);
	memcpy(buf + n, "xyz", 4);
	assert_int_equal(canary_report_decode(buf, n, &r, err, sizeof(err)), 0);
	canary_report_free(&r);
	assert_int_equal(canary_report_decode(buf, n - 1, &r, err, sizeof(err)), CANARY_EPARSE);
	free(buf);
	free(base);
}

/* ---- encoding refuses what decoding would ------------------------------ */

static void
test_encode_rejects(void **state)
{
	struct canary_probe p;
	struct canary_report r;
	char err[CANARY_ERRLEN], *text = (char *)"sentinel";

	(void)state;
	make_probe(&p);
	p.targets[0].requests = 0;
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets[0].requests: expected an integer 1..100000, got 0");
	assert_null(text);
	p.targets[0].requests = 1;
	memset(p.targets[1].id, 'x', sizeof(p.targets[1].id));
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets[1].id: not NUL-terminated within its 64 bytes");
	snprintf(p.targets[1].id, sizeof(p.targets[1].id), "api");
	p.n_targets = CANARY_MAX_TARGETS + 1;
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets: expected 1..16 entries, got 17");
	p.n_targets = 0;
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets: expected 1..16 entries, got 0");
	p.n_targets = 3;
	p.targets[2].n_expect_status = CANARY_MAX_STATUSES + 1;
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets[2].expect_status: expected 1..8 entries, got 9");
	p.targets[2].n_expect_status = 1;
	p.phase = (enum canary_phase)9;
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "phase: expected one of \"baseline\", \"converge\", \"bake\", "
	                         "\"rollback-verify\", \"check\", got the value 9");
	p.phase = CANARY_PHASE_BAKE;
	p.expect.middleware[1].share = 0.0;
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "expect.middleware: shares total 90, expected 100");
	p.expect.middleware[1].share = 10.0;
	snprintf(p.expect.pins[1], CANARY_UUID_LEN, "s1");
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "expect.pins[1]: expected a UUID (8-4-4-4-12 hex digits), got "
	                         "\"s1\"");
	snprintf(p.expect.pins[1], CANARY_UUID_LEN, "%s", S1);
	p.proto_version = 2;
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), CANARY_EPROTO);
	p.proto_version = CANARY_PROTO_VERSION;
	assert_int_equal(canary_probe_encode(&p, &text, NULL, err, sizeof(err)), 0);
	free(text);
	canary_probe_free(&p);

	make_report(&r);
	r.targets[1].statuses[0].status = 700;
	assert_int_equal(canary_report_encode(&r, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets[1].statuses[0].status: expected an integer 100..599, got "
	                         "700");
	r.targets[1].statuses[0].status = 200;
	r.targets[2].cache_miss = UINT64_MAX; /* cannot travel exactly */
	assert_int_equal(canary_report_encode(&r, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets[2].cache_miss: expected an integer 0.." INTMAX
	                         ", got 1.8446744073709552e+19");
	r.targets[2].cache_miss = 0;
	r.targets[0].n_pairs = -1;
	assert_int_equal(canary_report_encode(&r, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets[0].pairs: expected 0..8 entries, got -1");
	r.targets[0].n_pairs = 0;
	memset(r.targets[0].samples[1], 'z', CANARY_SAMPLE_LEN);
	assert_int_equal(canary_report_encode(&r, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets[0].samples[1]: not NUL-terminated within its 256 bytes");
	r.targets[0].samples[1][0] = '\0';
	snprintf(r.targets[0].pairs[0].middleware, CANARY_UUID_LEN, "%s", M0);
	r.targets[0].n_pairs = 1;
	r.targets[0].responses = r.targets[0].sent + 1;
	assert_int_equal(canary_report_encode(&r, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets[0].responses: 1001 is more than sent (1000)");
	r.targets[0].responses = 900;
	assert_int_equal(canary_report_encode(&r, &text, NULL, err, sizeof(err)), 0);
	free(text);
	free(r.targets);
	r.targets = NULL; /* n_targets 3 with no array */
	assert_int_equal(canary_report_encode(&r, &text, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_string_equal(err, "targets: NULL with 3 entries");
	canary_report_free(NULL);
	canary_probe_free(NULL);
}

/* ---- merge ------------------------------------------------------------- */

/* One simulated request, and the counting an agent does for it. */
struct obs {
	int status; /* 0: no response, err says why */
	int err;
	int mw, srv; /* indexes into a version table; srv -1 = "" */
	int cache;   /* 0 hit, 1 stale, 2 miss */
	uint64_t lat;
};

static void
count_obs(struct canary_target_report *t, const struct obs *o)
{
	static const char *const vers[] = {
	    "0a5c1f3e-1111-4b2a-9c3d-000000000000", "0a5c1f3e-1111-4b2a-9c3d-000000000001",
	    "0a5c1f3e-1111-4b2a-9c3d-000000000002", "0a5c1f3e-1111-4b2a-9c3d-000000000003",
	    "0a5c1f3e-1111-4b2a-9c3d-000000000004", "0a5c1f3e-1111-4b2a-9c3d-000000000005",
	};
	const char *srv;
	int j;

	t->sent++;
	if (o->status == 0) {
		t->errors[o->err]++;
		if (t->n_samples < CANARY_MAX_SAMPLES) {
			snprintf(t->samples[t->n_samples++], CANARY_SAMPLE_LEN,
			         "error %d at %llu us", o->err, (unsigned long long)o->lat);
		}
		return;
	}
	t->responses++;
	canary_hist_record(&t->latency, o->lat);
	for (j = 0; j < t->n_statuses && t->statuses[j].status != o->status; j++) {
	}
	if (j < t->n_statuses) {
		t->statuses[j].count++;
	} else if (t->n_statuses < CANARY_MAX_SEEN_STATUS) {
		t->statuses[t->n_statuses].status = o->status;
		t->statuses[t->n_statuses++].count = 1;
	} else {
		t->statuses_other++;
	}
	srv = o->srv < 0 ? "" : vers[o->srv];
	for (j = 0; j < t->n_pairs; j++) {
		if (strcmp(t->pairs[j].middleware, vers[o->mw]) == 0 &&
		    strcmp(t->pairs[j].server, srv) == 0) {
			break;
		}
	}
	if (j < t->n_pairs) {
		t->pairs[j].count++;
	} else if (t->n_pairs < CANARY_MAX_PAIRS) {
		snprintf(t->pairs[t->n_pairs].middleware, CANARY_UUID_LEN, "%s", vers[o->mw]);
		snprintf(t->pairs[t->n_pairs].server, CANARY_UUID_LEN, "%s", srv);
		t->pairs[t->n_pairs++].count = 1;
	} else {
		t->pairs_other++;
	}
	if (o->cache == 0) {
		t->cache_hit++;
	} else if (o->cache == 1) {
		t->cache_stale++;
	} else {
		t->cache_miss++;
	}
	t->affinity_violations += o->mw == 1 && o->srv == 0;
	t->cache_warmup += o->lat % 13 == 0;
	t->unknown_versions += o->mw == 5;
	t->body_mismatches += o->status == 500;
	t->override_sent += o->lat % 2;
	t->override_violations += o->lat % 7 == 0;
	t->key_violations += o->lat % 11 == 0;
}

static uint64_t
lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

/* n requests: statuses from a set of nstatus values, pairs from npairs. */
static void
make_obs(struct obs *o, int n, int nstatus, int npairs, uint64_t seed)
{
	for (int i = 0; i < n; i++) {
		int p = (int)(lcg(&seed) % (uint64_t)npairs);

		o[i].status =
		    lcg(&seed) % 20 == 0 ? 0 : 200 + (int)(lcg(&seed) % (uint64_t)nstatus);
		o[i].err = (int)(lcg(&seed) % CANARY_ERRCLASS_COUNT);
		o[i].mw = p % 6;
		o[i].srv = p / 6 - 1; /* -1..npairs/6-1 */
		o[i].cache = (int)(lcg(&seed) % 3);
		o[i].lat = 100 + lcg(&seed) % 2000000;
	}
}

/* Three reports merged into an empty accumulator equal one report that
 * counted all their requests. */
static void
check_merge(int nstatus, int npairs, int exact)
{
	enum { N = 3000 };
	struct obs *o = calloc(N, sizeof(*o));
	struct canary_target_report *part = calloc(3, sizeof(*part));
	struct canary_target_report *all = calloc(1, sizeof(*all));
	struct canary_target_report *acc = calloc(1, sizeof(*acc));
	uint64_t sum_acc = 0, sum_all = 0;

	assert_non_null(o);
	assert_non_null(part);
	assert_non_null(all);
	assert_non_null(acc);
	make_obs(o, N, nstatus, npairs, (uint64_t)(nstatus * 100 + npairs));
	for (int k = 0; k < 3; k++) {
		snprintf(part[k].id, sizeof(part[k].id), "home");
	}
	snprintf(all->id, sizeof(all->id), "home");
	for (int i = 0; i < N; i++) {
		count_obs(&part[i * 3 / N], &o[i]);
		count_obs(all, &o[i]);
	}
	for (int k = 0; k < 3; k++) {
		canary_target_report_merge(acc, &part[k]);
	}
	if (exact) {
		assert_target_report_equal(acc, all);
	} else {
		/* Some part overflowed its own table: totals stay exact. */
		for (int j = 0; j < acc->n_statuses; j++) {
			sum_acc += acc->statuses[j].count;
		}
		for (int j = 0; j < all->n_statuses; j++) {
			sum_all += all->statuses[j].count;
		}
		assert_int_equal(sum_acc + acc->statuses_other, sum_all + all->statuses_other);
		assert_int_equal(sum_acc + acc->statuses_other, all->responses);
		sum_acc = sum_all = 0;
		for (int j = 0; j < acc->n_pairs; j++) {
			sum_acc += acc->pairs[j].count;
		}
		for (int j = 0; j < all->n_pairs; j++) {
			sum_all += all->pairs[j].count;
		}
		assert_int_equal(sum_acc + acc->pairs_other, sum_all + all->pairs_other);
		assert_int_equal(acc->n_statuses, CANARY_MAX_SEEN_STATUS);
		assert_int_equal(acc->n_pairs, CANARY_MAX_PAIRS);
		assert_memory_equal(&acc->latency, &all->latency, sizeof(acc->latency));
		assert_int_equal(acc->sent, all->sent);
	}
	free(o);
	free(part);
	free(all);
	free(acc);
}

static void
test_merge_equals_counting_at_once(void **state)
{
	(void)state;
	check_merge(5, 8, 1); /* 8 pairs fill the table exactly */
	check_merge(12, 6, 1);
}

/* More distinct values than the tables hold across reports, though each
 * report alone fits: still exact, the surplus in *_other. */
static void
test_merge_overflow_across_reports(void **state)
{
	struct canary_target_report *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct canary_target_report *all = calloc(1, sizeof(*all)), *acc = calloc(1, sizeof(*acc));
	struct obs o = {0};

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(all);
	assert_non_null(acc);
	for (int i = 0; i < 24; i++) { /* 24 statuses, 12 per report */
		o.status = 200 + i;
		o.mw = i % 6;
		o.srv = i < 12 ? -1 : 1; /* 12 distinct pairs: 6 per report */
		o.lat = 1000 + (uint64_t)i;
		for (int rep = 0; rep <= i % 3; rep++) {
			count_obs(i < 12 ? a : b, &o);
			count_obs(all, &o);
		}
	}
	assert_int_equal(a->statuses_other, 0);
	assert_int_equal(b->statuses_other, 0);
	assert_int_equal(a->pairs_other, 0);
	assert_int_equal(b->pairs_other, 0);
	canary_target_report_merge(acc, a);
	canary_target_report_merge(acc, b);
	assert_true(all->statuses_other > 0);
	assert_true(all->pairs_other > 0);
	assert_target_report_equal(acc, all);
	free(a);
	free(b);
	free(all);
	free(acc);
}

static void
test_merge_overflow_within_a_report(void **state)
{
	(void)state;
	check_merge(30, 30, 0);
}

static void
test_merge_details(void **state)
{
	struct canary_target_report *dst = calloc(1, sizeof(*dst)), *src = calloc(1, sizeof(*src));

	(void)state;
	assert_non_null(dst);
	assert_non_null(src);
	make_target_report(src, "home", 0);
	canary_target_report_merge(dst, src);
	assert_string_equal(dst->id, "home"); /* an empty accumulator takes the id */
	assert_target_report_equal(dst, src);
	canary_target_report_merge(dst, src);
	assert_int_equal(dst->sent, 2 * src->sent);
	assert_int_equal(dst->statuses[0].count, 2 * src->statuses[0].count);
	assert_int_equal(dst->n_statuses, src->n_statuses);
	assert_int_equal(dst->pairs[2].count, 2 * src->pairs[2].count);
	assert_int_equal(dst->n_pairs, src->n_pairs);
	assert_int_equal(dst->pairs_other, 2 * src->pairs_other);
	assert_int_equal(dst->errors[CANARY_ERRCLASS_HTTP], 2 * src->errors[CANARY_ERRCLASS_HTTP]);
	assert_int_equal(dst->latency.count, 2 * src->latency.count);
	assert_int_equal(dst->n_samples, CANARY_MAX_SAMPLES); /* 2 + 2 */
	assert_string_equal(dst->samples[2], src->samples[0]);
	canary_target_report_merge(dst, src);
	assert_int_equal(dst->n_samples, CANARY_MAX_SAMPLES); /* no room: kept as they were */
	assert_string_equal(dst->samples[3], src->samples[1]);
	/* counters saturate rather than wrap */
	dst->cache_hit = UINT64_MAX - 1;
	canary_target_report_merge(dst, src);
	assert_int_equal(dst->cache_hit, UINT64_MAX);
	free(dst);
	free(src);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe_round_trip_full),
	    cmocka_unit_test(test_probe_wire_names),
	    cmocka_unit_test(test_probe_defaults),
	    cmocka_unit_test(test_report_round_trip_full),
	    cmocka_unit_test(test_report_round_trip_partial),
	    cmocka_unit_test(test_report_round_trip_error),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_is_uuid),
	    cmocka_unit_test(test_probe_missing_fields),
	    cmocka_unit_test(test_probe_rejections),
	    cmocka_unit_test(test_probe_too_many_targets),
	    cmocka_unit_test(test_report_missing_fields),
	    cmocka_unit_test(test_report_rejections),
	    cmocka_unit_test(test_report_caps),
	    cmocka_unit_test(test_report_error_without_rollout),
	    cmocka_unit_test(test_text_rejections),
	    cmocka_unit_test(test_size_cap),
	    cmocka_unit_test(test_decode_respects_len),
	    cmocka_unit_test(test_encode_rejects),
	    cmocka_unit_test(test_merge_equals_counting_at_once),
	    cmocka_unit_test(test_merge_overflow_across_reports),
	    cmocka_unit_test(test_merge_overflow_within_a_report),
	    cmocka_unit_test(test_merge_details),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
