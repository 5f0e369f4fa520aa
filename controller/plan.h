/*
 * plan.h: the rollout model of DESIGN.md as pure functions: steps, the
 * deployments they apply, what probes must see after each, the skew
 * invariant, the verification of a step order, and the skew-safe rollback.
 *
 * Nothing here touches the platform, a file or a clock: callers pass the
 * versions and the deployments they read, and get values back. Version ids
 * are compared as strings, so symbolic ids ("s0", "m1") work as well as
 * UUIDs (plan_versions_symbolic, used by `canary-controller plan` before any
 * upload).
 *
 * The skew invariant: for every middleware version in the middleware
 * deployment (0% ones too, since an override can reach them), its pin (the
 * WORKER_VERSION_ID it was uploaded with) is in the server deployment.
 *
 * Thread-safety: no shared state; every function is reentrant.
 */
#ifndef CANARY_PLAN_H
#define CANARY_PLAN_H

#include <stddef.h>

#include "deployer.h"
#include "limits.h"
#include "msg.h"

enum plan_step_kind {
	PLAN_STEP_SERVER_0 = 0,    /* server {s0:100, s1:0} */
	PLAN_STEP_MIDDLEWARE_DARK, /* middleware {m0:100, m1:0} */
	PLAN_STEP_MIDDLEWARE_P,    /* middleware {m0:100-P, m1:P}, 0 < P < 100 */
	PLAN_STEP_MIDDLEWARE_100,  /* middleware {m1:100} */
	PLAN_STEP_SERVER_100,      /* server {s1:100} */
};

struct plan_step {
	enum plan_step_kind kind;
	int percent; /* the share of m1 the step gives: 0, P, 100; server steps 0 */
	int bake_s;  /* this step's bake time; -1: the gates' bake_s */
};

enum plan_worker {
	PLAN_SERVER = 0,
	PLAN_MIDDLEWARE = 1,
};

/* The four versions and the pins. pin_m0 is what m0 pins (read from the
 * platform; must be s0), pin_m1 what m1 was uploaded with (s1). */
struct plan_versions {
	char s0[CANARY_UUID_LEN], s1[CANARY_UUID_LEN];
	char m0[CANARY_UUID_LEN], m1[CANARY_UUID_LEN];
	char pin_m0[CANARY_UUID_LEN], pin_m1[CANARY_UUID_LEN];
};

/* What the platform holds: both workers' current deployments. */
struct plan_state {
	struct deployment server;
	struct deployment middleware;
};

/* One rollback move: deploy dep on worker. */
struct plan_move {
	int done; /* 1: production is m0+s0 (middleware {m0:100}, server {s0:100}); nothing to do */
	int number; /* DESIGN.md's move: 1 (s0 back at 0%), 2 (middleware {m0:100}),
	             * 3 (server {s0:100}) */
	enum plan_worker worker;
	struct deployment dep;
	char why[CANARY_ERRLEN]; /* one line for people: what the move does and why */
};

/* plan_step_parse: "server-0", "middleware-dark", "middleware-P" (P an
 * integer 1..99 without sign or leading zeros), "middleware-100",
 * "server-100". bake_s is set to -1. Returns 0 or CANARY_EINVAL with
 * "expected a step name (server-0, ...), got \"...\"" in err. */
int plan_step_parse(const char *name, struct plan_step *step, char *err, size_t errlen);

/* plan_step_name: the step's name into buf (PLAN_STEP_NAME_LEN is enough);
 * returns buf. */
const char *plan_step_name(const struct plan_step *step, char *buf, size_t len);

/* plan_default_steps: server-0, middleware-100, server-100 into steps
 * (room for PLAN_MAX_STEPS); returns the count (3). */
int plan_default_steps(struct plan_step *steps);

/* plan_versions_symbolic: s0 "s0", s1 "s1", m0 "m0", m1 "m1", pins s0 and s1. */
void plan_versions_symbolic(struct plan_versions *v);

/* plan_versions_check: every id set, s0 != s1, m0 != m1, pin_m0 == s0 and
 * pin_m1 == s1 (the step table relies on both). 0 or CANARY_EINVAL. */
int plan_versions_check(const struct plan_versions *v, char *err, size_t errlen);

/* plan_deployment_format: "{ID:PCT, ID:PCT}" into buf; returns buf. */
const char *plan_deployment_format(const struct deployment *d, char *buf, size_t len);

/* plan_deployment_equal: same versions with the same percentages, in any
 * order: deployer_deployment_equal under the planner's name. */
int plan_deployment_equal(const struct deployment *a, const struct deployment *b);

/* plan_deployment_has: the deployment holds version_id (at any percentage). */
int plan_deployment_has(const struct deployment *d, const char *version_id);

/* plan_deployment_valid: one or two distinct, non-empty versions with
 * percentages 0..100 totalling 100. 0 or CANARY_EINVAL naming the problem. */
int plan_deployment_valid(const struct deployment *d, char *err, size_t errlen);

/* plan_invariant: checks the skew invariant for st. pin(m) is known for m0
 * and m1 only. Returns 0 when it holds; CANARY_ESKEW when a middleware
 * version's pin is not in the server deployment, or CANARY_ENOENT when a
 * middleware version is neither m0 nor m1 (its pin is unknown, so the
 * invariant cannot be shown). On failure *bad (may be NULL) is the index in
 * st->middleware.versions of the offending version and err says which
 * version, which pin and the server deployment. */
int plan_invariant(const struct plan_state *st, const struct plan_versions *v, int *bad, char *err,
                   size_t errlen);

/* plan_step_deployment: the deployment step applies (on *worker). It is a
 * function of the step and the versions only; cur is the state before the
 * step, and the result is refused (CANARY_ESKEW, nothing written) when
 * applying it to cur would break the invariant, so the driver can call this
 * right before each apply as a last guard. */
int plan_step_deployment(const struct plan_step *step, const struct plan_versions *v,
                         const struct plan_state *cur, enum plan_worker *worker,
                         struct deployment *dep, char *err, size_t errlen);

/* plan_state_apply: st with dep applied on worker. */
void plan_state_apply(struct plan_state *st, enum plan_worker worker, const struct deployment *dep);

/* plan_expect: what probes must see after step (NULL: production, m0+s0,
 * which is also what a verified rollback must see). Shares: the middleware
 * split as deployed; the server shares follow the middleware's pins (a 0%
 * server version gets no traffic except through a pin). pins[i] is the pin
 * of middleware[i]. For middleware-dark, *ov (may be NULL) gets the override
 * on override_share percent of requests: worker middleware_worker (the
 * middleware's worker name), version m1, pin s1; for other steps ov is
 * zeroed. Expectations list every version a probe may see, in the order
 * m0, m1 (s0, s1); a 0% version is listed (share 0) when an override can
 * reach it. Returns 0 or CANARY_EINVAL (bad share). */
int plan_expect(const struct plan_step *step, const struct plan_versions *v,
                const char *middleware_worker, double override_share, struct canary_expect *exp,
                struct canary_override *ov);

/* plan_expect_state: what probes must see when the platform holds st, for
 * any state (a rollback move's result, an odd state read from the
 * platform): the middleware split as deployed, each version paired with its
 * pin, server shares following the pins. No override. Returns 0,
 * CANARY_ENOENT when a middleware version is neither m0 nor m1 (its pin is
 * unknown), or CANARY_EINVAL for an invalid deployment; err says which. */
int plan_expect_state(const struct plan_state *st, const struct plan_versions *v,
                      struct canary_expect *exp, char *err, size_t errlen);

/* plan_verify: checks a step order. Walks the forward path from production
 * (server {s0:100}, middleware {m0:100}) applying each step, and from every
 * state reached (the start included) walks plan_rollback_next to m0+s0,
 * checking the invariant at every state. Then the order rules: server-0
 * first; at most one middleware-dark, before any middleware-P; middleware-P
 * strictly increasing; no duplicates; middleware-100 then server-100 last.
 * Returns 0, CANARY_ESKEW (names the step and the state that breaks the
 * invariant) or CANARY_ECONFIG (names the step and the rule). Versions v may
 * be NULL (symbolic ones are used). */
int plan_verify(const struct plan_step *steps, int n, const struct plan_versions *v, char *err,
                size_t errlen);

/* plan_rollback_next: from any platform state, the next rollback move of
 * DESIGN.md, skipping moves that already hold:
 *   (1) s0 not in the server deployment: add s0 at 0% beside what is there;
 *   (2) middleware not {m0:100}: deploy middleware {m0:100};
 *   (3) server not {s0:100}: deploy server {s0:100};
 *   done when middleware is {m0:100} and server {s0:100}.
 * m0 must pin s0 (else the end state m0+s0 is itself skewed: CANARY_EINVAL).
 * Move (1) with two server versions and no s0: a deployment holds at most
 * two, so one must go. m0's pin is the missing s0, so at most one of the
 * two is pinned (by m1): that one is kept, else the one with the larger
 * percentage (the first on a tie); {kept:100, s0:0} keeps every pin that
 * was present. When a middleware version's pin is unknown (neither m0 nor
 * m1, someone else's upload), why says the invariant for that version could
 * not be shown. Every move returned keeps the invariant whenever it held
 * before the move; a move from a state where it was already broken never
 * adds a break. At most three moves reach m0+s0 from any valid state.
 * Returns 0 with *mv filled, or CANARY_EINVAL for an invalid deployment in
 * st, s0 or m0 unset, or pin_m0 != s0. */
int plan_rollback_next(const struct plan_state *st, const struct plan_versions *v,
                       struct plan_move *mv, char *err, size_t errlen);

/* plan_render: the text `canary-controller plan` prints: the versions, each
 * step with the deployment it applies, what probes must see, the invariant
 * proof lines of the state after it, and the rollback moves from it with
 * their proof lines; ends with "plan ok" or the error. Verifies the plan
 * (as plan_verify) and returns its result; *textp (caller frees with
 * free()) holds the text in both cases, or NULL on CANARY_ENOMEM. v may be
 * NULL (symbolic versions). middleware_worker names the override's worker. */
int plan_render(const struct plan_step *steps, int n, const struct plan_versions *v,
                const char *middleware_worker, double override_share, char **textp, char *err,
                size_t errlen);

#endif /* CANARY_PLAN_H */
