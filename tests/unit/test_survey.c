/*
 * test_survey.c: probe rounds against respondents run by the test itself.
 *
 * Each respondent is a thread with an nng respondent0 socket dialing the
 * survey's ipc:// listener (insecure), answering every probe according to its
 * behaviour: a valid report, garbage, a report for the wrong round, nothing,
 * a valid report after a delay, or (a raw socket, which may) the same
 * report three times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <nng/nng.h>
#include <nng/protocol/survey0/respond.h>

#include "err.h"
#include "log.h"
#include "msg.h"
#include "survey.h"

/* DUPLICATE: a raw respondent that sends its valid report three times. */
enum behaviour { ANSWER = 0, GARBAGE, WRONG_ROUND, SILENT, LATE, DUPLICATE };

struct respondent {
	pthread_t thread;
	nng_socket sock;
	enum behaviour how;
	char id[CANARY_ID_LEN];
	int late_ms;
	int probes_seen;
};

static char url[128];

static void
sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A valid report for probe p from agent id. */
static char *
make_report(const struct canary_probe *p, const char *id, uint64_t round, size_t *lenp)
{
	struct canary_report r;
	struct canary_target_report t;
	char err[CANARY_ERRLEN];
	char *text = NULL;

	memset(&r, 0, sizeof(r));
	memset(&t, 0, sizeof(t));
	r.proto_version = CANARY_PROTO_VERSION;
	snprintf(r.agent_id, sizeof(r.agent_id), "%s", id);
	snprintf(r.region, sizeof(r.region), "enam");
	snprintf(r.rollout_id, sizeof(r.rollout_id), "%s", p->rollout_id);
	r.round = round;
	snprintf(t.id, sizeof(t.id), "%s", p->targets[0].id);
	canary_hist_init(&t.latency);
	t.sent = 10;
	t.responses = 10;
	t.statuses[0].status = 200;
	t.statuses[0].count = 10;
	t.n_statuses = 1;
	for (int i = 0; i < 10; i++) {
		canary_hist_record(&t.latency, 1000 + (uint64_t)i * 100);
	}
	r.targets = &t;
	r.n_targets = 1;
	if (canary_report_encode(&r, &text, lenp, err, sizeof(err)) != 0) {
		fprintf(stderr, "encode: %s\n", err);
		return NULL;
	}
	return text;
}

static void *
respondent_main(void *arg)
{
	struct respondent *rs = arg;

	for (;;) {
		nng_msg *m;
		struct canary_probe p;
		char err[CANARY_ERRLEN];
		char *text = NULL;
		size_t len = 0;

		if (nng_recvmsg(rs->sock, &m, 0) != 0) {
			return NULL; /* socket closed: the test is over */
		}
		if (canary_probe_decode(nng_msg_body(m), nng_msg_len(m), &p, err, sizeof(err)) !=
		    0) {
			fprintf(stderr, "respondent %s: bad probe: %s\n", rs->id, err);
			nng_msg_free(m);
			continue;
		}
		rs->probes_seen++;
		nng_msg_clear(m);
		switch (rs->how) {
		case ANSWER:
			text = make_report(&p, rs->id, p.round, &len);
			break;
		case LATE:
			sleep_ms(rs->late_ms);
			text = make_report(&p, rs->id, p.round, &len);
			break;
		case DUPLICATE:
			/* nng_msg_clear keeps the header: the backtrace a raw
			 * reply must carry. */
			text = make_report(&p, rs->id, p.round, &len);
			for (int i = 0; i < 2 && text != NULL; i++) {
				nng_msg *d;

				if (nng_msg_dup(&d, m) == 0 && nng_msg_append(d, text, len) == 0 &&
				    nng_sendmsg(rs->sock, d, 0) != 0) {
					nng_msg_free(d);
				}
			}
			break;
		case WRONG_ROUND:
			text = make_report(&p, rs->id, p.round + 7, &len);
			break;
		case GARBAGE:
			text = strdup("{\"type\":\"report\",\"proto_version\":1,\"round\":\"x\"");
			len = strlen(text);
			break;
		case SILENT:
			break;
		}
		canary_probe_free(&p);
		if (text == NULL) {
			nng_msg_free(m);
			continue;
		}
		if (nng_msg_append(m, text, len) != 0 || nng_sendmsg(rs->sock, m, 0) != 0) {
			nng_msg_free(m);
		}
		free(text);
	}
}

/* late_ms: how long a LATE respondent works on each probe. */
static void
respondent_start_late(struct respondent *rs, enum behaviour how, const char *id, int late_ms)
{
	memset(rs, 0, sizeof(*rs));
	rs->how = how;
	rs->late_ms = late_ms;
	snprintf(rs->id, sizeof(rs->id), "%s", id);
	if (how == DUPLICATE) {
		assert_int_equal(nng_respondent0_open_raw(&rs->sock), 0);
	} else {
		assert_int_equal(nng_respondent0_open(&rs->sock), 0);
	}
	assert_int_equal(nng_dial(rs->sock, url, NULL, NNG_FLAG_NONBLOCK), 0);
	assert_int_equal(pthread_create(&rs->thread, NULL, respondent_main, rs), 0);
}

static void
respondent_start(struct respondent *rs, enum behaviour how, const char *id)
{
	respondent_start_late(rs, how, id, 1500);
}

static void
respondent_stop(struct respondent *rs)
{
	nng_close(rs->sock);
	pthread_join(rs->thread, NULL);
}

struct fixture {
	struct event_base *base;
	struct survey *s;
};

struct round_out {
	int done;
	int rv;
	int n;
	struct survey_stats stats;
	char agents[4][CANARY_ID_LEN];
	uint64_t latency_count;
};

static void
on_round(struct survey_result *res, void *arg)
{
	struct round_out *o = arg;

	o->done++;
	o->rv = res->rv;
	o->n = res->n_reports;
	o->stats = res->stats;
	for (int i = 0; i < res->n_reports && i < 4; i++) {
		snprintf(o->agents[i], sizeof(o->agents[i]), "%s", res->reports[i].agent_id);
		o->latency_count += res->reports[i].targets[0].latency.count;
	}
}

static struct canary_target target = {
    .id = "home",
    .url = "http://docs.example.com/",
    .method = "GET",
    .requests = 10,
    .timeout_ms = 1000,
    .expect_status = {200},
    .n_expect_status = 1,
};

static void
make_probe(struct canary_probe *p, uint64_t round, uint32_t deadline_ms)
{
	memset(p, 0, sizeof(*p));
	p->proto_version = CANARY_PROTO_VERSION;
	snprintf(p->rollout_id, sizeof(p->rollout_id), "docs-site");
	p->round = round;
	p->phase = CANARY_PHASE_BAKE;
	p->deadline_ms = deadline_ms;
	p->targets = &target;
	p->n_targets = 1;
	snprintf(p->headers.middleware_version, sizeof(p->headers.middleware_version),
	         "x-canary-middleware-version");
	snprintf(p->headers.server_version, sizeof(p->headers.server_version),
	         "x-canary-server-version");
	snprintf(p->headers.cache, sizeof(p->headers.cache), "x-opennext-cache");
	p->expect.n_middleware = 1;
	snprintf(p->expect.middleware[0].id, CANARY_UUID_LEN,
	         "11111111-1111-1111-1111-111111111111");
	p->expect.middleware[0].share = 100;
	p->expect.n_server = 1;
	snprintf(p->expect.server[0].id, CANARY_UUID_LEN, "22222222-2222-2222-2222-222222222222");
	p->expect.server[0].share = 100;
	snprintf(p->expect.pins[0], CANARY_UUID_LEN, "22222222-2222-2222-2222-222222222222");
}

static int
setup(void **state)
{
	static struct fixture f;
	const char *listen[1];
	struct survey_config cfg;
	char err[CANARY_ERRLEN];

	snprintf(url, sizeof(url), "ipc:///tmp/canary-test-survey-%ld.ipc", (long)getpid());
	listen[0] = url;
	memset(&cfg, 0, sizeof(cfg));
	cfg.listen = listen;
	cfg.n_listen = 1;
	cfg.insecure = 1;
	f.base = event_base_new();
	assert_non_null(f.base);
	if (survey_new(f.base, &cfg, &f.s, err, sizeof(err)) != 0) {
		fprintf(stderr, "survey_new: %s\n", err);
		return -1;
	}
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	survey_free(f->s);
	event_base_free(f->base);
	unlink(url + strlen("ipc://"));
	return 0;
}

static void
wait_agents(struct fixture *f, int n)
{
	for (int i = 0; i < 500 && survey_agents(f->s) != n; i++) {
		sleep_ms(10);
	}
	assert_int_equal(survey_agents(f->s), n);
}

static void
pump(struct fixture *f, struct round_out *o)
{
	while (!o->done) {
		event_base_loop(f->base, EVLOOP_ONCE);
	}
}

/* run_round: one round numbered round with deadline_ms, sent and pumped to
 * its end; p and o get the probe and what the callback saw. */
static void
run_round(struct fixture *f, uint64_t round, uint32_t deadline_ms, struct canary_probe *p,
          struct round_out *o)
{
	char err[CANARY_ERRLEN];

	make_probe(p, round, deadline_ms);
	memset(o, 0, sizeof(*o));
	assert_int_equal(survey_round(f->s, p, on_round, o, err, sizeof(err)), 0);
	pump(f, o);
}

/* stop_respondents: stops rs[0..n-1] and waits until none is connected. */
static void
stop_respondents(struct fixture *f, struct respondent *rs, int n)
{
	for (int i = 0; i < n; i++) {
		respondent_stop(&rs[i]);
	}
	wait_agents(f, 0);
}

/* Three healthy agents: all three reports, and the round ends as soon as the
 * third answers, well before the deadline. */
static void
test_round_all_answer(void **state)
{
	struct fixture *f = *state;
	struct respondent rs[3];
	struct canary_probe p;
	struct round_out o;
	char err[CANARY_ERRLEN];

	respondent_start(&rs[0], ANSWER, "a1");
	respondent_start(&rs[1], ANSWER, "a2");
	respondent_start(&rs[2], ANSWER, "a3");
	wait_agents(f, 3);
	make_probe(&p, 1, 5000);
	memset(&o, 0, sizeof(o));
	assert_int_equal(survey_round(f->s, &p, on_round, &o, err, sizeof(err)), 0);
	assert_int_equal(o.done, 0); /* never from inside the call */
	/* A second round while this one runs is refused. */
	assert_int_equal(survey_round(f->s, &p, on_round, &o, err, sizeof(err)), CANARY_ESTATE);
	pump(f, &o);
	assert_int_equal(o.done, 1);
	assert_int_equal(o.rv, 0);
	assert_int_equal(o.n, 3);
	assert_int_equal(o.stats.agents, 3);
	assert_int_equal(o.stats.received, 3);
	assert_int_equal(o.stats.timed_out, 0);
	assert_true(o.stats.elapsed_us < 4000000);
	assert_int_equal(o.latency_count, 30);
	stop_respondents(f, rs, 3);
}

/* Garbage and a wrong-round report are counted, not fatal; the valid report
 * still arrives; the round ends early because every agent spoke. */
static void
test_round_bad_reports_counted(void **state)
{
	struct fixture *f = *state;
	struct respondent rs[3];
	struct canary_probe p;
	struct round_out o;

	respondent_start(&rs[0], ANSWER, "good");
	respondent_start(&rs[1], GARBAGE, "junk");
	respondent_start(&rs[2], WRONG_ROUND, "stale");
	wait_agents(f, 3);
	run_round(f, 2, 5000, &p, &o);
	assert_int_equal(o.rv, 0);
	assert_int_equal(o.n, 1);
	assert_string_equal(o.agents[0], "good");
	assert_int_equal(o.stats.malformed, 1);
	assert_int_equal(o.stats.wrong_round, 1);
	assert_int_equal(o.stats.timed_out, 0);
	stop_respondents(f, rs, 3);
}

/* A silent agent and a late one: the round ends at the deadline with the one
 * timely report; the late report never joins it nor the next round. */
static void
test_round_deadline(void **state)
{
	struct fixture *f = *state;
	struct respondent rs[3];
	struct canary_probe p;
	struct round_out o;

	respondent_start(&rs[0], ANSWER, "quick");
	respondent_start(&rs[1], SILENT, "mute");
	respondent_start(&rs[2], LATE, "slow");
	wait_agents(f, 3);
	run_round(f, 3, 300, &p, &o);
	assert_int_equal(o.rv, 0);
	assert_int_equal(o.n, 1);
	assert_string_equal(o.agents[0], "quick");
	assert_int_equal(o.stats.timed_out, 1);
	/* deadline 300 ms + grace 500 ms: not before, and not much after */
	assert_true(o.stats.elapsed_us >= 750000);
	assert_true(o.stats.elapsed_us < 3000000);

	/* Round 4 starts while "slow" still works on round 3: its late report
	 * for round 3 must not count as a round 4 report. */
	run_round(f, 4, 3000, &p, &o);
	assert_int_equal(o.rv, 0);
	for (int i = 0; i < o.n && i < 4; i++) {
		assert_string_not_equal(o.agents[i], "mute");
	}
	/* quick answers round 4; slow answers round 4 after 1.5 s, within the
	 * 3 s deadline; its round-3 answer is dropped by nng or counted. */
	assert_int_equal(o.n, 2);
	stop_respondents(f, rs, 3);
}

/* An agent that replies three times counts once: the round does not end
 * early on its extra replies while another agent is still working, and the
 * extras are counted as duplicates. */
static void
test_round_duplicates(void **state)
{
	struct fixture *f = *state;
	struct respondent rs[2];
	struct canary_probe p;
	struct round_out o;

	respondent_start(&rs[0], DUPLICATE, "echo");
	respondent_start_late(&rs[1], LATE, "slow", 600);
	wait_agents(f, 2);
	run_round(f, 8, 3000, &p, &o);
	assert_int_equal(o.rv, 0);
	assert_int_equal(o.n, 2);
	assert_int_equal(o.stats.duplicates, 2);
	assert_int_equal(o.stats.timed_out, 0);
	assert_true(o.stats.elapsed_us >= 550000);
	stop_respondents(f, rs, 2);
}

/* No agent at all: the round waits for the deadline and reports nothing. */
static void
test_round_no_agents(void **state)
{
	struct fixture *f = *state;
	struct canary_probe p;
	struct round_out o;

	run_round(f, 5, 100, &p, &o);
	assert_int_equal(o.rv, 0);
	assert_int_equal(o.n, 0);
	assert_int_equal(o.stats.agents, 0);
	assert_int_equal(o.stats.timed_out, 1);
}

/* The encoder's validation guards the wire: an invalid probe is refused and
 * no callback runs. */
static void
test_round_invalid_probe(void **state)
{
	struct fixture *f = *state;
	struct canary_probe p;
	struct round_out o;
	char err[CANARY_ERRLEN];

	make_probe(&p, 6, 1000);
	p.n_targets = 0;
	memset(&o, 0, sizeof(o));
	assert_int_equal(survey_round(f->s, &p, on_round, &o, err, sizeof(err)), CANARY_EINVAL);
	make_probe(&p, 6, 0);
	assert_int_equal(survey_round(f->s, &p, on_round, &o, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "deadline_ms"));
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(o.done, 0);
}

/* Freeing the survey during a round runs the callback once with
 * CANARY_ECLOSED. */
static void
test_free_during_round(void **state)
{
	struct fixture *f = *state;
	struct canary_probe p;
	struct round_out o;
	char err[CANARY_ERRLEN];

	make_probe(&p, 7, 5000);
	memset(&o, 0, sizeof(o));
	assert_int_equal(survey_round(f->s, &p, on_round, &o, err, sizeof(err)), 0);
	survey_free(f->s);
	f->s = NULL;
	assert_int_equal(o.done, 1);
	assert_int_equal(o.rv, CANARY_ECLOSED);
}

static void
test_config_policy(void **state)
{
	struct event_base *base = event_base_new();
	struct survey *s = NULL;
	struct survey_config cfg;
	const char *plain[1] = {"tcp://127.0.0.1:0"};
	char err[CANARY_ERRLEN];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(survey_new(base, &cfg, &s, err, sizeof(err)), CANARY_EINVAL);
	assert_null(s);
	cfg.listen = plain;
	cfg.n_listen = 1;
	assert_int_equal(survey_new(base, &cfg, &s, err, sizeof(err)), CANARY_EDENIED);
	assert_null(s);
	cfg.insecure = 1;
	assert_int_equal(survey_new(base, &cfg, &s, err, sizeof(err)), 0);
	assert_int_equal(survey_agents(s), 0);
	survey_free(s);
	survey_free(NULL);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_policy),
	    cmocka_unit_test_setup_teardown(test_round_all_answer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_bad_reports_counted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_duplicates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_no_agents, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_invalid_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_during_round, setup, teardown),
	};

	canary_log_setup(stderr, CANARY_LOG_TEXT, CANARY_LOG_WARN);
	/* nng threads wake the loop through event_active. */
	if (evthread_use_pthreads() != 0) {
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
