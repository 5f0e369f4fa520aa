/*
 * test_plan.c: the planner, the skew invariant and the rollback moves.
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
#include "plan.h"

static const int test_percents[] = {1, 10, 25, 50, 99};
#define TEST_NPCT ((int)(sizeof(test_percents) / sizeof(test_percents[0])))

static struct plan_versions
test_versions(void)
{
	struct plan_versions v;

	memset(&v, 0, sizeof(v));
	snprintf(v.s0, sizeof(v.s0), "00000000-0000-4000-8000-000000000000");
	snprintf(v.s1, sizeof(v.s1), "11111111-1111-4111-8111-111111111111");
	snprintf(v.m0, sizeof(v.m0), "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa");
	snprintf(v.m1, sizeof(v.m1), "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb");
	snprintf(v.pin_m0, sizeof(v.pin_m0), "%s", v.s0);
	snprintf(v.pin_m1, sizeof(v.pin_m1), "%s", v.s1);
	return v;
}

static void
test_dep(struct deployment *d, const char *a, int pa, const char *b, int pb)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->versions[0].version_id, sizeof(d->versions[0].version_id), "%s", a);
	d->versions[0].percentage = pa;
	d->n_versions = 1;
	if (b != NULL) {
		snprintf(d->versions[1].version_id, sizeof(d->versions[1].version_id), "%s", b);
		d->versions[1].percentage = pb;
		d->n_versions = 2;
	}
}

static struct plan_step
test_step(const char *name)
{
	struct plan_step s;
	char err[CANARY_ERRLEN];

	assert_int_equal(plan_step_parse(name, &s, err, sizeof(err)), 0);
	return s;
}

static int
test_is_production(const struct plan_state *st, const struct plan_versions *v)
{
	return st->server.n_versions == 1 &&
	       strcmp(st->server.versions[0].version_id, v->s0) == 0 &&
	       st->server.versions[0].percentage == 100 && st->middleware.n_versions == 1 &&
	       strcmp(st->middleware.versions[0].version_id, v->m0) == 0 &&
	       st->middleware.versions[0].percentage == 100;
}

/* Walks the rollback from st. Asserts: at most 3 moves, every move valid,
 * the invariant after every move when it held at the start (or whenever it
 * holds once), production reached at the end. Returns the number of moves. */
static int
test_rollback_walk(const struct plan_state *start, const struct plan_versions *v)
{
	char err[CANARY_ERRLEN];
	struct plan_state st = *start;
	struct plan_move mv;
	int held = plan_invariant(&st, v, NULL, err, sizeof(err)) == 0;

	for (int k = 0; k < 4; k++) {
		assert_int_equal(plan_rollback_next(&st, v, &mv, err, sizeof(err)), 0);
		if (mv.done) {
			assert_true(test_is_production(&st, v));
			return k;
		}
		assert_int_equal(plan_deployment_valid(&mv.dep, err, sizeof(err)), 0);
		assert_false(plan_deployment_equal(
		    &mv.dep, mv.worker == PLAN_SERVER ? &st.server : &st.middleware));
		plan_state_apply(&st, mv.worker, &mv.dep);
		int now = plan_invariant(&st, v, NULL, err, sizeof(err)) == 0;
		if (held) {
			if (!now) {
				fail_msg("move %d broke the invariant: %s", mv.number, err);
			}
		}
		held = held || now;
	}
	fail_msg("rollback did not finish within 3 moves");
	return -1;
}

static void
test_step_parse(void **state)
{
	struct plan_step s;
	char err[CANARY_ERRLEN], name[PLAN_STEP_NAME_LEN];
	const char *good[] = {"server-0",      "middleware-dark", "middleware-1", "middleware-10",
	                      "middleware-99", "middleware-100",  "server-100"};
	const char *bad[] = {"middleware-0",    "middleware-05",  "middleware-101",
	                     "middleware-",     "middleware-1x",  "middleware--1",
	                     "server-50",       "Server-0",       "",
	                     "middleware-100 ", "middleware-1000"};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(plan_step_parse(good[i], &s, err, sizeof(err)), 0);
		assert_int_equal(s.bake_s, -1);
		assert_string_equal(plan_step_name(&s, name, sizeof(name)), good[i]);
	}
	s = test_step("middleware-25");
	assert_int_equal(s.kind, PLAN_STEP_MIDDLEWARE_P);
	assert_int_equal(s.percent, 25);
	s = test_step("middleware-100");
	assert_int_equal(s.kind, PLAN_STEP_MIDDLEWARE_100);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(plan_step_parse(bad[i], &s, err, sizeof(err)), CANARY_EINVAL);
		assert_non_null(strstr(err, "expected a step name"));
	}
}

static void
test_step_deployments(void **state)
{
	struct plan_versions v = test_versions();
	struct plan_state st;
	struct deployment d, want;
	enum plan_worker w;
	char err[CANARY_ERRLEN];
	struct plan_step s;

	(void)state;
	test_dep(&st.server, v.s0, 100, NULL, 0);
	test_dep(&st.middleware, v.m0, 100, NULL, 0);

	s = test_step("server-0");
	assert_int_equal(plan_step_deployment(&s, &v, &st, &w, &d, err, sizeof(err)), 0);
	assert_int_equal(w, PLAN_SERVER);
	test_dep(&want, v.s0, 100, v.s1, 0);
	assert_true(plan_deployment_equal(&d, &want));
	plan_state_apply(&st, w, &d);

	s = test_step("middleware-dark");
	assert_int_equal(plan_step_deployment(&s, &v, &st, &w, &d, err, sizeof(err)), 0);
	assert_int_equal(w, PLAN_MIDDLEWARE);
	test_dep(&want, v.m0, 100, v.m1, 0);
	assert_true(plan_deployment_equal(&d, &want));

	s = test_step("middleware-30");
	assert_int_equal(plan_step_deployment(&s, &v, &st, &w, &d, err, sizeof(err)), 0);
	test_dep(&want, v.m1, 30, v.m0, 70);
	assert_true(plan_deployment_equal(&d, &want));

	/* The guard: server-100 while m0 is deployed strands m0's pin. */
	s = test_step("server-100");
	assert_int_equal(plan_step_deployment(&s, &v, &st, &w, &d, err, sizeof(err)), CANARY_ESKEW);
	assert_non_null(strstr(err, "server-100"));
	assert_non_null(strstr(err, v.m0));

	/* The guard the other way: m1 before s1 is deployed. */
	test_dep(&st.server, v.s0, 100, NULL, 0);
	s = test_step("middleware-100");
	assert_int_equal(plan_step_deployment(&s, &v, &st, &w, &d, err, sizeof(err)), CANARY_ESKEW);
	assert_non_null(strstr(err, v.s1));
}

static void
test_invariant(void **state)
{
	struct plan_versions v = test_versions();
	struct plan_state st;
	char err[CANARY_ERRLEN];
	int bad = -1;

	(void)state;
	test_dep(&st.server, v.s0, 100, v.s1, 0);
	test_dep(&st.middleware, v.m0, 90, v.m1, 10);
	assert_int_equal(plan_invariant(&st, &v, &bad, err, sizeof(err)), 0);

	/* A 0% middleware version counts: an override can reach it. */
	test_dep(&st.server, v.s0, 100, NULL, 0);
	test_dep(&st.middleware, v.m0, 100, v.m1, 0);
	assert_int_equal(plan_invariant(&st, &v, &bad, err, sizeof(err)), CANARY_ESKEW);
	assert_int_equal(bad, 1);
	assert_non_null(strstr(err, v.m1));
	assert_non_null(strstr(err, v.s1));

	test_dep(&st.server, v.s1, 100, NULL, 0);
	test_dep(&st.middleware, v.m0, 100, NULL, 0);
	assert_int_equal(plan_invariant(&st, &v, &bad, err, sizeof(err)), CANARY_ESKEW);
	assert_int_equal(bad, 0);

	/* Unknown middleware: the pin cannot be shown. */
	test_dep(&st.middleware, "cccccccc-cccc-4ccc-8ccc-cccccccccccc", 100, NULL, 0);
	assert_int_equal(plan_invariant(&st, &v, &bad, err, sizeof(err)), CANARY_ENOENT);
	assert_non_null(strstr(err, "unknown"));
}

/* Every allowed plan: server-0, optional dark, any increasing subset of the
 * test percentages, middleware-100, server-100. Each verifies, and walking
 * it by hand keeps the invariant at each step, and the rollback from each
 * intermediate state reaches m0+s0 with the invariant at each move. */
static void
test_every_forward_path(void **state)
{
	struct plan_versions v = test_versions();
	char err[CANARY_ERRLEN];
	int plans = 0;

	(void)state;
	for (int dark = 0; dark < 2; dark++) {
		for (int mask = 0; mask < (1 << TEST_NPCT); mask++) {
			struct plan_step steps[PLAN_MAX_STEPS];
			struct plan_state st;
			int n = 0;

			steps[n++] = test_step("server-0");
			if (dark) {
				steps[n++] = test_step("middleware-dark");
			}
			for (int i = 0; i < TEST_NPCT; i++) {
				if (mask & (1 << i)) {
					char name[PLAN_STEP_NAME_LEN];
					snprintf(name, sizeof(name), "middleware-%d",
					         test_percents[i]);
					steps[n++] = test_step(name);
				}
			}
			steps[n++] = test_step("middleware-100");
			steps[n++] = test_step("server-100");
			if (plan_verify(steps, n, &v, err, sizeof(err)) != 0) {
				fail_msg("plan %d/%d rejected: %s", dark, mask, err);
			}
			assert_int_equal(plan_verify(steps, n, NULL, err, sizeof(err)), 0);

			test_dep(&st.server, v.s0, 100, NULL, 0);
			test_dep(&st.middleware, v.m0, 100, NULL, 0);
			assert_int_equal(test_rollback_walk(&st, &v), 0);
			for (int i = 0; i < n; i++) {
				enum plan_worker w;
				struct deployment d;
				assert_int_equal(plan_step_deployment(&steps[i], &v, &st, &w, &d,
				                                      err, sizeof(err)),
				                 0);
				plan_state_apply(&st, w, &d);
				assert_int_equal(plan_invariant(&st, &v, NULL, err, sizeof(err)),
				                 0);
				int moves = test_rollback_walk(&st, &v);
				/* From a state with s0 deployed no move (1) is needed,
				 * and at most moves (1) (2) (3) are ever needed. */
				assert_true(moves >= 1 && moves <= 3);
			}
			/* The end state is m1+s1 at 100%. */
			assert_int_equal(st.server.n_versions, 1);
			assert_string_equal(st.server.versions[0].version_id, v.s1);
			assert_int_equal(st.middleware.n_versions, 1);
			assert_string_equal(st.middleware.versions[0].version_id, v.m1);
			plans++;
		}
	}
	assert_int_equal(plans, 2 * (1 << TEST_NPCT));
}

static int
test_verify_names(const char *const *names, int n, char *err, size_t errlen)
{
	struct plan_step steps[PLAN_MAX_STEPS + 2];
	struct plan_versions v = test_versions();

	for (int i = 0; i < n; i++) {
		steps[i] = test_step(names[i]);
	}
	return plan_verify(steps, n, &v, err, errlen);
}

static void
test_rejected_orders(void **state)
{
	char err[CANARY_ERRLEN];
	(void)state;

	{
		const char *p[] = {"server-0", "server-100", "middleware-100"};
		assert_int_equal(test_verify_names(p, 3, err, sizeof(err)), CANARY_ESKEW);
		assert_non_null(strstr(err, "steps[1]"));
		assert_non_null(strstr(err, "server-100"));
	}
	{
		const char *p[] = {"middleware-10", "server-0", "middleware-100", "server-100"};
		assert_int_equal(test_verify_names(p, 4, err, sizeof(err)), CANARY_ESKEW);
		assert_non_null(strstr(err, "steps[0]"));
	}
	{
		const char *p[] = {"server-0", "middleware-10", "middleware-10", "middleware-100",
		                   "server-100"};
		assert_int_equal(test_verify_names(p, 5, err, sizeof(err)), CANARY_ECONFIG);
		assert_non_null(strstr(err, "twice"));
	}
	{
		/* A P step after middleware-100 brings m0 back: server-100 then
		 * strands m0's pin, which the walk finds first. */
		const char *p[] = {"server-0", "middleware-100", "middleware-50", "server-100"};
		assert_int_equal(test_verify_names(p, 4, err, sizeof(err)), CANARY_ESKEW);
		assert_non_null(strstr(err, "steps[3]"));
	}
	{
		const char *p[] = {"server-0", "middleware-100", "middleware-50"};
		assert_int_equal(test_verify_names(p, 3, err, sizeof(err)), CANARY_ECONFIG);
		assert_non_null(strstr(err, "after middleware-100"));
	}
	{
		const char *p[] = {"server-0", "middleware-50", "middleware-10", "middleware-100",
		                   "server-100"};
		assert_int_equal(test_verify_names(p, 5, err, sizeof(err)), CANARY_ECONFIG);
		assert_non_null(strstr(err, "increase"));
	}
	{
		const char *p[] = {"server-0", "middleware-10", "middleware-dark", "middleware-100",
		                   "server-100"};
		assert_int_equal(test_verify_names(p, 5, err, sizeof(err)), CANARY_ECONFIG);
		assert_non_null(strstr(err, "middleware-dark"));
	}
	{
		const char *p[] = {"server-0", "middleware-10", "middleware-50"};
		assert_int_equal(test_verify_names(p, 3, err, sizeof(err)), CANARY_ECONFIG);
		assert_non_null(strstr(err, "at the end"));
	}
	{
		const char *p[] = {"server-0", "middleware-100", "server-100", "server-0"};
		assert_int_equal(test_verify_names(p, 4, err, sizeof(err)), CANARY_ECONFIG);
	}
	{
		const char *p[] = {"server-0", "middleware-dark", "middleware-dark",
		                   "middleware-100", "server-100"};
		assert_int_equal(test_verify_names(p, 5, err, sizeof(err)), CANARY_ECONFIG);
	}
	{
		const char *p[] = {"server-0", "middleware-100"};
		assert_int_equal(test_verify_names(p, 2, err, sizeof(err)), CANARY_ECONFIG);
	}
	{
		/* server-0 twice, the second after the end. */
		const char *p[] = {"server-0", "server-0", "middleware-100", "server-100"};
		assert_int_equal(test_verify_names(p, 4, err, sizeof(err)), CANARY_ECONFIG);
	}
}

/* Rollback from every combination of server and middleware deployments over
 * the known versions plus a stranger's (sX, mX), splits 100/0, 50/50, 0/100. */
/* Every state over three server and three middleware versions (s0, s1, an
 * unknown sX; m0, m1, an unknown mX) with uneven, even and 0/100 splits,
 * for every pin m1 may carry (s1, s0, sX): the walk keeps the invariant
 * whenever it held and reaches m0+s0 within three moves. */
static void
test_rollback_odd_states(void **state)
{
	struct plan_versions v = test_versions();
	const char *sx = "99999999-9999-4999-8999-999999999999";
	const char *sv[] = {v.s0, v.s1, sx};
	const char *mv[] = {v.m0, v.m1, "cccccccc-cccc-4ccc-8ccc-cccccccccccc"};
	const char *pins_m1[] = {v.s1, v.s0, sx};
	const int splits[][2] = {{100, 0}, {70, 30}, {50, 50}, {30, 70}, {0, 100}};
	struct deployment sdeps[64], mdeps[64];
	int ns = 0, nm = 0, walks = 0, most = 0;

	(void)state;
	for (int a = 0; a < 3; a++) {
		test_dep(&sdeps[ns++], sv[a], 100, NULL, 0);
		test_dep(&mdeps[nm++], mv[a], 100, NULL, 0);
		for (int b = 0; b < 3; b++) {
			if (a == b) {
				continue;
			}
			for (int k = 0; k < 5; k++) {
				test_dep(&sdeps[ns++], sv[a], splits[k][0], sv[b], splits[k][1]);
				test_dep(&mdeps[nm++], mv[a], splits[k][0], mv[b], splits[k][1]);
			}
		}
	}
	for (int p = 0; p < 3; p++) {
		struct plan_versions pv = v;

		snprintf(pv.pin_m1, sizeof(pv.pin_m1), "%s", pins_m1[p]);
		for (int i = 0; i < ns; i++) {
			for (int j = 0; j < nm; j++) {
				struct plan_state st = {.server = sdeps[i], .middleware = mdeps[j]};
				int n = test_rollback_walk(&st, &pv);

				most = n > most ? n : most;
				walks++;
			}
		}
	}
	assert_int_equal(walks, 3 * 33 * 33);
	assert_int_equal(most, 3);
}

static void
test_rollback_two_servers_no_s0(void **state)
{
	struct plan_versions v = test_versions();
	const char *sx = "99999999-9999-4999-8999-999999999999";
	struct plan_state st;
	struct plan_move mv;
	struct deployment want;
	char err[CANARY_ERRLEN];

	(void)state;
	/* m1 pins s1: s1 is kept although sX serves more; sX makes room for s0. */
	test_dep(&st.server, sx, 60, v.s1, 40);
	test_dep(&st.middleware, v.m1, 100, NULL, 0);
	assert_int_equal(plan_rollback_next(&st, &v, &mv, err, sizeof(err)), 0);
	assert_false(mv.done);
	assert_int_equal(mv.number, 1);
	assert_int_equal(mv.worker, PLAN_SERVER);
	test_dep(&want, v.s1, 100, v.s0, 0);
	assert_true(plan_deployment_equal(&mv.dep, &want));

	/* Nothing pinned there (middleware m0, pin s0 missing): keep the larger. */
	test_dep(&st.server, sx, 60, v.s1, 40);
	test_dep(&st.middleware, v.m0, 100, NULL, 0);
	assert_int_equal(plan_rollback_next(&st, &v, &mv, err, sizeof(err)), 0);
	test_dep(&want, sx, 100, v.s0, 0);
	assert_true(plan_deployment_equal(&mv.dep, &want));

	/* m0 pinning anything but s0: the end state m0+s0 is itself skewed.
	 * From server {sX:100} + middleware {m0:100} (m0 pins sX, invariant
	 * holds) the walk would add s0 at 0% and then deploy server {s0:100},
	 * dropping m0's pin: refused before any move. */
	struct plan_versions odd = v;
	snprintf(odd.pin_m0, sizeof(odd.pin_m0), "%s", sx);
	test_dep(&st.server, sx, 100, NULL, 0);
	test_dep(&st.middleware, v.m0, 100, NULL, 0);
	assert_int_equal(plan_invariant(&st, &odd, NULL, err, sizeof(err)), 0);
	assert_int_equal(plan_rollback_next(&st, &odd, &mv, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "pin s0"));
	test_dep(&st.server, sx, 50, v.s1, 50);
	test_dep(&st.middleware, v.m0, 70, v.m1, 30);
	assert_int_equal(plan_rollback_next(&st, &odd, &mv, err, sizeof(err)), CANARY_EINVAL);
}

static void
test_rollback_skips_moves_that_hold(void **state)
{
	struct plan_versions v = test_versions();
	struct plan_state st;
	struct plan_move mv;
	char err[CANARY_ERRLEN];

	(void)state;
	/* After middleware-10: s0 present, so move (2) comes first. */
	test_dep(&st.server, v.s0, 100, v.s1, 0);
	test_dep(&st.middleware, v.m0, 90, v.m1, 10);
	assert_int_equal(plan_rollback_next(&st, &v, &mv, err, sizeof(err)), 0);
	assert_int_equal(mv.number, 2);
	assert_int_equal(test_rollback_walk(&st, &v), 2);

	/* After server-100: (1), (2), (3). */
	test_dep(&st.server, v.s1, 100, NULL, 0);
	test_dep(&st.middleware, v.m1, 100, NULL, 0);
	assert_int_equal(plan_rollback_next(&st, &v, &mv, err, sizeof(err)), 0);
	assert_int_equal(mv.number, 1);
	assert_int_equal(test_rollback_walk(&st, &v), 3);

	/* A 0% s1 left beside s0: only move (3). */
	test_dep(&st.server, v.s0, 100, v.s1, 0);
	test_dep(&st.middleware, v.m0, 100, NULL, 0);
	assert_int_equal(plan_rollback_next(&st, &v, &mv, err, sizeof(err)), 0);
	assert_int_equal(mv.number, 3);
	assert_int_equal(test_rollback_walk(&st, &v), 1);

	/* Production: done at once. */
	test_dep(&st.server, v.s0, 100, NULL, 0);
	assert_int_equal(plan_rollback_next(&st, &v, &mv, err, sizeof(err)), 0);
	assert_true(mv.done);

	/* An invalid deployment read from the platform is an error, not a move. */
	test_dep(&st.server, v.s0, 60, v.s1, 30);
	assert_int_equal(plan_rollback_next(&st, &v, &mv, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "100"));
}

static void
test_expect(void **state)
{
	struct plan_versions v = test_versions();
	struct canary_expect e;
	struct canary_override ov;
	struct plan_step s;

	(void)state;
	assert_int_equal(plan_expect(NULL, &v, "mw", 50, &e, &ov), 0);
	assert_int_equal(e.n_middleware, 1);
	assert_string_equal(e.middleware[0].id, v.m0);
	assert_string_equal(e.server[0].id, v.s0);
	assert_string_equal(e.pins[0], v.s0);
	assert_false(ov.enabled);

	s = test_step("server-0");
	assert_int_equal(plan_expect(&s, &v, "mw", 50, &e, &ov), 0);
	assert_int_equal(e.n_server, 1);
	assert_string_equal(e.server[0].id, v.s0);

	s = test_step("middleware-dark");
	assert_int_equal(plan_expect(&s, &v, "mw", 25, &e, &ov), 0);
	assert_int_equal(e.n_middleware, 2);
	assert_true(e.middleware[0].share == 100 && e.middleware[1].share == 0);
	assert_string_equal(e.pins[1], v.s1);
	assert_true(ov.enabled);
	assert_true(ov.share == 25);
	assert_string_equal(ov.worker, "mw");
	assert_string_equal(ov.version_id, v.m1);
	assert_string_equal(ov.pin, v.s1);
	assert_int_equal(plan_expect(&s, &v, "mw", 101, &e, &ov), CANARY_EINVAL);

	s = test_step("middleware-10");
	assert_int_equal(plan_expect(&s, &v, "mw", 50, &e, &ov), 0);
	assert_false(ov.enabled);
	assert_string_equal(e.middleware[1].id, v.m1);
	assert_true(e.middleware[1].share == 10 && e.middleware[0].share == 90);
	assert_true(e.server[1].share == 10);
	assert_string_equal(e.pins[0], v.s0);
	assert_string_equal(e.pins[1], v.s1);

	s = test_step("middleware-100");
	assert_int_equal(plan_expect(&s, &v, "mw", 50, &e, &ov), 0);
	assert_int_equal(e.n_middleware, 1);
	assert_string_equal(e.middleware[0].id, v.m1);
	assert_string_equal(e.server[0].id, v.s1);
	assert_string_equal(e.pins[0], v.s1);
}

static void
test_expect_state(void **state)
{
	struct plan_versions v = test_versions();
	struct plan_state st;
	struct canary_expect e;
	char err[CANARY_ERRLEN];

	(void)state;
	/* After rollback move (1) from server-100: m1+s1 still serves. */
	test_dep(&st.server, v.s1, 100, v.s0, 0);
	test_dep(&st.middleware, v.m1, 100, NULL, 0);
	assert_int_equal(plan_expect_state(&st, &v, &e, err, sizeof(err)), 0);
	assert_int_equal(e.n_middleware, 1);
	assert_string_equal(e.middleware[0].id, v.m1);
	assert_string_equal(e.pins[0], v.s1);
	assert_int_equal(e.n_server, 1);
	assert_string_equal(e.server[0].id, v.s1);
	assert_true(e.server[0].share == 100);

	/* A split: server shares follow the pins. */
	test_dep(&st.middleware, v.m0, 70, v.m1, 30);
	assert_int_equal(plan_expect_state(&st, &v, &e, err, sizeof(err)), 0);
	assert_int_equal(e.n_server, 2);
	assert_string_equal(e.server[0].id, v.s0);
	assert_true(e.server[0].share == 70 && e.server[1].share == 30);
	assert_string_equal(e.pins[1], v.s1);

	/* Two middleware versions pinning one server version: one entry. */
	struct plan_versions same = v;
	snprintf(same.pin_m1, sizeof(same.pin_m1), "%s", v.s0);
	assert_int_equal(plan_expect_state(&st, &same, &e, err, sizeof(err)), 0);
	assert_int_equal(e.n_server, 1);
	assert_true(e.server[0].share == 100);

	test_dep(&st.middleware, "cccccccc-cccc-4ccc-8ccc-cccccccccccc", 100, NULL, 0);
	assert_int_equal(plan_expect_state(&st, &v, &e, err, sizeof(err)), CANARY_ENOENT);
	assert_non_null(strstr(err, "cccccccc"));
	test_dep(&st.middleware, v.m0, 50, v.m1, 40);
	assert_int_equal(plan_expect_state(&st, &v, &e, err, sizeof(err)), CANARY_EINVAL);
}

static void
test_versions_check(void **state)
{
	struct plan_versions v = test_versions();
	char err[CANARY_ERRLEN];

	(void)state;
	assert_int_equal(plan_versions_check(&v, err, sizeof(err)), 0);
	snprintf(v.s1, sizeof(v.s1), "%s", v.s0);
	assert_int_equal(plan_versions_check(&v, err, sizeof(err)), CANARY_EINVAL);
	v = test_versions();
	snprintf(v.pin_m1, sizeof(v.pin_m1), "%s", v.s0);
	assert_int_equal(plan_versions_check(&v, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "pin"));
	v = test_versions();
	v.m1[0] = '\0';
	assert_int_equal(plan_versions_check(&v, err, sizeof(err)), CANARY_EINVAL);
}

static void
test_deployment_valid(void **state)
{
	struct deployment d;
	char err[CANARY_ERRLEN];

	(void)state;
	test_dep(&d, "a", 100, NULL, 0);
	assert_int_equal(plan_deployment_valid(&d, err, sizeof(err)), 0);
	test_dep(&d, "a", 100, "a", 0);
	assert_int_equal(plan_deployment_valid(&d, err, sizeof(err)), CANARY_EINVAL);
	test_dep(&d, "a", 101, "b", -1);
	assert_int_equal(plan_deployment_valid(&d, err, sizeof(err)), CANARY_EINVAL);
	test_dep(&d, "", 100, NULL, 0);
	assert_int_equal(plan_deployment_valid(&d, err, sizeof(err)), CANARY_EINVAL);
	d.n_versions = 0;
	assert_int_equal(plan_deployment_valid(&d, err, sizeof(err)), CANARY_EINVAL);
	d.n_versions = 3;
	assert_int_equal(plan_deployment_valid(&d, err, sizeof(err)), CANARY_EINVAL);
}

static void
test_render(void **state)
{
	struct plan_step steps[5];
	char err[CANARY_ERRLEN];
	char *text = NULL;

	(void)state;
	steps[0] = test_step("server-0");
	steps[1] = test_step("middleware-dark");
	steps[2] = test_step("middleware-10");
	steps[3] = test_step("middleware-100");
	steps[4] = test_step("server-100");
	steps[2].bake_s = 120;
	assert_int_equal(plan_render(steps, 5, NULL, "middleware", 50, &text, err, sizeof(err)), 0);
	assert_non_null(text);
	assert_non_null(strstr(text, "1. server-0: server {s0:100, s1:0}"));
	assert_non_null(strstr(text, "3. middleware-10: middleware {m0:90, m1:10} (bake 120 s)"));
	assert_non_null(strstr(text, "invariant: m1 pins s1, in server {s0:100, s1:0}"));
	assert_non_null(strstr(text, "override on 50% of requests: middleware=\"m1\""));
	assert_non_null(strstr(text, "move 1: server {s1:100, s0:0}"));
	assert_non_null(strstr(text, "plan ok"));
	assert_null(strstr(text, "NOT in"));
	free(text);

	steps[3] = test_step("server-100");
	steps[4] = test_step("middleware-100");
	assert_int_equal(plan_render(steps, 5, NULL, "middleware", 50, &text, err, sizeof(err)),
	                 CANARY_ESKEW);
	assert_non_null(text);
	assert_non_null(strstr(text, "plan REJECTED"));
	assert_non_null(strstr(err, "steps[3]"));
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_step_parse),
	    cmocka_unit_test(test_step_deployments),
	    cmocka_unit_test(test_invariant),
	    cmocka_unit_test(test_every_forward_path),
	    cmocka_unit_test(test_rejected_orders),
	    cmocka_unit_test(test_rollback_odd_states),
	    cmocka_unit_test(test_rollback_two_servers_no_s0),
	    cmocka_unit_test(test_rollback_skips_moves_that_hold),
	    cmocka_unit_test(test_expect),
	    cmocka_unit_test(test_expect_state),
	    cmocka_unit_test(test_versions_check),
	    cmocka_unit_test(test_deployment_valid),
	    cmocka_unit_test(test_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
