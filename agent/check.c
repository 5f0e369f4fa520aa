/*
 * check.c: per-response checks (see check.h). Pure: no I/O.
 */
#include "check.h"

#include <stdio.h>
#include <string.h>

/* The statuses a report's table can hold (msg.h: statuses are 100..599). */
#define CHECK_STATUS_MIN 100
#define CHECK_STATUS_MAX 599

void
agent_check_keys_init(struct agent_check_keys *k)
{
	memset(k, 0, sizeof(*k));
}

/* Adds one occurrence of status to rep's table; a status that finds no room
 * (more than CANARY_MAX_SEEN_STATUS distinct ones), or one outside
 * CHECK_STATUS_MIN..CHECK_STATUS_MAX that the wire form cannot carry (a
 * server may answer 999), goes to statuses_other. */
static void
check_count_status(struct canary_target_report *rep, int status)
{
	if (status < CHECK_STATUS_MIN || status > CHECK_STATUS_MAX) {
		rep->statuses_other++;
		return;
	}
	for (int i = 0; i < rep->n_statuses; i++) {
		if (rep->statuses[i].status == status) {
			rep->statuses[i].count++;
			return;
		}
	}
	if (rep->n_statuses < CANARY_MAX_SEEN_STATUS) {
		rep->statuses[rep->n_statuses].status = status;
		rep->statuses[rep->n_statuses].count = 1;
		rep->n_statuses++;
		return;
	}
	rep->statuses_other++;
}

static void
check_count_pair(struct canary_target_report *rep, const char *mw, const char *srv)
{
	for (int i = 0; i < rep->n_pairs; i++) {
		if (strcmp(rep->pairs[i].middleware, mw) == 0 &&
		    strcmp(rep->pairs[i].server, srv) == 0) {
			rep->pairs[i].count++;
			return;
		}
	}
	if (rep->n_pairs < CANARY_MAX_PAIRS) {
		struct canary_pair_count *p = &rep->pairs[rep->n_pairs++];
		snprintf(p->middleware, sizeof(p->middleware), "%s", mw);
		snprintf(p->server, sizeof(p->server), "%s", srv);
		p->count = 1;
		return;
	}
	rep->pairs_other++;
}

static void
check_sample(struct canary_target_report *rep, const char *fmt, const char *a, const char *b,
             const char *c)
{
	if (rep->n_samples >= CANARY_MAX_SAMPLES) {
		return;
	}
	snprintf(rep->samples[rep->n_samples], CANARY_SAMPLE_LEN, fmt, a, b, c);
	rep->n_samples++;
}

static int
check_status_expected(const struct canary_target *t, int status)
{
	for (int i = 0; i < t->n_expect_status; i++) {
		if (t->expect_status[i] == status) {
			return 1;
		}
	}
	return 0;
}

/* The pin of middleware version mw under e and o, or NULL when mw is not an
 * expected middleware version. */
static const char *
check_pin_of(const struct canary_expect *e, const struct canary_override *o, const char *mw,
             int overridden)
{
	if (overridden && o != NULL && o->enabled && strcmp(mw, o->version_id) == 0) {
		return o->pin;
	}
	for (int i = 0; i < e->n_middleware && i < CANARY_MAX_VERSIONS; i++) {
		if (strcmp(e->middleware[i].id, mw) == 0) {
			return e->pins[i];
		}
	}
	return NULL;
}

static int
check_server_known(const struct canary_expect *e, const struct canary_override *o, const char *srv,
                   int overridden)
{
	if (overridden && o != NULL && o->enabled && strcmp(srv, o->pin) == 0) {
		return 1;
	}
	for (int i = 0; i < e->n_server && i < CANARY_MAX_VERSIONS; i++) {
		if (strcmp(e->server[i].id, srv) == 0) {
			return 1;
		}
	}
	return 0;
}

/* canary_is_uuid(v), answered first by comparing v with the non-empty ids
 * e and o name, which are UUIDs already (check.h): a response that names an
 * expected version, nearly all of them, costs a compare or two instead of
 * a character-by-character scan. */
static int
check_known(const char *known, const char *v)
{
	return known[0] != '\0' && strcmp(known, v) == 0;
}

static int
check_is_uuid(const struct canary_expect *e, const struct canary_override *o, const char *v)
{
	if (v == NULL) {
		return 0;
	}
	for (int i = 0; i < e->n_middleware && i < CANARY_MAX_VERSIONS; i++) {
		if (check_known(e->middleware[i].id, v) || check_known(e->pins[i], v)) {
			return 1;
		}
	}
	for (int i = 0; i < e->n_server && i < CANARY_MAX_VERSIONS; i++) {
		if (check_known(e->server[i].id, v)) {
			return 1;
		}
	}
	if (o != NULL && o->enabled && (check_known(o->version_id, v) || check_known(o->pin, v))) {
		return 1;
	}
	return canary_is_uuid(v);
}

static int
check_is_hit(const char *cache)
{
	return cache != NULL && (strcmp(cache, "HIT") == 0 || strcmp(cache, "STALE") == 0);
}

static int
check_body_has(const char *body, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	if (n == 0) {
		return 1;
	}
	if (body == NULL || len < n) {
		return 0;
	}
	for (size_t i = 0; i + n <= len; i++) {
		if (body[i] == needle[0] && memcmp(body + i, needle, n) == 0) {
			return 1;
		}
	}
	return 0;
}

/* The version checks: unknown versions, affinity, override, keys. Returns
 * verdict bits. Called only when the response carries a version header or
 * has an expected status. */
static unsigned
check_versions(const struct canary_expect *e, const struct canary_override *o,
               const struct agent_response *r, struct agent_check_keys *keys,
               struct canary_target_report *rep)
{
	unsigned v = 0;
	const char *mw = r->middleware;
	const char *srv = r->server;
	int hit = check_is_hit(r->cache);
	int check_mw = e->n_middleware > 0;
	int check_srv = e->n_server > 0;
	int mw_ok = check_is_uuid(e, o, mw);
	/* No server header is an answer of the middleware alone, fine on a hit. */
	int srv_ok = srv != NULL ? check_is_uuid(e, o, srv) : hit;
	int overridden = r->overridden && o != NULL && o->enabled;

	if (mw_ok && srv_ok) {
		check_count_pair(rep, mw, srv != NULL ? srv : "");
	}
	if (check_mw || check_srv || overridden) {
		const char *pin = mw_ok ? check_pin_of(e, o, mw, overridden) : NULL;
		int unknown = 0;

		if (check_mw && pin == NULL) {
			unknown = 1;
		}
		if (check_srv &&
		    (!srv_ok || (srv != NULL && !check_server_known(e, o, srv, overridden)))) {
			unknown = 1;
		}
		if (unknown) {
			rep->unknown_versions++;
			v |= AGENT_V_UNKNOWN;
			check_sample(rep, "unknown versions: middleware %s, server %s%s",
			             mw != NULL ? mw : "(none)", srv != NULL ? srv : "(none)", "");
		}
		if (pin != NULL && pin[0] != '\0' && srv != NULL && strcmp(srv, pin) != 0) {
			rep->affinity_violations++;
			v |= AGENT_V_AFFINITY;
			check_sample(rep, "affinity: middleware %s answered with server %s, pin %s",
			             mw, srv, pin);
		}
		if (overridden) {
			int from_override = mw_ok && strcmp(mw, o->version_id) == 0 &&
			                    (srv == NULL ? hit : strcmp(srv, o->pin) == 0);
			if (!from_override) {
				rep->override_violations++;
				v |= AGENT_V_OVERRIDE;
				check_sample(
				    rep, "override ignored: middleware %s, server %s, wanted %s",
				    mw != NULL ? mw : "(none)", srv != NULL ? srv : "(none)",
				    o->version_id);
			}
		}
	}
	if (keys != NULL && r->key >= 0 && r->key < CANARY_MAX_VERSION_KEYS && mw_ok) {
		char *seen = keys->seen[r->key];
		if (seen[0] == '\0') {
			snprintf(seen, CANARY_UUID_LEN, "%s", mw);
		} else if (strcmp(seen, mw) != 0 && !keys->violated[r->key]) {
			keys->violated[r->key] = 1;
			rep->key_violations++;
			v |= AGENT_V_KEY;
			check_sample(rep, "version key saw middleware %s then %s%s", seen, mw, "");
		}
	}
	return v;
}

unsigned
agent_check_response(const struct canary_target *t, const struct canary_expect *e,
                     const struct canary_override *o, const struct agent_response *r,
                     struct agent_check_keys *keys, struct canary_target_report *rep)
{
	unsigned v = 0;
	int status_ok;
	char num[16];

	rep->sent++;
	if (r->overridden) {
		rep->override_sent++;
	}
	if (r->status == 0) {
		int c = r->errclass;
		if (c < 0 || c >= CANARY_ERRCLASS_COUNT) {
			c = CANARY_ERRCLASS_HTTP;
		}
		rep->errors[c]++;
		check_sample(rep, "%s error: %s%s", canary_errclass_name((enum canary_errclass)c),
		             r->error != NULL ? r->error : "transfer failed", "");
		return AGENT_V_TRANSPORT;
	}
	rep->responses++;
	check_count_status(rep, r->status);
	canary_hist_record(&rep->latency, r->first_byte_us);

	status_ok = check_status_expected(t, r->status);
	if (!status_ok) {
		rep->errors[CANARY_ERRCLASS_HTTP]++;
		v |= AGENT_V_STATUS;
		snprintf(num, sizeof(num), "%d", r->status);
		check_sample(rep, "status %s from middleware %s, server %s", num,
		             r->middleware != NULL ? r->middleware : "(none)",
		             r->server != NULL ? r->server : "(none)");
	}
	if (status_ok || r->middleware != NULL || r->server != NULL) {
		v |= check_versions(e, o, r, keys, rep);
	}
	if (status_ok && t->cache == CANARY_CACHE_ISR) {
		if (r->warming) {
			rep->cache_warmup++;
		} else if (r->cache != NULL && strcmp(r->cache, "HIT") == 0) {
			rep->cache_hit++;
		} else if (r->cache != NULL && strcmp(r->cache, "STALE") == 0) {
			rep->cache_stale++;
		} else {
			rep->cache_miss++;
			v |= AGENT_V_CACHE_MISS;
		}
	}
	if (status_ok && t->body_match[0] != '\0' &&
	    !check_body_has(r->body, r->body_len, t->body_match)) {
		rep->body_mismatches++;
		v |= AGENT_V_BODY;
		check_sample(rep, "body does not contain \"%s\"%s%s", t->body_match, "", "");
	}
	return v;
}
