/*
 * plan.c: the rollout model: steps, their deployments and expectations, the
 * skew invariant, plan verification and the skew-safe rollback.
 */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Text buffer with a ceiling, for plan_render. */
#define PLAN_TEXT_MAX (256 * 1024)
/* Longest rollback walk: the three moves plus margin; a longer walk means
 * plan_rollback_next does not make progress (a bug). */
#define PLAN_ROLLBACK_MAX_MOVES 6
#define PLAN_DEP_TEXT_LEN       (2 * (CANARY_UUID_LEN + 8) + 8)

static void
plan_copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src);
}

static void
plan_dep_set(struct deployment *d, const char *a, int pa, const char *b, int pb)
{
	memset(d, 0, sizeof(*d));
	plan_copy(d->versions[0].version_id, sizeof(d->versions[0].version_id), a);
	d->versions[0].percentage = pa;
	d->n_versions = 1;
	if (b != NULL) {
		plan_copy(d->versions[1].version_id, sizeof(d->versions[1].version_id), b);
		d->versions[1].percentage = pb;
		d->n_versions = 2;
	}
}

int
plan_step_parse(const char *name, struct plan_step *step, char *err, size_t errlen)
{
	static const char expected[] = "expected a step name (server-0, middleware-dark, "
	                               "middleware-P with P in 1..99, middleware-100, server-100)";
	const char *p;
	int pct = 0;

	if (name == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s, got nothing", expected);
	}
	memset(step, 0, sizeof(*step));
	step->bake_s = -1;
	if (strcmp(name, "server-0") == 0) {
		step->kind = PLAN_STEP_SERVER_0;
		return 0;
	}
	if (strcmp(name, "server-100") == 0) {
		step->kind = PLAN_STEP_SERVER_100;
		return 0;
	}
	if (strcmp(name, "middleware-dark") == 0) {
		step->kind = PLAN_STEP_MIDDLEWARE_DARK;
		return 0;
	}
	if (strcmp(name, "middleware-100") == 0) {
		step->kind = PLAN_STEP_MIDDLEWARE_100;
		step->percent = 100;
		return 0;
	}
	if (strncmp(name, "middleware-", 11) == 0) {
		p = name + 11;
		/* 1..99: one or two digits, no leading zero, nothing after. */
		if (p[0] >= '1' && p[0] <= '9' &&
		    (p[1] == '\0' || (p[1] >= '0' && p[1] <= '9' && p[2] == '\0'))) {
			pct = p[0] - '0';
			if (p[1] != '\0') {
				pct = pct * 10 + (p[1] - '0');
			}
			step->kind = PLAN_STEP_MIDDLEWARE_P;
			step->percent = pct;
			return 0;
		}
	}
	return canary_errf(err, errlen, CANARY_EINVAL, "%s, got \"%.40s\"", expected, name);
}

const char *
plan_step_name(const struct plan_step *step, char *buf, size_t len)
{
	switch (step->kind) {
	case PLAN_STEP_SERVER_0:
		snprintf(buf, len, "server-0");
		break;
	case PLAN_STEP_MIDDLEWARE_DARK:
		snprintf(buf, len, "middleware-dark");
		break;
	case PLAN_STEP_MIDDLEWARE_P:
		snprintf(buf, len, "middleware-%d", step->percent);
		break;
	case PLAN_STEP_MIDDLEWARE_100:
		snprintf(buf, len, "middleware-100");
		break;
	case PLAN_STEP_SERVER_100:
		snprintf(buf, len, "server-100");
		break;
	default:
		snprintf(buf, len, "step-%d", (int)step->kind);
		break;
	}
	return buf;
}

int
plan_default_steps(struct plan_step *steps)
{
	memset(steps, 0, 3 * sizeof(*steps));
	steps[0].kind = PLAN_STEP_SERVER_0;
	steps[1].kind = PLAN_STEP_MIDDLEWARE_100;
	steps[1].percent = 100;
	steps[2].kind = PLAN_STEP_SERVER_100;
	for (int i = 0; i < 3; i++) {
		steps[i].bake_s = -1;
	}
	return 3;
}

void
plan_versions_symbolic(struct plan_versions *v)
{
	memset(v, 0, sizeof(*v));
	plan_copy(v->s0, sizeof(v->s0), "s0");
	plan_copy(v->s1, sizeof(v->s1), "s1");
	plan_copy(v->m0, sizeof(v->m0), "m0");
	plan_copy(v->m1, sizeof(v->m1), "m1");
	plan_copy(v->pin_m0, sizeof(v->pin_m0), "s0");
	plan_copy(v->pin_m1, sizeof(v->pin_m1), "s1");
}

int
plan_versions_check(const struct plan_versions *v, char *err, size_t errlen)
{
	if (v->s0[0] == '\0' || v->s1[0] == '\0' || v->m0[0] == '\0' || v->m1[0] == '\0') {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "versions: expected s0, s1, m0 and m1 all set, got s0=\"%s\" "
		                   "s1=\"%s\" m0=\"%s\" m1=\"%s\"",
		                   v->s0, v->s1, v->m0, v->m1);
	}
	if (strcmp(v->s0, v->s1) == 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "versions: expected a new server version, got s1 = s0 = %s",
		                   v->s0);
	}
	if (strcmp(v->m0, v->m1) == 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "versions: expected a new middleware version, got m1 = m0 = %s",
		                   v->m0);
	}
	if (strcmp(v->pin_m0, v->s0) != 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "versions: expected m0 (%s) to pin s0 (%s), got pin %s", v->m0,
		                   v->s0, v->pin_m0[0] != '\0' ? v->pin_m0 : "(none)");
	}
	if (strcmp(v->pin_m1, v->s1) != 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "versions: expected m1 (%s) to pin s1 (%s), got pin %s", v->m1,
		                   v->s1, v->pin_m1[0] != '\0' ? v->pin_m1 : "(none)");
	}
	return 0;
}

const char *
plan_deployment_format(const struct deployment *d, char *buf, size_t len)
{
	size_t off = 0;
	int n;

	if (len == 0) {
		return buf;
	}
	buf[0] = '\0';
	n = snprintf(buf, len, "{");
	off = n > 0 ? (size_t)n : 0;
	for (int i = 0; i < d->n_versions && i < CANARY_MAX_VERSIONS && off < len; i++) {
		n = snprintf(buf + off, len - off, "%s%s:%d", i > 0 ? ", " : "",
		             d->versions[i].version_id, d->versions[i].percentage);
		if (n < 0) {
			break;
		}
		off += (size_t)n;
	}
	if (off < len) {
		snprintf(buf + off, len - off, "}");
	}
	return buf;
}

static int
plan_dep_index(const struct deployment *d, const char *version_id)
{
	for (int i = 0; i < d->n_versions && i < CANARY_MAX_VERSIONS; i++) {
		if (strcmp(d->versions[i].version_id, version_id) == 0) {
			return i;
		}
	}
	return -1;
}

int
plan_deployment_has(const struct deployment *d, const char *version_id)
{
	return plan_dep_index(d, version_id) >= 0;
}

int
plan_deployment_equal(const struct deployment *a, const struct deployment *b)
{
	return deployer_deployment_equal(a, b);
}

int
plan_deployment_valid(const struct deployment *d, char *err, size_t errlen)
{
	int total = 0;

	if (d->n_versions < 1 || d->n_versions > CANARY_MAX_VERSIONS) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "deployment: expected 1 or 2 versions, got %d", d->n_versions);
	}
	for (int i = 0; i < d->n_versions; i++) {
		if (d->versions[i].version_id[0] == '\0') {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "deployment: versions[%d]: expected a version id, got \"\"", i);
		}
		if (d->versions[i].percentage < 0 || d->versions[i].percentage > 100) {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "deployment: versions[%d]: expected a percentage 0..100, "
			    "got %d",
			    i, d->versions[i].percentage);
		}
		total += d->versions[i].percentage;
	}
	if (d->n_versions == 2 &&
	    strcmp(d->versions[0].version_id, d->versions[1].version_id) == 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "deployment: expected two different versions, got %s twice",
		                   d->versions[0].version_id);
	}
	if (total != 100) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "deployment: expected percentages totalling 100, got %d", total);
	}
	return 0;
}

/* The pin of middleware version m, or NULL when it is neither m0 nor m1. */
static const char *
plan_pin_of(const struct plan_versions *v, const char *m)
{
	if (strcmp(m, v->m0) == 0) {
		return v->pin_m0;
	}
	if (strcmp(m, v->m1) == 0) {
		return v->pin_m1;
	}
	return NULL;
}

int
plan_invariant(const struct plan_state *st, const struct plan_versions *v, int *bad, char *err,
               size_t errlen)
{
	char sd[PLAN_DEP_TEXT_LEN];

	for (int i = 0; i < st->middleware.n_versions && i < CANARY_MAX_VERSIONS; i++) {
		const char *m = st->middleware.versions[i].version_id;
		const char *pin = plan_pin_of(v, m);

		if (pin == NULL) {
			if (bad != NULL) {
				*bad = i;
			}
			return canary_errf(err, errlen, CANARY_ENOENT,
			                   "middleware version %s is neither m0 nor m1: its pin is "
			                   "unknown, so the skew invariant cannot be shown",
			                   m);
		}
		if (!plan_deployment_has(&st->server, pin)) {
			if (bad != NULL) {
				*bad = i;
			}
			return canary_errf(
			    err, errlen, CANARY_ESKEW,
			    "skew: middleware version %s (at %d%%) pins server version %s, which "
			    "is not in the server deployment %s",
			    m, st->middleware.versions[i].percentage, pin,
			    plan_deployment_format(&st->server, sd, sizeof(sd)));
		}
	}
	return 0;
}

/* The deployment a step applies and the worker it goes to. */
static void
plan_step_target(const struct plan_step *step, const struct plan_versions *v,
                 enum plan_worker *worker, struct deployment *dep)
{
	switch (step->kind) {
	case PLAN_STEP_SERVER_0:
		*worker = PLAN_SERVER;
		plan_dep_set(dep, v->s0, 100, v->s1, 0);
		break;
	case PLAN_STEP_MIDDLEWARE_DARK:
		*worker = PLAN_MIDDLEWARE;
		plan_dep_set(dep, v->m0, 100, v->m1, 0);
		break;
	case PLAN_STEP_MIDDLEWARE_P:
		*worker = PLAN_MIDDLEWARE;
		plan_dep_set(dep, v->m0, 100 - step->percent, v->m1, step->percent);
		break;
	case PLAN_STEP_MIDDLEWARE_100:
		*worker = PLAN_MIDDLEWARE;
		plan_dep_set(dep, v->m1, 100, NULL, 0);
		break;
	case PLAN_STEP_SERVER_100:
	default:
		*worker = PLAN_SERVER;
		plan_dep_set(dep, v->s1, 100, NULL, 0);
		break;
	}
}

void
plan_state_apply(struct plan_state *st, enum plan_worker worker, const struct deployment *dep)
{
	if (worker == PLAN_SERVER) {
		st->server = *dep;
	} else {
		st->middleware = *dep;
	}
}

int
plan_step_deployment(const struct plan_step *step, const struct plan_versions *v,
                     const struct plan_state *cur, enum plan_worker *worker, struct deployment *dep,
                     char *err, size_t errlen)
{
	char name[PLAN_STEP_NAME_LEN];
	char why[CANARY_ERRLEN];
	struct plan_state next;
	struct deployment d;
	enum plan_worker w;
	int rv;

	if (step->kind == PLAN_STEP_MIDDLEWARE_P && (step->percent < 1 || step->percent > 99)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "middleware-P: expected P in 1..99, got %d", step->percent);
	}
	plan_step_target(step, v, &w, &d);
	next = *cur;
	plan_state_apply(&next, w, &d);
	if ((rv = plan_invariant(&next, v, NULL, why, sizeof(why))) != 0) {
		return canary_errf(err, errlen, CANARY_ESKEW, "%s: refused: %s",
		                   plan_step_name(step, name, sizeof(name)), why);
	}
	*worker = w;
	*dep = d;
	return 0;
}

static void
plan_share_set(struct canary_version_share *s, const char *id, double share)
{
	plan_copy(s->id, sizeof(s->id), id);
	s->share = share;
}

int
plan_expect(const struct plan_step *step, const struct plan_versions *v,
            const char *middleware_worker, double override_share, struct canary_expect *exp,
            struct canary_override *ov)
{
	memset(exp, 0, sizeof(*exp));
	if (ov != NULL) {
		memset(ov, 0, sizeof(*ov));
	}
	if (step == NULL || step->kind == PLAN_STEP_SERVER_0) {
		/* Production, and server-0: nothing reaches s1 until a middleware pins it. */
		plan_share_set(&exp->middleware[0], v->m0, 100);
		plan_share_set(&exp->server[0], v->s0, 100);
		plan_copy(exp->pins[0], sizeof(exp->pins[0]), v->pin_m0);
		exp->n_middleware = exp->n_server = 1;
		return 0;
	}
	switch (step->kind) {
	case PLAN_STEP_MIDDLEWARE_DARK:
		if (!(override_share >= 0 && override_share <= 100)) {
			return CANARY_EINVAL;
		}
		/* Live traffic stays m0+s0; m1 is reachable through the override. */
		plan_share_set(&exp->middleware[0], v->m0, 100);
		plan_share_set(&exp->middleware[1], v->m1, 0);
		plan_share_set(&exp->server[0], v->s0, 100);
		plan_share_set(&exp->server[1], v->s1, 0);
		plan_copy(exp->pins[0], sizeof(exp->pins[0]), v->pin_m0);
		plan_copy(exp->pins[1], sizeof(exp->pins[1]), v->pin_m1);
		exp->n_middleware = exp->n_server = 2;
		if (ov != NULL) {
			ov->enabled = 1;
			ov->share = override_share;
			plan_copy(ov->worker, sizeof(ov->worker),
			          middleware_worker != NULL ? middleware_worker : "");
			plan_copy(ov->version_id, sizeof(ov->version_id), v->m1);
			plan_copy(ov->pin, sizeof(ov->pin), v->pin_m1);
		}
		return 0;
	case PLAN_STEP_MIDDLEWARE_P:
		if (step->percent < 1 || step->percent > 99) {
			return CANARY_EINVAL;
		}
		plan_share_set(&exp->middleware[0], v->m0, 100 - step->percent);
		plan_share_set(&exp->middleware[1], v->m1, step->percent);
		plan_share_set(&exp->server[0], v->pin_m0, 100 - step->percent);
		plan_share_set(&exp->server[1], v->pin_m1, step->percent);
		plan_copy(exp->pins[0], sizeof(exp->pins[0]), v->pin_m0);
		plan_copy(exp->pins[1], sizeof(exp->pins[1]), v->pin_m1);
		exp->n_middleware = exp->n_server = 2;
		return 0;
	case PLAN_STEP_MIDDLEWARE_100:
	case PLAN_STEP_SERVER_100:
	default:
		plan_share_set(&exp->middleware[0], v->m1, 100);
		plan_share_set(&exp->server[0], v->s1, 100);
		plan_copy(exp->pins[0], sizeof(exp->pins[0]), v->pin_m1);
		exp->n_middleware = exp->n_server = 1;
		return 0;
	}
}

int
plan_expect_state(const struct plan_state *st, const struct plan_versions *v,
                  struct canary_expect *exp, char *err, size_t errlen)
{
	const struct deployment *m = &st->middleware;
	int rv;

	memset(exp, 0, sizeof(*exp));
	if ((rv = plan_deployment_valid(m, err, errlen)) != 0) {
		return rv;
	}
	for (int i = 0; i < m->n_versions; i++) {
		const char *pin = plan_pin_of(v, m->versions[i].version_id);
		int j;

		if (pin == NULL) {
			memset(exp, 0, sizeof(*exp));
			return canary_errf(err, errlen, CANARY_ENOENT,
			                   "middleware version %s is neither m0 nor m1: its pin is "
			                   "unknown",
			                   m->versions[i].version_id);
		}
		plan_share_set(&exp->middleware[i], m->versions[i].version_id,
		               m->versions[i].percentage);
		plan_copy(exp->pins[i], sizeof(exp->pins[i]), pin);
		/* Two middleware versions may pin one server version. */
		for (j = 0; j < exp->n_server; j++) {
			if (strcmp(exp->server[j].id, pin) == 0) {
				break;
			}
		}
		if (j == exp->n_server) {
			plan_share_set(&exp->server[j], pin, 0);
			exp->n_server++;
		}
		exp->server[j].share += m->versions[i].percentage;
	}
	exp->n_middleware = m->n_versions;
	return 0;
}

/* ---- rollback ---- */

static int
plan_is_single(const struct deployment *d, const char *id)
{
	return d->n_versions == 1 && strcmp(d->versions[0].version_id, id) == 0 &&
	       d->versions[0].percentage == 100;
}

/* Whether server version s is the pin of some middleware version in st;
 * *unknown is set when some middleware version's pin is unknown. */
static int
plan_pinned(const struct plan_state *st, const struct plan_versions *v, const char *s, int *unknown)
{
	int pinned = 0;

	for (int i = 0; i < st->middleware.n_versions; i++) {
		const char *pin = plan_pin_of(v, st->middleware.versions[i].version_id);
		if (pin == NULL) {
			*unknown = 1;
		} else if (strcmp(pin, s) == 0) {
			pinned = 1;
		}
	}
	return pinned;
}

int
plan_rollback_next(const struct plan_state *st, const struct plan_versions *v, struct plan_move *mv,
                   char *err, size_t errlen)
{
	char sd[PLAN_DEP_TEXT_LEN], md[PLAN_DEP_TEXT_LEN];
	int rv;

	memset(mv, 0, sizeof(*mv));
	if ((rv = plan_deployment_valid(&st->server, err, errlen)) != 0 ||
	    (rv = plan_deployment_valid(&st->middleware, err, errlen)) != 0) {
		return rv;
	}
	if (v->s0[0] == '\0' || v->m0[0] == '\0') {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "rollback: expected the versions s0 and m0, got s0=\"%s\" "
		                   "m0=\"%s\"",
		                   v->s0, v->m0);
	}
	if (strcmp(v->pin_m0, v->s0) != 0) {
		/* The end state m0+s0 would itself break the invariant: move (3)
		 * would leave m0's pin out of the server deployment. */
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "rollback: expected m0 (%s) to pin s0 (%s), got pin %s: "
		                   "production m0+s0 would be skewed",
		                   v->m0, v->s0, v->pin_m0[0] != '\0' ? v->pin_m0 : "(none)");
	}
	plan_deployment_format(&st->server, sd, sizeof(sd));
	plan_deployment_format(&st->middleware, md, sizeof(md));

	/* (1) s0 back beside what is there. */
	if (!plan_deployment_has(&st->server, v->s0)) {
		const struct deployment *s = &st->server;
		int keep = 0, unknown = 0, p0, p1;

		if (s->n_versions == 1) {
			mv->number = 1;
			mv->worker = PLAN_SERVER;
			plan_dep_set(&mv->dep, s->versions[0].version_id, 100, v->s0, 0);
			snprintf(mv->why, sizeof(mv->why), "s0 is not in server %s: add it at 0%%",
			         sd);
			return 0;
		}
		/* Two server versions and no s0: one must go. m0 pins s0, which
		 * is not there, so at most one of them is pinned (by m1): keep
		 * that one, else the one serving more. */
		p0 = plan_pinned(st, v, s->versions[0].version_id, &unknown);
		p1 = plan_pinned(st, v, s->versions[1].version_id, &unknown);
		if (p1 || (!p0 && s->versions[1].percentage > s->versions[0].percentage)) {
			keep = 1;
		}
		mv->number = 1;
		mv->worker = PLAN_SERVER;
		plan_dep_set(&mv->dep, s->versions[keep].version_id, 100, v->s0, 0);
		snprintf(mv->why, sizeof(mv->why),
		         "s0 is not in server %s: %s kept (%s), %s dropped, s0 added at 0%%%s", sd,
		         s->versions[keep].version_id,
		         p0 || p1 ? "pinned by the middleware" : "larger share",
		         s->versions[1 - keep].version_id,
		         unknown ? "; a middleware version's pin is unknown, so the "
		                   "invariant for it cannot be shown"
		                 : "");
		return 0;
	}
	/* (2) middleware {m0:100}. */
	if (!plan_is_single(&st->middleware, v->m0)) {
		mv->number = 2;
		mv->worker = PLAN_MIDDLEWARE;
		plan_dep_set(&mv->dep, v->m0, 100, NULL, 0);
		snprintf(mv->why, sizeof(mv->why), "middleware %s back to {%s:100}", md, v->m0);
		return 0;
	}
	/* (3) server {s0:100}. */
	if (!plan_is_single(&st->server, v->s0)) {
		mv->number = 3;
		mv->worker = PLAN_SERVER;
		plan_dep_set(&mv->dep, v->s0, 100, NULL, 0);
		snprintf(mv->why, sizeof(mv->why), "server %s back to {%s:100}", sd, v->s0);
		return 0;
	}
	mv->done = 1;
	snprintf(mv->why, sizeof(mv->why), "production is %s+%s", v->m0, v->s0);
	return 0;
}

/* ---- verification and rendering ---- */

/* A growable text with a ceiling; on overflow or ENOMEM it stops growing
 * and remembers the failure. */
struct plan_text {
	char *buf;
	size_t len, cap;
	int rv;
};

static void __attribute__((format(printf, 2, 3)))
plan_text_add(struct plan_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t == NULL || t->rv != 0) {
		return;
	}
	for (;;) {
		size_t room = t->cap - t->len;
		va_start(ap, fmt);
		n = vsnprintf(t->buf != NULL ? t->buf + t->len : NULL, t->buf != NULL ? room : 0,
		              fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->rv = CANARY_EINTERNAL;
			return;
		}
		if (t->buf != NULL && (size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t want = t->len + (size_t)n + 1;
		size_t ncap = t->cap == 0 ? 4096 : t->cap;
		while (ncap < want) {
			ncap *= 2;
		}
		if (ncap > PLAN_TEXT_MAX) {
			t->rv = CANARY_ETOOBIG;
			return;
		}
		char *nb = realloc(t->buf, ncap);
		if (nb == NULL) {
			t->rv = CANARY_ENOMEM;
			return;
		}
		t->buf = nb;
		t->cap = ncap;
	}
}

/* Proof lines of the invariant for st: one per middleware version. */
static void
plan_text_proof(struct plan_text *t, const char *indent, const struct plan_state *st,
                const struct plan_versions *v)
{
	char sd[PLAN_DEP_TEXT_LEN];

	plan_deployment_format(&st->server, sd, sizeof(sd));
	for (int i = 0; i < st->middleware.n_versions; i++) {
		const char *m = st->middleware.versions[i].version_id;
		const char *pin = plan_pin_of(v, m);
		plan_text_add(
		    t, "%sinvariant: %s pins %s, %s server %s\n", indent, m,
		    pin != NULL ? pin : "(unknown)",
		    pin != NULL && plan_deployment_has(&st->server, pin) ? "in" : "NOT in", sd);
	}
}

static void
plan_text_expect(struct plan_text *t, const char *indent, const struct canary_expect *e,
                 const struct canary_override *ov)
{
	plan_text_add(t, "%sprobes must see: middleware {", indent);
	for (int i = 0; i < e->n_middleware; i++) {
		plan_text_add(t, "%s%s:%g", i > 0 ? ", " : "", e->middleware[i].id,
		              e->middleware[i].share);
	}
	plan_text_add(t, "} server {");
	for (int i = 0; i < e->n_server; i++) {
		plan_text_add(t, "%s%s:%g", i > 0 ? ", " : "", e->server[i].id, e->server[i].share);
	}
	plan_text_add(t, "}; pairs");
	for (int i = 0; i < e->n_middleware; i++) {
		if (e->middleware[i].share > 0) {
			plan_text_add(t, " %s+%s", e->middleware[i].id, e->pins[i]);
		}
	}
	plan_text_add(t, "\n");
	if (ov != NULL && ov->enabled) {
		plan_text_add(t,
		              "%soverride on %g%% of requests: %s=\"%s\"; those must see "
		              "%s+%s\n",
		              indent, ov->share, ov->worker, ov->version_id, ov->version_id,
		              ov->pin);
	}
}

/* Walks the rollback from st, checking the invariant at each state; writes
 * the moves into t (may be NULL). */
static int
plan_walk_rollback(const struct plan_state *start, const struct plan_versions *v,
                   struct plan_text *t, char *err, size_t errlen)
{
	char why[CANARY_ERRLEN], nd[PLAN_DEP_TEXT_LEN];
	struct plan_state st = *start;
	struct plan_move mv;
	int rv;

	for (int k = 0; k < PLAN_ROLLBACK_MAX_MOVES; k++) {
		if ((rv = plan_rollback_next(&st, v, &mv, err, errlen)) != 0) {
			return rv;
		}
		if (mv.done) {
			plan_text_add(t, "      done: %s\n", mv.why);
			return 0;
		}
		plan_state_apply(&st, mv.worker, &mv.dep);
		plan_text_add(t, "      move %d: %s %s (%s)\n", mv.number,
		              mv.worker == PLAN_SERVER ? "server" : "middleware",
		              plan_deployment_format(&mv.dep, nd, sizeof(nd)), mv.why);
		if ((rv = plan_invariant(&st, v, NULL, why, sizeof(why))) != 0) {
			return canary_errf(err, errlen, CANARY_ESKEW,
			                   "rollback move %d breaks it: %s", mv.number, why);
		}
		plan_text_proof(t, "        ", &st, v);
	}
	return canary_errf(err, errlen, CANARY_EINTERNAL,
	                   "rollback did not reach %s+%s within %d moves", v->m0, v->s0,
	                   PLAN_ROLLBACK_MAX_MOVES);
}

/* The order rules of plan_verify (after the walk, which has checked n
 * against PLAN_MAX_STEPS). */
static int
plan_check_order(const struct plan_step *steps, int n, char *err, size_t errlen)
{
	char name[PLAN_STEP_NAME_LEN];
	int last_p = 0, seen_p = 0, seen_m100 = 0;

	if (n < 3) {
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "steps: expected at least server-0, middleware-100, server-100, "
		                   "got %d steps",
		                   n);
	}
	for (int i = 0; i < n; i++) {
		const struct plan_step *s = &steps[i];
		plan_step_name(s, name, sizeof(name));
		for (int j = 0; j < i; j++) {
			if (steps[j].kind == s->kind && steps[j].percent == s->percent) {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "steps[%d]: %s appears twice (also steps[%d])",
				                   i, name, j);
			}
		}
		if ((i == 0) != (s->kind == PLAN_STEP_SERVER_0)) {
			return canary_errf(
			    err, errlen, CANARY_ECONFIG,
			    "steps[%d]: expected server-0 first and only first, got %s", i, name);
		}
		switch (s->kind) {
		case PLAN_STEP_MIDDLEWARE_DARK:
			if (seen_p || seen_m100) {
				return canary_errf(
				    err, errlen, CANARY_ECONFIG,
				    "steps[%d]: middleware-dark must come before any "
				    "middleware-P and middleware-100",
				    i);
			}
			break;
		case PLAN_STEP_MIDDLEWARE_P:
			if (s->percent < 1 || s->percent > 99) {
				return canary_errf(
				    err, errlen, CANARY_ECONFIG,
				    "steps[%d]: expected middleware-P with P in 1..99, got "
				    "P=%d",
				    i, s->percent);
			}
			if (seen_m100) {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "steps[%d]: %s after middleware-100", i, name);
			}
			if (s->percent <= last_p) {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "steps[%d]: %s after middleware-%d: middleware "
				                   "percentages must increase",
				                   i, name, last_p);
			}
			last_p = s->percent;
			seen_p = 1;
			break;
		case PLAN_STEP_MIDDLEWARE_100:
			seen_m100 = 1;
			break;
		default:
			break;
		}
	}
	if (steps[n - 2].kind != PLAN_STEP_MIDDLEWARE_100 ||
	    steps[n - 1].kind != PLAN_STEP_SERVER_100) {
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "steps: expected middleware-100 then server-100 at the end, got "
		                   "%s last",
		                   plan_step_name(&steps[n - 1], name, sizeof(name)));
	}
	return 0;
}

/* The walk and the order rules, writing the proof into t (may be NULL). */
static int
plan_verify_text(const struct plan_step *steps, int n, const struct plan_versions *vin,
                 const char *middleware_worker, double override_share, struct plan_text *t,
                 char *err, size_t errlen)
{
	char why[CANARY_ERRLEN], name[PLAN_STEP_NAME_LEN], nd[PLAN_DEP_TEXT_LEN];
	struct plan_versions v;
	struct plan_state st;
	struct canary_expect exp;
	struct canary_override ov;
	int rv;

	if (vin != NULL) {
		v = *vin;
	} else {
		plan_versions_symbolic(&v);
	}
	if ((rv = plan_versions_check(&v, err, errlen)) != 0) {
		return rv;
	}
	if (n < 0 || n > PLAN_MAX_STEPS) {
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "steps: expected 3..%d steps, got %d", PLAN_MAX_STEPS, n);
	}
	memset(&st, 0, sizeof(st));
	plan_dep_set(&st.server, v.s0, 100, NULL, 0);
	plan_dep_set(&st.middleware, v.m0, 100, NULL, 0);

	plan_text_add(t,
	              "versions: server %s -> %s, middleware %s -> %s (%s pins %s, %s pins %s)\n",
	              v.s0, v.s1, v.m0, v.m1, v.m0, v.pin_m0, v.m1, v.pin_m1);
	plan_text_add(t, "start: server %s, middleware ",
	              plan_deployment_format(&st.server, nd, sizeof(nd)));
	plan_text_add(t, "%s\n", plan_deployment_format(&st.middleware, nd, sizeof(nd)));
	plan_text_proof(t, "   ", &st, &v);
	plan_text_add(t, "   rollback from here:\n");
	if ((rv = plan_walk_rollback(&st, &v, t, why, sizeof(why))) != 0) {
		return canary_errf(err, errlen, rv, "start: %s", why);
	}
	for (int i = 0; i < n; i++) {
		enum plan_worker w;
		struct deployment d;

		plan_step_name(&steps[i], name, sizeof(name));
		if ((rv = plan_step_deployment(&steps[i], &v, &st, &w, &d, why, sizeof(why))) !=
		    0) {
			return canary_errf(err, errlen, rv, "steps[%d]: %s", i, why);
		}
		plan_state_apply(&st, w, &d);
		plan_text_add(t, "%d. %s: %s %s", i + 1, name,
		              w == PLAN_SERVER ? "server" : "middleware",
		              plan_deployment_format(&d, nd, sizeof(nd)));
		if (steps[i].bake_s >= 0) {
			plan_text_add(t, " (bake %d s)", steps[i].bake_s);
		}
		plan_text_add(t, "\n");
		if (plan_expect(&steps[i], &v, middleware_worker, override_share, &exp, &ov) != 0) {
			return canary_errf(
			    err, errlen, CANARY_ECONFIG,
			    "steps[%d]: %s: expected an override share 0..100, got %g", i, name,
			    override_share);
		}
		plan_text_expect(t, "   ", &exp, &ov);
		plan_text_proof(t, "   ", &st, &v);
		plan_text_add(t, "   rollback from here:\n");
		if ((rv = plan_walk_rollback(&st, &v, t, why, sizeof(why))) != 0) {
			return canary_errf(err, errlen, rv, "steps[%d]: %s: %s", i, name, why);
		}
	}
	return plan_check_order(steps, n, err, errlen);
}

int
plan_verify(const struct plan_step *steps, int n, const struct plan_versions *v, char *err,
            size_t errlen)
{
	return plan_verify_text(steps, n, v, "middleware", ROLLOUT_DEFAULT_OVERRIDE_SHARE, NULL,
	                        err, errlen);
}

int
plan_render(const struct plan_step *steps, int n, const struct plan_versions *v,
            const char *middleware_worker, double override_share, char **textp, char *err,
            size_t errlen)
{
	struct plan_text t = {0};
	int rv;

	*textp = NULL;
	rv = plan_verify_text(steps, n, v, middleware_worker, override_share, &t, err, errlen);
	if (rv == 0) {
		plan_text_add(&t, "plan ok: the skew invariant holds at every step and on every "
		                  "rollback\n");
	} else {
		plan_text_add(&t, "plan REJECTED: %s\n", err);
	}
	if (t.rv != 0) {
		free(t.buf);
		return canary_errf(err, errlen, t.rv, "plan: the text could not be built: %s",
		                   canary_strerror(t.rv));
	}
	*textp = t.buf;
	return rv;
}
