/*
 * test_agent_respond.c: every report the agent can send encodes. A report
 * that does not is replaced by an error report for the same round (never
 * silence), and a survey that does not decode still yields its round and
 * rollout id when they can be read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <nng/nng.h>
#include <nng/protocol/survey0/survey.h>
#include <nng/supplemental/util/platform.h>

#include "agent_port.h"
#include "err.h"
#include "respond.h"

/* Encodes rep through agent_respond_encode and decodes the text back. */
static void
encode_decode(struct canary_report *rep, int want_replaced, struct canary_report *back)
{
	char err[CANARY_ERRLEN];
	char *text = NULL;
	size_t len = 0;
	int replaced = -1;

	if (agent_respond_encode("agent-1", "enam", rep, &text, &len, &replaced, err,
	                         sizeof(err)) != 0) {
		fail_msg("encode: %s", err);
	}
	assert_int_equal(replaced, want_replaced);
	assert_non_null(text);
	if (canary_report_decode(text, len, back, err, sizeof(err)) != 0) {
		fail_msg("decode: %s", err);
	}
	free(text);
	assert_string_equal(back->agent_id, "agent-1");
	assert_string_equal(back->region, "enam");
}

static struct canary_report
report_with_target(const char *rollout, uint64_t round)
{
	struct canary_report rep;

	memset(&rep, 0, sizeof(rep));
	snprintf(rep.rollout_id, sizeof(rep.rollout_id), "%s", rollout);
	rep.round = round;
	rep.targets = calloc(1, sizeof(*rep.targets));
	assert_non_null(rep.targets);
	rep.n_targets = 1;
	snprintf(rep.targets[0].id, CANARY_ID_LEN, "home");
	canary_hist_init(&rep.targets[0].latency);
	rep.targets[0].sent = 3;
	rep.targets[0].responses = 3;
	rep.targets[0].statuses[0].status = 200;
	rep.targets[0].statuses[0].count = 3;
	rep.targets[0].n_statuses = 1;
	return rep;
}

static void
test_good_report_goes_as_is(void **state)
{
	struct canary_report rep = report_with_target("r1", 7);
	struct canary_report back;
	(void)state;
	encode_decode(&rep, 0, &back);
	assert_int_equal(back.n_targets, 1);
	assert_int_equal(back.targets[0].sent, 3);
	assert_int_equal(back.round, 7);
	canary_report_free(&back);
	canary_report_free(&rep);
}

/* A report the encoder refuses (here a status the wire cannot carry, or
 * more responses than requests) becomes an error report of the same round
 * that says why. */
static void
test_unencodable_report_becomes_error_report(void **state)
{
	struct canary_report rep = report_with_target("r1", 9);
	struct canary_report back;
	(void)state;
	rep.targets[0].statuses[0].status = 999;
	encode_decode(&rep, 1, &back);
	assert_int_equal(back.round, 9);
	assert_string_equal(back.rollout_id, "r1");
	assert_int_equal(back.n_targets, 0);
	assert_non_null(strstr(back.error, "report could not be encoded"));
	assert_non_null(strstr(back.error, "statuses[0].status"));
	canary_report_free(&back);
	canary_report_free(&rep);

	rep = report_with_target("r1", 10);
	rep.targets[0].responses = 4; /* more than sent */
	encode_decode(&rep, 1, &back);
	assert_int_equal(back.round, 10);
	assert_non_null(strstr(back.error, "responses"));
	canary_report_free(&back);
	canary_report_free(&rep);
}

/* rollout_id may be "" only in an error report: a report without one is
 * replaced, and a rollout id that is itself invalid is dropped so the error
 * report still goes. */
static void
test_rollout_id_rules(void **state)
{
	struct canary_report rep = report_with_target("", 3);
	struct canary_report back;
	(void)state;
	encode_decode(&rep, 1, &back);
	assert_string_equal(back.rollout_id, "");
	assert_int_equal(back.round, 3);
	assert_non_null(strstr(back.error, "rollout_id"));
	canary_report_free(&back);
	canary_report_free(&rep);

	rep = report_with_target("bad\x01id", 4);
	encode_decode(&rep, 1, &back);
	assert_string_equal(back.rollout_id, "");
	assert_int_equal(back.round, 4);
	canary_report_free(&back);
	canary_report_free(&rep);

	/* An error report with no rollout id is valid as it is. */
	memset(&rep, 0, sizeof(rep));
	snprintf(rep.error, sizeof(rep.error), "survey rejected: x");
	encode_decode(&rep, 0, &back);
	assert_string_equal(back.error, "survey rejected: x");
	canary_report_free(&back);
}

/* agent_id and region are never empty: an agent without them cannot
 * answer, and says so rather than sending an invalid message. */
static void
test_empty_agent_id_refused(void **state)
{
	struct canary_report rep = report_with_target("r1", 1);
	char err[CANARY_ERRLEN];
	char *text = NULL;
	size_t len = 0;
	int replaced = 0;
	(void)state;
	assert_int_not_equal(
	    agent_respond_encode("", "enam", &rep, &text, &len, &replaced, err, sizeof(err)), 0);
	assert_null(text);
	assert_non_null(strstr(err, "agent_id"));
	canary_report_free(&rep);
	rep = report_with_target("r1", 1);
	assert_int_not_equal(
	    agent_respond_encode("a", "", &rep, &text, &len, &replaced, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "region"));
	canary_report_free(&rep);
}

/* A respondent whose id or region could not go in a report does not
 * start. */
static void
test_respondent_needs_id_and_region(void **state)
{
	struct event_base *base = event_base_new();
	struct agent_engine_opts eo = {.concurrency = 1, .body_cap = 64};
	struct agent_engine *e = NULL;
	struct agent_respond *r = NULL;
	struct agent_respond_opts o;
	char err[CANARY_ERRLEN];
	char longid[CANARY_ID_LEN + 1];
	(void)state;
	assert_int_equal(agent_engine_new(base, &eo, &e, err, sizeof(err)), 0);
	memset(&o, 0, sizeof(o));
	o.agent_id = "";
	o.region = "enam";
	assert_int_equal(agent_respond_new(base, e, &o, &r, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "agent id"));
	memset(longid, 'a', CANARY_ID_LEN);
	longid[CANARY_ID_LEN] = '\0';
	o.agent_id = longid;
	assert_int_equal(agent_respond_new(base, e, &o, &r, err, sizeof(err)), CANARY_EINVAL);
	o.agent_id = "a1";
	o.region = "en\tam";
	assert_int_equal(agent_respond_new(base, e, &o, &r, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "region"));
	o.region = NULL;
	assert_int_equal(agent_respond_new(base, e, &o, &r, err, sizeof(err)), CANARY_EINVAL);
	assert_null(r);
	agent_engine_free(e);
	event_base_free(base);
}

static void
salvage(const char *json, uint64_t want_round, const char *want_rollout)
{
	uint64_t round = 99;
	char rollout[CANARY_ID_LEN] = "x";
	agent_respond_salvage(json, strlen(json), &round, rollout);
	assert_int_equal(round, want_round);
	assert_string_equal(rollout, want_rollout);
}

static void
test_salvage(void **state)
{
	(void)state;
	salvage("{\"v\":1,\"type\":\"probe\",\"rollout_id\":\"docs\",\"round\":12,\"targets\":7}",
	        12, "docs");
	salvage("{\"rollout_id\":\"docs\",\"round\":-1}", 0, "");
	salvage("{\"rollout_id\":\"docs\",\"round\":1.5}", 0, "");
	salvage("{\"rollout_id\":\"docs\",\"round\":1e300}", 0, "");
	salvage("{\"rollout_id\":\"\",\"round\":3}", 0, "");
	salvage("{\"rollout_id\":\"a\\u0001b\",\"round\":3}", 0, "");
	salvage("{\"rollout_id\":7,\"round\":3}", 0, "");
	salvage("[1,2]", 0, "");
	salvage("not json", 0, "");
	salvage("", 0, "");
}

#define FREE_ROUNDS 40 /* respondents freed just as their reply goes out */

static void
stop_loop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* A respondent freed on the loop right after it sent a reply, while nng's
 * thread completes that send (and would arm the next receive): freeing must
 * wait for that callback, never race it. ASan catches a use after free. */
static void
test_free_while_reply_goes_out(void **state)
{
	(void)state;
	for (int i = 0; i < FREE_ROUNDS; i++) {
		struct event_base *base = event_base_new();
		struct agent_engine_opts eo = {.concurrency = 1, .body_cap = 64};
		struct agent_engine *e = NULL;
		struct agent_allow allow;
		struct agent_respond *r = NULL;
		struct agent_respond_opts o;
		char url[64];
		const char *listen[1] = {url};
		char err[CANARY_ERRLEN];
		nng_socket sv;
		struct event *tick;
		struct timeval tv = {0, 2000};

		assert_non_null(base);
		assert_int_equal(agent_engine_new(base, &eo, &e, err, sizeof(err)), 0);
		agent_allow_init(&allow);
		memset(&o, 0, sizeof(o));
		o.agent_id = "a1";
		o.region = "enam";
		o.listen = listen;
		o.n_listen = 1;
		o.insecure = 1;
		o.round.allow = &allow;
		o.round.max_requests = 10;
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", agent_test_free_port());
		if (agent_respond_new(base, e, &o, &r, err, sizeof(err)) != 0) {
			fail_msg("respondent: %s", err);
		}
		assert_int_equal(nng_surveyor0_open(&sv), 0);
		assert_int_equal(nng_dial(sv, url, NULL, 0), 0);
		nng_msleep(20); /* the pipe is up on both sides */
		assert_int_equal(nng_send(sv, "{bad", 4, 0), 0);
		/* Run the loop in small steps until the error reply has gone. */
		tick = evtimer_new(base, stop_loop_cb, base);
		for (int k = 0; k < 1000 && agent_respond_rounds(r) == 0; k++) {
			assert_int_equal(evtimer_add(tick, &tv), 0);
			event_base_dispatch(base);
		}
		assert_int_equal(agent_respond_rounds(r), 1);
		agent_respond_free(r);
		event_free(tick);
		nng_close(sv);
		agent_engine_free(e);
		event_base_free(base);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_report_goes_as_is),
	    cmocka_unit_test(test_unencodable_report_becomes_error_report),
	    cmocka_unit_test(test_rollout_id_rules),
	    cmocka_unit_test(test_empty_agent_id_refused),
	    cmocka_unit_test(test_salvage),
	    cmocka_unit_test(test_respondent_needs_id_and_region),
	    cmocka_unit_test(test_free_while_reply_goes_out),
	};
	/* nng's threads hand surveys to the loop with event_active. */
	if (evthread_use_pthreads() != 0) {
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
