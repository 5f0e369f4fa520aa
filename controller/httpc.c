/*
 * httpc.c: libcurl multi on libevent (the socket + timer callback pattern).
 * See httpc.h for the contract and the retry policy.
 */
#include "httpc.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define HTTPC_BODY_INITIAL 4096 /* first allocation for a response body */

/* A socket libcurl asked us to watch. */
struct httpc_sock {
	struct httpc *h;
	curl_socket_t fd;
	struct event *ev;
	struct httpc_sock *next;
	struct httpc_sock **pprev;
};

struct httpc_xfer {
	struct httpc *h;
	struct httpc_xfer *next;
	struct httpc_xfer **pprev;
	CURL *easy;
	struct curl_slist *hdrs;
	curl_mime *mime;
	char *method;
	char *url;
	char *body; /* request body copy */
	size_t body_len;
	char *resp; /* response body, NUL-terminated */
	size_t resp_len;
	size_t resp_alloc;
	size_t max_body;
	int too_big;
	int attempts;
	int max_attempts;
	int backoff_ms;
	enum httpc_retry retry;
	int in_multi;
	struct event *retry_ev;
	httpc_cb cb;
	void *arg;
	char curl_err[CURL_ERROR_SIZE];
};

struct httpc {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct httpc_xfer *xfers;
	struct httpc_sock *socks;
	int depth; /* > 0 while inside our own event callbacks */
	int dying; /* httpc_free was called from inside: free when depth drops */
};

static void httpc_check_done(struct httpc *h);

static void
httpc_enter(struct httpc *h)
{
	h->depth++;
}

static void httpc_destroy(struct httpc *h);

/* httpc_leave: returns 1 when h was freed. */
static int
httpc_leave(struct httpc *h)
{
	h->depth--;
	if (h->depth == 0 && h->dying) {
		httpc_destroy(h);
		return 1;
	}
	return 0;
}

static void
httpc_on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct httpc_sock *s = arg;
	struct httpc *h = s->h;
	int flags = 0, running = 0;

	if (what & EV_READ) {
		flags |= CURL_CSELECT_IN;
	}
	if (what & EV_WRITE) {
		flags |= CURL_CSELECT_OUT;
	}
	httpc_enter(h);
	(void)curl_multi_socket_action(h->multi, fd, flags, &running);
	httpc_check_done(h);
	httpc_leave(h);
}

static void
httpc_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *h = arg;
	int running = 0;

	(void)fd;
	(void)what;
	httpc_enter(h);
	(void)curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	httpc_check_done(h);
	httpc_leave(h);
}

static void
httpc_sock_free(struct httpc_sock *s)
{
	if (s == NULL) {
		return;
	}
	*s->pprev = s->next;
	if (s->next != NULL) {
		s->next->pprev = s->pprev;
	}
	if (s->ev != NULL) {
		event_free(s->ev);
	}
	free(s);
}

/* libcurl: watch fd for what, or stop watching it. */
static int
httpc_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct httpc *h = userp;
	struct httpc_sock *s = socketp;
	short kind = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(h->multi, fd, NULL);
			httpc_sock_free(s);
		}
		return 0;
	}
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			return -1;
		}
		s->h = h;
		s->fd = fd;
		s->next = h->socks;
		if (h->socks != NULL) {
			h->socks->pprev = &s->next;
		}
		s->pprev = &h->socks;
		h->socks = s;
		curl_multi_assign(h->multi, fd, s);
	}
	if (what & CURL_POLL_IN) {
		kind |= EV_READ;
	}
	if (what & CURL_POLL_OUT) {
		kind |= EV_WRITE;
	}
	if (s->ev != NULL) {
		event_free(s->ev);
	}
	s->ev = event_new(h->base, fd, kind, httpc_on_socket_event, s);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0) {
		return -1;
	}
	return 0;
}

/* libcurl: call us back in timeout_ms (-1: never). */
static int
httpc_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *h = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

static size_t
httpc_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct httpc_xfer *x = userp;
	size_t n = size * nmemb;

	if (x->resp_len + n > x->max_body) {
		x->too_big = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (x->resp_len + n + 1 > x->resp_alloc) {
		size_t want = x->resp_alloc == 0 ? HTTPC_BODY_INITIAL : x->resp_alloc;
		char *nb;

		while (want < x->resp_len + n + 1) {
			want *= 2;
		}
		if (want > x->max_body + 1) {
			want = x->max_body + 1;
		}
		nb = realloc(x->resp, want);
		if (nb == NULL) {
			return 0;
		}
		x->resp = nb;
		x->resp_alloc = want;
	}
	memcpy(x->resp + x->resp_len, data, n);
	x->resp_len += n;
	x->resp[x->resp_len] = '\0';
	return n;
}

static void
httpc_xfer_free(struct httpc_xfer *x)
{
	if (x == NULL) {
		return;
	}
	if (x->pprev != NULL) {
		*x->pprev = x->next;
		if (x->next != NULL) {
			x->next->pprev = x->pprev;
		}
	}
	if (x->in_multi) {
		curl_multi_remove_handle(x->h->multi, x->easy);
	}
	if (x->retry_ev != NULL) {
		event_free(x->retry_ev);
	}
	if (x->easy != NULL) {
		curl_easy_cleanup(x->easy);
	}
	curl_mime_free(x->mime);
	curl_slist_free_all(x->hdrs);
	free(x->method);
	free(x->url);
	free(x->body);
	free(x->resp);
	free(x);
}

long
httpc_retry_after(const char *value, long max_s)
{
	long v = 0;
	const char *p = value;

	if (p == NULL) {
		return -1;
	}
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	if (!isdigit((unsigned char)*p)) {
		return -1;
	}
	while (isdigit((unsigned char)*p)) {
		if (v > (LONG_MAX - 9) / 10) {
			v = LONG_MAX;
			while (isdigit((unsigned char)*p)) {
				p++;
			}
			break;
		}
		v = v * 10 + (*p - '0');
		p++;
	}
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	if (*p != '\0') {
		return -1;
	}
	return v > max_s ? max_s : v;
}

static void
httpc_deliver(struct httpc_xfer *x, int rv, const char *err)
{
	struct httpc_response res;
	httpc_cb cb = x->cb;
	void *arg = x->arg;
	long status = 0;

	memset(&res, 0, sizeof(res));
	res.rv = rv;
	if (err != NULL) {
		snprintf(res.err, sizeof(res.err), "%s", err);
	}
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	res.status = status;
	res.body = x->resp != NULL ? x->resp : "";
	res.body_len = x->resp_len;
	res.attempts = x->attempts;
	/* Unlink first: the callback may start or cancel other transfers, or
	 * free the client. */
	if (x->pprev != NULL) {
		*x->pprev = x->next;
		if (x->next != NULL) {
			x->next->pprev = x->pprev;
		}
		x->pprev = NULL;
	}
	cb(&res, arg);
	httpc_xfer_free(x);
}

static int
httpc_add(struct httpc_xfer *x)
{
	x->resp_len = 0;
	if (x->resp != NULL) {
		x->resp[0] = '\0';
	}
	x->too_big = 0;
	x->curl_err[0] = '\0';
	x->attempts++;
	if (curl_multi_add_handle(x->h->multi, x->easy) != CURLM_OK) {
		return CANARY_EHTTP;
	}
	x->in_multi = 1;
	return 0;
}

static void
httpc_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct httpc_xfer *x = arg;
	struct httpc *h = x->h;
	char err[CANARY_ERRLEN];

	(void)fd;
	(void)what;
	httpc_enter(h);
	if (httpc_add(x) != 0) {
		snprintf(err, sizeof(err), "%s %s: cannot start attempt %d", x->method, x->url,
		         x->attempts);
		httpc_deliver(x, CANARY_EHTTP, err);
	}
	httpc_leave(h);
}

/* httpc_should_retry: the delay before the next attempt in ms, or -1 for
 * no retry. */
static long
httpc_should_retry(struct httpc_xfer *x, CURLcode rc, long status)
{
	long sent = 0;
	struct curl_header *hdr = NULL;
	long delay, after = -1;
	int retry = 0;

	if (x->attempts >= x->max_attempts || x->retry == HTTPC_RETRY_NEVER || x->too_big) {
		return -1;
	}
	if (rc != CURLE_OK) {
		if (x->retry == HTTPC_RETRY_SAFE) {
			retry = 1;
		} else {
			/* Nothing written to the connection: the server cannot
			 * have acted on it. */
			curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent);
			retry = sent == 0;
		}
	} else if (status == 429) {
		retry = 1;
	} else if (status >= 500 && status <= 599) {
		retry = x->retry == HTTPC_RETRY_SAFE;
	}
	if (!retry) {
		return -1;
	}
	delay = (long)x->backoff_ms;
	for (int i = 1; i < x->attempts && delay < HTTPC_BACKOFF_MAX_MS; i++) {
		delay *= 2;
	}
	if (delay > HTTPC_BACKOFF_MAX_MS) {
		delay = HTTPC_BACKOFF_MAX_MS;
	}
	if (rc == CURLE_OK && (status == 429 || status == 503) &&
	    curl_easy_header(x->easy, "Retry-After", 0, CURLH_HEADER, -1, &hdr) == CURLHE_OK) {
		after = httpc_retry_after(hdr->value, HTTPC_RETRY_AFTER_MAX_S);
	}
	if (after >= 0) {
		delay = after * 1000;
	}
	return delay;
}

static void
httpc_finish(struct httpc_xfer *x, CURLcode rc)
{
	char err[CANARY_ERRLEN];
	long status = 0, delay;
	struct timeval tv;

	curl_multi_remove_handle(x->h->multi, x->easy);
	x->in_multi = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	delay = httpc_should_retry(x, rc, status);
	if (delay >= 0) {
		tv.tv_sec = delay / 1000;
		tv.tv_usec = (delay % 1000) * 1000;
		if (evtimer_add(x->retry_ev, &tv) == 0) {
			return;
		}
	}
	if (x->too_big) {
		snprintf(err, sizeof(err), "%s %s: response body over %zu bytes", x->method, x->url,
		         x->max_body);
		httpc_deliver(x, CANARY_ETOOBIG, err);
		return;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(err, sizeof(err), "%s %s: timed out (attempt %d of %d): %s", x->method,
		         x->url, x->attempts, x->max_attempts,
		         x->curl_err[0] != '\0' ? x->curl_err : curl_easy_strerror(rc));
		httpc_deliver(x, CANARY_ETIMEDOUT, err);
		return;
	}
	if (rc != CURLE_OK) {
		snprintf(err, sizeof(err), "%s %s: %s (attempt %d of %d)", x->method, x->url,
		         x->curl_err[0] != '\0' ? x->curl_err : curl_easy_strerror(rc), x->attempts,
		         x->max_attempts);
		httpc_deliver(x, CANARY_EHTTP, err);
		return;
	}
	httpc_deliver(x, 0, NULL);
}

static void
httpc_check_done(struct httpc *h)
{
	CURLMsg *msg;
	int left;

	while (!h->dying && (msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		struct httpc_xfer *x = NULL;

		if (msg->msg != CURLMSG_DONE) {
			continue;
		}
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x != NULL) {
			httpc_finish(x, msg->data.result);
		}
	}
}

int
httpc_new(struct event_base *base, struct httpc **hp, char *err, size_t errlen)
{
	struct httpc *h;

	*hp = NULL;
	if (base == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "http client: no event base");
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		return canary_errf(err, errlen, CANARY_EHTTP, "http client: libcurl did not start");
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		curl_global_cleanup();
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	h->base = base;
	h->multi = curl_multi_init();
	h->timer = evtimer_new(base, httpc_on_timer, h);
	if (h->multi == NULL || h->timer == NULL ||
	    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, httpc_socket_cb) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, httpc_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
		httpc_destroy(h);
		return canary_errf(err, errlen, CANARY_ENOMEM,
		                   "http client: cannot set up libcurl");
	}
	*hp = h;
	return 0;
}

static void
httpc_destroy(struct httpc *h)
{
	while (h->xfers != NULL) {
		httpc_xfer_free(h->xfers);
	}
	if (h->multi != NULL) {
		/* May call the socket callback to drop sockets: h is intact. */
		curl_multi_cleanup(h->multi);
	}
	while (h->socks != NULL) {
		httpc_sock_free(h->socks);
	}
	if (h->timer != NULL) {
		event_free(h->timer);
	}
	free(h);
	curl_global_cleanup();
}

void
httpc_free(struct httpc *h)
{
	if (h == NULL) {
		return;
	}
	if (h->depth > 0) {
		/* Inside one of our callbacks: drop the transfers now, the rest
		 * when the callback returns. */
		h->dying = 1;
		while (h->xfers != NULL) {
			httpc_xfer_free(h->xfers);
		}
		return;
	}
	httpc_destroy(h);
}

static int
httpc_method_ok(const char *m)
{
	static const char *const ok[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (m != NULL && strcmp(m, ok[i]) == 0) {
			return 1;
		}
	}
	return 0;
}

static int
httpc_build_mime(struct httpc_xfer *x, const struct httpc_request *req, char *err, size_t errlen)
{
	x->mime = curl_mime_init(x->easy);
	if (x->mime == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	for (int i = 0; i < req->n_parts; i++) {
		const struct httpc_part *p = &req->parts[i];
		curl_mimepart *mp;
		CURLcode rc;

		if (p->name == NULL || p->name[0] == '\0' || (p->data == NULL && p->path == NULL)) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "%s %s: part %d: expected a name and data or a file",
			                   req->method, req->url, i);
		}
		mp = curl_mime_addpart(x->mime);
		if (mp == NULL) {
			return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		}
		rc = curl_mime_name(mp, p->name);
		if (rc == CURLE_OK) {
			rc = p->data != NULL ? curl_mime_data(mp, p->data, p->len)
			                     : curl_mime_filedata(mp, p->path);
		}
		/* curl_mime_filedata sets the file's base name as filename; an
		 * explicit one (or none for a plain field) wins. */
		if (rc == CURLE_OK && (p->filename != NULL || p->data != NULL)) {
			rc = curl_mime_filename(mp, p->filename);
		}
		if (rc == CURLE_OK && p->content_type != NULL) {
			rc = curl_mime_type(mp, p->content_type);
		}
		if (rc != CURLE_OK) {
			return canary_errf(err, errlen,
			                   rc == CURLE_READ_ERROR ? CANARY_ENOENT : CANARY_EINVAL,
			                   "%s %s: part %d (%s%s%s): %s", req->method, req->url, i,
			                   p->name, p->path != NULL ? ", " : "",
			                   p->path != NULL ? p->path : "", curl_easy_strerror(rc));
		}
	}
	return 0;
}

int
httpc_start(struct httpc *h, const struct httpc_request *req, httpc_cb cb, void *arg,
            struct httpc_xfer **xp, char *err, size_t errlen)
{
	struct httpc_xfer *x = NULL;
	int rv = 0, nh = 0;
	CURLcode rc = CURLE_OK;

	if (xp != NULL) {
		*xp = NULL;
	}
	if (h == NULL || req == NULL || cb == NULL || !httpc_method_ok(req->method) ||
	    req->url == NULL ||
	    (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0)) {
		return canary_errf(
		    err, errlen, CANARY_EINVAL,
		    "http request: expected a method and an http(s) URL, found %s %s",
		    req != NULL && req->method != NULL ? req->method : "(none)",
		    req != NULL && req->url != NULL ? req->url : "(none)");
	}
	/* max_body beyond the ceiling would wrap max_body + 1 in the sizing. */
	if (req->timeout_ms < 0 || req->max_attempts < 0 ||
	    req->max_body > HTTPC_BODY_MAX_CEILING || req->max_attempts > HTTPC_ATTEMPTS_MAX ||
	    req->backoff_ms < 0 || req->n_parts < 0 || req->n_parts > HTTPC_MAX_PARTS ||
	    (req->n_parts > 0 && (req->parts == NULL || req->body != NULL))) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s %s: bad limits, or both a body and parts", req->method,
		                   req->url);
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	x->h = h;
	x->cb = cb;
	x->arg = arg;
	x->retry = req->retry;
	x->max_body = req->max_body > 0 ? req->max_body : HTTPC_BODY_MAX_DEFAULT;
	x->max_attempts = req->max_attempts > 0 ? req->max_attempts : HTTPC_ATTEMPTS_DEFAULT;
	x->backoff_ms = req->backoff_ms > 0 ? req->backoff_ms : HTTPC_BACKOFF_MS_DEFAULT;
	x->method = strdup(req->method);
	x->url = strdup(req->url);
	x->easy = curl_easy_init();
	x->retry_ev = evtimer_new(h->base, httpc_on_retry, x);
	if (x->method == NULL || x->url == NULL || x->easy == NULL || x->retry_ev == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	for (nh = 0; req->headers != NULL && req->headers[nh] != NULL; nh++) {
		struct curl_slist *nl;

		if (nh >= HTTPC_MAX_HEADERS || strchr(req->headers[nh], ':') == NULL ||
		    strpbrk(req->headers[nh], "\r\n") != NULL) {
			/* The header itself is not quoted: it may be the token. */
			rv = canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "%s %s: header %d: expected \"Name: value\" on one line, at "
			    "most %d headers",
			    req->method, req->url, nh, HTTPC_MAX_HEADERS);
			goto out;
		}
		nl = curl_slist_append(x->hdrs, req->headers[nh]);
		if (nl == NULL) {
			rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
			goto out;
		}
		x->hdrs = nl;
	}
	if (req->n_parts > 0) {
		rv = httpc_build_mime(x, req, err, errlen);
		if (rv != 0) {
			goto out;
		}
		rc = curl_easy_setopt(x->easy, CURLOPT_MIMEPOST, x->mime);
	} else if (req->body != NULL) {
		x->body = malloc(req->body_len + 1);
		if (x->body == NULL) {
			rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
			goto out;
		}
		memcpy(x->body, req->body, req->body_len);
		x->body[req->body_len] = '\0';
		x->body_len = req->body_len;
		rc = curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
		if (rc == CURLE_OK) {
			rc = curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			                      (curl_off_t)x->body_len);
		}
	}
	if (rc == CURLE_OK && strcmp(req->method, "GET") == 0) {
		rc = curl_easy_setopt(x->easy, CURLOPT_HTTPGET, 1L);
	} else if (rc == CURLE_OK && strcmp(req->method, "HEAD") == 0) {
		rc = curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
	} else if (rc == CURLE_OK && strcmp(req->method, "POST") != 0) {
		rc = curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, req->method);
	} else if (rc == CURLE_OK && req->body == NULL && req->n_parts == 0) {
		rc = curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, 0L);
		if (rc == CURLE_OK) {
			rc = curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, "");
		}
	}
	if (rc == CURLE_OK) {
		long timeout = req->timeout_ms > 0 ? req->timeout_ms : HTTPC_TIMEOUT_MS_DEFAULT;
		long connect =
		    timeout < HTTPC_CONNECT_TIMEOUT_MS ? timeout : HTTPC_CONNECT_TIMEOUT_MS;

		if (curl_easy_setopt(x->easy, CURLOPT_URL, x->url) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, timeout) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, connect) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_USERAGENT, HTTPC_USER_AGENT) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, httpc_write_cb) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->curl_err) != CURLE_OK) {
			rc = CURLE_FAILED_INIT;
		}
	}
	if (rc != CURLE_OK) {
		rv = canary_errf(err, errlen, CANARY_EINVAL, "%s %s: %s", req->method, req->url,
		                 curl_easy_strerror(rc));
		goto out;
	}
	if (httpc_add(x) != 0) {
		rv = canary_errf(err, errlen, CANARY_EHTTP, "%s %s: libcurl refused the transfer",
		                 req->method, req->url);
		goto out;
	}
	x->next = h->xfers;
	if (h->xfers != NULL) {
		h->xfers->pprev = &x->next;
	}
	x->pprev = &h->xfers;
	h->xfers = x;
	if (xp != NULL) {
		*xp = x;
	}
	x = NULL;
out:
	httpc_xfer_free(x);
	return rv;
}

void
httpc_cancel(struct httpc_xfer *x)
{
	httpc_xfer_free(x);
}
