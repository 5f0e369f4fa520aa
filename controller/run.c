/*
 * run.c: the rollout driver. Reads like DESIGN.md: preflight, uploads, then
 * per step drift check, apply, convergence, bake; any failure or a stop
 * request leads to the skew-safe rollback computed from the platform's real
 * state and verified by probes.
 *
 * Waiting: every asynchronous operation has a small struct with a `done`
 * flag that its callback sets; run_wait pumps the loop until it is set. The
 * driver is never itself inside a callback.
 */
#include "run.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate.h"
#include "log.h"

#define RUN_VERSION_NONE_S1 "(s1 not uploaded)"
#define RUN_VERSION_NONE_M1 "(m1 not uploaded)"

struct run {
	struct run_env *env;
	const struct rollout *ro;
	struct plan_versions v;
	struct plan_state applied; /* what the platform held after our last move */
	struct gate_round *baseline;
	struct canary_target targets[CANARY_MAX_TARGETS];
	uint64_t round;
	int step_index;     /* the step being worked on, -1 before the first */
	int moves;          /* rollback moves made */
	int journal_failed; /* a record could not be written */
};

static const char *const run_worker_names[2] = {"server", "middleware"};

static int64_t
run_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- waiting on the loop ---- */

static void
run_wait(struct run *r, const int *done)
{
	while (!*done) {
		event_base_loop(r->env->base, EVLOOP_ONCE);
	}
}

static int
run_stopped(const struct run *r)
{
	return r->env->stop != NULL && *r->env->stop;
}

struct run_timer {
	int done;
};

static void
run_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run_timer *t = arg;

	(void)fd;
	(void)what;
	t->done = 1;
}

/* run_sleep: waits ms on the loop. With interruptible set, a stop request
 * ends the wait early (the signal wakes the loop). Returns 0, or
 * CANARY_ECANCELED when stopped. */
static int
run_sleep(struct run *r, int64_t ms, int interruptible)
{
	struct run_timer t = {0};
	struct event *ev;
	struct timeval tv;

	if (ms <= 0) {
		return interruptible && run_stopped(r) ? CANARY_ECANCELED : 0;
	}
	ev = evtimer_new(r->env->base, run_timer_cb, &t);
	if (ev == NULL) {
		return CANARY_ENOMEM;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
	while (!t.done && !(interruptible && run_stopped(r))) {
		event_base_loop(r->env->base, EVLOOP_ONCE);
	}
	event_free(ev);
	return interruptible && run_stopped(r) ? CANARY_ECANCELED : 0;
}

/* ---- deployer calls ---- */

struct run_op {
	int done;
	struct deployer_result res;
};

static void
run_op_cb(const struct deployer_result *res, void *arg)
{
	struct run_op *op = arg;

	op->res = *res;
	op->done = 1;
}

static struct deployer_worker
run_worker(const struct run *r, enum plan_worker w)
{
	struct deployer_worker dw = {.name = r->ro->workers[w].name,
	                             .config = r->ro->workers[w].config};

	return dw;
}

/* run_finish_op: waits for a started op, or turns a start failure into the
 * op's result, so callers read one place. */
static void
run_finish_op(struct run *r, struct run_op *op, int started, const char *start_err)
{
	if (started != 0) {
		op->res.rv = started;
		snprintf(op->res.err, sizeof(op->res.err), "%s", start_err);
		op->done = 1;
		return;
	}
	run_wait(r, &op->done);
}

static int
run_status_op(struct run *r, enum plan_worker w, struct deployment *out, char *err, size_t errlen)
{
	struct run_op op = {0};
	struct deployer_worker dw = run_worker(r, w);
	int rv;

	rv = deployer_status(r->env->dep, &dw, run_op_cb, &op);
	run_finish_op(r, &op, rv, r->env->dep->err);
	if (op.res.rv != 0) {
		return canary_errf(err, errlen, op.res.rv, "reading the %s deployment of %s: %s",
		                   run_worker_names[w], dw.name, op.res.err);
	}
	*out = op.res.deployment;
	return 0;
}

static int
run_read_state(struct run *r, struct plan_state *st, char *err, size_t errlen)
{
	int rv = run_status_op(r, PLAN_SERVER, &st->server, err, errlen);

	if (rv == 0) {
		rv = run_status_op(r, PLAN_MIDDLEWARE, &st->middleware, err, errlen);
	}
	return rv;
}

/* ---- journal ---- */

/* run_journal: appends a record; takes fields (may be NULL). A journal that
 * cannot be written is logged and remembered: the forward path stops at the
 * next platform call (its intent could not be recorded), a rollback goes
 * on without it. */
static void
run_journal(struct run *r, const char *type, cJSON *fields)
{
	char err[CANARY_ERRLEN];
	int rv;

	if (r->env->journal == NULL) {
		cJSON_Delete(fields);
		return;
	}
	rv = journal_append(r->env->journal, type, fields, err, sizeof(err));
	cJSON_Delete(fields);
	if (rv != 0) {
		struct canary_log_line *l = canary_log_begin(CANARY_LOG_ERROR, "journal");

		canary_log_str(l, "record", type);
		canary_log_str(l, "error", err);
		canary_log_end(l);
		r->journal_failed = 1;
	}
}

/* run_journal_kv: a record with string fields given as key, value pairs,
 * NULL-terminated. */
static void
run_journal_kv(struct run *r, const char *type, ...)
{
	cJSON *o = cJSON_CreateObject();
	va_list ap;
	const char *k;

	va_start(ap, type);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);

		cJSON_AddStringToObject(o, k, v != NULL ? v : "");
	}
	va_end(ap);
	run_journal(r, type, o);
}

static void
run_journal_step(struct run *r, const char *step, const char *state)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "step", step);
	cJSON_AddStringToObject(o, "state", state);
	cJSON_AddNumberToObject(o, "index", r->step_index);
	run_journal(r, "step", o);
}

static void
run_journal_versions(struct run *r)
{
	run_journal_kv(r, "versions", "s0", r->v.s0, "m0", r->v.m0, "s1", r->v.s1, "m1", r->v.m1,
	               NULL);
}

static void
run_journal_end(struct run *r, const char *outcome, int code)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "outcome", outcome);
	cJSON_AddNumberToObject(o, "exit_code", code);
	run_journal(r, "end", o);
}

/* run_journal_intent: the intent record before a platform call; returns its
 * id for the result record. */
static int
run_journal_intent(struct run *r, const char *op, enum plan_worker w, const struct deployment *dep,
                   const char *step)
{
	cJSON *o = cJSON_CreateObject();
	int id = r->env->journal != NULL ? journal_records(r->env->journal) + 1 : 0;

	cJSON_AddNumberToObject(o, "id", id);
	cJSON_AddStringToObject(o, "op", op);
	cJSON_AddStringToObject(o, "worker", r->ro->workers[w].name);
	if (dep != NULL) {
		cJSON_AddItemToObject(o, "deployment", deployer_deployment_json(dep));
	}
	if (step != NULL) {
		cJSON_AddStringToObject(o, "step", step);
	}
	run_journal(r, "intent", o);
	return id;
}

static void
run_journal_result(struct run *r, int id, const struct deployer_result *res,
                   const struct deployment *dep, const char *version_id)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "id", id);
	cJSON_AddBoolToObject(o, "ok", res->rv == 0);
	if (res->rv == 0 && dep != NULL) {
		cJSON_AddItemToObject(o, "deployment", deployer_deployment_json(dep));
	}
	if (res->rv == 0 && version_id != NULL) {
		cJSON_AddStringToObject(o, "version_id", version_id);
	}
	if (res->rv != 0) {
		cJSON_AddStringToObject(o, "error", res->err);
	}
	run_journal(r, "result", o);
}

/* run_deploy_op: intent, deploy, result; updates r->applied on success. */
static int
run_deploy_op(struct run *r, enum plan_worker w, const struct deployment *dep, const char *step,
              char *err, size_t errlen)
{
	struct run_op op = {0};
	struct deployer_worker dw = run_worker(r, w);
	char msg[RUN_DEPLOY_MESSAGE_LEN], buf[128];
	struct canary_log_line *l;
	int rv, id;

	snprintf(msg, sizeof(msg), "canary %s: %s", r->ro->name, step);
	l = canary_log_begin(CANARY_LOG_INFO, "deploy");
	canary_log_str(l, "step", step);
	canary_log_str(l, "worker", dw.name);
	canary_log_str(l, "deployment", plan_deployment_format(dep, buf, sizeof(buf)));
	canary_log_end(l);
	id = run_journal_intent(r, "deploy", w, dep, step);
	rv = deployer_deploy(r->env->dep, &dw, dep, msg, run_op_cb, &op);
	run_finish_op(r, &op, rv, r->env->dep->err);
	/* What the platform answered it now holds, when it said; else what was
	 * asked for (the next status read is the judge). */
	run_journal_result(r, id, &op.res,
	                   op.res.deployment.n_versions > 0 ? &op.res.deployment : dep, NULL);
	if (op.res.rv != 0) {
		return canary_errf(err, errlen, op.res.rv, "deploying %s %s: %s", dw.name,
		                   plan_deployment_format(dep, buf, sizeof(buf)), op.res.err);
	}
	plan_state_apply(&r->applied, w, dep);
	return 0;
}

/* ---- probe rounds ---- */

struct run_round_wait {
	int done;
	int rv;
	char err[CANARY_ERRLEN];
	struct canary_report *reports;
	int n;
	struct survey_stats stats;
};

static void
run_round_cb(struct survey_result *res, void *arg)
{
	struct run_round_wait *w = arg;

	w->rv = res->rv;
	snprintf(w->err, sizeof(w->err), "%s", res->err);
	w->stats = res->stats;
	survey_result_take(res, &w->reports, &w->n);
	w->done = 1;
}

/* run_round: one survey with expectation exp (and override ov, may be
 * NULL); the reports merged into a new gate round (*grp, caller frees). */
static int
run_round(struct run *r, enum canary_phase phase, const struct canary_expect *exp,
          const struct canary_override *ov, struct gate_round **grp, char *err, size_t errlen)
{
	const struct rollout *ro = r->ro;
	struct canary_probe p;
	struct run_round_wait w;
	struct gate_round *g = NULL;
	struct gate_rejects rj;
	struct canary_log_line *l;
	char aerr[CANARY_ERRLEN];
	int rv;

	*grp = NULL;
	memset(&p, 0, sizeof(p));
	memset(&w, 0, sizeof(w));
	p.proto_version = CANARY_PROTO_VERSION;
	snprintf(p.rollout_id, sizeof(p.rollout_id), "%s", ro->name);
	p.round = ++r->round;
	p.phase = phase;
	p.deadline_ms = (uint32_t)ro->agents.round_timeout_s * 1000;
	memcpy(r->targets, ro->targets, sizeof(r->targets));
	p.targets = r->targets;
	p.n_targets = ro->n_targets;
	p.headers = ro->headers;
	p.expect = *exp;
	if (ov != NULL) {
		p.override = *ov;
	}
	p.version_keys = ro->version_keys;
	rv = survey_round(r->env->survey, &p, run_round_cb, &w, err, errlen);
	if (rv != 0) {
		return rv;
	}
	run_wait(r, &w.done);
	if (w.rv != 0) {
		rv = canary_errf(err, errlen, w.rv, "probe round %" PRIu64 ": %s", p.round, w.err);
		goto out;
	}
	if ((rv = gate_round_new(&p, ro->regions, ro->n_regions, &g, err, errlen)) != 0) {
		goto out;
	}
	for (int i = 0; i < w.n; i++) {
		rv = gate_round_add(g, &w.reports[i], aerr, sizeof(aerr));
		if (rv == CANARY_ENOMEM) {
			canary_errf(err, errlen, rv, "probe round %" PRIu64 ": out of memory",
			            p.round);
			goto out;
		}
	}
	rv = 0;
	gate_round_rejects(g, &rj);
	l = canary_log_begin(CANARY_LOG_DEBUG, "round");
	canary_log_u64(l, "round", p.round);
	canary_log_str(l, "phase", canary_phase_name(phase));
	canary_log_i64(l, "agents", w.stats.agents);
	canary_log_i64(l, "reports", w.n);
	canary_log_dbl(l, "ms", (double)w.stats.elapsed_us / 1000.0);
	canary_log_end(l);
	if (w.stats.malformed + w.stats.oversized + w.stats.wrong_round + w.stats.dropped > 0 ||
	    rj.n_notes > 0) {
		l = canary_log_begin(CANARY_LOG_WARN, "reports_rejected");
		canary_log_u64(l, "round", p.round);
		canary_log_i64(l, "malformed", w.stats.malformed);
		canary_log_i64(l, "oversized", w.stats.oversized);
		canary_log_i64(l, "wrong_round", w.stats.wrong_round + rj.wrong_round);
		canary_log_i64(l, "agent_errors", rj.error_reports);
		canary_log_i64(l, "unknown_region", rj.unknown_region);
		canary_log_i64(l, "duplicate_agent", rj.duplicate_agent);
		canary_log_i64(l, "bad_target", rj.bad_target);
		for (int i = 0; i < rj.n_notes; i++) {
			canary_log_str(l, "note", rj.notes[i]);
		}
		canary_log_end(l);
	}
	*grp = g;
	g = NULL;
out:
	gate_round_free(g);
	for (int i = 0; i < w.n; i++) {
		canary_report_free(&w.reports[i]);
	}
	free(w.reports);
	return rv;
}

static void
run_log_verdict(const struct run *r, const char *step, enum canary_phase phase,
                const struct gate_verdict *vd)
{
	struct canary_log_line *l;
	char buf[256];

	for (int i = 0; i < vd->n_regions; i++) {
		const struct gate_region_verdict *rv = &vd->regions[i];

		l = canary_log_begin(rv->result == GATE_PASS ? CANARY_LOG_INFO : CANARY_LOG_WARN,
		                     "region");
		canary_log_str(l, "step", step);
		canary_log_str(l, "phase", canary_phase_name(phase));
		canary_log_u64(l, "round", r->round);
		canary_log_str(l, "region", rv->name);
		canary_log_str(l, "verdict", gate_result_name(rv->result));
		canary_log_i64(l, "agents", rv->agents);
		canary_log_u64(l, "sent", rv->sent);
		canary_log_dbl(l, "error_rate", rv->error_rate);
		canary_log_dbl(l, "p95_ms", rv->p95_ms);
		canary_log_dbl(l, "p99_ms", rv->p99_ms);
		if (rv->isr_hit_ratio >= 0) {
			canary_log_dbl(l, "isr_hit_ratio", rv->isr_hit_ratio);
		}
		if (rv->m1_share >= 0) {
			canary_log_dbl(l, "m1_share", rv->m1_share);
		}
		canary_log_end(l);
	}
	for (int i = 0; i < vd->n_findings; i++) {
		const struct gate_finding *f = &vd->findings[i];

		l = canary_log_begin(CANARY_LOG_WARN, "finding");
		canary_log_str(l, "step", step);
		canary_log_u64(l, "round", r->round);
		canary_log_str(l, "check", f->check);
		canary_log_str(l, "region", f->region);
		canary_log_str(l, "target", f->target);
		canary_log_str(l, "verdict", gate_result_name(f->result));
		if (f->critical) {
			canary_log_str(l, "critical", "yes");
		}
		canary_log_str(l, "detail", f->text);
		canary_log_end(l);
	}
	l = canary_log_begin(vd->result == GATE_PASS ? CANARY_LOG_INFO : CANARY_LOG_WARN,
	                     "verdict");
	canary_log_str(l, "step", step);
	canary_log_str(l, "phase", canary_phase_name(phase));
	canary_log_u64(l, "round", r->round);
	canary_log_str(l, "summary", gate_verdict_format(vd, buf, sizeof(buf)));
	canary_log_end(l);
}

/* ---- expectations ---- */

static int
run_expect(const struct run *r, const struct plan_step *step, struct canary_expect *exp,
           struct canary_override *ov)
{
	return plan_expect(step, &r->v, r->ro->workers[PLAN_MIDDLEWARE].name, r->ro->override_share,
	                   exp, ov);
}

/* run_health_failed: whether v holds a failing finding that a region still
 * on the old versions cannot cause, so it may be judged before the step has
 * converged: errors, latency, broken affinity (a middleware with a known pin
 * paired with another server), overrides and version keys, body mismatches.
 * Share, unexpected pairs, unknown versions (the old versions, to the new
 * expectation), ISR hit ratio and agent counts wait for convergence. */
static int
run_health_failed(const struct gate_verdict *v, int *critical)
{
	static const char *const checks[] = {"error_rate", "p95",         "p99",
	                                     "p95_ratio",  "p99_ratio",   "affinity",
	                                     "override",   "version_key", "body"};
	int found = 0;

	*critical = 0;
	for (int i = 0; i < v->n_findings; i++) {
		if (v->findings[i].result != GATE_FAIL) {
			continue;
		}
		for (size_t k = 0; k < sizeof(checks) / sizeof(checks[0]); k++) {
			if (strcmp(v->findings[i].check, checks[k]) == 0) {
				found = 1;
				*critical |= v->findings[i].critical;
			}
		}
	}
	return found;
}

/* run_converge: rounds until every region sees what exp allows, at most
 * timeout_s. With gs (the step's verdict count), each round is also judged
 * for what a lagging region cannot cause (run_health_failed), counted into
 * gs, so a bad build is caught while it spreads, not after the timeout.
 * Interruptible unless rolling back. */
static int
run_converge(struct run *r, const char *label, enum canary_phase phase,
             const struct canary_expect *exp, const struct canary_override *ov, int timeout_s,
             int interruptible, struct gate_step *gs, char *err, size_t errlen)
{
	int64_t deadline = run_now_ms() + (int64_t)timeout_s * 1000;
	char why[CANARY_ERRLEN] = "no round ran";
	int rounds = 0;

	for (;;) {
		struct gate_round *g = NULL;
		struct gate_verdict vd;
		int rv = run_round(r, phase, exp, ov, &g, err, errlen);
		int ok, critical;

		if (rv != 0) {
			return rv;
		}
		rounds++;
		ok = gate_converged(g, NULL, why, sizeof(why));
		if (gs != NULL) {
			gate_judge(g, r->baseline, &r->ro->gates, &vd);
		}
		gate_round_free(g);
		if (gs != NULL && run_health_failed(&vd, &critical)) {
			char gwhy[CANARY_ERRLEN];

			run_log_verdict(r, label, phase, &vd);
			vd.result = GATE_FAIL;
			vd.critical = critical;
			if (gate_step_record(gs, &r->ro->gates, &vd, gwhy, sizeof(gwhy)) ==
			    GATE_ROLLBACK) {
				return canary_errf(err, errlen, CANARY_ESTATE, "%s: %s", label,
				                   gwhy);
			}
		}
		if (ok) {
			struct canary_log_line *l = canary_log_begin(CANARY_LOG_INFO, "converged");

			canary_log_str(l, "step", label);
			canary_log_i64(l, "rounds", rounds);
			canary_log_end(l);
			return 0;
		}
		if (interruptible && run_stopped(r)) {
			return canary_errf(err, errlen, CANARY_ECANCELED, "%s: stopped", label);
		}
		if (run_now_ms() >= deadline) {
			return canary_errf(err, errlen, CANARY_ETIMEDOUT,
			                   "%s: not converged within %d s: %s", label, timeout_s,
			                   why);
		}
		if (run_sleep(r, RUN_CONVERGE_PAUSE_MS, interruptible) != 0) {
			return canary_errf(err, errlen, CANARY_ECANCELED, "%s: stopped", label);
		}
	}
}

/* ---- rollback ---- */

static void
run_print_manual(const struct run *r, const struct plan_state *st)
{
	struct plan_state sim = *st;
	struct plan_move mv;
	char err[CANARY_ERRLEN], a[128], b[128];
	int moves = 0;

	fprintf(stderr,
	        "canary-controller: ROLLBACK UNFINISHED: production is server %s %s, middleware "
	        "%s %s\n",
	        r->ro->workers[PLAN_SERVER].name, plan_deployment_format(&st->server, a, sizeof(a)),
	        r->ro->workers[PLAN_MIDDLEWARE].name,
	        plan_deployment_format(&st->middleware, b, sizeof(b)));
	fprintf(stderr, "to finish, run: canary-controller rollback -f %s\n", r->ro->path);
	fprintf(stderr, "or by hand, in this order, checking traffic after each:\n");
	while (moves < 4 && plan_rollback_next(&sim, &r->v, &mv, err, sizeof(err)) == 0 &&
	       !mv.done) {
		fprintf(stderr, "  npx wrangler versions deploy");
		for (int i = 0; i < mv.dep.n_versions; i++) {
			fprintf(stderr, " %s@%d%%", mv.dep.versions[i].version_id,
			        mv.dep.versions[i].percentage);
		}
		fprintf(stderr, " -y --config %s   # %s\n", r->ro->workers[mv.worker].config,
		        mv.why);
		plan_state_apply(&sim, mv.worker, &mv.dep);
		moves++;
	}
}

/* run_verify_state: after a rollback move, probes confirm what the state
 * makes regions see. A server move (1: s0 back at 0%, 3: server {s0:100}
 * beside middleware {m0:100}) changes no response a probe can tell apart,
 * so it first waits propagation_s for every region to take it; a
 * middleware version of unknown pin cannot be probed for at all. */
static int
run_verify_state(struct run *r, const struct plan_state *st, const struct plan_move *mv, char *err,
                 size_t errlen)
{
	struct canary_expect exp;
	char label[64];

	if (mv->worker == PLAN_SERVER) {
		run_sleep(r, (int64_t)r->ro->propagation_s * 1000, 0);
	}
	if (plan_expect_state(st, &r->v, &exp, err, errlen) != 0) {
		if (mv->worker != PLAN_SERVER) {
			run_sleep(r, (int64_t)r->ro->propagation_s * 1000, 0);
		}
		return 0;
	}
	snprintf(label, sizeof(label), "rollback move %d", mv->number);
	return run_converge(r, label, CANARY_PHASE_ROLLBACK_VERIFY, &exp, NULL,
	                    r->ro->converge_timeout_s, 0, NULL, err, errlen);
}

/* run_retry_note: one more failed rollback attempt, said why. */
static void
run_retry_note(int *failures, const char *err)
{
	(*failures)++;
	canary_logf(CANARY_LOG_ERROR, "rollback_retry", "attempt %d failed: %s", *failures, err);
}

/* run_do_rollback: the skew-safe rollback of DESIGN.md from the platform's
 * real state, each move verified; retries with backoff. Never stopped. */
static int
run_do_rollback(struct run *r, const char *reason)
{
	struct plan_state st;
	int have_state = 0;
	int failures = 0, iterations = 0;
	int64_t backoff = RUN_BACKOFF_MIN_MS;
	char err[CANARY_ERRLEN];
	struct canary_log_line *l;

	l = canary_log_begin(CANARY_LOG_WARN, "rollback");
	canary_log_str(l, "reason", reason);
	canary_log_end(l);
	run_journal_kv(r, "rollback", "reason", reason, NULL);
	while (failures < RUN_ROLLBACK_ATTEMPTS && iterations < RUN_ROLLBACK_ATTEMPTS + 8) {
		struct plan_move mv;
		int rv;

		iterations++;
		if (failures > 0) {
			run_sleep(r, backoff, 0);
			backoff =
			    backoff * 2 > RUN_BACKOFF_MAX_MS ? RUN_BACKOFF_MAX_MS : backoff * 2;
		}
		if ((rv = run_read_state(r, &st, err, sizeof(err))) != 0) {
			run_retry_note(&failures, err);
			continue;
		}
		have_state = 1;
		if ((rv = plan_rollback_next(&st, &r->v, &mv, err, sizeof(err))) != 0) {
			run_retry_note(&failures, err);
			continue;
		}
		if (mv.done) {
			struct canary_expect exp;

			if (plan_expect(NULL, &r->v, r->ro->workers[PLAN_MIDDLEWARE].name, 0, &exp,
			                NULL) != 0 ||
			    run_converge(r, "rollback verify", CANARY_PHASE_ROLLBACK_VERIFY, &exp,
			                 NULL, r->ro->converge_timeout_s, 0, NULL, err,
			                 sizeof(err)) != 0) {
				run_retry_note(&failures, err);
				continue;
			}
			r->applied = st;
			run_journal_kv(r, "rollback_verified", "detail",
			               "production verified on m0+s0", NULL);
			canary_logf(CANARY_LOG_INFO, "rolled_back",
			            "production verified on middleware %s + server %s", r->v.m0,
			            r->v.s0);
			return RUN_EXIT_ROLLED_BACK;
		}
		l = canary_log_begin(CANARY_LOG_INFO, "rollback_move");
		canary_log_i64(l, "move", mv.number);
		canary_log_str(l, "why", mv.why);
		canary_log_end(l);
		{
			char step[32];

			snprintf(step, sizeof(step), "rollback-%d", mv.number);
			if ((rv = run_deploy_op(r, mv.worker, &mv.dep, step, err, sizeof(err))) !=
			    0) {
				run_retry_note(&failures, err);
				continue;
			}
		}
		r->moves++;
		plan_state_apply(&st, mv.worker, &mv.dep);
		if ((rv = run_verify_state(r, &st, &mv, err, sizeof(err))) != 0) {
			run_retry_note(&failures, err);
			continue;
		}
		failures = 0;
		backoff = RUN_BACKOFF_MIN_MS;
	}
	run_journal_kv(r, "rollback_failed", "error", err, NULL);
	if (have_state) {
		run_print_manual(r, &st);
	} else {
		fprintf(
		    stderr,
		    "canary-controller: ROLLBACK UNFINISHED: the platform could not be read (%s)\n"
		    "to finish, run: canary-controller rollback -f %s\n",
		    err, r->ro->path);
	}
	return RUN_EXIT_ROLLBACK_FAILED;
}

/* ---- forward path ---- */

static int
run_single(const struct deployment *d)
{
	return d->n_versions == 1 && d->versions[0].percentage == 100;
}

static int
run_refuse(struct run *r, const char *what, const char *detail)
{
	struct canary_log_line *l = canary_log_begin(CANARY_LOG_ERROR, "refused");

	canary_log_str(l, "check", what);
	canary_log_str(l, "detail", detail);
	canary_log_end(l);
	run_journal_kv(r, "refused", "check", what, "detail", detail, NULL);
	return RUN_EXIT_REFUSED;
}

/* run_wait_agents: waits, until deadline (run_now_ms), for as many agents
 * to be connected as the regions need in all. A count only: it cannot
 * tell which region an agent serves (run_quorum_round can). */
static int
run_wait_agents(struct run *r, int64_t deadline, char *err, size_t errlen)
{
	int need = 0;

	for (int i = 0; i < r->ro->n_regions; i++) {
		need += r->ro->regions[i].min_agents;
	}
	while (survey_agents(r->env->survey) < need) {
		if (run_now_ms() >= deadline) {
			return canary_errf(err, errlen, CANARY_ESTATE,
			                   "agent quorum: %d agents connected, the regions need %d",
			                   survey_agents(r->env->survey), need);
		}
		if (run_sleep(r, RUN_QUORUM_PAUSE_MS, 1) != 0) {
			return canary_errf(err, errlen, CANARY_ECANCELED, "stopped");
		}
	}
	return 0;
}

/* run_quorum_deadline: when waiting for agents ends, RUN_QUORUM_WAIT_FACTOR
 * round timeouts from now. */
static int64_t
run_quorum_deadline(const struct run *r)
{
	return run_now_ms() +
	       (int64_t)RUN_QUORUM_WAIT_FACTOR * r->ro->agents.round_timeout_s * 1000;
}

/* run_wait_quorum: the agents the regions need are connected, waiting up to
 * RUN_QUORUM_WAIT_FACTOR round timeouts for them. */
static int
run_wait_quorum(struct run *r, char *err, size_t errlen)
{
	return run_wait_agents(r, run_quorum_deadline(r), err, errlen);
}

/* run_quorum_short: the regions of round g that reported with fewer agents
 * than their min_agents, written to buf as "apac had 0 of 1 agents, weur
 * had 1 of 2 agents". Returns how many. */
static int
run_quorum_short(const struct run *r, const struct gate_round *g, char *buf, size_t len)
{
	size_t used = 0;
	int n = 0;

	buf[0] = '\0';
	for (int i = 0; i < r->ro->n_regions && i < gate_round_n_regions(g); i++) {
		int agents = 0;

		if (gate_round_region(g, i, &agents, NULL) == NULL ||
		    agents >= r->ro->regions[i].min_agents) {
			continue;
		}
		if (used < len) {
			int k = snprintf(buf + used, len - used, "%s%s had %d of %d agents",
			                 n > 0 ? ", " : "", r->ro->regions[i].name, agents,
			                 r->ro->regions[i].min_agents);

			used += k > 0 ? (size_t)k : 0;
		}
		n++;
	}
	return n;
}

/* run_quorum_round: the first probe round of a command (preflight's
 * baseline, check), once every region reports with at least its
 * min_agents. Agents connect in any order, and an extra agent of one region
 * can make up the total while another region's agent is still connecting,
 * so the round is sent again while a region is short, until
 * RUN_QUORUM_WAIT_FACTOR round timeouts have passed. Returns 0 and *grp
 * (caller frees); CANARY_ESTATE naming each region short and what it had;
 * CANARY_ECANCELED when stopped; or the round's error. */
static int
run_quorum_round(struct run *r, enum canary_phase phase, const struct canary_expect *exp,
                 struct gate_round **grp, char *err, size_t errlen)
{
	int64_t started = run_now_ms();
	int64_t deadline = run_quorum_deadline(r);
	char missing[CANARY_ERRLEN];
	int rv;

	*grp = NULL;
	if ((rv = run_wait_agents(r, deadline, err, errlen)) != 0) {
		return rv;
	}
	for (;;) {
		struct gate_round *g = NULL;
		struct canary_log_line *l;

		if ((rv = run_round(r, phase, exp, NULL, &g, err, errlen)) != 0) {
			return rv;
		}
		if (run_quorum_short(r, g, missing, sizeof(missing)) == 0) {
			*grp = g;
			return 0;
		}
		gate_round_free(g);
		if (run_now_ms() >= deadline) {
			return canary_errf(err, errlen, CANARY_ESTATE,
			                   "agent quorum: after %.1f s, round %" PRIu64
			                   " still had too few agents: %s (%d agents connected)",
			                   (double)(run_now_ms() - started) / 1000.0, r->round,
			                   missing, survey_agents(r->env->survey));
		}
		l = canary_log_begin(CANARY_LOG_WARN, "quorum_wait");
		canary_log_u64(l, "round", r->round);
		canary_log_str(l, "short", missing);
		canary_log_end(l);
		if (run_sleep(r, RUN_QUORUM_PAUSE_MS, 1) != 0) {
			return canary_errf(err, errlen, CANARY_ECANCELED, "stopped");
		}
	}
}

/* run_check_migrations: a worker whose config's last Durable Object
 * migration tag differs from the platform's cannot take a gradual
 * deployment. Backends that cannot read the tag skip the check. */
static int
run_check_migrations(struct run *r, char *err, size_t errlen)
{
	if (r->env->dep->ops->migration_tag == NULL) {
		return 0;
	}
	for (int w = 0; w < 2; w++) {
		const struct rollout_worker *rw = &r->ro->workers[w];
		struct deployer_worker dw = run_worker(r, (enum plan_worker)w);
		struct run_op op = {0};
		int rv;

		if (rw->migration_tag[0] == '\0') {
			continue;
		}
		rv = deployer_migration_tag(r->env->dep, &dw, run_op_cb, &op);
		run_finish_op(r, &op, rv, r->env->dep->err);
		if (op.res.rv != 0) {
			return canary_errf(err, errlen, op.res.rv, "migration tag of %s: %s",
			                   dw.name, op.res.err);
		}
		if (strcmp(op.res.migration_tag, rw->migration_tag) != 0) {
			return canary_errf(err, errlen, CANARY_ESTATE,
			                   "%s: Durable Object migrations up to tag \"%s\" are not "
			                   "on the platform "
			                   "(remote tag \"%s\"); a gradual deployment cannot apply "
			                   "them. Apply them "
			                   "first with: npx wrangler deploy --config %s",
			                   rw->config, rw->migration_tag, op.res.migration_tag,
			                   rw->config);
		}
	}
	return 0;
}

/* run_preflight: nothing changes here. Returns -1 to go on, else an exit
 * code. Fills r->v's old versions, r->applied and r->baseline. */
static int
run_preflight(struct run *r)
{
	struct plan_state st;
	struct canary_expect exp;
	struct gate_verdict vd;
	char err[CANARY_ERRLEN], a[128], b[128];
	int rv;

	if ((rv = rollout_lint(r->ro, err, sizeof(err))) != 0) {
		return run_refuse(r, "config", err);
	}
	if ((rv = run_read_state(r, &st, err, sizeof(err))) != 0) {
		return run_refuse(r, "deployments", err);
	}
	if (!run_single(&st.server) || !run_single(&st.middleware)) {
		snprintf(
		    err, sizeof(err),
		    "expected one version at 100%% on each worker, found server %s, middleware "
		    "%s; finish or roll back the other rollout first",
		    plan_deployment_format(&st.server, a, sizeof(a)),
		    plan_deployment_format(&st.middleware, b, sizeof(b)));
		return run_refuse(r, "deployments", err);
	}
	snprintf(r->v.s0, sizeof(r->v.s0), "%s", st.server.versions[0].version_id);
	snprintf(r->v.m0, sizeof(r->v.m0), "%s", st.middleware.versions[0].version_id);
	/* m0's pin is proven by the baseline round: a middleware that pins
	 * anything but s0 shows unexpected pairs there. */
	snprintf(r->v.pin_m0, sizeof(r->v.pin_m0), "%s", r->v.s0);
	r->applied = st;
	if ((rv = run_check_migrations(r, err, sizeof(err))) != 0) {
		return run_refuse(r, "migrations", err);
	}
	if ((rv = plan_expect(NULL, &r->v, r->ro->workers[PLAN_MIDDLEWARE].name, 0, &exp, NULL)) !=
	    0) {
		return run_refuse(r, "baseline", "no expectation for production");
	}
	rv = run_quorum_round(r, CANARY_PHASE_BASELINE, &exp, &r->baseline, err, sizeof(err));
	if (rv == CANARY_ECANCELED) {
		return run_refuse(r, "stopped", "stopped before any change");
	}
	if (rv == CANARY_ESTATE) {
		return run_refuse(r, "quorum", err);
	}
	if (rv != 0) {
		return run_refuse(r, "baseline", err);
	}
	gate_judge(r->baseline, NULL, &r->ro->gates, &vd);
	run_log_verdict(r, "baseline", CANARY_PHASE_BASELINE, &vd);
	if (vd.result != GATE_PASS) {
		snprintf(
		    err, sizeof(err),
		    "production (middleware %s + server %s) is not healthy: %s; there is nothing "
		    "to compare a new build against",
		    r->v.m0, r->v.s0, gate_verdict_format(&vd, a, sizeof(a)));
		return run_refuse(r, "baseline", err);
	}
	/* Kept for resume: the latency ratio checks compare against it. */
	run_journal(r, "baseline", gate_baseline_encode(r->baseline));
	return -1;
}

/* run_restore_baseline: the preflight round's latency figures from the
 * journal, for the ratio checks of a resumed rollout. Without them (a
 * journal from before the round was kept, or a record that does not
 * decode) the rollout goes on with those checks off, and says so. */
static void
run_restore_baseline(struct run *r, const cJSON *rec)
{
	char err[CANARY_ERRLEN];

	if (rec == NULL) {
		if (r->ro->gates.max_latency_ratio > 0) {
			canary_logf(CANARY_LOG_WARN, "baseline",
			            "the journal holds no baseline round: the latency ratio checks "
			            "are off for the rest of this rollout");
		}
		return;
	}
	if (gate_baseline_decode(rec, "baseline", &r->baseline, err, sizeof(err)) != 0) {
		canary_logf(CANARY_LOG_WARN, "baseline",
		            "%s: the latency ratio checks are off for the rest of this rollout",
		            err);
		return;
	}
	canary_logf(CANARY_LOG_INFO, "baseline", "restored from the journal (%d regions)",
	            gate_round_n_regions(r->baseline));
}

/* run_upload: one upload with intent and result journaled. */
static int
run_upload(struct run *r, enum plan_worker w, const char *const (*vars)[2], int n_vars,
           char *version_id, char *err, size_t errlen)
{
	struct deployer_upload up;
	struct run_op op = {0};
	char msg[RUN_DEPLOY_MESSAGE_LEN];
	int rv, id;

	memset(&up, 0, sizeof(up));
	up.worker = run_worker(r, w);
	up.vars = vars;
	up.n_vars = n_vars;
	snprintf(msg, sizeof(msg), "canary %s", r->ro->name);
	up.message = msg;
	canary_logf(CANARY_LOG_INFO, "upload", "%s %s", run_worker_names[w], up.worker.name);
	if (r->journal_failed) {
		return canary_errf(err, errlen, CANARY_EIO, "the journal cannot be written");
	}
	id = run_journal_intent(r, "upload", w, NULL, NULL);
	rv = deployer_upload(r->env->dep, &up, run_op_cb, &op);
	run_finish_op(r, &op, rv, r->env->dep->err);
	run_journal_result(r, id, &op.res, NULL, op.res.version_id);
	if (op.res.rv != 0) {
		return canary_errf(err, errlen, op.res.rv, "uploading %s: %s", up.worker.name,
		                   op.res.err);
	}
	snprintf(version_id, CANARY_UUID_LEN, "%s", op.res.version_id);
	canary_logf(CANARY_LOG_INFO, "uploaded", "%s version %s", run_worker_names[w], version_id);
	return 0;
}

static int
run_uploads(struct run *r, char *err, size_t errlen)
{
	const char *vars[1][2];
	int rv;

	if ((rv = run_upload(r, PLAN_SERVER, NULL, 0, r->v.s1, err, errlen)) != 0) {
		return rv;
	}
	snprintf(r->v.pin_m1, sizeof(r->v.pin_m1), "%s", r->v.s1);
	vars[0][0] = r->ro->pin_var;
	vars[0][1] = r->v.s1;
	if ((rv = run_upload(r, PLAN_MIDDLEWARE, (const char *const(*)[2])vars, 1, r->v.m1, err,
	                     errlen)) != 0) {
		return rv;
	}
	return plan_versions_check(&r->v, err, errlen);
}

/* run_drift: the platform still holds what we last applied. */
static int
run_drift(struct run *r, char *err, size_t errlen)
{
	struct plan_state st;
	char a[128], b[128];
	int rv;

	if ((rv = run_read_state(r, &st, err, errlen)) != 0) {
		return rv;
	}
	for (int w = 0; w < 2; w++) {
		const struct deployment *now = w == PLAN_SERVER ? &st.server : &st.middleware;
		const struct deployment *want =
		    w == PLAN_SERVER ? &r->applied.server : &r->applied.middleware;

		if (!plan_deployment_equal(now, want)) {
			return canary_errf(
			    err, errlen, CANARY_EDRIFT,
			    "%s %s: the platform holds %s, the rollout last applied %s: "
			    "someone else deployed",
			    run_worker_names[w], r->ro->workers[w].name,
			    plan_deployment_format(now, a, sizeof(a)),
			    plan_deployment_format(want, b, sizeof(b)));
		}
	}
	return 0;
}

/* run_bake: a judged round every interval for bake_s, counted into the
 * step's gs. */
static int
run_bake(struct run *r, const char *label, const struct canary_expect *exp,
         const struct canary_override *ov, int bake_s, struct gate_step *gs, char *err,
         size_t errlen)
{
	int64_t end = run_now_ms() + (int64_t)bake_s * 1000;

	while (run_now_ms() < end) {
		int64_t started = run_now_ms();
		struct gate_round *g = NULL;
		struct gate_verdict vd;
		char why[CANARY_ERRLEN];
		int rv = run_round(r, CANARY_PHASE_BAKE, exp, ov, &g, err, errlen);

		if (rv != 0) {
			return rv;
		}
		gate_judge(g, r->baseline, &r->ro->gates, &vd);
		gate_round_free(g);
		run_log_verdict(r, label, CANARY_PHASE_BAKE, &vd);
		if (gate_step_record(gs, &r->ro->gates, &vd, why, sizeof(why)) == GATE_ROLLBACK) {
			return canary_errf(err, errlen, CANARY_ESTATE, "%s: %s", label, why);
		}
		if (run_stopped(r)) {
			return canary_errf(err, errlen, CANARY_ECANCELED, "%s: stopped", label);
		}
		rv = run_sleep(r, (int64_t)r->ro->interval_s * 1000 - (run_now_ms() - started), 1);
		if (rv != 0) {
			return canary_errf(err, errlen, CANARY_ECANCELED, "%s: stopped", label);
		}
	}
	return 0;
}

/* run_steps: steps from index first on. Returns -1 when all baked, else an
 * exit code (after a rollback, or on drift). */
static int
run_steps(struct run *r, int first)
{
	char err[CANARY_ERRLEN], name[PLAN_STEP_NAME_LEN];

	for (int i = first; i < r->ro->n_steps; i++) {
		const struct plan_step *step = &r->ro->steps[i];
		struct canary_expect exp;
		struct canary_override ov;
		struct deployment dep;
		struct gate_step gs;
		enum plan_worker w;
		int bake_s = step->bake_s >= 0 ? step->bake_s : r->ro->bake_s;
		int rv;

		r->step_index = i;
		plan_step_name(step, name, sizeof(name));
		if (run_stopped(r)) {
			return run_do_rollback(r, "stopped by signal");
		}
		rv = run_drift(r, err, sizeof(err));
		if (rv == CANARY_EDRIFT) {
			canary_logf(CANARY_LOG_ERROR, "drift", "%s", err);
			run_journal_kv(r, "drift", "detail", err, NULL);
			fprintf(stderr,
			        "canary-controller: stopped on drift, nothing touched: %s\n"
			        "check who deployed, then `canary-controller rollback -f %s` or "
			        "`resume` when the platform is back to what the rollout applied\n",
			        err, r->ro->path);
			return RUN_EXIT_DRIFT;
		}
		if (rv != 0) {
			return run_do_rollback(r, err);
		}
		if ((rv = plan_step_deployment(step, &r->v, &r->applied, &w, &dep, err,
		                               sizeof(err))) != 0 ||
		    (rv = run_expect(r, step, &exp, &ov)) != 0) {
			return run_do_rollback(r, err);
		}
		canary_logf(CANARY_LOG_INFO, "step", "%s (%d of %d)", name, i + 1, r->ro->n_steps);
		if (r->journal_failed) {
			return run_do_rollback(r, "the journal cannot be written");
		}
		if ((rv = run_deploy_op(r, w, &dep, name, err, sizeof(err))) != 0) {
			return run_do_rollback(r, err);
		}
		run_journal_step(r, name, "applied");
		if (w == PLAN_SERVER) {
			/* A server step changes nothing a probe can tell apart
			 * (nothing routes to a 0% server version; at server-100
			 * every middleware already pins s1): wait for every
			 * region to take it. */
			rv = run_sleep(r, (int64_t)r->ro->propagation_s * 1000, 1);
		}
		memset(&gs, 0, sizeof(gs));
		if (rv == 0 && step->kind != PLAN_STEP_SERVER_0) {
			rv = run_converge(r, name, CANARY_PHASE_CONVERGE, &exp, &ov,
			                  r->ro->converge_timeout_s, 1, &gs, err, sizeof(err));
		}
		if (rv == CANARY_ECANCELED || run_stopped(r)) {
			return run_do_rollback(r, "stopped by signal");
		}
		if (rv != 0) {
			return run_do_rollback(r, err);
		}
		if ((rv = run_bake(r, name, &exp, &ov, bake_s, &gs, err, sizeof(err))) != 0) {
			return run_do_rollback(r,
			                       rv == CANARY_ECANCELED ? "stopped by signal" : err);
		}
		run_journal_step(r, name, "baked");
	}
	return -1;
}

static void
run_init(struct run *r, struct run_env *env)
{
	memset(r, 0, sizeof(*r));
	r->env = env;
	r->ro = env->ro;
	r->step_index = -1;
	/* Round numbers from the wall clock: a restarted controller never
	 * reuses a round number an agent may still be answering. */
	r->round = (uint64_t)time(NULL) * 1000;
	snprintf(r->v.s1, sizeof(r->v.s1), "%s", RUN_VERSION_NONE_S1);
	snprintf(r->v.m1, sizeof(r->v.m1), "%s", RUN_VERSION_NONE_M1);
	snprintf(r->v.pin_m1, sizeof(r->v.pin_m1), "%s", RUN_VERSION_NONE_S1);
}

struct run_history;
static int run_history_read(const char *state_dir, struct run_history *h, char *err, size_t errlen);
static void run_history_free(struct run_history *h);

/* ---- the journal read back ---- */

/* What the journal holds about the last rollout of the state directory. */
struct run_history {
	struct journal_log log;
	struct journal_state st;
	struct plan_versions v;
	int have_versions;
	const cJSON *baseline; /* the last rollout's "baseline" record, in log */
};

static void
run_history_free(struct run_history *h)
{
	journal_log_free(&h->log);
}

static void
run_copy_str(char *dst, size_t n, const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsString(v) && strlen(v->valuestring) < n) {
		snprintf(dst, n, "%s", v->valuestring);
	}
}

/* run_history_read: the journal of state_dir, replayed. CANARY_ENOENT when
 * there is none. */
static int
run_history_read(const char *state_dir, struct run_history *h, char *err, size_t errlen)
{
	int rv, last_start = 0;

	memset(h, 0, sizeof(*h));
	if ((rv = journal_read(state_dir, &h->log, err, errlen)) != 0) {
		return rv;
	}
	if ((rv = journal_replay((const cJSON *const *)h->log.recs, h->log.n, &h->st, err,
	                         errlen)) != 0) {
		return rv;
	}
	for (int i = 0; i < h->log.n; i++) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(h->log.recs[i], "type");

		if (cJSON_IsString(t) && strcmp(t->valuestring, "start") == 0) {
			last_start = i;
		}
	}
	/* The versions of the last rollout: its last "versions" record. */
	for (int i = last_start; i < h->log.n; i++) {
		const cJSON *rec = h->log.recs[i];
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "type");

		if (cJSON_IsString(t) && strcmp(t->valuestring, "baseline") == 0) {
			h->baseline = rec;
		}

		if (!cJSON_IsString(t) || strcmp(t->valuestring, "versions") != 0) {
			continue;
		}
		memset(&h->v, 0, sizeof(h->v));
		run_copy_str(h->v.s0, sizeof(h->v.s0), rec, "s0");
		run_copy_str(h->v.m0, sizeof(h->v.m0), rec, "m0");
		run_copy_str(h->v.s1, sizeof(h->v.s1), rec, "s1");
		run_copy_str(h->v.m1, sizeof(h->v.m1), rec, "m1");
		snprintf(h->v.pin_m0, sizeof(h->v.pin_m0), "%s", h->v.s0);
		snprintf(h->v.pin_m1, sizeof(h->v.pin_m1), "%s", h->v.s1);
		h->have_versions = h->v.s0[0] != '\0' && h->v.m0[0] != '\0';
	}
	return 0;
}

static const char *
run_outcome(int code)
{
	static const char *const names[] = {"promoted",    "usage",           "refused",
	                                    "rolled_back", "rollback_failed", "drift"};

	return code >= 0 && code <= RUN_EXIT_DRIFT ? names[code] : "unknown";
}

static int
run_end(struct run *r, int code)
{
	run_journal_end(r, run_outcome(code), code);
	gate_round_free(r->baseline);
	r->baseline = NULL;
	return code;
}

/* run_unfinished: the journal of r's state directory holds a rollout that
 * never ended and got past preflight (its versions are recorded, so it may
 * have uploaded or deployed): a new one must not start over it, or what it
 * applied would be lost to resume and rollback. One stopped before that
 * changed nothing and may be started again. */
static int
run_unfinished(struct run *r)
{
	struct run_history h;
	char err[CANARY_ERRLEN];
	int unfinished = run_history_read(r->ro->state_dir, &h, err, sizeof(err)) == 0 &&
	                 h.st.started && !h.st.ended && h.have_versions;

	if (unfinished) {
		fprintf(stderr,
		        "canary-controller: the journal in %s holds rollout %s, which never ended "
		        "(last step: %s); finish it first with `canary-controller resume -f %s` or "
		        "`canary-controller rollback -f %s`\n",
		        r->ro->state_dir, h.st.rollout, h.st.last_step[0] ? h.st.last_step : "none",
		        r->ro->path, r->ro->path);
	}
	run_history_free(&h);
	return unfinished;
}

int
run_rollout(struct run_env *env)
{
	struct run r;
	char err[CANARY_ERRLEN];
	int code;

	run_init(&r, env);
	if (run_unfinished(&r)) {
		return RUN_EXIT_USAGE;
	}
	run_journal_kv(&r, "start", "rollout", env->ro->name, "file", env->ro->path, "command",
	               "run", NULL);
	if ((code = run_preflight(&r)) >= 0) {
		return run_end(&r, code);
	}
	run_journal_versions(&r);
	if (run_stopped(&r)) {
		return run_end(&r, run_refuse(&r, "stopped", "stopped before any change"));
	}
	if (run_uploads(&r, err, sizeof(err)) != 0) {
		run_journal_versions(&r);
		canary_logf(CANARY_LOG_ERROR, "upload_failed", "%s", err);
		return run_end(&r, run_do_rollback(&r, err));
	}
	run_journal_versions(&r);
	if ((code = run_steps(&r, 0)) >= 0) {
		return run_end(&r, code);
	}
	canary_logf(CANARY_LOG_INFO, "promoted", "middleware %s + server %s", r.v.m1, r.v.s1);
	return run_end(&r, RUN_EXIT_PROMOTED);
}

/* ---- from the journal: resume, rollback by hand, status ---- */

/* run_load_history: run r with the versions of the journal. Returns 0, or
 * an exit code after saying why. */
static int
run_load_history(struct run *r, struct run_history *h)
{
	char err[CANARY_ERRLEN];
	int rv = run_history_read(r->ro->state_dir, h, err, sizeof(err));

	if (rv != 0) {
		fprintf(stderr, "canary-controller: %s: %s\n", r->ro->state_dir, err);
		return RUN_EXIT_USAGE;
	}
	if (!h->st.started || !h->have_versions) {
		fprintf(stderr,
		        "canary-controller: the journal in %s records no rollout that read its "
		        "versions; nothing to resume or roll back to\n",
		        r->ro->state_dir);
		return RUN_EXIT_USAGE;
	}
	r->v = h->v;
	return 0;
}

/* run_matching_step: the index of the step whose resulting state st is
 * (walking the plan from production), -1 for production itself, -2 for a
 * state the plan never reaches. */
static int
run_matching_step(const struct run *r, const struct plan_state *st)
{
	struct plan_state cur;
	char err[CANARY_ERRLEN];

	memset(&cur, 0, sizeof(cur));
	cur.server.n_versions = 1;
	snprintf(cur.server.versions[0].version_id, CANARY_UUID_LEN, "%s", r->v.s0);
	cur.server.versions[0].percentage = 100;
	cur.middleware.n_versions = 1;
	snprintf(cur.middleware.versions[0].version_id, CANARY_UUID_LEN, "%s", r->v.m0);
	cur.middleware.versions[0].percentage = 100;
	if (plan_deployment_equal(&cur.server, &st->server) &&
	    plan_deployment_equal(&cur.middleware, &st->middleware)) {
		return -1;
	}
	for (int i = 0; i < r->ro->n_steps; i++) {
		enum plan_worker w;
		struct deployment dep;

		if (plan_step_deployment(&r->ro->steps[i], &r->v, &cur, &w, &dep, err,
		                         sizeof(err)) != 0) {
			return -2;
		}
		plan_state_apply(&cur, w, &dep);
		if (plan_deployment_equal(&cur.server, &st->server) &&
		    plan_deployment_equal(&cur.middleware, &st->middleware)) {
			return i;
		}
	}
	return -2;
}

/* run_nothing_deployed: whether the last rollout of h never ended and
 * never reached production: no deploy intent after its last "start", and
 * its uploads never both finished (once they have, resume carries on with
 * the steps). An upload that may have happened made a version nobody is
 * routed to. */
static int
run_nothing_deployed(const struct run_history *h)
{
	int last_start = -1;

	if (!h->st.started || h->st.ended) {
		return 0;
	}
	for (int i = 0; i < h->log.n; i++) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(h->log.recs[i], "type");

		if (cJSON_IsString(t) && strcmp(t->valuestring, "start") == 0) {
			last_start = i;
		}
	}
	for (int i = last_start + 1; i < h->log.n; i++) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(h->log.recs[i], "type");
		const cJSON *op = cJSON_GetObjectItemCaseSensitive(h->log.recs[i], "op");

		if (cJSON_IsString(t) && strcmp(t->valuestring, "intent") == 0 &&
		    cJSON_IsString(op) && strcmp(op->valuestring, "deploy") == 0) {
			return 0;
		}
	}
	return !h->have_versions || h->v.s1[0] == '\0' || h->v.m1[0] == '\0' ||
	       strcmp(h->v.s1, RUN_VERSION_NONE_S1) == 0 ||
	       strcmp(h->v.m1, RUN_VERSION_NONE_M1) == 0;
}

int
run_resume(struct run_env *env)
{
	struct run r;
	struct run_history h;
	struct plan_state st;
	char err[CANARY_ERRLEN], name[PLAN_STEP_NAME_LEN];
	int code, k;

	run_init(&r, env);
	if (run_history_read(r.ro->state_dir, &h, err, sizeof(err)) == 0 &&
	    run_nothing_deployed(&h)) {
		/* Nothing to carry on from and nothing to undo: say so, and close
		 * the rollout in the journal so that `run` may start it again. */
		printf(
		    "rollout %s stopped before anything reached production: the journal records "
		    "no deployment, so production is as it was (an upload that may have happened "
		    "serves no traffic). Nothing to resume: start it again with "
		    "`canary-controller run -f %s` (exit %d: nothing changed)\n",
		    h.st.rollout, r.ro->path, RUN_EXIT_REFUSED);
		run_history_free(&h);
		return run_end(&r, run_refuse(&r, "resume",
		                              "stopped before anything reached production; "
		                              "nothing changed"));
	}
	run_history_free(&h);
	if ((code = run_load_history(&r, &h)) != 0) {
		run_history_free(&h);
		return code;
	}
	if (h.st.ended) {
		printf("rollout %s ended: %s (exit code %d)\n", h.st.rollout, h.st.outcome,
		       h.st.exit_code);
		code = h.st.exit_code >= 0 ? h.st.exit_code : RUN_EXIT_USAGE;
		run_history_free(&h);
		return code;
	}
	canary_logf(CANARY_LOG_INFO, "resume", "rollout %s: last step %s%s%s", h.st.rollout,
	            h.st.last_step[0] ? h.st.last_step : "(none)",
	            h.st.rolling_back ? ", rolling back" : "",
	            h.st.pending != NULL ? ", a platform call may or may not have happened" : "");
	run_journal_kv(&r, "resume", "last_step", h.st.last_step, NULL);
	if (h.st.rolling_back) {
		run_history_free(&h);
		return run_end(&r, run_do_rollback(&r, "resuming an interrupted rollback"));
	}
	run_restore_baseline(&r, h.baseline);
	if (run_read_state(&r, &st, err, sizeof(err)) != 0) {
		run_history_free(&h);
		return run_end(&r, run_do_rollback(&r, err));
	}
	r.applied = st;
	k = run_matching_step(&r, &st);
	if (k == -2 || r.v.s1[0] == '\0' || r.v.m1[0] == '\0' ||
	    strcmp(r.v.s1, RUN_VERSION_NONE_S1) == 0 || strcmp(r.v.m1, RUN_VERSION_NONE_M1) == 0) {
		run_history_free(&h);
		return run_end(&r,
		               run_do_rollback(&r, k == -2 ? "the platform holds a state the plan "
		                                             "never reaches"
		                                           : "the uploads never finished"));
	}
	run_history_free(&h);
	if (run_wait_quorum(&r, err, sizeof(err)) != 0) {
		return run_end(&r, run_do_rollback(&r, err));
	}
	if (k >= 0) {
		/* The step the platform shows applied is baked again from the
		 * start: the journal cannot say its bake finished healthy. */
		const struct plan_step *step = &r.ro->steps[k];
		struct canary_expect exp;
		struct canary_override ov;
		struct gate_step gs;
		int bake_s = step->bake_s >= 0 ? step->bake_s : r.ro->bake_s;

		memset(&gs, 0, sizeof(gs));
		r.step_index = k;
		plan_step_name(step, name, sizeof(name));
		if (run_expect(&r, step, &exp, &ov) != 0 ||
		    (step->kind != PLAN_STEP_SERVER_0 &&
		     run_converge(&r, name, CANARY_PHASE_CONVERGE, &exp, &ov,
		                  r.ro->converge_timeout_s, 1, &gs, err, sizeof(err)) != 0) ||
		    run_bake(&r, name, &exp, &ov, bake_s, &gs, err, sizeof(err)) != 0) {
			return run_end(&r, run_do_rollback(&r, err));
		}
		run_journal_step(&r, name, "baked");
	}
	if ((code = run_steps(&r, k + 1)) >= 0) {
		return run_end(&r, code);
	}
	canary_logf(CANARY_LOG_INFO, "promoted", "middleware %s + server %s", r.v.m1, r.v.s1);
	return run_end(&r, RUN_EXIT_PROMOTED);
}

int
run_rollback(struct run_env *env)
{
	struct run r;
	struct run_history h;
	int code;

	run_init(&r, env);
	if ((code = run_load_history(&r, &h)) != 0) {
		run_history_free(&h);
		return code;
	}
	run_history_free(&h);
	/* A new entry in the journal: the rollout it rolls back may have
	 * ended already. */
	run_journal_kv(&r, "start", "rollout", env->ro->name, "file", env->ro->path, "command",
	               "rollback", NULL);
	run_journal_versions(&r);
	code = run_do_rollback(&r, "rollback by hand");
	if (code == RUN_EXIT_ROLLED_BACK && r.moves == 0) {
		code = RUN_EXIT_PROMOTED;
	}
	return run_end(&r, code);
}

int
run_check(struct run_env *env)
{
	struct run r;
	struct run_history h;
	struct plan_state st;
	struct canary_expect exp;
	struct gate_round *g = NULL;
	struct gate_verdict vd;
	char err[CANARY_ERRLEN];
	int rv;

	memset(&h, 0, sizeof(h));
	run_init(&r, env);
	if ((rv = run_read_state(&r, &st, err, sizeof(err))) != 0) {
		fprintf(stderr, "canary-controller: check: %s\n", err);
		return 1;
	}
	if (run_single(&st.server) && run_single(&st.middleware)) {
		snprintf(r.v.s0, sizeof(r.v.s0), "%s", st.server.versions[0].version_id);
		snprintf(r.v.m0, sizeof(r.v.m0), "%s", st.middleware.versions[0].version_id);
		snprintf(r.v.pin_m0, sizeof(r.v.pin_m0), "%s", r.v.s0);
	} else if (run_history_read(r.ro->state_dir, &h, err, sizeof(err)) == 0 &&
	           h.have_versions) {
		/* A split: the pins are known only for this rollout's versions. */
		r.v = h.v;
	}
	if (r.v.s0[0] == '\0' || r.v.m0[0] == '\0') {
		run_history_free(&h);
		fprintf(stderr,
		        "canary-controller: check: the platform holds a split and the journal "
		        "does not say which middleware pins which server\n");
		return 1;
	}
	run_history_free(&h);
	if ((rv = plan_expect_state(&st, &r.v, &exp, err, sizeof(err))) != 0 ||
	    (rv = run_quorum_round(&r, CANARY_PHASE_CHECK, &exp, &g, err, sizeof(err))) != 0) {
		fprintf(stderr, "canary-controller: check: %s\n", err);
		return 1;
	}
	gate_judge(g, NULL, &r.ro->gates, &vd);
	gate_round_free(g);
	run_log_verdict(&r, "check", CANARY_PHASE_CHECK, &vd);
	return vd.result == GATE_PASS ? 0 : 1;
}

static void
run_status_json(const struct run_history *h, FILE *out)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *applied = cJSON_AddObjectToObject(o, "applied");
	char *text;

	cJSON_AddStringToObject(o, "rollout", h->st.rollout);
	cJSON_AddNumberToObject(o, "records", h->st.n_records);
	cJSON_AddStringToObject(o, "last_step", h->st.last_step);
	cJSON_AddBoolToObject(o, "rolling_back", h->st.rolling_back);
	cJSON_AddBoolToObject(o, "ended", h->st.ended);
	if (h->st.ended) {
		cJSON_AddStringToObject(o, "outcome", h->st.outcome);
		cJSON_AddNumberToObject(o, "exit_code", h->st.exit_code);
	}
	if (h->st.pending != NULL) {
		cJSON_AddStringToObject(o, "pending_op", h->st.pending_op);
		cJSON_AddStringToObject(o, "pending_worker", h->st.pending_worker);
	}
	if (h->have_versions) {
		cJSON *v = cJSON_AddObjectToObject(o, "versions");

		cJSON_AddStringToObject(v, "s0", h->v.s0);
		cJSON_AddStringToObject(v, "m0", h->v.m0);
		cJSON_AddStringToObject(v, "s1", h->v.s1);
		cJSON_AddStringToObject(v, "m1", h->v.m1);
	}
	for (int i = 0; i < h->st.n_applied; i++) {
		cJSON_AddItemToObject(applied, h->st.applied[i].worker,
		                      deployer_deployment_json(&h->st.applied[i].dep));
	}
	text = cJSON_PrintUnformatted(o);
	if (text != NULL) {
		fprintf(out, "%s\n", text);
	}
	free(text);
	cJSON_Delete(o);
}

int
run_status(const struct rollout *ro, int json, FILE *out)
{
	struct run_history h;
	char err[CANARY_ERRLEN], buf[128];
	int rv = run_history_read(ro->state_dir, &h, err, sizeof(err));

	if (rv != 0) {
		fprintf(stderr, "canary-controller: status: %s\n", err);
		run_history_free(&h);
		return 1;
	}
	if (json) {
		run_status_json(&h, out);
		run_history_free(&h);
		return 0;
	}
	fprintf(out, "rollout:     %s (%d journal records%s)\n",
	        h.st.rollout[0] ? h.st.rollout : "(none)", h.st.n_records,
	        h.log.torn ? ", torn last line ignored" : "");
	if (h.have_versions) {
		fprintf(out, "production:  middleware %s + server %s\n", h.v.m0, h.v.s0);
		fprintf(out, "new:         middleware %s + server %s\n", h.v.m1, h.v.s1);
	}
	fprintf(out, "last step:   %s\n", h.st.last_step[0] ? h.st.last_step : "(none)");
	for (int i = 0; i < h.st.n_applied; i++) {
		fprintf(out, "applied:     %s %s\n", h.st.applied[i].worker,
		        plan_deployment_format(&h.st.applied[i].dep, buf, sizeof(buf)));
	}
	if (h.st.pending != NULL) {
		fprintf(out,
		        "in flight:   %s on %s (may or may not have happened; resume reads the "
		        "platform)\n",
		        h.st.pending_op, h.st.pending_worker);
	}
	if (h.st.ended) {
		fprintf(out, "outcome:     %s (exit code %d)\n", h.st.outcome, h.st.exit_code);
	} else if (h.st.rolling_back) {
		fprintf(out, "state:       rolling back (interrupted? `resume` finishes it)\n");
	} else {
		fprintf(out, "state:       in progress or interrupted (`resume` continues it)\n");
	}
	run_history_free(&h);
	return 0;
}
