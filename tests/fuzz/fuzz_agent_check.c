/*
 * fuzz_agent_check.c: libFuzzer target for the agent's judgement of probed
 * responses (agent/check.h: agent_check_response). The version, cache and
 * body of a response come from whatever answers the probed URL, so they are
 * outside input; what the agent makes of them goes into the report it sends
 * the controller.
 *
 * The input is a sequence of responses, each: a flags byte (status from
 * fuzz_statuses by its low 3 bits, 0 meaning no HTTP response, 999 one
 * outside HTTP's range that a server can still send; bit 3
 * overridden; bit 4 warming; bits 5-6 version key -1..2), an error-class
 * byte, then five NUL-terminated strings (transfer error, middleware
 * header, server header, cache header, body); a string that starts with
 * 0x01 is an absent header. All responses go to one target report under a
 * dark-step expectation (m0 pinned to s0 at 90%, m1 to s1 at 10%, override
 * m1) on an isr target that wants a body match.
 *
 * Promises checked, beyond "no crash, no leak, no undefined behaviour":
 *   - a response without status gives exactly the transport verdict;
 *   - the counts add up: sent, responses, statuses, errors, cache counts,
 *     pairs, samples within their caps, pairs are (uuid, uuid or "");
 *   - the report the agent would send encodes, the controller's decoder
 *     accepts it, and it encodes again to the same text: no response can
 *     make an agent's report unsendable or rejected.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "hist.h"
#include "msg.h"

#define FUZZ_M0           "f2234824-5a58-4c09-86db-803cfa3144de"
#define FUZZ_M1           "e9f3ee97-46cc-4cd5-baea-bde817308ae0"
#define FUZZ_S0           "956eeb2f-2632-47bd-83f1-66b233e3ef28"
#define FUZZ_S1           "0910ab1f-899f-4380-92b7-14f0942219eb"
#define FUZZ_MAX_RESPONSE 512 /* responses read from one input */
#define FUZZ_ABSENT       '\x01'
#define FUZZ_N_STRINGS    5
#define FUZZ_LATENCY_STEP 997 /* us per error-class byte unit: spreads latencies */

static const int fuzz_statuses[8] = {0, 200, 200, 304, 404, 500, 503, 999};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_agent_check: %s: %s\n", what, detail);
	abort();
}

static void
fuzz_setup(struct canary_target *t, struct canary_expect *e, struct canary_override *o)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "home");
	snprintf(t->url, sizeof(t->url), "https://docs.example.com/");
	snprintf(t->method, sizeof(t->method), "GET");
	t->requests = FUZZ_MAX_RESPONSE;
	t->timeout_ms = 1000;
	t->expect_status[0] = 200;
	t->expect_status[1] = 304;
	t->n_expect_status = 2;
	t->cache = CANARY_CACHE_ISR;
	snprintf(t->body_match, sizeof(t->body_match), "<html");

	memset(e, 0, sizeof(*e));
	snprintf(e->middleware[0].id, sizeof(e->middleware[0].id), FUZZ_M0);
	e->middleware[0].share = 90;
	snprintf(e->middleware[1].id, sizeof(e->middleware[1].id), FUZZ_M1);
	e->middleware[1].share = 10;
	e->n_middleware = 2;
	snprintf(e->server[0].id, sizeof(e->server[0].id), FUZZ_S0);
	e->server[0].share = 90;
	snprintf(e->server[1].id, sizeof(e->server[1].id), FUZZ_S1);
	e->server[1].share = 10;
	e->n_server = 2;
	snprintf(e->pins[0], sizeof(e->pins[0]), FUZZ_S0);
	snprintf(e->pins[1], sizeof(e->pins[1]), FUZZ_S1);

	memset(o, 0, sizeof(*o));
	o->enabled = 1;
	o->share = 50;
	snprintf(o->worker, sizeof(o->worker), "middleware");
	snprintf(o->version_id, sizeof(o->version_id), FUZZ_M1);
	snprintf(o->pin, sizeof(o->pin), FUZZ_S1);
}

/* fuzz_string: the next NUL-terminated string at *p (before end), NULL when
 * it is marked absent; advances *p. Returns "" past the end. */
static const char *
fuzz_string(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const uint8_t *s = *p, *z;

	if (s >= end) {
		*len = 0;
		return "";
	}
	z = memchr(s, '\0', (size_t)(end - s));
	if (z == NULL) {
		/* The last string runs to the end: not terminated, so unused. */
		*p = end;
		*len = 0;
		return "";
	}
	*p = z + 1;
	*len = (size_t)(z - s);
	return s[0] == FUZZ_ABSENT ? NULL : (const char *)s;
}

/* fuzz_check_counts: what the report's counts promise after n responses,
 * transport of them without an HTTP response and bad of them with a status
 * the target does not expect. */
static void
fuzz_check_counts(const struct canary_target_report *rep, uint64_t n, uint64_t transport,
                  uint64_t bad, uint64_t good)
{
	uint64_t sum = 0;

	if (rep->sent != n || rep->responses != n - transport) {
		fuzz_die("counts", "sent or responses do not match the responses given");
	}
	for (int i = 0; i < rep->n_statuses; i++) {
		sum += rep->statuses[i].count;
	}
	if (sum + rep->statuses_other != rep->responses) {
		fuzz_die("counts", "statuses do not add up to the responses");
	}
	sum = 0;
	for (int i = 0; i < CANARY_ERRCLASS_COUNT; i++) {
		sum += rep->errors[i];
	}
	if (sum != transport + bad) {
		fuzz_die("counts", "errors are not the transport failures plus bad statuses");
	}
	if (rep->cache_hit + rep->cache_stale + rep->cache_miss + rep->cache_warmup != good) {
		fuzz_die("counts", "cache counts do not add up to the expected responses");
	}
	sum = 0;
	for (int i = 0; i < rep->n_pairs; i++) {
		if (!canary_is_uuid(rep->pairs[i].middleware) ||
		    (rep->pairs[i].server[0] != '\0' && !canary_is_uuid(rep->pairs[i].server))) {
			fuzz_die("pairs", "a pair that is not (uuid, uuid or \"\")");
		}
		sum += rep->pairs[i].count;
	}
	if (sum + rep->pairs_other > rep->responses || rep->n_pairs > CANARY_MAX_PAIRS ||
	    rep->n_samples > CANARY_MAX_SAMPLES) {
		fuzz_die("counts", "pairs or samples over their caps or the responses");
	}
}

/* fuzz_round_trip: the report with rep encodes, decodes and encodes the same. */
static void
fuzz_round_trip(struct canary_target_report *rep)
{
	struct canary_report r, back;
	char err[CANARY_ERRLEN];
	char *t1 = NULL, *t2 = NULL;
	size_t l1 = 0, l2 = 0;

	memset(&r, 0, sizeof(r));
	r.proto_version = CANARY_PROTO_VERSION;
	snprintf(r.agent_id, sizeof(r.agent_id), "agent-enam");
	snprintf(r.region, sizeof(r.region), "enam");
	snprintf(r.rollout_id, sizeof(r.rollout_id), "fuzz");
	r.round = 1;
	r.targets = rep;
	r.n_targets = 1;
	if (canary_report_encode(&r, &t1, &l1, err, sizeof(err)) != 0) {
		fuzz_die("the agent's report does not encode", err);
	}
	if (canary_report_decode(t1, l1, &back, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", t1);
		fuzz_die("the controller rejects the agent's report", err);
	}
	if (canary_report_encode(&back, &t2, &l2, err, sizeof(err)) != 0) {
		fuzz_die("the decoded report does not encode", err);
	}
	if (l1 != l2 || memcmp(t1, t2, l1) != 0) {
		fprintf(stderr, "%s\n%s\n", t1, t2);
		fuzz_die("round trip", "the report encodes differently after decoding");
	}
	canary_report_free(&back);
	free(t1);
	free(t2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct canary_target_report rep;
	struct canary_target t;
	struct canary_expect e;
	struct canary_override o;
	struct agent_check_keys keys;
	const uint8_t *p = data, *end = data + size;
	uint64_t n = 0, transport = 0, bad = 0, good = 0;

	fuzz_setup(&t, &e, &o);
	agent_check_keys_init(&keys);
	memset(&rep, 0, sizeof(rep));
	canary_hist_init(&rep.latency);
	snprintf(rep.id, sizeof(rep.id), "%s", t.id);
	while (end - p >= 2 && n < FUZZ_MAX_RESPONSE) {
		struct agent_response r;
		const char *s[FUZZ_N_STRINGS];
		size_t lens[FUZZ_N_STRINGS];
		uint8_t flags = p[0], cls = p[1];
		unsigned v;

		p += 2;
		for (int i = 0; i < FUZZ_N_STRINGS; i++) {
			s[i] = fuzz_string(&p, end, &lens[i]);
		}
		memset(&r, 0, sizeof(r));
		r.status = fuzz_statuses[flags & 7];
		r.errclass = (enum canary_errclass)(cls % (CANARY_ERRCLASS_COUNT + 2));
		r.error = s[0];
		r.middleware = s[1];
		r.server = s[2];
		r.cache = s[3];
		r.body = s[4];
		r.body_len = s[4] != NULL ? lens[4] : 0;
		r.first_byte_us = (uint64_t)cls * FUZZ_LATENCY_STEP;
		r.total_us = r.first_byte_us * 2;
		r.overridden = (flags >> 3) & 1;
		r.warming = (flags >> 4) & 1;
		r.key = (int)((flags >> 5) & 3) - 1;

		v = agent_check_response(&t, &e, &o, &r, &keys, &rep);
		n++;
		if (r.status == 0) {
			transport++;
			if (v != AGENT_V_TRANSPORT) {
				fuzz_die("verdict",
				         "no response but not exactly the transport bit");
			}
		} else if (r.status == 200 || r.status == 304) {
			good++;
			if (v & (AGENT_V_TRANSPORT | AGENT_V_STATUS)) {
				fuzz_die("verdict", "an expected status judged as a failure");
			}
		} else {
			bad++;
			if (!(v & AGENT_V_STATUS)) {
				fuzz_die("verdict", "an unexpected status not flagged");
			}
		}
	}
	fuzz_check_counts(&rep, n, transport, bad, good);
	fuzz_round_trip(&rep);
	return 0;
}
