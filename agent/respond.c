/*
 * respond.c: the respondent (see respond.h).
 *
 * Ownership: the respondent owns its nng socket and context, two aios (one
 * receive, one send), the event queue, and the round in progress.
 */
#include "respond.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nng/protocol/survey0/respond.h>

#include "err.h"
#include "log.h"
#include "msg.h"

struct agent_respond {
	struct event_base *base;
	struct agent_engine *engine;
	const struct agent_respond_opts *opts;
	nng_socket sock;
	int sock_open;
	nng_ctx ctx;
	nng_aio *raio;
	nng_aio *saio;
	struct canary_evq *q;
	struct agent_round *round; /* the survey being run, or NULL */
	uint64_t answered;
	int closing;
};

/* An id as msg.h has it: 1..CANARY_ID_LEN-1 bytes, no control characters. */
static int
respond_is_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CANARY_ID_LEN) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			return 0;
		}
	}
	return 1;
}

/* nng thread: a controller connected or left. Logging is thread-safe (one
 * write per line); nothing else is touched here. */
static void
respond_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	nng_sockaddr sa;
	char addr[64] = "?";
	struct canary_log_line *l;

	(void)arg;
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0) {
		if (sa.s_family == NNG_AF_INET) {
			const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;
			snprintf(addr, sizeof(addr), "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
			         (unsigned)ntohs(sa.s_in.sa_port));
		} else if (sa.s_family == NNG_AF_IPC) {
			snprintf(addr, sizeof(addr), "ipc");
		} else if (sa.s_family == NNG_AF_INET6) {
			snprintf(addr, sizeof(addr), "ipv6 port %u",
			         (unsigned)ntohs(sa.s_in6.sa_port));
		}
	}
	l = canary_log_begin(CANARY_LOG_INFO, ev == NNG_PIPE_EV_ADD_POST
	                                          ? "controller_connected"
	                                          : "controller_disconnected");
	canary_log_u64(l, "pipe", (uint64_t)nng_pipe_id(p)); /* pairs the two events */
	if (ev == NNG_PIPE_EV_ADD_POST) {
		canary_log_str(l, "peer", addr); /* gone by the time a pipe is removed */
	}
	canary_log_end(l);
}

/* nng thread: a survey arrived, or the receive failed. */
static void
respond_recv_cb(void *arg)
{
	struct agent_respond *r = arg;
	int rv = nng_aio_result(r->raio);

	if (rv == 0) {
		canary_evq_push(r->q, nng_aio_get_msg(r->raio));
		return;
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		return;
	}
	/* A transient failure: wait for the next survey. */
	nng_ctx_recv(r->ctx, r->raio);
}

/* nng thread: the reply went out (or could not: the surveyor left). Either
 * way the next survey is awaited. */
static void
respond_send_cb(void *arg)
{
	struct agent_respond *r = arg;
	int rv = nng_aio_result(r->saio);

	if (rv != 0) {
		/* Not sent: the message is still ours. */
		nng_msg *m = nng_aio_get_msg(r->saio);
		if (m != NULL) {
			nng_msg_free(m);
		}
	}
	nng_aio_set_msg(r->saio, NULL);
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		return;
	}
	nng_ctx_recv(r->ctx, r->raio);
}

int
agent_respond_encode(const char *agent_id, const char *region, struct canary_report *rep,
                     char **textp, size_t *lenp, int *replaced, char *err, size_t errlen)
{
	char why[CANARY_ERRLEN];
	int rv;

	*textp = NULL;
	*replaced = 0;
	rep->proto_version = CANARY_PROTO_VERSION;
	snprintf(rep->agent_id, sizeof(rep->agent_id), "%s", agent_id);
	snprintf(rep->region, sizeof(rep->region), "%s", region);
	rv = canary_report_encode(rep, textp, lenp, why, sizeof(why));
	if (rv == 0) {
		return 0;
	}
	/* Never silence: the controller hears why instead of a timeout. */
	*replaced = 1;
	free(rep->targets);
	rep->targets = NULL;
	rep->n_targets = 0;
	rep->partial = 0;
	snprintf(rep->error, sizeof(rep->error), "report could not be encoded: %.200s", why);
	rv = canary_report_encode(rep, textp, lenp, err, errlen);
	if (rv != 0 && rep->rollout_id[0] != '\0') {
		rep->rollout_id[0] = '\0'; /* "" is valid in an error report */
		rv = canary_report_encode(rep, textp, lenp, err, errlen);
	}
	return rv;
}

void
agent_respond_salvage(const char *buf, size_t len, uint64_t *round, char *rollout)
{
	cJSON *root = NULL;
	const cJSON *rd, *id;

	*round = 0;
	rollout[0] = '\0';
	if (len > CANARY_MSG_MAX_BYTES) {
		return;
	}
	root = cJSON_ParseWithLength(buf, len);
	if (!cJSON_IsObject(root)) {
		goto out;
	}
	rd = cJSON_GetObjectItemCaseSensitive(root, "round");
	id = cJSON_GetObjectItemCaseSensitive(root, "rollout_id");
	if (!cJSON_IsNumber(rd) || !cJSON_IsString(id) || rd->valuedouble < 0 ||
	    rd->valuedouble > (double)CANARY_MSG_INT_MAX ||
	    rd->valuedouble != (double)(uint64_t)rd->valuedouble ||
	    !respond_is_id(id->valuestring)) {
		goto out;
	}
	*round = (uint64_t)rd->valuedouble;
	snprintf(rollout, CANARY_ID_LEN, "%s", id->valuestring);
out:
	cJSON_Delete(root);
}

/* Sends rep (filled with the agent's id and region here, or replaced by an
 * error report when it does not encode) as the answer to the current
 * survey. On a failure to send the survey goes unanswered and the next one
 * is awaited. */
static void
respond_send(struct agent_respond *r, struct canary_report *rep)
{
	char err[CANARY_ERRLEN];
	char *text = NULL;
	size_t len = 0;
	nng_msg *m = NULL;
	int sent = 0;
	int replaced = 0;
	int rv;

	rv = agent_respond_encode(r->opts->agent_id, r->opts->region, rep, &text, &len, &replaced,
	                          err, sizeof(err));
	if (replaced) {
		canary_logf(CANARY_LOG_ERROR, "report_encode", "round %llu: %s",
		            (unsigned long long)rep->round, rep->error);
	}
	if (rv != 0) {
		canary_logf(CANARY_LOG_ERROR, "report_encode", "round %llu: %s",
		            (unsigned long long)rep->round, err);
		goto out;
	}
	rv = nng_msg_alloc(&m, 0);
	if (rv != 0 || nng_msg_append(m, text, len) != 0) {
		canary_logf(CANARY_LOG_ERROR, "report_send", "out of memory");
		goto out;
	}
	r->answered++;
	nng_aio_set_msg(r->saio, m);
	m = NULL; /* the send aio owns it; respond_send_cb frees it if unsent */
	nng_ctx_send(r->ctx, r->saio);
	sent = 1;
out:
	free(text);
	if (m != NULL) {
		nng_msg_free(m);
	}
	if (!sent) {
		nng_ctx_recv(r->ctx, r->raio); /* unanswered: wait for the next survey */
	}
}

static void
respond_send_error(struct agent_respond *r, uint64_t round, const char *rollout, const char *why)
{
	struct canary_report rep;

	memset(&rep, 0, sizeof(rep));
	rep.round = round;
	snprintf(rep.rollout_id, sizeof(rep.rollout_id), "%s", rollout);
	snprintf(rep.error, sizeof(rep.error), "%s", why);
	respond_send(r, &rep);
}

static void
respond_log_round(struct agent_respond *r, const struct canary_report *rep)
{
	struct canary_hist all;
	uint64_t sent = 0, errors = 0, hits = 0, stale = 0, miss = 0, viol = 0;
	struct canary_log_line *l;

	canary_hist_init(&all);
	for (int i = 0; i < rep->n_targets; i++) {
		const struct canary_target_report *t = &rep->targets[i];
		sent += t->sent;
		for (int c = 0; c < CANARY_ERRCLASS_COUNT; c++) {
			errors += t->errors[c];
		}
		hits += t->cache_hit;
		stale += t->cache_stale;
		miss += t->cache_miss;
		viol += t->affinity_violations + t->unknown_versions + t->override_violations +
		        t->key_violations;
		canary_hist_merge(&all, &t->latency);
	}
	l = canary_log_begin(CANARY_LOG_INFO, "round");
	canary_log_str(l, "region", r->opts->region);
	canary_log_str(l, "rollout", rep->rollout_id);
	canary_log_u64(l, "round", rep->round);
	canary_log_u64(l, "sent", sent);
	canary_log_u64(l, "errors", errors);
	canary_log_dbl(l, "p95_ms", (double)canary_hist_quantile(&all, 0.95) / 1000.0);
	canary_log_u64(l, "cache_hits", hits);
	canary_log_u64(l, "cache_stale", stale);
	canary_log_u64(l, "cache_misses", miss);
	canary_log_u64(l, "violations", viol);
	canary_log_u64(l, "partial", (uint64_t)rep->partial);
	canary_log_end(l);
}

static void
respond_round_done(struct agent_round *round, void *arg)
{
	struct agent_respond *r = arg;
	struct canary_report *rep = agent_round_report(round);

	respond_log_round(r, rep);
	respond_send(r, rep);
	r->round = NULL;
	agent_round_free(round);
}

/* The time kept free before the deadline to encode and send the report. */
static uint32_t
respond_budget(uint32_t deadline_ms)
{
	uint32_t margin = deadline_ms / AGENT_REPLY_MARGIN_DIV;

	if (margin < AGENT_REPLY_MARGIN_MIN_MS) {
		margin = AGENT_REPLY_MARGIN_MIN_MS;
	}
	if (margin > AGENT_REPLY_MARGIN_MAX_MS) {
		margin = AGENT_REPLY_MARGIN_MAX_MS;
	}
	return deadline_ms > margin ? deadline_ms - margin : 1;
}

/* Loop thread: one survey. */
static void
respond_on_msg(nng_msg *msg, void *arg)
{
	struct agent_respond *r = arg;
	struct canary_probe p;
	char err[CANARY_ERRLEN];
	char why[CANARY_SAMPLE_LEN];
	int rv;

	if (r->closing) {
		nng_msg_free(msg);
		return;
	}
	rv = canary_probe_decode(nng_msg_body(msg), nng_msg_len(msg), &p, err, sizeof(err));
	if (rv != 0) {
		uint64_t round = 0;
		char rollout[CANARY_ID_LEN];

		agent_respond_salvage(nng_msg_body(msg), nng_msg_len(msg), &round, rollout);
		nng_msg_free(msg);
		canary_logf(CANARY_LOG_WARN, "survey_rejected", "round %llu: %s",
		            (unsigned long long)round, err);
		snprintf(why, sizeof(why), "survey rejected: %.200s", err);
		respond_send_error(r, round, rollout, why);
		return;
	}
	nng_msg_free(msg);
	rv = agent_round_start(r->engine, r->base, &p, respond_budget(p.deadline_ms),
	                       &r->opts->round, respond_round_done, r, &r->round, err, sizeof(err));
	if (rv != 0) {
		canary_logf(CANARY_LOG_WARN, "survey_refused", "round %llu: %s",
		            (unsigned long long)p.round, err);
		snprintf(why, sizeof(why), "survey refused: %.200s", err);
		respond_send_error(r, p.round, p.rollout_id, why);
	}
	canary_probe_free(&p);
}

int
agent_respond_new(struct event_base *base, struct agent_engine *e,
                  const struct agent_respond_opts *o, struct agent_respond **rp, char *err,
                  size_t errlen)
{
	struct agent_respond *r;
	const struct canary_tls_files *tls = o->tls.cert != NULL ? &o->tls : NULL;
	int rv = 0;
	int nrv;

	*rp = NULL;
	/* Every report carries both: an agent that could not send them must
	 * not start and then fail every survey. */
	if (o->agent_id == NULL || !respond_is_id(o->agent_id)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "respondent: agent id: expected 1..%d characters, no control "
		                   "characters",
		                   CANARY_ID_LEN - 1);
	}
	if (o->region == NULL || !respond_is_id(o->region)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "respondent: region: expected 1..%d characters, no control "
		                   "characters",
		                   CANARY_ID_LEN - 1);
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "respondent: out of memory");
	}
	r->base = base;
	r->engine = e;
	r->opts = o;
	rv = canary_evq_new(base, respond_on_msg, r, &r->q);
	if (rv != 0) {
		rv = canary_errf(err, errlen, rv, "respondent: event queue: %s",
		                 canary_strerror(rv));
		goto out;
	}
	nrv = nng_respondent0_open(&r->sock);
	if (nrv != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "respondent socket: %s",
		                 nng_strerror(nrv));
		goto out;
	}
	r->sock_open = 1;
	nrv = nng_ctx_open(&r->ctx, r->sock);
	if (nrv == 0) {
		nrv = nng_aio_alloc(&r->raio, respond_recv_cb, r);
	}
	if (nrv == 0) {
		nrv = nng_aio_alloc(&r->saio, respond_send_cb, r);
	}
	if (nrv != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "respondent: %s", nng_strerror(nrv));
		goto out;
	}
	if (nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_POST, respond_pipe_cb, r) != 0 ||
	    nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, respond_pipe_cb, r) != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "respondent: pipe notifications refused");
		goto out;
	}
	for (int i = 0; i < o->n_listen; i++) {
		rv = canary_link_listen(r->sock, o->listen[i], o->insecure, tls, err, errlen);
		if (rv != 0) {
			goto out;
		}
	}
	for (int i = 0; i < o->n_dial; i++) {
		rv = canary_link_dial(r->sock, o->dial[i], o->insecure, tls, err, errlen);
		if (rv != 0) {
			goto out;
		}
	}
	nng_ctx_recv(r->ctx, r->raio);
	*rp = r;
	r = NULL;
out:
	agent_respond_free(r);
	return rv;
}

uint64_t
agent_respond_rounds(const struct agent_respond *r)
{
	return r->answered;
}

void
agent_respond_free(struct agent_respond *r)
{
	if (r == NULL) {
		return;
	}
	r->closing = 1;
	if (r->sock_open) {
		nng_close(r->sock); /* aborts both aios; their callbacks see ECLOSED */
	}
	/* The send callback arms the next receive on raio: wait for it to
	 * finish before raio is stopped and freed, or a reply completing just
	 * now would hand a freed raio to nng. */
	if (r->saio != NULL) {
		nng_aio_stop(r->saio); /* its callback freed an unsent reply */
	}
	if (r->raio != NULL) {
		nng_aio_stop(r->raio);
	}
	if (r->saio != NULL) {
		nng_aio_free(r->saio);
	}
	if (r->raio != NULL) {
		nng_aio_free(r->raio);
	}
	agent_round_free(r->round);
	canary_evq_free(r->q);
	free(r);
}
