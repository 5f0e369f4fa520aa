/*
 * test_link.c: the link policy, mutual TLS over tls+tcp on loopback with
 * certificates made by the openssl CLI (tests/e2e/agent_certs.sh), the
 * receive cap, and the event queue from nng threads to a libevent loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <nng/nng.h>
#include <nng/protocol/survey0/respond.h>
#include <nng/protocol/survey0/survey.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "err.h"
#include "link.h"
#include "../e2e/agent_port.h"

#define SURVEY_MS 1000 /* how long a surveyor waits for an answer */

static char certdir[64];

/* tests/e2e/agent_certs.sh, found beside this file (CMake compiles it by
 * its absolute path). */
static void
certs_script(char *buf, size_t n)
{
	const char *f = __FILE__;
	const char *slash = strrchr(f, '/');
	int dirlen = slash != NULL ? (int)(slash - f) : 1;
	snprintf(buf, n, "%.*s/../e2e/agent_certs.sh", dirlen, slash != NULL ? f : ".");
}

static int
make_certs(void **state)
{
	char cmd[512];
	char script[384];
	(void)state;
	certs_script(script, sizeof(script));
	snprintf(certdir, sizeof(certdir), "/tmp/link-test.XXXXXX");
	assert_non_null(mkdtemp(certdir));
	snprintf(cmd, sizeof(cmd), "sh %s %s", script, certdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static int
remove_certs(void **state)
{
	char cmd[512];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", certdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
cert_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", certdir, name);
}

/* ---- policy ----------------------------------------------------------- */

static void
test_policy(void **state)
{
	char err[CANARY_ERRLEN];
	(void)state;
	assert_int_equal(canary_link_check_url("tls+tcp://127.0.0.1:7400", 0, err, sizeof(err)), 0);
	assert_int_equal(canary_link_check_url("tls+tcp://[::1]:7400", 0, err, sizeof(err)), 0);
	assert_int_equal(canary_link_check_url("tls+tcp4://0.0.0.0:7400", 0, err, sizeof(err)), 0);
	assert_int_equal(canary_link_check_url("tcp://127.0.0.1:7400", 0, err, sizeof(err)),
	                 CANARY_EDENIED);
	assert_non_null(strstr(err, "--insecure"));
	assert_non_null(strstr(err, "tcp://127.0.0.1:7400"));
	assert_int_equal(canary_link_check_url("ipc:///tmp/x.sock", 0, err, sizeof(err)),
	                 CANARY_EDENIED);
	assert_int_equal(canary_link_check_url("tcp://127.0.0.1:7400", 1, err, sizeof(err)), 0);
	assert_int_equal(canary_link_check_url("ipc:///tmp/x.sock", 1, err, sizeof(err)), 0);
	assert_int_equal(canary_link_check_url("ws://127.0.0.1:80", 1, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_non_null(strstr(err, "ws://127.0.0.1:80"));
	assert_int_equal(canary_link_check_url("http://x", 1, err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(canary_link_check_url("", 1, err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(canary_link_check_url("tls+tcp://", 0, err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(canary_link_check_url("TCP://127.0.0.1:1", 1, err, sizeof(err)),
	                 CANARY_EINVAL);
	char longurl[CANARY_LINK_URL_MAX + 10];
	memset(longurl, 'a', sizeof(longurl));
	memcpy(longurl, "tls+tcp://", 10);
	longurl[sizeof(longurl) - 1] = '\0';
	assert_int_equal(canary_link_check_url(longurl, 0, err, sizeof(err)), CANARY_EINVAL);
}

static void
test_refusals_before_any_socket_work(void **state)
{
	nng_socket s;
	char err[CANARY_ERRLEN];
	char cert[128], key[128], ca[128];
	struct canary_tls_files tls = {cert, key, ca};

	(void)state;
	assert_int_equal(nng_respondent0_open(&s), 0);
	assert_int_equal(canary_link_dial(s, "tcp://127.0.0.1:1", 0, NULL, err, sizeof(err)),
	                 CANARY_EDENIED);
	/* tls+tcp without files */
	assert_int_equal(canary_link_dial(s, "tls+tcp://127.0.0.1:1", 0, NULL, err, sizeof(err)),
	                 CANARY_ETLS);
	/* a missing file is named */
	cert_path(cert, sizeof(cert), "client.pem");
	cert_path(key, sizeof(key), "client.key");
	cert_path(ca, sizeof(ca), "no-such-ca.pem");
	assert_int_equal(canary_link_dial(s, "tls+tcp://127.0.0.1:1", 0, &tls, err, sizeof(err)),
	                 CANARY_ETLS);
	assert_non_null(strstr(err, "no-such-ca.pem"));
	/* a key where a certificate belongs */
	cert_path(cert, sizeof(cert), "client.key");
	cert_path(ca, sizeof(ca), "ca.pem");
	assert_int_equal(canary_link_dial(s, "tls+tcp://127.0.0.1:1", 0, &tls, err, sizeof(err)),
	                 CANARY_ETLS);
	assert_non_null(strstr(err, "client.key"));
	/* a certificate that expired, and one not valid yet, are named with
	 * their dates */
	cert_path(cert, sizeof(cert), "expired.pem");
	cert_path(key, sizeof(key), "expired.key");
	assert_int_equal(canary_link_dial(s, "tls+tcp://127.0.0.1:1", 0, &tls, err, sizeof(err)),
	                 CANARY_ETLS);
	assert_non_null(strstr(err, "expired on 2000-12-31"));
	cert_path(cert, sizeof(cert), "future.pem");
	cert_path(key, sizeof(key), "future.key");
	assert_int_equal(canary_link_listen(s, "tls+tcp://127.0.0.1:0", 0, &tls, err, sizeof(err)),
	                 CANARY_ETLS);
	assert_non_null(strstr(err, "not valid before 2099-01-01"));
	assert_non_null(strstr(err, "future.pem"));
	/* a certificate with somebody else's key */
	cert_path(cert, sizeof(cert), "client.pem");
	cert_path(key, sizeof(key), "server.key");
	assert_int_equal(canary_link_listen(s, "tls+tcp://127.0.0.1:0", 0, &tls, err, sizeof(err)),
	                 CANARY_ETLS);
	assert_non_null(strstr(err, "not usable together"));
	nng_close(s);
}

/* ---- mutual TLS round trips -------------------------------------------- */

struct pair {
	nng_socket surveyor;
	nng_socket respondent;
};

static void
tls_files(struct canary_tls_files *t, char bufs[3][128], const char *cert, const char *key,
          const char *ca)
{
	cert_path(bufs[0], 128, cert);
	cert_path(bufs[1], 128, key);
	cert_path(bufs[2], 128, ca);
	t->cert = bufs[0];
	t->key = bufs[1];
	t->ca = bufs[2];
}

/* The controller side listens with the server certificate. */
static void
open_surveyor_as(struct pair *p, const char *url, const char *cert, const char *key)
{
	struct canary_tls_files t;
	char bufs[3][128];
	char err[CANARY_ERRLEN];

	tls_files(&t, bufs, cert, key, "ca.pem");
	assert_int_equal(nng_surveyor0_open(&p->surveyor), 0);
	assert_int_equal(nng_socket_set_ms(p->surveyor, NNG_OPT_SURVEYOR_SURVEYTIME, SURVEY_MS), 0);
	int rv = canary_link_listen(p->surveyor, url, 0, &t, err, sizeof(err));
	if (rv != 0) {
		fail_msg("listen: %s", err);
	}
}

static void
open_surveyor(struct pair *p, const char *url)
{
	open_surveyor_as(p, url, "server.pem", "server.key");
}

/* The respondent's side: answers one survey with "pong", on its own thread. */
static void *
answer_one(void *arg)
{
	struct pair *p = arg;
	char *buf = NULL;
	size_t len = 0;

	if (nng_recv(p->respondent, &buf, &len, NNG_FLAG_ALLOC) == 0) {
		nng_free(buf, len);
		nng_send(p->respondent, "pong", 5, 0);
	}
	return NULL;
}

/* Surveys up to `tries` times; 0 when one answer "pong" came back. */
static int
survey_once(struct pair *p, int tries)
{
	char *buf = NULL;
	size_t len = 0;
	int rv;

	for (int i = 0; i < tries; i++) {
		if (nng_send(p->surveyor, "ping", 5, 0) != 0) {
			return -1;
		}
		rv = nng_recv(p->surveyor, &buf, &len, NNG_FLAG_ALLOC);
		if (rv == 0) {
			int ok = len == 5 && strcmp(buf, "pong") == 0;
			nng_free(buf, len);
			return ok ? 0 : -1;
		}
		if (rv != NNG_ETIMEDOUT && rv != NNG_ESTATE) {
			return -1;
		}
	}
	return -1;
}

/* The agent's side: a respondent dialling url with cert/key and ca.pem, or,
 * with cert NULL, a client that verifies the server but presents no
 * certificate of its own. */
static void
open_respondent(struct pair *p, const char *url, const char *cert, const char *key, int recv_ms)
{
	struct canary_tls_files t;
	char bufs[3][128];
	char err[CANARY_ERRLEN];

	assert_int_equal(nng_respondent0_open(&p->respondent), 0);
	assert_int_equal(nng_socket_set_ms(p->respondent, NNG_OPT_RECVTIMEO, recv_ms), 0);
	if (cert != NULL) {
		tls_files(&t, bufs, cert, key, "ca.pem");
		/* Never fails for a peer that is down or refuses: it redials. */
		assert_int_equal(canary_link_dial(p->respondent, url, 0, &t, err, sizeof(err)), 0);
		return;
	}
	nng_tls_config *cfg;
	nng_dialer d;
	cert_path(bufs[2], sizeof(bufs[2]), "ca.pem");
	assert_int_equal(nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT), 0);
	assert_int_equal(nng_tls_config_ca_file(cfg, bufs[2]), 0);
	assert_int_equal(nng_tls_config_server_name(cfg, "127.0.0.1"), 0);
	assert_int_equal(nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED), 0);
	assert_int_equal(nng_dialer_create(&d, p->respondent, url), 0);
	assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg), 0);
	assert_int_equal(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
	nng_tls_config_free(cfg);
}

/* Surveys p (up to tries times) while a thread answers one survey; closes
 * both sockets. 0 when the answer came back. */
static int
survey_and_close(struct pair *p, int tries)
{
	pthread_t thr;
	int rv;

	assert_int_equal(pthread_create(&thr, NULL, answer_one, p), 0);
	rv = survey_once(p, tries);
	pthread_join(thr, NULL);
	nng_close(p->respondent);
	nng_close(p->surveyor);
	return rv;
}

/* A controller listening on a fresh port with srv_cert/srv_key, an agent
 * dialling it with cli_cert/cli_key (NULL: none); both trust ca.pem. 0 when
 * a survey got its answer. */
static int
survey_over_tls(const char *srv_cert, const char *srv_key, const char *cli_cert,
                const char *cli_key, int tries)
{
	struct pair p;
	char url[64];

	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", agent_test_free_port());
	open_surveyor_as(&p, url, srv_cert, srv_key);
	open_respondent(&p, url, cli_cert, cli_key, 2 * SURVEY_MS);
	return survey_and_close(&p, tries);
}

static void
test_mutual_tls_round_trip(void **state)
{
	(void)state;
	assert_int_equal(survey_over_tls("server.pem", "server.key", "client.pem", "client.key", 3),
	                 0);
}

static void
test_client_from_other_ca_refused(void **state)
{
	(void)state;
	/* The client trusts the right CA but holds a certificate of another. */
	assert_int_equal(survey_over_tls("server.pem", "server.key", "other.pem", "other.key", 2),
	                 -1);
}

static void
test_client_without_cert_refused(void **state)
{
	(void)state;
	assert_int_equal(survey_over_tls("server.pem", "server.key", NULL, NULL, 2), -1);
}

static void
test_server_from_other_ca_refused(void **state)
{
	(void)state;
	/* An impostor controller: a certificate for the right address that the
	 * agent's CA did not sign. */
	assert_int_equal(
	    survey_over_tls("other-server.pem", "other-server.key", "client.pem", "client.key", 2),
	    -1);
}

static void
test_server_for_another_name_refused(void **state)
{
	(void)state;
	/* Signed by the right CA, but naming "canary-agent", not 127.0.0.1. */
	assert_int_equal(survey_over_tls("client.pem", "client.key", "client.pem", "client.key", 2),
	                 -1);
}

static void
test_dial_before_listener_reconnects(void **state)
{
	struct pair p;
	char url[64];

	(void)state;
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", agent_test_free_port());
	/* Nobody listens yet: the dial must not fail, only retry. */
	open_respondent(&p, url, "client.pem", "client.key", 8 * SURVEY_MS);
	nng_msleep(300);
	open_surveyor(&p, url);
	/* The dialer's backoff (100 ms doubling, 5 s at most) finds it. */
	assert_int_equal(survey_and_close(&p, 5), 0);
}

static void
test_receive_cap(void **state)
{
	nng_socket sv, rs;
	char url[64];
	char err[CANARY_ERRLEN];
	char *buf = NULL;
	size_t len = 0;
	size_t big = CANARY_LINK_RECV_MAX + 1024;
	char *payload = calloc(1, big);

	(void)state;
	assert_non_null(payload);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", agent_test_free_port());
	assert_int_equal(nng_surveyor0_open(&sv), 0);
	assert_int_equal(nng_respondent0_open(&rs), 0);
	assert_int_equal(nng_socket_set_ms(rs, NNG_OPT_RECVTIMEO, 1000), 0);
	assert_int_equal(canary_link_listen(rs, url, 1, NULL, err, sizeof(err)), 0);
	assert_int_equal(nng_dial(sv, url, NULL, 0), 0);
	nng_msleep(100);
	/* Over the cap: the receiver drops it (and the connection). */
	assert_int_equal(nng_send(sv, payload, big, 0), 0);
	assert_int_equal(nng_recv(rs, &buf, &len, NNG_FLAG_ALLOC), NNG_ETIMEDOUT);
	nng_close(sv);
	nng_close(rs);
	free(payload);
}

/* ---- event queue ------------------------------------------------------- */

#define EVQ_N 2000

struct evq_test {
	struct event_base *base;
	struct canary_evq *q;
	uint32_t next; /* expected sequence */
	int order_ok;
	pthread_t main_thread;
	int on_loop_thread;
};

static void
evq_cb(nng_msg *msg, void *arg)
{
	struct evq_test *t = arg;
	uint32_t v = 0;

	if (nng_msg_trim_u32(msg, &v) != 0 || v != t->next) {
		t->order_ok = 0;
	}
	if (!pthread_equal(pthread_self(), t->main_thread)) {
		t->on_loop_thread = 0;
	}
	t->next++;
	nng_msg_free(msg);
	if (t->next == EVQ_N) {
		event_base_loopbreak(t->base);
	}
}

static void *
evq_producer(void *arg)
{
	struct evq_test *t = arg;
	for (uint32_t i = 0; i < EVQ_N; i++) {
		nng_msg *m;
		if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append_u32(m, i) != 0) {
			return NULL;
		}
		canary_evq_push(t->q, m);
		if (i % 256 == 0) {
			nng_msleep(1);
		}
	}
	return NULL;
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void
test_evq_order_and_thread(void **state)
{
	struct evq_test t;
	pthread_t thr;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.order_ok = 1;
	t.on_loop_thread = 1;
	t.main_thread = pthread_self();
	t.base = event_base_new();
	assert_non_null(t.base);
	assert_int_equal(canary_evq_new(t.base, evq_cb, &t, &t.q), 0);
	/* The queue's event alone does not keep a loop running (as the
	 * programs' signal events do); a guard timer does, and bounds the test. */
	struct event *guard = evtimer_new(t.base, guard_cb, t.base);
	struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
	assert_int_equal(evtimer_add(guard, &tv), 0);
	assert_int_equal(pthread_create(&thr, NULL, evq_producer, &t), 0);
	assert_int_equal(event_base_dispatch(t.base), 0);
	pthread_join(thr, NULL);
	event_free(guard);
	assert_int_equal(t.next, EVQ_N);
	assert_true(t.order_ok);
	assert_true(t.on_loop_thread);
	assert_int_equal(canary_evq_dropped(t.q), 0);
	canary_evq_free(t.q);
	event_base_free(t.base);
}

#define EVQ_PRODUCERS 4
#define EVQ_EACH      1500

struct evq_multi {
	struct event_base *base;
	struct canary_evq *q;
	uint32_t next[EVQ_PRODUCERS]; /* expected sequence per producer */
	int order_ok;
	int total;
	pthread_barrier_t start;
};

struct evq_producer_arg {
	struct evq_multi *t;
	uint32_t id;
};

static void
evq_multi_cb(nng_msg *msg, void *arg)
{
	struct evq_multi *t = arg;
	uint32_t id = 0, seq = 0;

	if (nng_msg_trim_u32(msg, &id) != 0 || nng_msg_trim_u32(msg, &seq) != 0 ||
	    id >= EVQ_PRODUCERS || seq != t->next[id]) {
		t->order_ok = 0;
	} else {
		t->next[id]++;
	}
	nng_msg_free(msg);
	if (++t->total == EVQ_PRODUCERS * EVQ_EACH) {
		event_base_loopbreak(t->base);
	}
}

/* Pushes in bursts with pauses, so the queue runs empty between them and
 * every burst needs a fresh wake-up of the loop. */
static void *
evq_multi_producer(void *arg)
{
	struct evq_producer_arg *a = arg;

	pthread_barrier_wait(&a->t->start);
	for (uint32_t i = 0; i < EVQ_EACH; i++) {
		nng_msg *m;
		if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append_u32(m, a->id) != 0 ||
		    nng_msg_append_u32(m, i) != 0) {
			return NULL;
		}
		canary_evq_push(a->t->q, m);
		if (i % 100 == 99) {
			nng_msleep(1);
		}
	}
	return NULL;
}

/* Several nng threads at once: nothing is lost (a lost wake-up would leave
 * messages waiting until the guard timer), each thread's messages arrive in
 * its order, none dropped. */
static void
test_evq_many_producers(void **state)
{
	struct evq_multi t;
	struct evq_producer_arg args[EVQ_PRODUCERS];
	pthread_t thr[EVQ_PRODUCERS];
	struct timeval tv = {.tv_sec = 20, .tv_usec = 0};

	(void)state;
	memset(&t, 0, sizeof(t));
	t.order_ok = 1;
	t.base = event_base_new();
	assert_non_null(t.base);
	assert_int_equal(canary_evq_new(t.base, evq_multi_cb, &t, &t.q), 0);
	assert_int_equal(pthread_barrier_init(&t.start, NULL, EVQ_PRODUCERS), 0);
	struct event *guard = evtimer_new(t.base, guard_cb, t.base);
	assert_int_equal(evtimer_add(guard, &tv), 0);
	for (int i = 0; i < EVQ_PRODUCERS; i++) {
		args[i].t = &t;
		args[i].id = (uint32_t)i;
		assert_int_equal(pthread_create(&thr[i], NULL, evq_multi_producer, &args[i]), 0);
	}
	assert_int_equal(event_base_dispatch(t.base), 0);
	for (int i = 0; i < EVQ_PRODUCERS; i++) {
		pthread_join(thr[i], NULL);
	}
	event_free(guard);
	assert_int_equal(t.total, EVQ_PRODUCERS * EVQ_EACH);
	assert_true(t.order_ok);
	assert_int_equal(canary_evq_dropped(t.q), 0);
	pthread_barrier_destroy(&t.start);
	canary_evq_free(t.q);
	event_base_free(t.base);
}

static void
count_cb(nng_msg *msg, void *arg)
{
	(*(int *)arg)++;
	nng_msg_free(msg);
}

static void
test_evq_cap_and_free(void **state)
{
	struct event_base *base = event_base_new();
	struct canary_evq *q;
	int delivered = 0;

	(void)state;
	assert_int_equal(canary_evq_new(base, count_cb, &delivered, &q), 0);
	/* The loop is not running: the queue fills, then drops. */
	for (int i = 0; i < CANARY_EVQ_MAX + 5; i++) {
		nng_msg *m;
		assert_int_equal(nng_msg_alloc(&m, 16), 0);
		canary_evq_push(q, m);
	}
	assert_int_equal(canary_evq_dropped(q), 5);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
	assert_int_equal(delivered, CANARY_EVQ_BATCH); /* one batch per wake-up */
	canary_evq_free(q); /* frees what is still queued (ASan checks) */
	canary_evq_free(NULL);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_refusals_before_any_socket_work),
	    cmocka_unit_test(test_mutual_tls_round_trip),
	    cmocka_unit_test(test_client_from_other_ca_refused),
	    cmocka_unit_test(test_client_without_cert_refused),
	    cmocka_unit_test(test_server_from_other_ca_refused),
	    cmocka_unit_test(test_server_for_another_name_refused),
	    cmocka_unit_test(test_dial_before_listener_reconnects),
	    cmocka_unit_test(test_receive_cap),
	    cmocka_unit_test(test_evq_order_and_thread),
	    cmocka_unit_test(test_evq_many_producers),
	    cmocka_unit_test(test_evq_cap_and_free),
	};
	if (evthread_use_pthreads() != 0) {
		return 1;
	}
	return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
