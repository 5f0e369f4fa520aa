/*
 * survey.h: probe rounds over an nng surveyor0 socket, on the controller's
 * libevent loop.
 *
 * One survey is one round: the controller encodes a canary_probe, sends it to
 * every connected agent, and collects the reports that arrive before the
 * round's deadline (the probe's deadline_ms plus SURVEY_GRACE_MS for the
 * trip back). A round also ends early once every agent that was connected
 * when it was sent has answered. Reports are decoded strictly; a malformed,
 * oversized or wrong-round report, or a second reply over one connection,
 * is counted and logged, never fatal. Answers to an earlier survey, or
 * after the deadline, are counted as late and dropped.
 *
 * The socket is nng's surveyor0 in raw mode: this module numbers the
 * surveys and keeps each round's deadline with a timer on the loop (see
 * survey.c for why not the cooked socket).
 *
 * Transport: the socket listens and/or dials through proto/link.h, mutual
 * TLS unless insecure is set.
 *
 * Threads: every function here is called on the loop thread of the
 * event_base given to survey_new, made after evthread_use_pthreads(). nng's
 * aio callbacks only hand messages to that loop through a canary_evq; the
 * round callback runs on the loop.
 */
#ifndef CANARY_SURVEY_H
#define CANARY_SURVEY_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "err.h"
#include "link.h"
#include "msg.h"

#define SURVEY_MAX_URLS     16    /* listen plus dial addresses */
#define SURVEY_MAX_REPORTS  10000 /* reports kept per round; more are counted as dropped */
#define SURVEY_RECVBUF      8192  /* replies nng queues for the loop (its maximum) */
#define SURVEY_GRACE_MS     500   /* added to the probe deadline for the trip back */
#define SURVEY_MAX_DEADLINE (10 * 60 * 1000)

struct survey_config {
	const char *const *listen; /* n_listen urls, may be NULL when n_listen is 0 */
	int n_listen;
	const char *const *dial;
	int n_dial;
	int insecure;                /* allow tcp:// and ipc:// */
	struct canary_tls_files tls; /* required for tls+tcp:// urls */
};

/* What happened in one round besides the reports. */
struct survey_stats {
	uint64_t round;
	int agents;      /* agents connected when the survey was sent */
	int received;    /* reports accepted into the result */
	int malformed;   /* rejected by the strict decoder (not JSON, wrong fields, bad protocol) */
	int oversized;   /* over CANARY_MSG_MAX_BYTES */
	int wrong_round; /* a report for another rollout id or round */
	int duplicates;  /* a second reply over one connection */
	int dropped;     /* over SURVEY_MAX_REPORTS, or no room in the queue to the loop */
	int timed_out;   /* 1: ended at the deadline; 0: every agent answered first */
	int64_t elapsed_us; /* from send to the end of the round */
};

/* A finished round. rv is 0, or the error that stopped the round
 * (CANARY_ECLOSED when the survey was freed during it). reports are owned by
 * the survey and valid only during the callback; a callback that keeps one
 * copies it or takes it with survey_result_take. */
struct survey_result {
	int rv;
	char err[CANARY_ERRLEN];
	struct canary_report *reports;
	int n_reports;
	struct survey_stats stats;
};

typedef void (*survey_cb)(struct survey_result *res, void *arg);

struct survey;

/* survey_new: opens the surveyor socket, starts its listeners and dialers
 * and hooks it to base. Returns 0 and *sp (free with survey_free), or a
 * canary error with the url and reason in err (a plain url without
 * insecure is CANARY_EDENIED; at least one url is required). */
int survey_new(struct event_base *base, const struct survey_config *cfg, struct survey **sp,
               char *err, size_t errlen);

/* survey_agents: the number of agents connected now (nng pipes open). */
int survey_agents(const struct survey *s);

/* survey_round: sends probe (validated by the encoder) and starts collecting
 * reports for probe->round. Returns 0 and cb runs later, exactly once, on
 * the loop thread (never from inside this call); or a canary error with err
 * filled and cb never runs (CANARY_ESTATE while another round runs,
 * CANARY_EINVAL for a probe the encoder refuses). */
int survey_round(struct survey *s, const struct canary_probe *probe, survey_cb cb, void *arg,
                 char *err, size_t errlen);

/* survey_late: reports that arrived after their round ended, since start. */
uint64_t survey_late(const struct survey *s);

/* survey_result_take: moves the reports out of res; the caller frees each
 * with canary_report_free and the array with free(). */
void survey_result_take(struct survey_result *res, struct canary_report **reportsp, int *np);

/* survey_free: closes the socket; a round in progress ends with its
 * callback run with CANARY_ECLOSED. Accepts NULL. */
void survey_free(struct survey *s);

#endif /* CANARY_SURVEY_H */
