/*
 * fault_proxy.c: an HTTP proxy in front of canary-edge's API that answers
 * chosen requests with faults, for the controller's fault tests.
 *
 *   fault_proxy --listen ADDR:PORT --upstream ADDR:PORT --log FILE [--arm SPEC]...
 *
 * Every request is forwarded to the upstream (method, path, headers, body)
 * and its answer sent back, unless an armed rule matches it. A rule is
 *   kind=K&method=M&path=SUBSTRING&skip=N&count=N&status=S&retry_after=S
 * (the query string of the control endpoint, or the text of --arm):
 *   kind=status     answer `status` (default 500) with Cloudflare's error
 *                   envelope, without forwarding; with retry_after, a
 *                   `Retry-After: <s>` header (429 and 503)
 *   kind=malformed  answer 200 with a JSON body cut in the middle, without
 *                   forwarding
 *   kind=applied    forward, then answer 500 whatever the upstream said: the
 *                   change happened but the client is told it failed
 * method ("*" default) and path (a substring of the request path, "" default)
 * select requests; the first `skip` matches pass through untouched, the next
 * `count` (default 1) get the fault, then the rule is spent.
 *
 * Control endpoint (never forwarded, never faulted):
 *   POST /__fault/arm?SPEC      adds a rule (400 naming the bad field)
 *   POST /__fault/clear         drops every rule
 * Every handled request appends a line to FILE:
 *   <wall ms> <METHOD> <path> -> <status> [fault <kind>]
 * The listening address is printed as "fault_proxy: listening http://A:P"
 * (PORT 0 picks a free port).
 *
 * One libevent loop owns everything. Request bodies are capped at
 * PROXY_MAX_BODY; the upstream's answers are taken as they come (it is the
 * program under test, trusted to be finite).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define PROXY_MAX_RULES     16
#define PROXY_MAX_BODY      (64 * 1024 * 1024) /* a version upload fits */
#define PROXY_PATH_LEN      256
#define PROXY_ADDR_LEN      64
#define PROXY_TIMEOUT_S     60 /* upstream answer */
#define PROXY_CONTROL       "/__fault/"
#define PROXY_MALFORMED     "{\"success\":true,\"errors\":[],\"result\":[{\"id\":\"3f1c"
#define PROXY_DEFAULT_FAULT 500

enum proxy_kind { PROXY_STATUS, PROXY_MALFORMED_JSON, PROXY_APPLIED };

struct proxy_rule {
	enum proxy_kind kind;
	char method[16]; /* "*" any */
	char path[PROXY_PATH_LEN];
	int skip;
	int count;
	int status;
	int retry_after; /* seconds; 0: no header */
};

struct proxy {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_connection *up;
	FILE *log;
	struct proxy_rule rules[PROXY_MAX_RULES];
	int n_rules;
};

/* A forwarded request waiting for the upstream. */
struct proxy_fwd {
	struct proxy *p;
	struct evhttp_request *client;
	int applied; /* kind=applied: answer 500 when the upstream answers */
};

static const char *const proxy_kind_names[] = {"status", "malformed", "applied"};

static const char *
proxy_method(enum evhttp_cmd_type c)
{
	switch (c) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	default:
		return "OTHER";
	}
}

static void
proxy_log(struct proxy *p, struct evhttp_request *req, int status, const char *fault)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	fprintf(p->log, "%lld %s %s -> %d%s%s\n", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000,
	        proxy_method(evhttp_request_get_command(req)), evhttp_request_get_uri(req), status,
	        fault != NULL ? " fault " : "", fault != NULL ? fault : "");
	fflush(p->log);
}

static void
proxy_reply(struct evhttp_request *req, int code, const char *ctype, const char *body)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add(b, body, strlen(body));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_send_reply(req, code, code < 300 ? "OK" : "Fault", b);
	evbuffer_free(b);
}

static void
proxy_reply_envelope(struct evhttp_request *req, int code, int retry_after)
{
	char body[256], ra[16];

	snprintf(body, sizeof(body),
	         "{\"success\":false,\"errors\":[{\"code\":10013,\"message\":\"fault_proxy: "
	         "injected %d\"}],\"messages\":[],\"result\":null}",
	         code);
	if (retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", retry_after);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
	}
	proxy_reply(req, code, "application/json", body);
}

/* proxy_parse_rule: SPEC (a query string) into *r. Returns 0, or -1 with
 * the bad field in err. */
static int
proxy_parse_rule(const char *spec, struct proxy_rule *r, char *err, size_t errlen)
{
	struct evkeyvalq q;
	struct evkeyval *kv;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	snprintf(r->method, sizeof(r->method), "*");
	r->count = 1;
	r->status = PROXY_DEFAULT_FAULT;
	r->kind = PROXY_STATUS;
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(spec, &q) != 0) {
		snprintf(err, errlen, "not a query string: %s", spec);
		return -1;
	}
	TAILQ_FOREACH(kv, &q, next)
	{
		char *end = NULL;
		long v = strtol(kv->value, &end, 10);
		int num = end != kv->value && *end == '\0';

		if (strcmp(kv->key, "kind") == 0) {
			int k;

			for (k = 0; k < 3 && strcmp(kv->value, proxy_kind_names[k]) != 0; k++) {
			}
			if (k == 3) {
				snprintf(err, errlen,
				         "kind: expected status, malformed or applied");
				goto out;
			}
			r->kind = (enum proxy_kind)k;
		} else if (strcmp(kv->key, "method") == 0 &&
		           strlen(kv->value) < sizeof(r->method)) {
			snprintf(r->method, sizeof(r->method), "%s", kv->value);
		} else if (strcmp(kv->key, "path") == 0 && strlen(kv->value) < sizeof(r->path)) {
			snprintf(r->path, sizeof(r->path), "%s", kv->value);
		} else if (strcmp(kv->key, "skip") == 0 && num && v >= 0 && v < 1000000) {
			r->skip = (int)v;
		} else if (strcmp(kv->key, "count") == 0 && num && v >= 1 && v < 1000000) {
			r->count = (int)v;
		} else if (strcmp(kv->key, "status") == 0 && num && v >= 100 && v <= 599) {
			r->status = (int)v;
		} else if (strcmp(kv->key, "retry_after") == 0 && num && v >= 0 && v <= 3600) {
			r->retry_after = (int)v;
		} else {
			snprintf(err, errlen, "%s: unknown field or bad value \"%s\"", kv->key,
			         kv->value);
			goto out;
		}
	}
	rc = 0;
out:
	evhttp_clear_headers(&q);
	return rc;
}

static int
proxy_arm(struct proxy *p, const char *spec, char *err, size_t errlen)
{
	if (p->n_rules == PROXY_MAX_RULES) {
		snprintf(err, errlen, "at most %d rules", PROXY_MAX_RULES);
		return -1;
	}
	if (proxy_parse_rule(spec, &p->rules[p->n_rules], err, errlen) != 0) {
		return -1;
	}
	p->n_rules++;
	return 0;
}

/* proxy_match: the first live rule for req, after counting down its skip;
 * NULL: forward untouched. */
static struct proxy_rule *
proxy_match(struct proxy *p, struct evhttp_request *req, const char *path)
{
	const char *m = proxy_method(evhttp_request_get_command(req));

	for (int i = 0; i < p->n_rules; i++) {
		struct proxy_rule *r = &p->rules[i];

		if (r->count == 0 || (strcmp(r->method, "*") != 0 && strcmp(r->method, m) != 0) ||
		    strstr(path, r->path) == NULL) {
			continue;
		}
		if (r->skip > 0) {
			r->skip--;
			return NULL;
		}
		r->count--;
		return r;
	}
	return NULL;
}

static void
proxy_on_upstream(struct evhttp_request *up, void *arg)
{
	struct proxy_fwd *f = arg;
	struct evhttp_request *req = f->client;
	struct evkeyval *kv;
	int code;

	if (up == NULL || evhttp_request_get_response_code(up) == 0) {
		proxy_log(f->p, req, 502, NULL);
		proxy_reply(req, 502, "text/plain", "fault_proxy: upstream unreachable\n");
		free(f);
		return;
	}
	if (f->applied) {
		proxy_log(f->p, req, 500, "applied");
		proxy_reply_envelope(req, 500, 0);
		free(f);
		return;
	}
	code = evhttp_request_get_response_code(up);
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(up), next)
	{
		if (strcasecmp(kv->key, "Content-Length") == 0 ||
		    strcasecmp(kv->key, "Transfer-Encoding") == 0 ||
		    strcasecmp(kv->key, "Connection") == 0) {
			continue;
		}
		evhttp_add_header(evhttp_request_get_output_headers(req), kv->key, kv->value);
	}
	proxy_log(f->p, req, code, NULL);
	evhttp_send_reply(req, code, evhttp_request_get_response_code_line(up),
	                  evhttp_request_get_input_buffer(up));
	free(f);
}

static void
proxy_forward(struct proxy *p, struct evhttp_request *req, int applied)
{
	struct proxy_fwd *f = calloc(1, sizeof(*f));
	struct evhttp_request *up = NULL;
	struct evkeyval *kv;

	if (f == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	f->p = p;
	f->client = req;
	f->applied = applied;
	up = evhttp_request_new(proxy_on_upstream, f);
	if (up == NULL) {
		free(f);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
	{
		if (strcasecmp(kv->key, "Connection") == 0 ||
		    strcasecmp(kv->key, "Content-Length") == 0 ||
		    strcasecmp(kv->key, "Transfer-Encoding") == 0 ||
		    strcasecmp(kv->key, "Expect") == 0) {
			continue;
		}
		evhttp_add_header(evhttp_request_get_output_headers(up), kv->key, kv->value);
	}
	evbuffer_add_buffer(evhttp_request_get_output_buffer(up),
	                    evhttp_request_get_input_buffer(req));
	/* On failure libevent frees up and calls nothing: answer here. */
	if (evhttp_make_request(p->up, up, evhttp_request_get_command(req),
	                        evhttp_request_get_uri(req)) != 0) {
		free(f);
		proxy_log(p, req, 502, NULL);
		proxy_reply(req, 502, "text/plain", "fault_proxy: cannot reach upstream\n");
	}
}

static void
proxy_control(struct proxy *p, struct evhttp_request *req, const char *path)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *query = evhttp_uri_get_query(u);
	char err[256];

	if (strcmp(path, PROXY_CONTROL "arm") == 0) {
		if (proxy_arm(p, query != NULL ? query : "", err, sizeof(err)) != 0) {
			proxy_reply(req, 400, "text/plain", err);
			return;
		}
		proxy_reply(req, 200, "text/plain", "armed\n");
		return;
	}
	if (strcmp(path, PROXY_CONTROL "clear") == 0) {
		p->n_rules = 0;
		proxy_reply(req, 200, "text/plain", "cleared\n");
		return;
	}
	proxy_reply(req, 404, "text/plain", "unknown control route\n");
}

static void
proxy_on_request(struct evhttp_request *req, void *arg)
{
	struct proxy *p = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct proxy_rule *r;

	if (path == NULL) {
		path = "";
	}
	if (strncmp(path, PROXY_CONTROL, strlen(PROXY_CONTROL)) == 0) {
		proxy_control(p, req, path);
		return;
	}
	r = proxy_match(p, req, path);
	if (r == NULL) {
		proxy_forward(p, req, 0);
		return;
	}
	switch (r->kind) {
	case PROXY_STATUS:
		proxy_log(p, req, r->status, "status");
		proxy_reply_envelope(req, r->status, r->retry_after);
		break;
	case PROXY_MALFORMED_JSON:
		proxy_log(p, req, 200, "malformed");
		proxy_reply(req, 200, "application/json", PROXY_MALFORMED);
		break;
	case PROXY_APPLIED:
		proxy_forward(p, req, 1);
		break;
	}
}

/* proxy_split: "ADDR:PORT" (ADDR numeric) into host and port. */
static int
proxy_split(const char *s, char *host, size_t hostlen, int *port)
{
	const char *c = strrchr(s, ':');
	char *end = NULL;
	long v;

	if (c == NULL || (size_t)(c - s) >= hostlen || c == s) {
		return -1;
	}
	v = strtol(c + 1, &end, 10);
	if (end == c + 1 || *end != '\0' || v < 0 || v > 65535) {
		return -1;
	}
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = '\0';
	*port = (int)v;
	return 0;
}

int
main(int argc, char **argv)
{
	struct proxy p;
	const char *listen = NULL, *upstream = NULL, *logpath = NULL;
	char lhost[PROXY_ADDR_LEN], uhost[PROXY_ADDR_LEN], err[256];
	int lport = 0, uport = 0, rc = 1;
	struct evhttp_bound_socket *bound;

	memset(&p, 0, sizeof(p));
	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL) {
			fprintf(stderr, "fault_proxy: %s: expected a value\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--listen") == 0) {
			listen = v;
		} else if (strcmp(argv[i], "--upstream") == 0) {
			upstream = v;
		} else if (strcmp(argv[i], "--log") == 0) {
			logpath = v;
		} else if (strcmp(argv[i], "--arm") == 0) {
			if (proxy_arm(&p, v, err, sizeof(err)) != 0) {
				fprintf(stderr, "fault_proxy: --arm %s: %s\n", v, err);
				return 2;
			}
		} else {
			fprintf(stderr, "fault_proxy: unknown flag %s\n", argv[i]);
			return 2;
		}
		i++;
	}
	if (listen == NULL || upstream == NULL || logpath == NULL ||
	    proxy_split(listen, lhost, sizeof(lhost), &lport) != 0 ||
	    proxy_split(upstream, uhost, sizeof(uhost), &uport) != 0) {
		fprintf(stderr, "usage: fault_proxy --listen ADDR:PORT --upstream ADDR:PORT --log "
		                "FILE [--arm SPEC]...\n");
		return 2;
	}
	if ((p.log = fopen(logpath, "a")) == NULL) {
		fprintf(stderr, "fault_proxy: %s: %s\n", logpath, strerror(errno));
		return 1;
	}
	if ((p.base = event_base_new()) == NULL || (p.http = evhttp_new(p.base)) == NULL ||
	    (p.up = evhttp_connection_base_new(p.base, NULL, uhost, (unsigned short)uport)) ==
	        NULL) {
		fprintf(stderr, "fault_proxy: libevent setup failed\n");
		goto out;
	}
	evhttp_connection_set_timeout(p.up, PROXY_TIMEOUT_S);
	evhttp_set_max_body_size(p.http, PROXY_MAX_BODY);
	evhttp_set_allowed_methods(p.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	                                       EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	                                       EVHTTP_REQ_HEAD);
	evhttp_set_gencb(p.http, proxy_on_request, &p);
	bound = evhttp_bind_socket_with_handle(p.http, lhost, (unsigned short)lport);
	if (bound == NULL) {
		fprintf(stderr, "fault_proxy: cannot listen on %s\n", listen);
		goto out;
	}
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		evutil_socket_t fd = evhttp_bound_socket_get_fd(bound);

		if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 || ss.ss_family != AF_INET) {
			fprintf(stderr, "fault_proxy: cannot read the bound port\n");
			goto out;
		}
		printf("fault_proxy: listening http://%s:%d\n", lhost,
		       ntohs(((struct sockaddr_in *)&ss)->sin_port));
		fflush(stdout);
	}
	event_base_dispatch(p.base);
	rc = 0;
out:
	if (p.up != NULL) {
		evhttp_connection_free(p.up);
	}
	if (p.http != NULL) {
		evhttp_free(p.http);
	}
	if (p.base != NULL) {
		event_base_free(p.base);
	}
	if (p.log != NULL) {
		fclose(p.log);
	}
	return rc;
}
