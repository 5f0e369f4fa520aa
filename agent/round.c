/*
 * round.c: one probe round (see round.h).
 *
 * Ownership: the round owns a copy of the probe's targets, one parsed URL
 * and a small set of header lists per target, and the report it fills.
 */
#include "round.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct round_target {
	const struct canary_target *t; /* in round->targets */
	CURLU *url;
	/* hdrs[o][k]: request headers with (o) or without the override and
	 * with version key k-1 (k == 0: no key). NULL when empty. */
	struct curl_slist **hdrs[2];
	uint32_t issued;
	int warm; /* isr: the warming request is done; until then nothing else is sent */
	struct agent_check_keys keys;
};

struct agent_round {
	struct agent_engine *engine;
	struct event_base *base;
	struct canary_probe probe; /* targets: owned copy */
	struct round_target *rt;
	uint32_t total, finished;
	int cursor;
	int key_count; /* version keys in use */
	unsigned verdicts;
	struct agent_round_opts opts;
	struct canary_report report;
	struct event *deadline;
	struct event *finish; /* fired (active) to end the round outside engine callbacks */
	int ended;
	int running; /* the engine is working for this round */
	agent_round_done_fn done;
	void *arg;
};

static void
round_free_targets(struct agent_round *r)
{
	if (r->rt == NULL) {
		return;
	}
	for (int i = 0; i < r->probe.n_targets; i++) {
		struct round_target *t = &r->rt[i];
		curl_url_cleanup(t->url);
		for (int o = 0; o < 2; o++) {
			if (t->hdrs[o] == NULL) {
				continue;
			}
			for (int k = 0; k <= r->key_count; k++) {
				curl_slist_free_all(t->hdrs[o][k]);
			}
			free(t->hdrs[o]);
		}
	}
	free(r->rt);
	r->rt = NULL;
}

/* Parses t's URL into *up (the caller frees it with curl_url_cleanup);
 * 0, or a canary error naming targets[i].url. Only http and https pass. */
static int
round_parse_url(const struct canary_target *t, int i, CURLU **up, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL;
	int rv = 0;

	*up = NULL;
	if (u == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "targets[%d].url: out of memory", i);
	}
	if (curl_url_set(u, CURLUPART_URL, t->url, 0) != CURLUE_OK) {
		rv = canary_errf(
		    err, errlen, CANARY_EINVAL,
		    "targets[%d].url: expected an http:// or https:// URL, got \"%.200s\"", i,
		    t->url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		rv = canary_errf(err, errlen, CANARY_EDENIED,
		                 "targets[%d].url: only http and https are probed, got \"%.200s\"",
		                 i, t->url);
		goto out;
	}
	*up = u;
	u = NULL;
out:
	curl_free(scheme);
	curl_url_cleanup(u);
	return rv;
}

static int
round_check_target(const struct canary_target *t, int i, const struct agent_round_opts *o,
                   char *err, size_t errlen)
{
	CURLU *u = NULL;
	char *host = NULL;
	int rv;

	if (strcmp(t->method, "GET") != 0 && strcmp(t->method, "HEAD") != 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "targets[%d].method: expected GET or HEAD, got \"%.8s\"", i,
		                   t->method);
	}
	if (t->timeout_ms == 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "targets[%d].timeout_ms: expected > 0", i);
	}
	rv = round_parse_url(t, i, &u, err, errlen);
	if (rv != 0) {
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		rv = canary_errf(err, errlen, CANARY_EINVAL,
		                 "targets[%d].url: no host in \"%.200s\"", i, t->url);
		goto out;
	}
	if (o->allow != NULL) {
		/* The allowlist takes IPv6 literals in brackets too. A host
		 * longer than any entry is matched whole (never cut to fit, which
		 * could make it equal an entry it is not): it matches nothing. */
		if (!agent_allow_match(o->allow, host)) {
			rv = canary_errf(
			    err, errlen, CANARY_EDENIED,
			    "targets[%d].url: host %.200s is not on this agent's allowlist", i,
			    host);
			goto out;
		}
	}
out:
	curl_free(host);
	curl_url_cleanup(u);
	return rv;
}

int
agent_round_check(const struct canary_probe *p, const struct agent_round_opts *o, char *err,
                  size_t errlen)
{
	uint64_t total = 0;
	int rv;

	if (p->n_targets < 1 || p->n_targets > CANARY_MAX_TARGETS || p->targets == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "targets: expected 1..%d, got %d",
		                   CANARY_MAX_TARGETS, p->n_targets);
	}
	if (o->allow != NULL && o->follow) {
		return canary_errf(
		    err, errlen, CANARY_EDENIED,
		    "round: redirects cannot be followed under an allowlist (a Location "
		    "is not checked against it)");
	}
	if (p->version_keys > CANARY_MAX_VERSION_KEYS) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "version_keys: expected 0..%d, got %u", CANARY_MAX_VERSION_KEYS,
		                   p->version_keys);
	}
	for (int i = 0; i < p->n_targets; i++) {
		rv = round_check_target(&p->targets[i], i, o, err, errlen);
		if (rv != 0) {
			return rv;
		}
		total += p->targets[i].requests;
	}
	if (total > o->max_requests) {
		return canary_errf(
		    err, errlen, CANARY_EDENIED,
		    "targets: %llu requests in all, over this agent's cap of %u per round",
		    (unsigned long long)total, o->max_requests);
	}
	return 0;
}

/* The header lists of one target: override on/off times each key. */
static int
round_build_headers(struct agent_round *r, struct round_target *t)
{
	char line[CANARY_ID_LEN + CANARY_UUID_LEN + 64];
	const struct canary_override *ov = &r->probe.override;

	for (int o = 0; o < 2; o++) {
		if (o == 1 && !ov->enabled) {
			break;
		}
		t->hdrs[o] = calloc((size_t)r->key_count + 1, sizeof(struct curl_slist *));
		if (t->hdrs[o] == NULL) {
			return CANARY_ENOMEM;
		}
		for (int k = 0; k <= r->key_count; k++) {
			struct curl_slist *l = NULL, *n;
			if (o == 1) {
				snprintf(line, sizeof(line), "%s: %s=\"%s\"", AGENT_HDR_OVERRIDE,
				         ov->worker, ov->version_id);
				n = curl_slist_append(l, line);
				if (n == NULL) {
					return CANARY_ENOMEM;
				}
				l = n;
			}
			if (k > 0) {
				snprintf(line, sizeof(line), "%s: %s%d", AGENT_HDR_VERSION_KEY,
				         r->opts.key_prefix != NULL ? r->opts.key_prefix
				                                    : AGENT_VERSION_KEY_PREFIX,
				         k - 1);
				n = curl_slist_append(l, line);
				if (n == NULL) {
					curl_slist_free_all(l);
					return CANARY_ENOMEM;
				}
				l = n;
			}
			t->hdrs[o][k] = l;
		}
	}
	return 0;
}

/* Request i of a target carries the override when the running count of
 * share% of i+1 requests steps up: share% spread evenly over the round. */
static int
round_overridden(double share, uint32_t i)
{
	double f = share / 100.0;
	return (uint64_t)((double)(i + 1) * f) > (uint64_t)((double)i * f);
}

static int
round_next(void *arg, struct agent_request *req)
{
	struct agent_round *r = arg;
	int n = r->probe.n_targets;

	if (r->ended) {
		return 0;
	}
	for (int step = 0; step < n; step++) {
		int ti = (r->cursor + step) % n;
		struct round_target *t = &r->rt[ti];
		const struct canary_target *ct = t->t;
		int isr = ct->cache == CANARY_CACHE_ISR;
		uint32_t i = t->issued;
		int ov, key;

		if (i >= ct->requests || (isr && i > 0 && !t->warm)) {
			continue;
		}
		ov = r->probe.override.enabled && round_overridden(r->probe.override.share, i);
		key = r->key_count > 0 ? (int)(i % (uint32_t)r->key_count) : -1;
		req->url = t->url;
		req->head = strcmp(ct->method, "HEAD") == 0;
		req->timeout_ms = (long)ct->timeout_ms;
		req->follow = r->opts.follow;
		req->want_body = ct->body_match[0] != '\0';
		req->headers = t->hdrs[ov ? 1 : 0][key + 1];
		req->header_names[0] = r->probe.headers.middleware_version;
		req->header_names[1] = r->probe.headers.server_version;
		req->header_names[2] = r->probe.headers.cache;
		req->tag = t;
		/* tag_i: key in the low bits, override and warming flags above */
		req->tag_i = (long)(key + 1) | (ov ? 1L << 16 : 0) | (isr && i == 0 ? 1L << 17 : 0);
		t->issued++;
		r->cursor = (ti + 1) % n;
		return 1;
	}
	return 0;
}

static void
round_done(void *arg, const struct agent_request *req, const struct agent_result *res)
{
	struct agent_round *r = arg;
	struct round_target *t = req->tag;
	int ti = (int)(t - r->rt);
	struct agent_response resp;

	memset(&resp, 0, sizeof(resp));
	resp.status = res->status;
	resp.errclass = res->errclass;
	resp.error = res->error;
	resp.middleware = res->header[0];
	resp.server = res->header[1];
	resp.cache = res->header[2];
	resp.body = res->body;
	resp.body_len = res->body_len;
	resp.first_byte_us = res->first_byte_us;
	resp.total_us = res->total_us;
	resp.key = (int)(req->tag_i & 0xffff) - 1;
	resp.overridden = (req->tag_i >> 16) & 1;
	resp.warming = (req->tag_i >> 17) & 1;
	r->verdicts |=
	    agent_check_response(t->t, &r->probe.expect, &r->probe.override, &resp,
	                         resp.key >= 0 ? &t->keys : NULL, &r->report.targets[ti]);
	if (resp.warming) {
		t->warm = 1;
	}
	r->finished++;
	if (r->finished >= r->total) {
		event_active(r->finish, EV_TIMEOUT, 0);
	}
}

static void
round_end(struct agent_round *r, int partial)
{
	if (r->ended) {
		return;
	}
	r->ended = 1;
	r->report.partial = partial;
	if (r->running) {
		agent_engine_abort(r->engine);
		r->running = 0;
	}
	if (r->deadline != NULL) {
		evtimer_del(r->deadline);
	}
	r->done(r, r->arg);
}

static void
round_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	round_end(arg, 0);
}

static void
round_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_round *r = arg;
	(void)fd;
	(void)what;
	round_end(r, r->finished < r->total);
}

int
agent_round_start(struct agent_engine *e, struct event_base *base, const struct canary_probe *p,
                  uint32_t budget_ms, const struct agent_round_opts *o, agent_round_done_fn done,
                  void *arg, struct agent_round **rp, char *err, size_t errlen)
{
	struct agent_round *r = NULL;
	struct agent_engine_feed feed;
	int rv;

	*rp = NULL;
	rv = agent_round_check(p, o, err, errlen);
	if (rv != 0) {
		return rv;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "round: out of memory");
	}
	r->engine = e;
	r->base = base;
	r->opts = *o;
	r->done = done;
	r->arg = arg;
	r->probe = *p;
	r->probe.targets = NULL;
	r->key_count = (int)p->version_keys;
	r->probe.targets = calloc((size_t)p->n_targets, sizeof(*p->targets));
	r->rt = calloc((size_t)p->n_targets, sizeof(*r->rt));
	r->report.targets = calloc((size_t)p->n_targets, sizeof(*r->report.targets));
	if (r->probe.targets == NULL || r->rt == NULL || r->report.targets == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "round: out of memory");
		goto out;
	}
	memcpy(r->probe.targets, p->targets, (size_t)p->n_targets * sizeof(*p->targets));
	/* An empty header name would match nothing: fall back to the defaults. */
	if (r->probe.headers.middleware_version[0] == '\0') {
		snprintf(r->probe.headers.middleware_version, CANARY_HEADER_NAME_LEN, "%s",
		         AGENT_HDR_MIDDLEWARE);
	}
	if (r->probe.headers.server_version[0] == '\0') {
		snprintf(r->probe.headers.server_version, CANARY_HEADER_NAME_LEN, "%s",
		         AGENT_HDR_SERVER);
	}
	if (r->probe.headers.cache[0] == '\0') {
		snprintf(r->probe.headers.cache, CANARY_HEADER_NAME_LEN, "%s", AGENT_HDR_CACHE);
	}
	r->report.proto_version = CANARY_PROTO_VERSION;
	snprintf(r->report.rollout_id, sizeof(r->report.rollout_id), "%s", p->rollout_id);
	r->report.round = p->round;
	r->report.n_targets = p->n_targets;
	for (int i = 0; i < p->n_targets; i++) {
		struct round_target *t = &r->rt[i];
		t->t = &r->probe.targets[i];
		agent_check_keys_init(&t->keys);
		snprintf(r->report.targets[i].id, CANARY_ID_LEN, "%s", t->t->id);
		canary_hist_init(&r->report.targets[i].latency);
		rv = round_parse_url(t->t, i, &t->url, err, errlen);
		if (rv != 0) {
			goto out;
		}
		if (round_build_headers(r, t) != 0) {
			rv = canary_errf(err, errlen, CANARY_ENOMEM, "round: out of memory");
			goto out;
		}
		r->total += t->t->requests;
	}
	r->finish = event_new(base, -1, 0, round_finish_cb, r);
	r->deadline = evtimer_new(base, round_deadline_cb, r);
	if (r->finish == NULL || r->deadline == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "round: out of memory");
		goto out;
	}
	if (budget_ms > 0) {
		struct timeval tv = {.tv_sec = budget_ms / 1000,
		                     .tv_usec = (budget_ms % 1000) * 1000};
		if (evtimer_add(r->deadline, &tv) != 0) {
			rv = canary_errf(err, errlen, CANARY_EINTERNAL, "round: timer refused");
			goto out;
		}
	}
	feed.next = round_next;
	feed.done = round_done;
	feed.arg = r;
	rv = agent_engine_run(e, &feed);
	if (rv != 0) {
		rv = canary_errf(err, errlen, rv, "round: the engine is still busy");
		goto out;
	}
	r->running = 1;
	if (r->total == 0) {
		event_active(r->finish, EV_TIMEOUT, 0);
	}
	*rp = r;
	r = NULL;
out:
	agent_round_free(r);
	return rv;
}

struct canary_report *
agent_round_report(struct agent_round *r)
{
	return &r->report;
}

unsigned
agent_round_verdicts(const struct agent_round *r)
{
	return r->verdicts;
}

void
agent_round_free(struct agent_round *r)
{
	if (r == NULL) {
		return;
	}
	r->ended = 1;
	if (r->running) {
		agent_engine_abort(r->engine);
	}
	if (r->finish != NULL) {
		event_free(r->finish);
	}
	if (r->deadline != NULL) {
		event_free(r->deadline);
	}
	round_free_targets(r);
	free(r->probe.targets);
	canary_report_free(&r->report);
	free(r);
}
