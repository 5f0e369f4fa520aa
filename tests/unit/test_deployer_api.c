/* test_deployer_api.c: the api backend (and httpc under it) against a
 * small evhttp server on 127.0.0.1 in the same loop: envelopes, retries of
 * 5xx and 429 with Retry-After, the deployment POST's narrower retry,
 * malformed answers, error envelopes, the token kept out of errors, body
 * caps, the direct multipart upload and the upload through wrangler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "deployer.h"
#include "httpc.h"

#ifndef CANARY_WRANGLER_FIXTURES
#error "CANARY_WRANGLER_FIXTURES must name tests/unit/fixtures/wrangler"
#endif

#define TOKEN      "tok-5ecret-value-0123456789"
#define ACCT       "0123456789abcdef0123456789abcdef"
#define ID_A       "92c25d1a-816b-46a7-8cdc-46a34ad69aad"
#define ID_B       "2a9eda0d-85e2-4c68-9ed7-d3330f77f3be"
#define DEADLINE_S 20
#define MAX_STEPS  8

/* One scripted answer. */
struct step {
	int status;
	const char *retry_after; /* NULL: no header */
	const char *body;
	int hold;        /* never answer */
	size_t big_body; /* > 0: answer with this many bytes of JSON-ish filler */
};

/* One request as the server saw it. */
struct seen {
	char method[8];
	char uri[512];
	char auth[128];
	char ctype[128];
	char *body;
	size_t body_len;
	double at;
};

struct srv {
	struct event_base *base;
	struct evhttp *http;
	int port;
	struct step steps[MAX_STEPS];
	int n_steps;
	struct seen seen[MAX_STEPS];
	int n_seen;
	char *big;
};

struct ctx {
	struct srv srv;
	struct deployer *d;
	int calls;
	struct deployer_result res;
	double t0;
};

static double
now_s(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void
srv_handle(struct evhttp_request *req, void *arg)
{
	struct srv *s = arg;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *ib = evhttp_request_get_input_buffer(req);
	struct evbuffer *out;
	struct seen *r;
	const char *h;
	int i = s->n_seen;

	if (i >= MAX_STEPS) {
		evhttp_send_error(req, 500, "too many requests for the script");
		return;
	}
	r = &s->seen[s->n_seen++];
	memset(r, 0, sizeof(*r));
	r->at = now_s();
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		strcpy(r->method, "GET");
		break;
	case EVHTTP_REQ_POST:
		strcpy(r->method, "POST");
		break;
	default:
		strcpy(r->method, "OTHER");
	}
	snprintf(r->uri, sizeof(r->uri), "%s", evhttp_request_get_uri(req));
	h = evhttp_find_header(in, "Authorization");
	snprintf(r->auth, sizeof(r->auth), "%s", h != NULL ? h : "");
	h = evhttp_find_header(in, "Content-Type");
	snprintf(r->ctype, sizeof(r->ctype), "%s", h != NULL ? h : "");
	r->body_len = evbuffer_get_length(ib);
	r->body = calloc(1, r->body_len + 1);
	evbuffer_copyout(ib, r->body, r->body_len);
	if (i >= s->n_steps) {
		evhttp_send_error(req, 500, "script exhausted");
		return;
	}
	if (s->steps[i].hold) {
		return; /* freed with the server */
	}
	out = evbuffer_new();
	if (s->steps[i].big_body > 0) {
		s->big = malloc(s->steps[i].big_body);
		memset(s->big, ' ', s->steps[i].big_body);
		evbuffer_add(out, s->big, s->steps[i].big_body);
	} else {
		evbuffer_add(out, s->steps[i].body, strlen(s->steps[i].body));
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	if (s->steps[i].retry_after != NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
		                  s->steps[i].retry_after);
	}
	evhttp_send_reply(req, s->steps[i].status, "X", out);
	evbuffer_free(out);
}

static void
on_result(const struct deployer_result *res, void *arg)
{
	struct ctx *c = arg;

	c->calls++;
	c->res = *res;
	event_base_loopbreak(c->srv.base);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void
base_url(struct ctx *c, char *buf, size_t len)
{
	snprintf(buf, len, "http://127.0.0.1:%d/client/v4/", c->srv.port);
}

/* setup: the server on a free port (bound to port 0, read back) with the
 * given script, and an api deployer pointed at it. */
static void
setup(struct ctx *c, const struct step *steps, int n, const char *const *upload_argv,
      int upload_argc, const struct deployer_api_modules *mods, int n_mods, int timeout_s)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char url[128], err[CANARY_ERRLEN];

	memset(c, 0, sizeof(*c));
	c->srv.base = event_base_new();
	c->srv.http = evhttp_new(c->srv.base);
	assert_non_null(c->srv.http);
	bs = evhttp_bind_socket_with_handle(c->srv.http, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl),
	                 0);
	c->srv.port = ntohs(sin.sin_port);
	evhttp_set_gencb(c->srv.http, srv_handle, &c->srv);
	assert_true(n <= MAX_STEPS);
	memcpy(c->srv.steps, steps, (size_t)n * sizeof(*steps));
	c->srv.n_steps = n;
	base_url(c, url, sizeof(url));
	if (deployer_api_new(c->srv.base, url, ACCT, TOKEN, upload_argv, upload_argc, mods, n_mods,
	                     timeout_s, &c->d, err, sizeof(err)) != 0) {
		fail_msg("deployer_api_new: %s", err);
	}
	assert_string_equal(c->d->ops->name, "api");
}

static void
wait_result(struct ctx *c)
{
	struct timeval tv = {DEADLINE_S, 0};
	struct event *dl = evtimer_new(c->srv.base, on_deadline, c->srv.base);

	assert_int_equal(c->calls, 0);
	evtimer_add(dl, &tv);
	event_base_dispatch(c->srv.base);
	event_free(dl);
	assert_int_equal(c->calls, 1);
	/* The token never reaches a message. */
	assert_null(strstr(c->res.err, TOKEN));
}

static void
teardown_ctx(struct ctx *c)
{
	deployer_free(c->d);
	evhttp_free(c->srv.http);
	for (int i = 0; i < c->srv.n_seen; i++) {
		free(c->srv.seen[i].body);
	}
	free(c->srv.big);
	event_base_free(c->srv.base);
}

static const struct deployer_worker mw = {"middleware", "wrangler.jsonc"};

#define DEPLOYMENTS_OK                                                                             \
	"{\"success\":true,\"errors\":[],\"messages\":[],\"result\":{\"deployments\":["            \
	"{\"id\":\"b0b679b4-f526-4d00-bfb4-8d48e7c167bb\",\"source\":\"wrangler\","                \
	"\"strategy\":\"percentage\",\"versions\":[{\"version_id\":\"" ID_B                        \
	"\",\"percentage\":100},{\"version_id\":\"" ID_A "\",\"percentage\":0}]},"                 \
	"{\"id\":\"8615d12c-4ae6-43d6-a0a4-3dfab38930b6\",\"versions\":[{\"version_id\":\"" ID_A   \
	"\",\"percentage\":100}]}]}}"

static void
test_status_newest_first(void **state)
{
	struct step steps[] = {{200, NULL, DEPLOYMENTS_OK, 0, 0}};
	struct ctx c;

	(void)state;
	setup(&c, steps, 1, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.deployment.id, "b0b679b4-f526-4d00-bfb4-8d48e7c167bb");
	assert_int_equal(c.res.deployment.n_versions, 2);
	assert_string_equal(c.res.deployment.versions[0].version_id, ID_B);
	assert_int_equal(c.srv.n_seen, 1);
	assert_string_equal(c.srv.seen[0].method, "GET");
	assert_string_equal(c.srv.seen[0].uri,
	                    "/client/v4/accounts/" ACCT "/workers/scripts/middleware/deployments");
	assert_string_equal(c.srv.seen[0].auth, "Bearer " TOKEN);
	teardown_ctx(&c);
}

static void
test_500_then_200_retried(void **state)
{
	struct step steps[] = {
	    {500, NULL, "{\"success\":false,\"errors\":[{\"code\":10013,\"message\":\"oops\"}]}", 0,
	     0},
	    {200, NULL, DEPLOYMENTS_OK, 0, 0},
	};
	struct ctx c;

	(void)state;
	setup(&c, steps, 2, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_int_equal(c.srv.n_seen, 2);
	/* backoff between the two */
	assert_true(c.srv.seen[1].at - c.srv.seen[0].at >=
	            HTTPC_BACKOFF_MS_DEFAULT / 1000.0 - 0.05);
	teardown_ctx(&c);
}

static void
test_429_retry_after_honoured(void **state)
{
	struct step steps[] = {
	    {429, "1", "{\"success\":false,\"errors\":[{\"code\":971,\"message\":\"slow down\"}]}",
	     0, 0},
	    {200, NULL, DEPLOYMENTS_OK, 0, 0},
	};
	struct ctx c;
	double gap;

	(void)state;
	setup(&c, steps, 2, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_int_equal(c.srv.n_seen, 2);
	gap = c.srv.seen[1].at - c.srv.seen[0].at;
	/* Retry-After: 1 wins over the 0.5 s backoff. */
	assert_true(gap >= 0.95);
	assert_true(gap < 5.0);
	teardown_ctx(&c);
}

static void
test_malformed_json(void **state)
{
	struct step steps[] = {
	    {200, NULL, "{\"success\":true,\"errors\":[],\"result\":{\"deployments\":[", 0, 0},
	};
	struct step no_envelope[] = {{200, NULL, "{\"result\":{}}", 0, 0}};
	/* A whole envelope followed by more: not one JSON answer. */
	struct step trailing[] = {
	    {200, NULL,
	     "{\"success\":true,\"errors\":[],\"result\":{\"deployments\":[{\"id\":\"d\","
	     "\"versions\":[{\"version_id\":\"" ID_A "\",\"percentage\":100}]}]}}{\"x\":1}",
	     0, 0},
	};
	struct step bad_dep[] = {
	    {200, NULL,
	     "{\"success\":true,\"errors\":[],\"result\":{\"deployments\":[{\"id\":\"d\","
	     "\"versions\":[{\"version_id\":\"" ID_A "\",\"percentage\":101}]}]}}",
	     0, 0},
	};
	struct ctx c;

	(void)state;
	setup(&c, steps, 1, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EPARSE);
	assert_non_null(strstr(c.res.err, "expected a JSON envelope"));
	assert_non_null(strstr(c.res.err, "/workers/scripts/middleware/deployments"));
	teardown_ctx(&c);

	setup(&c, trailing, 1, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EPARSE);
	assert_non_null(strstr(c.res.err, "expected a JSON envelope"));
	teardown_ctx(&c);

	setup(&c, no_envelope, 1, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EPARSE);
	assert_non_null(strstr(c.res.err, "\"success\""));
	teardown_ctx(&c);

	setup(&c, bad_dep, 1, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EPARSE);
	assert_non_null(strstr(c.res.err, "result.deployments[0]: versions[0].percentage"));
	teardown_ctx(&c);
}

static void
test_error_envelope_quoted_token_scrubbed(void **state)
{
	/* The API's message even echoes the token: it must not get through. */
	struct step steps[] = {
	    {404, NULL,
	     "{\"success\":false,\"errors\":[{\"code\":10007,\"message\":"
	     "\"workers.api.error.script_not_found\"},{\"code\":10000,\"message\":\"bad token "
	     "Bearer " TOKEN "\"}],\"messages\":[],\"result\":null}",
	     0, 0},
	};
	struct ctx c;

	(void)state;
	setup(&c, steps, 1, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EAPI);
	assert_non_null(strstr(c.res.err, "HTTP 404"));
	assert_non_null(strstr(c.res.err, "[code 10007] workers.api.error.script_not_found"));
	assert_non_null(strstr(c.res.err, "[code 10000] bad token Bearer ***"));
	/* a 4xx other than 429 is not retried */
	assert_int_equal(c.srv.n_seen, 1);
	teardown_ctx(&c);
}

/* A token of one or two characters is scrubbed too (it used to need three). */
static void
test_short_token_scrubbed(void **state)
{
	struct step steps[] = {
	    {403, NULL,
	     "{\"success\":false,\"errors\":[{\"code\":10000,\"message\":\"bad token Qz\"}],"
	     "\"messages\":[],\"result\":null}",
	     0, 0},
	};
	char url[128], err[CANARY_ERRLEN];
	struct ctx c;

	(void)state;
	setup(&c, steps, 1, NULL, 0, NULL, 0, 10);
	deployer_free(c.d);
	base_url(&c, url, sizeof(url));
	assert_int_equal(deployer_api_new(c.srv.base, url, ACCT, "Qz", NULL, 0, NULL, 0, 10, &c.d,
	                                  err, sizeof(err)),
	                 0);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EAPI);
	assert_null(strstr(c.res.err, "Qz"));
	assert_non_null(strstr(c.res.err, "bad token **"));
	teardown_ctx(&c);
}

static void
test_deploy_body_and_result(void **state)
{
	struct step steps[] = {
	    {200, NULL,
	     "{\"success\":true,\"errors\":[],\"messages\":[],\"result\":{\"id\":\"b0b679b4-f526-"
	     "4d00-bfb4-8d48e7c167bb\",\"source\":\"api\",\"strategy\":\"percentage\","
	     "\"versions\":[{\"version_id\":\"" ID_B
	     "\",\"percentage\":100},{\"version_id\":\"" ID_A "\",\"percentage\":0}]}}",
	     0, 0},
	};
	struct deployment dep = {.n_versions = 2};
	struct ctx c;

	(void)state;
	strcpy(dep.versions[0].version_id, ID_B);
	dep.versions[0].percentage = 100;
	strcpy(dep.versions[1].version_id, ID_A);
	dep.versions[1].percentage = 0;
	setup(&c, steps, 1, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_deploy(c.d, &mw, &dep, "split B100 A0", on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.deployment.id, "b0b679b4-f526-4d00-bfb4-8d48e7c167bb");
	assert_string_equal(c.srv.seen[0].method, "POST");
	assert_string_equal(c.srv.seen[0].uri,
	                    "/client/v4/accounts/" ACCT "/workers/scripts/middleware/deployments");
	assert_string_equal(c.srv.seen[0].ctype, "application/json");
	assert_string_equal(c.srv.seen[0].body,
	                    "{\"strategy\":\"percentage\",\"versions\":[{\"version_id\":\"" ID_B
	                    "\",\"percentage\":100},{\"version_id\":\"" ID_A
	                    "\",\"percentage\":0}],\"annotations\":{\"workers/message\":\"split "
	                    "B100 A0\"}}");
	teardown_ctx(&c);
}

static void
test_deploy_not_retried_on_500_but_on_429(void **state)
{
	struct step s500[] = {
	    {500, NULL, "{\"success\":false,\"errors\":[{\"code\":10013,\"message\":\"boom\"}]}", 0,
	     0},
	    {200, NULL, "{}", 0, 0},
	};
	struct step s429[] = {
	    {429, "0", "{\"success\":false,\"errors\":[{\"code\":971,\"message\":\"later\"}]}", 0,
	     0},
	    {200, NULL,
	     "{\"success\":true,\"errors\":[],\"result\":{\"id\":\"dep-2\",\"versions\":[{"
	     "\"version_id\":\"" ID_A "\",\"percentage\":100}]}}",
	     0, 0},
	};
	struct deployment dep = {.n_versions = 1};
	struct ctx c;

	(void)state;
	strcpy(dep.versions[0].version_id, ID_A);
	dep.versions[0].percentage = 100;
	/* A 500 may have applied it: one attempt, the caller reads the state. */
	setup(&c, s500, 2, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_deploy(c.d, &mw, &dep, NULL, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EAPI);
	assert_non_null(strstr(c.res.err, "[code 10013] boom"));
	assert_int_equal(c.srv.n_seen, 1);
	/* No message: the annotation is sent empty, as wrangler does. */
	assert_non_null(strstr(c.srv.seen[0].body, "\"annotations\":{\"workers/message\":\"\"}"));
	teardown_ctx(&c);
	/* A 429 says nothing was done: retried. */
	setup(&c, s429, 2, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_deploy(c.d, &mw, &dep, NULL, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_int_equal(c.srv.n_seen, 2);
	assert_string_equal(c.res.deployment.id, "dep-2");
	teardown_ctx(&c);
}

static void
test_deploy_timeout_not_retried(void **state)
{
	struct step steps[] = {{0, NULL, NULL, 1, 0}, {200, NULL, "{}", 0, 0}};
	struct deployment dep = {.n_versions = 1};
	struct ctx c;
	double t0;

	(void)state;
	strcpy(dep.versions[0].version_id, ID_A);
	dep.versions[0].percentage = 100;
	setup(&c, steps, 2, NULL, 0, NULL, 0, 1);
	t0 = now_s();
	assert_int_equal(deployer_deploy(c.d, &mw, &dep, NULL, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_ETIMEDOUT);
	assert_int_equal(c.srv.n_seen, 1);
	assert_true(now_s() - t0 < 4.0);
	teardown_ctx(&c);
}

static void
test_connection_refused(void **state)
{
	struct step none[] = {{200, NULL, "{}", 0, 0}};
	struct deployment dep = {.n_versions = 1};
	struct ctx c;
	char url[128], err[CANARY_ERRLEN];
	struct deployer *d;
	int fd, port;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	(void)state;
	/* A port nobody listens on: bind one, read it back, close it. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	strcpy(dep.versions[0].version_id, ID_A);
	dep.versions[0].percentage = 100;
	setup(&c, none, 1, NULL, 0, NULL, 0, 5);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/client/v4", port);
	assert_int_equal(deployer_api_new(c.srv.base, url, ACCT, TOKEN, NULL, 0, NULL, 0, 5, &d,
	                                  err, sizeof(err)),
	                 0);
	/* Never sent: even the deployment POST is retried, all attempts. */
	assert_int_equal(deployer_deploy(d, &mw, &dep, NULL, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EHTTP);
	assert_non_null(strstr(c.res.err, "POST http://127.0.0.1:"));
	assert_non_null(strstr(c.res.err, "attempt 4 of 4"));
	deployer_free(d);
	teardown_ctx(&c);
}

static void
test_body_cap(void **state)
{
	struct step steps[] = {{200, NULL, NULL, 0, DEPLOYER_BODY_MAX + 1}};
	struct ctx c;

	(void)state;
	setup(&c, steps, 1, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_ETOOBIG);
	assert_non_null(strstr(c.res.err, "response body over"));
	teardown_ctx(&c);
}

static void
test_migration_tag(void **state)
{
	struct step steps[] = {
	    {200, NULL,
	     "{\"success\":true,\"errors\":[],\"result\":{\"id\":\"middleware\","
	     "\"default_environment\":{\"environment\":\"production\",\"script\":{\"tag\":\"t\","
	     "\"migration_tag\":\"v3\"}}}}",
	     0, 0},
	    {200, NULL,
	     "{\"success\":true,\"errors\":[],\"result\":{\"default_environment\":{\"script\":{}}}"
	     "}",
	     0, 0},
	    {200, NULL,
	     "{\"success\":true,\"errors\":[],\"result\":{\"default_environment\":{\"script\":{"
	     "\"migration_tag\":7}}}}",
	     0, 0},
	};
	struct ctx c;

	(void)state;
	setup(&c, steps, 3, NULL, 0, NULL, 0, 10);
	assert_int_equal(deployer_migration_tag(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.migration_tag, "v3");
	assert_string_equal(c.srv.seen[0].uri,
	                    "/client/v4/accounts/" ACCT "/workers/services/middleware");
	c.calls = 0;
	assert_int_equal(deployer_migration_tag(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.migration_tag, "");
	c.calls = 0;
	assert_int_equal(deployer_migration_tag(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EPARSE);
	assert_non_null(strstr(c.res.err, "migration_tag"));
	teardown_ctx(&c);
}

static void
test_direct_multipart_upload(void **state)
{
	struct step steps[] = {
	    {200, NULL,
	     "{\"success\":true,\"errors\":[],\"messages\":[],\"result\":{\"id\":\"" ID_B
	     "\",\"number\":3,\"annotations\":{\"workers/tag\":\"v2-tag\"}}}",
	     0, 0},
	};
	char dir[] = "/tmp/canary-mods-XXXXXX";
	char js[128], map[128];
	const char *files[2] = {js, map};
	struct deployer_api_modules mods = {
	    .worker = "middleware",
	    .files = files,
	    .n_files = 2,
	    .main_module = "index.js",
	    .compatibility_date = "2025-04-14",
	    .bindings_json = "[{\"name\":\"WORKER_VERSION_ID\",\"type\":\"plain_text\",\"text\":"
	                     "\"TO_REPLACE\"},{\"name\":\"DEFAULT_WORKER\",\"type\":\"service\","
	                     "\"service\":\"main-server\"}]",
	};
	const char *vars[1][2] = {{"WORKER_VERSION_ID", ID_A}};
	struct deployer_upload up = {
	    .worker = mw, .vars = vars, .n_vars = 1, .tag = "v2-tag", .message = "second upload"};
	struct ctx c;
	FILE *f;
	const char *body;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(js, sizeof(js), "%s/index.js", dir);
	snprintf(map, sizeof(map), "%s/index.js.map", dir);
	f = fopen(js, "w");
	fputs("export default { fetch() { return new Response('hi'); } };\n", f);
	fclose(f);
	f = fopen(map, "w");
	fputs("{\"version\":3}\n", f);
	fclose(f);
	setup(&c, steps, 1, NULL, 0, &mods, 1, 10);
	assert_int_equal(deployer_upload(c.d, &up, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.version_id, ID_B);
	assert_string_equal(c.srv.seen[0].uri,
	                    "/client/v4/accounts/" ACCT "/workers/scripts/middleware/versions"
	                    "?bindings_inherit=strict");
	assert_non_null(strstr(c.srv.seen[0].ctype, "multipart/form-data; boundary="));
	body = c.srv.seen[0].body;
	assert_non_null(strstr(body, "Content-Disposition: form-data; name=\"metadata\"\r\n"
	                             "Content-Type: application/json\r\n\r\n"
	                             "{\"main_module\":\"index.js\",\"bindings\":["
	                             "{\"name\":\"DEFAULT_WORKER\",\"type\":\"service\","
	                             "\"service\":\"main-server\"},"
	                             "{\"name\":\"WORKER_VERSION_ID\",\"type\":\"plain_text\","
	                             "\"text\":\"" ID_A "\"}],"
	                             "\"compatibility_date\":\"2025-04-14\",\"annotations\":{"
	                             "\"workers/message\":\"second upload\","
	                             "\"workers/tag\":\"v2-tag\"}}\r\n"));
	assert_non_null(strstr(body,
	                       "Content-Disposition: form-data; name=\"index.js\"; "
	                       "filename=\"index.js\"\r\n"
	                       "Content-Type: application/javascript+module\r\n\r\n"
	                       "export default { fetch() { return new Response('hi'); } };\n"));
	assert_non_null(strstr(body,
	                       "name=\"index.js.map\"; filename=\"index.js.map\"\r\n"
	                       "Content-Type: application/source-map\r\n\r\n{\"version\":3}"));
	/* the replaced TO_REPLACE binding is gone */
	assert_null(strstr(body, "TO_REPLACE"));
	teardown_ctx(&c);
	unlink(js);
	unlink(map);
	rmdir(dir);
}

static void
test_upload_through_wrangler(void **state)
{
	struct step none[] = {{200, NULL, "{}", 0, 0}};
	const char *cmd[] = {"sh", CANARY_WRANGLER_FIXTURES "/fake-wrangler.sh"};
	struct deployer_upload up = {.worker = mw};
	char log[] = "/tmp/canary-apiwr-XXXXXX", want[512], url[128];
	struct ctx c;
	FILE *f;
	char buf[2048];
	size_t n;
	int fd;

	(void)state;
	fd = mkstemp(log);
	assert_true(fd >= 0);
	close(fd);
	setenv("FAKE_WRANGLER_LOG", log, 1);
	setenv("FAKE_WRANGLER_LOG_API", "1", 1);
	setenv("FAKE_WRANGLER_MODE", "ok", 1);
	setup(&c, none, 1, cmd, 2, NULL, 0, 10);
	assert_int_equal(deployer_upload(c.d, &up, on_result, &c), 0);
	wait_result(&c);
	unsetenv("FAKE_WRANGLER_LOG");
	unsetenv("FAKE_WRANGLER_LOG_API");
	unsetenv("FAKE_WRANGLER_MODE");
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.version_id, ID_A);
	assert_int_equal(c.srv.n_seen, 0);
	f = fopen(log, "r");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(log);
	/* The CLI gets our API base, account and token (in its environment). */
	base_url(&c, url, sizeof(url));
	url[strlen(url) - 1] = '\0'; /* the trailing '/' is dropped */
	snprintf(want, sizeof(want), "--api BASE=%s ACCOUNT=" ACCT " TOKEN=set\n", url);
	assert_non_null(strstr(buf, want));
	assert_non_null(strstr(buf, "versions\nupload\n--config\nwrangler.jsonc\n"));
	teardown_ctx(&c);
}

static void
test_free_cancels_and_bad_args(void **state)
{
	struct step steps[] = {{0, NULL, NULL, 1, 0}};
	struct deployer_upload up = {.worker = mw};
	struct deployer_worker bad = {"bad/name", "x"};
	struct deployer *d;
	struct ctx c;
	char err[CANARY_ERRLEN];

	(void)state;
	setup(&c, steps, 1, NULL, 0, NULL, 0, 10);
	/* no way to upload */
	assert_int_equal(deployer_upload(c.d, &up, on_result, &c), CANARY_ESTATE);
	assert_int_equal(deployer_status(c.d, &bad, on_result, &c), CANARY_EINVAL);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	event_base_loop(c.srv.base, EVLOOP_NONBLOCK);
	deployer_free(c.d);
	c.d = NULL;
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.res.rv, CANARY_ECANCELED);
	teardown_ctx(&c);

	assert_int_equal(deployer_api_new((struct event_base *)1, "ftp://x", ACCT, TOKEN, NULL, 0,
	                                  NULL, 0, 0, &d, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_int_equal(deployer_api_new((struct event_base *)1, "http://x", ACCT, "", NULL, 0,
	                                  NULL, 0, 0, &d, err, sizeof(err)),
	                 CANARY_EINVAL);
	/* Paths are appended to the base URL: a query or fragment would swallow them. */
	assert_int_equal(deployer_api_new((struct event_base *)1, "http://x/client/v4?a=1", ACCT,
	                                  TOKEN, NULL, 0, NULL, 0, 0, &d, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_non_null(strstr(err, "no query or fragment"));
	assert_int_equal(deployer_api_new((struct event_base *)1, "http://x#f", ACCT, TOKEN, NULL,
	                                  0, NULL, 0, 0, &d, err, sizeof(err)),
	                 CANARY_EINVAL);
	/* An account id that wrangler would read as an option. */
	assert_int_equal(deployer_api_new((struct event_base *)1, "http://x", "-acct", TOKEN, NULL,
	                                  0, NULL, 0, 0, &d, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_non_null(strstr(err, "not starting with '-'"));
	assert_null(d);
}

/* A callback that frees the deployer while another request is in flight:
 * the other one hears CANARY_ECANCELED, nothing is touched after. */
struct reentry {
	struct ctx *c;
	int n;
	int rv[2];
};

static void
on_result_free(const struct deployer_result *res, void *arg)
{
	struct reentry *r = arg;

	r->rv[r->n++] = res->rv;
	if (r->n == 1) {
		deployer_free(r->c->d);
		r->c->d = NULL;
		event_base_loopbreak(r->c->srv.base);
	}
}

static void
test_free_from_callback(void **state)
{
	struct step steps[] = {{200, NULL, DEPLOYMENTS_OK, 0, 0}, {0, NULL, NULL, 1, 0}};
	struct deployer_worker sw = {"main-server", "server.jsonc"};
	struct reentry r = {0};
	struct ctx c;
	struct timeval tv = {DEADLINE_S, 0};
	struct event *dl;

	(void)state;
	setup(&c, steps, 2, NULL, 0, NULL, 0, 10);
	r.c = &c;
	assert_int_equal(deployer_status(c.d, &mw, on_result_free, &r), 0);
	/* whichever of the two arrives second is held by the server */
	assert_int_equal(deployer_status(c.d, &sw, on_result_free, &r), 0);
	dl = evtimer_new(c.srv.base, on_deadline, c.srv.base);
	evtimer_add(dl, &tv);
	event_base_dispatch(c.srv.base);
	event_free(dl);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.rv[0], 0);
	assert_int_equal(r.rv[1], CANARY_ECANCELED);
	/* the loop still runs cleanly with the client gone */
	event_base_loop(c.srv.base, EVLOOP_NONBLOCK);
	teardown_ctx(&c);
}

static void
test_api_env(void **state)
{
	const char *url, *tok;
	char err[CANARY_ERRLEN];

	(void)state;
	unsetenv("CLOUDFLARE_API_BASE_URL");
	unsetenv("CANARY_TEST_TOKEN");
	assert_int_equal(deployer_api_env(NULL, "CANARY_TEST_TOKEN", &url, &tok, err, sizeof(err)),
	                 CANARY_ECONFIG);
	assert_non_null(strstr(err, "CANARY_TEST_TOKEN"));
	setenv("CANARY_TEST_TOKEN", "t0ken", 1);
	assert_int_equal(deployer_api_env("http://rollout/v4", "CANARY_TEST_TOKEN", &url, &tok, err,
	                                  sizeof(err)),
	                 0);
	assert_string_equal(url, "http://rollout/v4");
	assert_string_equal(tok, "t0ken");
	setenv("CLOUDFLARE_API_BASE_URL", "http://127.0.0.1:9/client/v4", 1);
	assert_int_equal(deployer_api_env("http://rollout/v4", "CANARY_TEST_TOKEN", &url, &tok, err,
	                                  sizeof(err)),
	                 0);
	assert_string_equal(url, "http://127.0.0.1:9/client/v4");
	/* The environment is outside input too: named when it is wrong. */
	setenv("CLOUDFLARE_API_BASE_URL", "http://127.0.0.1:9/client/v4?x=1", 1);
	assert_int_equal(deployer_api_env("http://rollout/v4", "CANARY_TEST_TOKEN", &url, &tok, err,
	                                  sizeof(err)),
	                 CANARY_ECONFIG);
	assert_non_null(strstr(err, "CLOUDFLARE_API_BASE_URL: expected"));
	assert_null(url);
	unsetenv("CLOUDFLARE_API_BASE_URL");
	assert_int_equal(deployer_api_env(NULL, "CANARY_TEST_TOKEN", &url, &tok, err, sizeof(err)),
	                 0);
	assert_string_equal(url, DEPLOYER_API_BASE_DEFAULT);
	unsetenv("CANARY_TEST_TOKEN");
}

static void
on_httpc_never(const struct httpc_response *res, void *arg)
{
	(void)res;
	(*(int *)arg)++;
}

/* httpc refuses a response cap its buffer sizing could not hold. */
static void
test_httpc_body_cap_ceiling(void **state)
{
	struct event_base *base = event_base_new();
	struct httpc *h = NULL;
	struct httpc_request req;
	char err[CANARY_ERRLEN];
	int calls = 0;

	(void)state;
	assert_non_null(base);
	assert_int_equal(httpc_new(base, &h, err, sizeof(err)), 0);
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = "http://127.0.0.1:9/";
	req.max_body = SIZE_MAX;
	assert_int_equal(httpc_start(h, &req, on_httpc_never, &calls, NULL, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_non_null(strstr(err, "bad limits"));
	httpc_free(h);
	event_base_free(base);
	assert_int_equal(calls, 0);
}

static void
test_retry_after_parse(void **state)
{
	(void)state;
	assert_int_equal(httpc_retry_after("1", 60), 1);
	assert_int_equal(httpc_retry_after(" 30 ", 60), 30);
	assert_int_equal(httpc_retry_after("3600", 60), 60);
	assert_int_equal(httpc_retry_after("99999999999999999999999", 60), 60);
	assert_int_equal(httpc_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 60), -1);
	assert_int_equal(httpc_retry_after("-1", 60), -1);
	assert_int_equal(httpc_retry_after("1x", 60), -1);
	assert_int_equal(httpc_retry_after(NULL, 60), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_newest_first),
	    cmocka_unit_test(test_500_then_200_retried),
	    cmocka_unit_test(test_429_retry_after_honoured),
	    cmocka_unit_test(test_malformed_json),
	    cmocka_unit_test(test_error_envelope_quoted_token_scrubbed),
	    cmocka_unit_test(test_short_token_scrubbed),
	    cmocka_unit_test(test_deploy_body_and_result),
	    cmocka_unit_test(test_deploy_not_retried_on_500_but_on_429),
	    cmocka_unit_test(test_deploy_timeout_not_retried),
	    cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_body_cap),
	    cmocka_unit_test(test_migration_tag),
	    cmocka_unit_test(test_direct_multipart_upload),
	    cmocka_unit_test(test_upload_through_wrangler),
	    cmocka_unit_test(test_free_cancels_and_bad_args),
	    cmocka_unit_test(test_free_from_callback),
	    cmocka_unit_test(test_api_env),
	    cmocka_unit_test(test_retry_after_parse),
	    cmocka_unit_test(test_httpc_body_cap_ceiling),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
