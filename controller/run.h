/*
 * run.h: the rollout driver: preflight, uploads, steps with convergence and
 * bake, the skew-safe rollback, resume, the hand-run rollback and the smoke
 * check.
 *
 * The driver is straight-line code that waits for each asynchronous
 * operation (deployer call, probe round, timer) by pumping the libevent loop
 * until the operation's callback has run. It must therefore be called from
 * the top of the program, never from inside a loop callback, and it owns
 * the loop while it runs.
 *
 * Stopping: *env->stop is set by the program's SIGINT/SIGTERM handler (an
 * evsignal on the same loop, so the loop wakes). The driver checks it
 * between operations and answers with the skew-safe rollback. A rollback
 * itself is never stopped.
 *
 * Every platform call is journaled: an intent record before, a result
 * record after (env->journal).
 */
#ifndef CANARY_RUN_H
#define CANARY_RUN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/event.h>

#include "deployer.h"
#include "journal.h"
#include "plan.h"
#include "rollout.h"
#include "survey.h"

/* Exit codes of canary-controller (DESIGN.md "Exit codes"). */
enum run_exit {
	RUN_EXIT_PROMOTED = 0,        /* every step baked healthy */
	RUN_EXIT_USAGE = 1,           /* usage or config error; nothing changed */
	RUN_EXIT_REFUSED = 2,         /* refused by preflight; nothing changed */
	RUN_EXIT_ROLLED_BACK = 3,     /* rolled back, production verified on m0+s0 */
	RUN_EXIT_ROLLBACK_FAILED = 4, /* rollback failed or unverified: a person must act */
	RUN_EXIT_DRIFT = 5,           /* the platform changed under us: stopped, untouched */
};

/* Driver timings that are not in the rollout file. */
#define RUN_ROLLBACK_ATTEMPTS 6    /* deploy+verify attempts per rollback */
#define RUN_BACKOFF_MIN_MS    500  /* first retry delay; doubles */
#define RUN_BACKOFF_MAX_MS    8000 /* ceiling of the retry delay */
/* Preflight and check wait up to this many round timeouts for every region
 * to report with its min_agents, repeating the first round meanwhile. */
#define RUN_QUORUM_WAIT_FACTOR 2
#define RUN_QUORUM_PAUSE_MS    250 /* between agent counts, and between repeated rounds */
#define RUN_CONVERGE_PAUSE_MS  250 /* between convergence rounds */
#define RUN_DEPLOY_MESSAGE_LEN 256

/* What the driver works with; all owned by the caller. */
struct run_env {
	struct event_base *base;
	const struct rollout *ro;
	struct deployer *dep;
	struct survey *survey;       /* NULL for status */
	struct journal *journal;     /* open for append */
	volatile sig_atomic_t *stop; /* set by the signal handler */
};

/* run_rollout: a whole rollout from preflight to promotion or rollback.
 * Returns an enum run_exit. */
int run_rollout(struct run_env *env);

/* run_resume: continues the rollout the journal describes, from the
 * platform's real state: a rollout that ended prints its outcome and
 * returns its code; one stopped during a rollback finishes the rollback;
 * one stopped during the steps carries on from the step after the last one
 * the platform shows applied (re-checking drift). One stopped before
 * anything reached production (no deployment journaled, uploads not both
 * finished) has nothing to carry on from or undo: it says so on stdout,
 * journals the rollout as ended "refused", and returns RUN_EXIT_REFUSED
 * (2, nothing changed), so a pipeline knows production is untouched and
 * `run` may start the rollout again. Returns an enum run_exit. */
int run_resume(struct run_env *env);

/* run_rollback: the skew-safe rollback by hand, to the versions the journal
 * recorded as production, from whatever the platform holds. Returns
 * RUN_EXIT_ROLLED_BACK (or RUN_EXIT_PROMOTED when nothing had to move and
 * production verified), RUN_EXIT_ROLLBACK_FAILED, or RUN_EXIT_USAGE when the
 * journal holds no rollout. */
int run_rollback(struct run_env *env);

/* run_check: one probe round from every region against what serves now,
 * judged by the gates. Returns 0 (healthy) or 1. */
int run_check(struct run_env *env);

/* run_status: prints where the rollout stands from its journal (text, or
 * one JSON object with json set) to out. Returns 0, or 1 when there is no
 * journal. */
int run_status(const struct rollout *ro, int json, FILE *out);

#endif /* CANARY_RUN_H */
