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

#include "engine.h"
#include "err.h"

/* ---- the target ------------------------------------------------------- */

struct target {
	int lfd;
	int port;
	pthread_t thr;
	pthread_mutex_t mu;
	int connections; /* accepted */
	int requests;    /* request heads read */
};

static struct target tgt;

static void
sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0) {
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
respond(int fd, const char *path)
{
	char head[512];
	const char *vh = "x-canary-middleware-version: 00000000-0000-4000-8000-0000000000a0\r\n"
	                 "x-canary-server-version: 00000000-0000-4000-8000-0000000000b0\r\n";

	if (strcmp(path, "/ok") == 0) {
		snprintf(
		    head, sizeof(head),
		    "HTTP/1.1 200 OK\r\n%sx-opennext-cache: HIT\r\nContent-Length: 5\r\n\r\nhello",
		    vh);
		return write_all(fd, head, strlen(head));
	}
	if (strcmp(path, "/slow-head") == 0) {
		sleep_ms(800);
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
		return write_all(fd, head, strlen(head));
	}
	if (strcmp(path, "/reset") == 0) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		return -1; /* the caller closes: an RST */
	}
	if (strcmp(path, "/slow-body") == 0) {
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
		if (write_all(fd, head, strlen(head)) != 0) {
			return -1;
		}
		for (int i = 0; i < 10; i++) {
			sleep_ms(30);
			if (write_all(fd, "x", 1) != 0) {
				return -1;
			}
		}
		return 0;
	}
	if (strcmp(path, "/big-headers") == 0) {
		char line[1024];
		memset(line, 'a', sizeof(line));
		memcpy(line, "x-filler: ", 10);
		line[sizeof(line) - 2] = '\r';
		line[sizeof(line) - 1] = '\n';
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
		if (write_all(fd, head, strlen(head)) != 0) {
			return -1;
		}
		for (int i = 0; i < 200; i++) { /* 200 KiB of headers */
			if (write_all(fd, line, sizeof(line)) != 0) {
				return -1;
			}
		}
		return write_all(fd, "\r\nok", 4);
	}
	if (strcmp(path, "/big-body") == 0) {
		size_t n = 1024 * 1024;
		char *body = malloc(n);
		int rv;
		if (body == NULL) {
			return -1;
		}
		memset(body, 'b', n);
		memcpy(body + n - 6, "NEEDLE", 6);
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n%sContent-Length: %zu\r\n\r\n", vh,
		         n);
		rv = write_all(fd, head, strlen(head));
		if (rv == 0) {
			rv = write_all(fd, body, n);
		}
		free(body);
		return rv;
	}
	if (strcmp(path, "/redirect") == 0) {
		snprintf(head, sizeof(head),
		         "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n");
		return write_all(fd, head, strlen(head));
	}
	snprintf(head, sizeof(head), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	return write_all(fd, head, strlen(head));
}

/* The end of a request head in buf, or NULL (memmem is not POSIX). */
static char *
head_end(char *buf, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++) {
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
			return buf + i;
		}
	}
	return NULL;
}

static void *
conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8192];
	size_t len = 0;

	for (;;) {
		char *end = head_end(buf, len);
		if (end == NULL) {
			ssize_t r;
			if (len == sizeof(buf)) {
				break;
			}
			r = recv(fd, buf + len, sizeof(buf) - len, 0);
			if (r <= 0) {
				break;
			}
			len += (size_t)r;
			continue;
		}
		char path[256] = "";
		sscanf(buf, "%*s %255s", path);
		pthread_mutex_lock(&tgt.mu);
		tgt.requests++;
		pthread_mutex_unlock(&tgt.mu);
		size_t used = (size_t)(end + 4 - buf);
		memmove(buf, buf + used, len - used);
		len -= used;
		if (respond(fd, path) != 0) {
			break;
		}
	}
	close(fd);
	return NULL;
}

static void *
accept_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_t t;
		int fd = accept(tgt.lfd, NULL, NULL);
		if (fd < 0) {
			return NULL; /* listener shut down */
		}
		pthread_mutex_lock(&tgt.mu);
		tgt.connections++;
		pthread_mutex_unlock(&tgt.mu);
		if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) != 0) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
}

/* Binds port 0 on 127.0.0.1 and reads the port back: no fixed ports. */
static int
target_start(void **state)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int one = 1;

	(void)state;
	memset(&tgt, 0, sizeof(tgt));
	pthread_mutex_init(&tgt.mu, NULL);
	tgt.lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(tgt.lfd >= 0);
	setsockopt(tgt.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(tgt.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(tgt.lfd, 128), 0);
	assert_int_equal(getsockname(tgt.lfd, (struct sockaddr *)&a, &al), 0);
	tgt.port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&tgt.thr, NULL, accept_main, NULL), 0);
	return 0;
}

static int
target_stop(void **state)
{
	(void)state;
	shutdown(tgt.lfd, SHUT_RDWR);
	close(tgt.lfd);
	pthread_join(tgt.thr, NULL);
	return 0;
}

static void
target_counts(int *conns, int *reqs)
{
	pthread_mutex_lock(&tgt.mu);
	*conns = tgt.connections;
	*reqs = tgt.requests;
	tgt.connections = 0;
	tgt.requests = 0;
	pthread_mutex_unlock(&tgt.mu);
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
	snprintf(buf, n, "http://%s:%d%s", host, tgt.port, path);
}

/* ---- tests ------------------------------------------------------------- */

static void
test_keepalive_and_headers(void **state)
{
	char url[128];
	int conns, reqs;

	(void)state;
	target_counts(&conns, &reqs);
	url_for(url, sizeof(url), "127.0.0.1", "/ok");
	struct run *r = run_requests(url, 60, 4, 2000, NULL, 0, 0);
	for (int i = 0; i < 60; i++) {
		assert_int_equal(r->res[i].status, 200);
		assert_string_equal(r->hdr[i][0], "00000000-0000-4000-8000-0000000000a0");
		assert_string_equal(r->hdr[i][1], "00000000-0000-4000-8000-0000000000b0");
		assert_string_equal(r->hdr[i][2], "HIT");
		assert_true(r->res[i].total_us >= r->res[i].first_byte_us);
	}
	target_counts(&conns, &reqs);
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
	target_counts(&conns, &reqs);
	url_for(url, sizeof(url), "127.0.0.1", "/big-body");
	struct run *r = run_requests(url, 3, 1, 5000, NULL, 1, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r->res[i].status, 200);
		assert_int_equal(r->res[i].body_len, 4096); /* body_cap */
		assert_true(r->res[i].body_truncated);
		assert_string_not_equal(r->body_tail[i], "NEEDLE"); /* beyond the cap */
	}
	/* The rest of the body was read and dropped: the connection stayed usable. */
	target_counts(&conns, &reqs);
	assert_int_equal(conns, 1);
}

static void
test_redirect_not_followed(void **state)
{
	char url[128];
	int conns, reqs;
	(void)state;
	target_counts(&conns, &reqs);
	url_for(url, sizeof(url), "127.0.0.1", "/redirect");
	struct run *r = run_requests(url, 1, 1, 2000, NULL, 0, 0);
	assert_int_equal(r->res[0].status, 302);
	target_counts(&conns, &reqs);
	assert_int_equal(reqs, 1);
	/* Followed when asked. */
	r = run_requests(url, 1, 1, 2000, NULL, 0, 1);
	assert_int_equal(r->res[0].status, 200);
	target_counts(&conns, &reqs);
	assert_int_equal(reqs, 2);
}

static void
test_connection_refused(void **state)
{
	char url[128];
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	/* A port that was free a moment ago and has no listener. */
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", ntohs(a.sin_port));
	close(fd);
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
	snprintf(ct, sizeof(ct), "docs.example.invalid:80:127.0.0.1:%d", tgt.port);
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
	    cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_connect_to),
	    cmocka_unit_test(test_errclass_mapping),
	    cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, target_start, target_stop);
}
