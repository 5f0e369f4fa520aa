/*
 * test_agent_engine.c: the libcurl-on-libevent engine against a small HTTP
 * target written here (raw sockets, one thread per connection), so each
 * misbehaviour is exact: keep-alive reuse, timeouts, resets, slow bodies,
 * huge headers and bodies, a redirect, refused connections, --connect-to.
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
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent_port.h"
#include "agent_target.h"
#include "engine.h"
#include "err.h"

/* ---- the target (tests/e2e/agent_target.c) ----------------------------- */

static int port;

static int
target_start(void **state)
{
	(void)state;
	port = agent_target_start();
	return port > 0 ? 0 : -1;
}

static int
target_stop(void **state)
{
	(void)state;
	agent_target_stop();
	return 0;
}

/* ---- a feed of N requests to one URL ---------------------------------- */

#define MAX_RESULTS 64

struct run {
	struct event_base *base;
	CURLU *url;
	long timeout_ms;
	int follow;
	int want_body;
	int n, started, done;
	struct agent_result res[MAX_RESULTS];
	char hdr[MAX_RESULTS][3][128];
	int has_hdr[MAX_RESULTS][3];
	char body_tail[MAX_RESULTS][8];
	int max_inflight;
	struct agent_engine *e;
};

static int
feed_next(void *arg, struct agent_request *req)
{
	struct run *r = arg;
	int inflight = agent_engine_inflight(r->e) + 1;

	if (r->started >= r->n) {
		return 0;
	}
	if (inflight > r->max_inflight) {
		r->max_inflight = inflight;
	}
	req->url = r->url;
	req->timeout_ms = r->timeout_ms;
	req->follow = r->follow;
	req->want_body = r->want_body;
	req->header_names[0] = "x-canary-middleware-version";
	req->header_names[1] = "x-canary-server-version";
	req->header_names[2] = "x-opennext-cache";
	req->tag_i = r->started++;
	return 1;
}

static void
feed_done(void *arg, const struct agent_request *req, const struct agent_result *res)
{
	struct run *r = arg;
	int i = (int)req->tag_i;

	if (i < MAX_RESULTS) {
		r->res[i] = *res;
		for (int h = 0; h < 3; h++) {
			if (res->header[h] != NULL) {
				snprintf(r->hdr[i][h], sizeof(r->hdr[i][h]), "%s", res->header[h]);
				r->has_hdr[i][h] = 1;
			}
			r->res[i].header[h] = NULL; /* only valid during the call */
		}
		if (res->body != NULL && res->body_len >= 6) {
			memcpy(r->body_tail[i], res->body + res->body_len - 6, 6);
		}
		r->res[i].body = NULL;
	}
	if (++r->done == r->n) {
		event_base_loopbreak(r->base);
	}
}

/* Runs n requests for url at the given concurrency; returns the run. */
static struct run *
run_requests(const char *url, int n, int concurrency, long timeout_ms,
             struct curl_slist *connect_to, int want_body, int follow)
{
	static struct run r;
	struct agent_engine_opts o = {
	    .concurrency = concurrency, .body_cap = 4096, .connect_to = connect_to};
	struct agent_engine_feed f = {.next = feed_next, .done = feed_done, .arg = &r};
	char err[256];

	memset(&r, 0, sizeof(r));
	r.base = event_base_new();
	assert_non_null(r.base);
	r.url = curl_url();
	assert_int_equal(curl_url_set(r.url, CURLUPART_URL, url, 0), CURLUE_OK);
	r.n = n;
	r.timeout_ms = timeout_ms;
	r.want_body = want_body;
	r.follow = follow;
	assert_int_equal(agent_engine_new(r.base, &o, &r.e, err, sizeof(err)), 0);
	assert_int_equal(agent_engine_run(r.e, &f), 0);
	assert_int_equal(event_base_dispatch(r.base), 0);
	assert_int_equal(r.done, n);
	assert_int_equal(agent_engine_inflight(r.e), 0);
	agent_engine_free(r.e);
	curl_url_cleanup(r.url);
	event_base_free(r.base);
	return &r;
}

static void
url_for(char *buf, size_t n, const char *host, const char *path)
{
	snprintf(buf, n, "http://%s:%d%s", host, port, path);
}

/* ---- tests ------------------------------------------------------------- */

static void
test_keepalive_and_headers(void **state)
{
	char url[128];
	int conns, reqs;

	(void)state;
	agent_target_counts(&conns, &reqs);
	url_for(url, sizeof(url), "127.0.0.1", "/ok");
	struct run *r = run_requests(url, 60, 4, 2000, NULL, 0, 0);
	for (int i = 0; i < 60; i++) {
		assert_int_equal(r->res[i].status, 200);
		assert_string_equal(r->hdr[i][0], "00000000-0000-4000-8000-0000000000a0");
		assert_string_equal(r->hdr[i][1], "00000000-0000-4000-8000-0000000000b0");
		assert_string_equal(r->hdr[i][2], "HIT");
		assert_true(r->res[i].total_us >= r->res[i].first_byte_us);
	}
	agent_target_counts(&conns, &reqs);
	assert_int_equal(reqs, 60);
	/* Connections are reused: at most one per slot. */
	assert_true(conns >= 1 && conns <= 4);
	assert_true(r->max_inflight <= 4);
}

static void
test_timeout(void **state)
{
	char url[128];
	(void)state;
	url_for(url, sizeof(url), "127.0.0.1", "/slow-head");
	struct run *r = run_requests(url, 2, 2, 200, NULL, 0, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r->res[i].status, 0);
		assert_int_equal(r->res[i].errclass, CANARY_ERRCLASS_TIMEOUT);
		assert_true(strlen(r->res[i].error) > 0);
	}
}

static void
test_reset(void **state)
{
	char url[128];
	(void)state;
	url_for(url, sizeof(url), "127.0.0.1", "/reset");
	struct run *r = run_requests(url, 3, 1, 2000, NULL, 0, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r->res[i].status, 0);
		assert_int_equal(r->res[i].errclass, CANARY_ERRCLASS_HTTP);
	}
}

static void
test_slow_body(void **state)
{
	char url[128];
	(void)state;
	url_for(url, sizeof(url), "127.0.0.1", "/slow-body");
	struct run *r = run_requests(url, 1, 1, 5000, NULL, 1, 0);
	assert_int_equal(r->res[0].status, 200);
	assert_int_equal(r->res[0].body_len, 10);
	/* First byte comes at once; the end about 300 ms later. */
	assert_true(r->res[0].total_us >= 250000);
	assert_true(r->res[0].first_byte_us < r->res[0].total_us / 2);
}

static void
test_huge_headers_capped(void **state)
{
	char url[128];
	(void)state;
	url_for(url, sizeof(url), "127.0.0.1", "/big-headers");
	struct run *r = run_requests(url, 1, 1, 5000, NULL, 0, 0);
	assert_int_equal(r->res[0].status, 0);
	assert_int_equal(r->res[0].errclass, CANARY_ERRCLASS_HTTP);
	assert_non_null(strstr(r->res[0].error, "headers over"));
}

static void
test_huge_body_capped(void **state)
{
	char url[128];
	int conns, reqs;
	(void)state;
	agent_target_counts(&conns, &reqs);
	url_for(url, sizeof(url), "127.0.0.1", "/big-body");
	struct run *r = run_requests(url, 3, 1, 5000, NULL, 1, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r->res[i].status, 200);
		assert_int_equal(r->res[i].body_len, 4096); /* body_cap */
		assert_true(r->res[i].body_truncated);
		assert_string_not_equal(r->body_tail[i], "NEEDLE"); /* beyond the cap */
	}
	/* The rest of the body was read and dropped: the connection stayed usable. */
	agent_target_counts(&conns, &reqs);
	assert_int_equal(conns, 1);
}

static void
test_redirect_not_followed(void **state)
{
	char url[128];
	int conns, reqs;
	(void)state;
	agent_target_counts(&conns, &reqs);
	url_for(url, sizeof(url), "127.0.0.1", "/redirect");
	struct run *r = run_requests(url, 1, 1, 2000, NULL, 0, 0);
	assert_int_equal(r->res[0].status, 302);
	agent_target_counts(&conns, &reqs);
	assert_int_equal(reqs, 1);
	/* Followed when asked. */
	r = run_requests(url, 1, 1, 2000, NULL, 0, 1);
	assert_int_equal(r->res[0].status, 200);
	agent_target_counts(&conns, &reqs);
	assert_int_equal(reqs, 2);
}

/* Header values come from the final response's head: not from a 1xx
 * before it, not from a longer name sharing the prefix; the name matches in
 * any case, the first of two wins, whitespace around the value is trimmed.
 * An absent header is NULL. */
static void
test_header_values(void **state)
{
	char url[128];
	(void)state;
	url_for(url, sizeof(url), "127.0.0.1", "/tricky-headers");
	struct run *r = run_requests(url, 2, 1, 2000, NULL, 0, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r->res[i].status, 200);
		assert_int_equal(r->has_hdr[i][0], 1);
		assert_string_equal(r->hdr[i][0], AGENT_TARGET_M0);
		assert_string_equal(r->hdr[i][1], AGENT_TARGET_S0);
		assert_int_equal(r->has_hdr[i][2], 0);
	}
	/* Followed redirect: the values are those of the final answer. */
	url_for(url, sizeof(url), "127.0.0.1", "/redirect");
	r = run_requests(url, 1, 1, 2000, NULL, 0, 1);
	assert_int_equal(r->res[0].status, 200);
	assert_string_equal(r->hdr[0][0], AGENT_TARGET_M0);
	assert_string_equal(r->hdr[0][2], "HIT");
}

/* A status outside 100..599 is an answer, handed over with its headers. */
static void
test_status_999_is_an_answer(void **state)
{
	char url[128];
	(void)state;
	url_for(url, sizeof(url), "127.0.0.1", "/status999");
	struct run *r = run_requests(url, 2, 1, 2000, NULL, 0, 0);
	assert_int_equal(r->res[0].status, 999);
	assert_int_equal(r->res[1].status, 999);
	assert_string_equal(r->hdr[0][0], AGENT_TARGET_M0);
}

static void
test_connection_refused(void **state)
{
	char url[128];

	(void)state;
	/* A port that was free a moment ago and has no listener. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", agent_test_free_port());
	struct run *r = run_requests(url, 2, 2, 2000, NULL, 0, 0);
	assert_int_equal(r->res[0].status, 0);
	assert_int_equal(r->res[0].errclass, CANARY_ERRCLASS_CONNECT);
}

static void
test_connect_to(void **state)
{
	char url[128];
	char ct[128];
	struct curl_slist *l;
	(void)state;
	/* The production name does not resolve; --connect-to points it here. */
	snprintf(url, sizeof(url), "http://docs.example.invalid/ok");
	snprintf(ct, sizeof(ct), "docs.example.invalid:80:127.0.0.1:%d", port);
	l = curl_slist_append(NULL, ct);
	struct run *r = run_requests(url, 3, 2, 2000, l, 0, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r->res[i].status, 200);
	}
	curl_slist_free_all(l);
}

static void
test_errclass_mapping(void **state)
{
	(void)state;
	assert_int_equal(agent_engine_errclass(CURLE_COULDNT_RESOLVE_HOST), CANARY_ERRCLASS_DNS);
	assert_int_equal(agent_engine_errclass(CURLE_COULDNT_CONNECT), CANARY_ERRCLASS_CONNECT);
	assert_int_equal(agent_engine_errclass(CURLE_OPERATION_TIMEDOUT), CANARY_ERRCLASS_TIMEOUT);
	assert_int_equal(agent_engine_errclass(CURLE_PEER_FAILED_VERIFICATION),
	                 CANARY_ERRCLASS_TLS);
	assert_int_equal(agent_engine_errclass(CURLE_SSL_CONNECT_ERROR), CANARY_ERRCLASS_TLS);
	assert_int_equal(agent_engine_errclass(CURLE_GOT_NOTHING), CANARY_ERRCLASS_HTTP);
	assert_int_equal(agent_engine_errclass(CURLE_RECV_ERROR), CANARY_ERRCLASS_HTTP);
}

/* One transfer a minute prunes libcurl's DNS cache; the rest keep it. */
static void
test_dns_prune_schedule(void **state)
{
	time_t last = 1000;

	(void)state;
	assert_int_equal(agent_engine_dns_timeout(&last, 1000), -1);
	assert_int_equal(agent_engine_dns_timeout(&last, 1000 + AGENT_DNS_CACHE_S - 1), -1);
	assert_int_equal(last, 1000);
	assert_int_equal(agent_engine_dns_timeout(&last, 1000 + AGENT_DNS_CACHE_S),
	                 AGENT_DNS_CACHE_S);
	assert_int_equal(last, 1000 + AGENT_DNS_CACHE_S);
	/* Only that one transfer: the next ones keep entries again. */
	assert_int_equal(agent_engine_dns_timeout(&last, 1000 + AGENT_DNS_CACHE_S), -1);
	assert_int_equal(agent_engine_dns_timeout(&last, 1000 + 2 * AGENT_DNS_CACHE_S - 1), -1);
	/* A long idle gap prunes once, not once per minute missed. */
	assert_int_equal(agent_engine_dns_timeout(&last, 1000 + 10 * AGENT_DNS_CACHE_S),
	                 AGENT_DNS_CACHE_S);
	assert_int_equal(agent_engine_dns_timeout(&last, 1000 + 10 * AGENT_DNS_CACHE_S + 1), -1);
}

static void
test_bad_options(void **state)
{
	struct event_base *base = event_base_new();
	struct agent_engine *e = NULL;
	struct agent_engine_opts o = {.concurrency = 0, .body_cap = 10};
	char err[256];
	(void)state;
	assert_int_equal(agent_engine_new(base, &o, &e, err, sizeof(err)), CANARY_EINVAL);
	assert_null(e);
	assert_non_null(strstr(err, "concurrency"));
	o.concurrency = AGENT_MAX_CONCURRENCY + 1;
	assert_int_equal(agent_engine_new(base, &o, &e, err, sizeof(err)), CANARY_EINVAL);
	agent_engine_free(NULL);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keepalive_and_headers),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_slow_body),
	    cmocka_unit_test(test_huge_headers_capped),
	    cmocka_unit_test(test_huge_body_capped),
	    cmocka_unit_test(test_redirect_not_followed),
	    cmocka_unit_test(test_header_values),
	    cmocka_unit_test(test_status_999_is_an_answer),
	    cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_connect_to),
	    cmocka_unit_test(test_errclass_mapping),
	    cmocka_unit_test(test_dns_prune_schedule),
	    cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, target_start, target_stop);
}
