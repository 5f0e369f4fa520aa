/*
 * survey.c: the surveyor side of probe rounds.
 *
 * The socket is nng's surveyor0 in raw mode: the module numbers the surveys
 * itself (the 32-bit survey id nng would put in the header, high bit set)
 * and keeps the deadline on the loop with a timer. Why not the cooked
 * socket: it only queues replies that arrive while no receive is waiting in
 * a queue of 128 that cannot be resized, and receives can only be armed
 * after the survey is sent; at 1,000 agents on loopback, 3-10% of the
 * replies of a round were dropped before they could be armed. The raw
 * socket queues replies in its receive buffer (NNG_OPT_RECVBUF, set to
 * SURVEY_RECVBUF) with back-pressure instead of loss.
 *
 * Flow: one receive aio is always armed. recv_done (nng thread) hands each
 * reply, header and all, to the loop through the evq and re-arms; on an
 * error (the socket closed) it stops. on_msg (loop thread) drops a reply
 * whose survey id is not the round's (late, counted), decodes the rest
 * strictly, and ends the round once every agent counted at send time has
 * answered; the deadline timer ends it otherwise.
 */
#include "survey.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/protocol/survey0/survey.h>

#include "log.h"

enum survey_state { SURVEY_IDLE = 0, SURVEY_RUNNING };

/* nng's survey ids have the high bit set (a hop of the backtrace ends with
 * it). */
#define SURVEY_ID_BIT 0x80000000u

struct survey {
	struct event_base *base;
	nng_socket sock;
	int sock_open;
	nng_aio *aio; /* the receive, always armed until the socket closes */
	struct canary_evq *evq;
	atomic_int agents; /* pipes open; written on nng threads */
	uint32_t next_id;  /* survey ids, loop thread */

	/* The round in progress; touched on the loop thread only. */
	enum survey_state state;
	uint32_t id; /* the survey id of the round */
	char rollout_id[CANARY_ID_LEN];
	survey_cb cb;
	void *cb_arg;
	struct canary_report *reports; /* growing array, at most SURVEY_MAX_REPORTS */
	int n_reports, cap_reports;
	struct survey_stats stats;
	struct timespec started;
	struct event *deadline; /* ends the round */
	uint64_t evq_dropped;   /* the evq's drop count when the round began */
	uint32_t *seen;         /* pipe ids that replied this round */
	int n_seen, cap_seen;
	uint64_t late;
};

static int64_t
survey_elapsed_us(const struct timespec *from)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - from->tv_sec) * 1000000 +
	       (now.tv_nsec - from->tv_nsec) / 1000;
}

/* Runs on an nng thread for every pipe that comes or goes. */
static void
survey_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct survey *s = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_fetch_add(&s->agents, 1);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		atomic_fetch_sub(&s->agents, 1);
	}
}

/* nng thread: one receive finished. */
static void
survey_recv_done(void *arg)
{
	struct survey *s = arg;
	nng_msg *msg;

	if (nng_aio_result(s->aio) != 0) {
		return; /* closed: survey_free is stopping us */
	}
	msg = nng_aio_get_msg(s->aio);
	nng_aio_set_msg(s->aio, NULL);
	canary_evq_push(s->evq, msg);
	nng_recv_aio(s->sock, s->aio);
}

static void
survey_clear_reports(struct survey *s)
{
	for (int i = 0; i < s->n_reports; i++) {
		canary_report_free(&s->reports[i]);
	}
	free(s->reports);
	s->reports = NULL;
	s->n_reports = 0;
	s->cap_reports = 0;
}

/* Ends the round in progress and runs its callback. */
static void
survey_finish(struct survey *s, int rv, int timed_out, const char *why)
{
	struct survey_result res;
	survey_cb cb = s->cb;
	void *arg = s->cb_arg;

	memset(&res, 0, sizeof(res));
	res.rv = rv;
	if (why != NULL) {
		snprintf(res.err, sizeof(res.err), "%s", why);
	}
	s->stats.timed_out = timed_out;
	s->stats.elapsed_us = survey_elapsed_us(&s->started);
	/* Replies the evq had no room for are lost before we see them: count
	 * them, so a flooded round is visible. */
	s->stats.dropped += (int)(canary_evq_dropped(s->evq) - s->evq_dropped);
	s->stats.received = s->n_reports;
	res.stats = s->stats;
	res.reports = s->reports;
	res.n_reports = s->n_reports;
	/* Idle before the callback, so it may start the next round. */
	s->state = SURVEY_IDLE;
	event_del(s->deadline);
	s->cb = NULL;
	s->reports = NULL;
	s->n_reports = 0;
	s->cap_reports = 0;
	cb(&res, arg);
	for (int i = 0; i < res.n_reports; i++) {
		canary_report_free(&res.reports[i]);
	}
	free(res.reports);
}

static void
survey_log_reject(const struct survey *s, const char *what, const char *reason)
{
	struct canary_log_line *l = canary_log_begin(CANARY_LOG_WARN, "report_rejected");

	canary_log_u64(l, "round", s->stats.round);
	canary_log_str(l, "why", what);
	canary_log_str(l, "detail", reason);
	canary_log_end(l);
}

/* survey_seen_pipe: whether pipe already replied this round; records it if
 * not. A linear scan: a round has at most SURVEY_MAX_REPORTS pipes to
 * remember, and at 1,000 agents the scans cost well under a millisecond. */
static int
survey_seen_pipe(struct survey *s, uint32_t pipe)
{
	for (int i = 0; i < s->n_seen; i++) {
		if (s->seen[i] == pipe) {
			return 1;
		}
	}
	if (s->n_seen == s->cap_seen) {
		int ncap = s->cap_seen ? s->cap_seen * 2 : 64;
		uint32_t *n;

		if (s->cap_seen >= SURVEY_MAX_REPORTS) {
			return 0; /* past the cap, replies are dropped as over it anyway */
		}
		n = realloc(s->seen, (size_t)ncap * sizeof(*n));
		if (n == NULL) {
			return 0;
		}
		s->seen = n;
		s->cap_seen = ncap;
	}
	s->seen[s->n_seen++] = pipe;
	return 0;
}

/* Loop thread: one reply from the evq. Takes msg. */
static void
survey_on_msg(nng_msg *msg, void *arg)
{
	struct survey *s = arg;
	struct canary_report r;
	char err[CANARY_ERRLEN];
	uint32_t id = 0;
	int rv;

	/* The header is the backtrace: the survey id, last. A direct peer
	 * adds nothing before it. */
	if (nng_msg_header_len(msg) != sizeof(uint32_t) || nng_msg_header_trim_u32(msg, &id) != 0 ||
	    s->state != SURVEY_RUNNING || id != s->id) {
		s->late++;
		nng_msg_free(msg);
		return;
	}
	/* An agent answers a survey once. A second reply over the same
	 * connection would count twice toward the early end of the round. */
	if (survey_seen_pipe(s, nng_pipe_id(nng_msg_get_pipe(msg)))) {
		s->stats.duplicates++;
		survey_log_reject(s, "duplicate", "a second reply over one connection");
		nng_msg_free(msg);
		return;
	}
	rv = canary_report_decode(nng_msg_body(msg), nng_msg_len(msg), &r, err, sizeof(err));
	nng_msg_free(msg);
	if (rv == CANARY_ETOOBIG) {
		s->stats.oversized++;
		survey_log_reject(s, "oversized", err);
	} else if (rv != 0) {
		s->stats.malformed++;
		survey_log_reject(s, "malformed", err);
	} else if (r.round != s->stats.round || strcmp(r.rollout_id, s->rollout_id) != 0) {
		s->stats.wrong_round++;
		snprintf(err, sizeof(err), "agent %s region %s: rollout %s round %llu", r.agent_id,
		         r.region, r.rollout_id, (unsigned long long)r.round);
		survey_log_reject(s, "wrong_round", err);
		canary_report_free(&r);
	} else if (s->n_reports >= SURVEY_MAX_REPORTS) {
		s->stats.dropped++;
		canary_report_free(&r);
	} else {
		if (s->n_reports == s->cap_reports) {
			int ncap = s->cap_reports ? s->cap_reports * 2 : 16;
			struct canary_report *n;

			if (ncap > SURVEY_MAX_REPORTS) {
				ncap = SURVEY_MAX_REPORTS;
			}
			n = realloc(s->reports, (size_t)ncap * sizeof(*n));
			if (n == NULL) {
				s->stats.dropped++;
				canary_report_free(&r);
				return;
			}
			s->reports = n;
			s->cap_reports = ncap;
		}
		s->reports[s->n_reports++] = r; /* the array takes r's targets */
	}
	/* Every agent counted at send time has spoken (valid or not): the
	 * round is over, no need to wait for the deadline. */
	if (s->state == SURVEY_RUNNING && s->n_reports + s->stats.malformed + s->stats.oversized +
	                                          s->stats.wrong_round + s->stats.dropped >=
	                                      s->stats.agents) {
		survey_finish(s, 0, 0, NULL);
	}
}

/* Loop thread: the round's deadline. */
static void
survey_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct survey *s = arg;

	(void)fd;
	(void)what;
	if (s->state == SURVEY_RUNNING) {
		survey_finish(s, 0, 1, NULL);
	}
}

int
survey_new(struct event_base *base, const struct survey_config *cfg, struct survey **sp, char *err,
           size_t errlen)
{
	struct survey *s = NULL;
	int rv;

	*sp = NULL;
	if (cfg->n_listen < 0 || cfg->n_dial < 0 || cfg->n_listen + cfg->n_dial == 0 ||
	    cfg->n_listen + cfg->n_dial > SURVEY_MAX_URLS) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "agents: expected 1..%d listen or dial urls, got %d",
		                   SURVEY_MAX_URLS, cfg->n_listen + cfg->n_dial);
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "survey: out of memory");
		goto out;
	}
	s->base = base;
	atomic_init(&s->agents, 0);
	s->next_id = (uint32_t)time(NULL);
	if ((rv = canary_evq_new(base, survey_on_msg, s, &s->evq)) != 0) {
		canary_errf(err, errlen, rv, "survey: event queue: %s", canary_strerror(rv));
		goto out;
	}
	s->deadline = evtimer_new(base, survey_on_deadline, s);
	if (s->deadline == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "survey: timer: out of memory");
		goto out;
	}
	if ((rv = nng_aio_alloc(&s->aio, survey_recv_done, s)) != 0) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "survey: nng aio: %s",
		                 nng_strerror(rv));
		goto out;
	}
	if ((rv = nng_surveyor0_open_raw(&s->sock)) != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "survey: surveyor socket: %s",
		                 nng_strerror(rv));
		goto out;
	}
	s->sock_open = 1;
	if ((rv = nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, SURVEY_RECVBUF)) != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "survey: receive buffer: %s",
		                 nng_strerror(rv));
		goto out;
	}
	if ((rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, survey_pipe_cb, s)) != 0 ||
	    (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, survey_pipe_cb, s)) != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "survey: pipe notify: %s",
		                 nng_strerror(rv));
		goto out;
	}
	for (int i = 0; i < cfg->n_listen; i++) {
		if ((rv = canary_link_listen(s->sock, cfg->listen[i], cfg->insecure, &cfg->tls, err,
		                             errlen)) != 0) {
			goto out;
		}
	}
	for (int i = 0; i < cfg->n_dial; i++) {
		if ((rv = canary_link_dial(s->sock, cfg->dial[i], cfg->insecure, &cfg->tls, err,
		                           errlen)) != 0) {
			goto out;
		}
	}
	nng_recv_aio(s->sock, s->aio);
	*sp = s;
	s = NULL;
	rv = 0;
out:
	survey_free(s);
	return rv;
}

int
survey_agents(const struct survey *s)
{
	int n = atomic_load(&((struct survey *)s)->agents);

	return n < 0 ? 0 : n;
}

uint64_t
survey_late(const struct survey *s)
{
	return s->late;
}

int
survey_round(struct survey *s, const struct canary_probe *probe, survey_cb cb, void *arg, char *err,
             size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	nng_msg *msg = NULL;
	int rv;

	if (s->state != SURVEY_IDLE) {
		return canary_errf(err, errlen, CANARY_ESTATE, "survey: round %llu still running",
		                   (unsigned long long)s->stats.round);
	}
	if (probe->deadline_ms == 0 || probe->deadline_ms > SURVEY_MAX_DEADLINE) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "probe.deadline_ms: expected 1..%d, got %u", SURVEY_MAX_DEADLINE,
		                   probe->deadline_ms);
	}
	if ((rv = canary_probe_encode(probe, &text, &len, err, errlen)) != 0) {
		goto out;
	}
	s->next_id++;
	if ((rv = nng_msg_alloc(&msg, 0)) != 0 || (rv = nng_msg_append(msg, text, len)) != 0 ||
	    (rv = nng_msg_header_append_u32(msg, s->next_id | SURVEY_ID_BIT)) != 0) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "survey: message: %s",
		                 nng_strerror(rv));
		goto out;
	}
	memset(&s->stats, 0, sizeof(s->stats));
	s->n_seen = 0;
	s->evq_dropped = canary_evq_dropped(s->evq);
	s->stats.round = probe->round;
	s->stats.agents = survey_agents(s);
	snprintf(s->rollout_id, sizeof(s->rollout_id), "%s", probe->rollout_id);
	clock_gettime(CLOCK_MONOTONIC, &s->started);
	if ((rv = nng_sendmsg(s->sock, msg, 0)) != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "survey: send round %llu: %s",
		                 (unsigned long long)probe->round, nng_strerror(rv));
		goto out;
	}
	msg = NULL; /* nng owns it now */
	s->state = SURVEY_RUNNING;
	s->cb = cb;
	s->cb_arg = arg;
	s->id = s->next_id | SURVEY_ID_BIT;
	/* With no agent, the round still waits for its deadline: agents may be
	 * reconnecting. */
	{
		uint32_t ms = probe->deadline_ms + SURVEY_GRACE_MS;
		struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

		event_add(s->deadline, &tv);
	}
	rv = 0;
out:
	if (msg != NULL) {
		nng_msg_free(msg);
	}
	free(text);
	return rv;
}

void
survey_result_take(struct survey_result *res, struct canary_report **reportsp, int *np)
{
	*reportsp = res->reports;
	*np = res->n_reports;
	res->reports = NULL;
	res->n_reports = 0;
}

void
survey_free(struct survey *s)
{
	if (s == NULL) {
		return;
	}
	if (s->sock_open) {
		nng_close(s->sock);
	}
	if (s->aio != NULL) {
		nng_aio_stop(s->aio);
	}
	/* The socket is closed and the aio stopped: no producer is left. The
	 * round ends before the evq goes (survey_finish reads its count). */
	if (s->state == SURVEY_RUNNING) {
		survey_finish(s, CANARY_ECLOSED, 0, "survey: closed during the round");
	}
	canary_evq_free(s->evq);
	if (s->aio != NULL) {
		nng_aio_free(s->aio);
	}
	if (s->deadline != NULL) {
		event_free(s->deadline);
	}
	survey_clear_reports(s);
	free(s->seen);
	free(s);
}
