/*
 * engine.c: libcurl multi on libevent (see engine.h).
 *
 * Ownership: the engine owns its multi handle, one easy handle per slot,
 * the per-slot body buffers, and one struct engine_sock per socket fd
 * libcurl has told it about (a table indexed by fd).
 */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

struct engine_sock {
	struct event *ev; /* made on first use, re-assigned when the fd is reused */
	short events;     /* EV_READ / EV_WRITE currently registered */
	int registered;   /* ev is added to the base */
	int parked;       /* libcurl said REMOVE; kept registered while idle */
	int ours;         /* opened through engine_open_cb, so its close is seen */
};

struct engine_slot {
	struct agent_engine *e;
	CURL *easy;
	int busy;
	struct agent_request req;
	/* What the easy handle is set to now, to skip repeated setopt calls. */
	CURLU *cur_url;
	int cur_head;
	long cur_timeout;
	int cur_follow;
	long cur_dns_timeout; /* CURLOPT_DNS_CACHE_TIMEOUT: -1, or AGENT_DNS_CACHE_S to prune */
	int dns_prune;        /* this request was picked to prune the DNS cache */
	struct curl_slist *cur_headers;
	char *body; /* body_cap bytes, allocated on first want_body */
	size_t body_len;
	int body_truncated;
	size_t header_bytes; /* response header bytes seen, against AGENT_HEADER_CAP */
	int header_overflow;
	int in_head; /* between a status line and the blank line that ends its head */
	/* The wanted response headers of the last response head (first
	 * occurrence, whitespace trimmed, cut at AGENT_HEADER_VALUE_MAX - 1). */
	char hval[AGENT_RESULT_HEADERS][AGENT_HEADER_VALUE_MAX];
	int has_hval[AGENT_RESULT_HEADERS];
	size_t hname_len[AGENT_RESULT_HEADERS]; /* strlen of req.header_names[i], 0 for NULL */
	char errbuf[CURL_ERROR_SIZE];
};

struct agent_engine {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct event *flush; /* engine_check_done once the ready sockets are read */
	int flush_pending;
	struct engine_slot *slots;
	int nslots;
	int inflight;
	size_t body_cap;
	struct agent_engine_feed feed;
	int has_feed;
	struct engine_sock **socks; /* indexed by fd */
	size_t nsocks;
	time_t dns_pruned; /* engine_now_s() of the last pruning transfer */
	int curl_inited;
};

enum canary_errclass
agent_engine_errclass(CURLcode code)
{
	switch (code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return CANARY_ERRCLASS_DNS;
	case CURLE_COULDNT_CONNECT:
		return CANARY_ERRCLASS_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return CANARY_ERRCLASS_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CLIENTCERT:
		return CANARY_ERRCLASS_TLS;
	default:
		return CANARY_ERRCLASS_HTTP;
	}
}

/* Seconds of a coarse monotonic clock: a vDSO read, no system call. */
static time_t
engine_now_s(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	return now.tv_sec;
}

/* The table entry for fd, grown on demand; NULL when fd is out of range or
 * memory ran out. */
static struct engine_sock *
engine_sock_get(struct agent_engine *e, curl_socket_t fd)
{
	if (fd < 0 || (size_t)fd >= AGENT_MAX_FDS) {
		return NULL;
	}
	if ((size_t)fd >= e->nsocks) {
		size_t n = e->nsocks == 0 ? 64 : e->nsocks;
		while (n <= (size_t)fd) {
			n *= 2;
		}
		struct engine_sock **t = realloc(e->socks, n * sizeof(*t));
		if (t == NULL) {
			return NULL;
		}
		memset(t + e->nsocks, 0, (n - e->nsocks) * sizeof(*t));
		e->socks = t;
		e->nsocks = n;
	}
	if (e->socks[fd] == NULL) {
		e->socks[fd] = calloc(1, sizeof(struct engine_sock));
	}
	return e->socks[fd];
}

static void
engine_sock_unregister(struct engine_sock *sk)
{
	if (sk->registered) {
		event_del(sk->ev);
		sk->registered = 0;
	}
	sk->parked = 0;
	sk->events = 0;
}

static void engine_check_done(struct agent_engine *e);

static void
engine_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_engine *e = arg;
	struct engine_sock *sk = (size_t)fd < e->nsocks ? e->socks[fd] : NULL;
	int flags = 0;
	int running = 0;

	if (sk != NULL && sk->parked) {
		/* An idle cached connection turned readable: the peer closed it
		 * or sent something unasked. libcurl will notice on reuse; stop
		 * watching so a level-triggered event does not spin. */
		engine_sock_unregister(sk);
		return;
	}
	if (what & EV_READ) {
		flags |= CURL_CSELECT_IN;
	}
	if (what & EV_WRITE) {
		flags |= CURL_CSELECT_OUT;
	}
	curl_multi_socket_action(e->multi, fd, flags, &running);
	/* The next requests go out once every socket this wake-up found ready
	 * has been read: the flush event joins the tail of the active queue,
	 * behind them. One burst of sends per wake-up keeps the target busy
	 * instead of waking it for each request, and one timeout pass of
	 * libcurl starts them all. */
	if (!e->flush_pending) {
		e->flush_pending = 1;
		event_active(e->flush, EV_TIMEOUT, 1);
	}
}

static void
engine_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_engine *e = arg;

	(void)fd;
	(void)what;
	e->flush_pending = 0;
	engine_check_done(e);
}

static void
engine_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_engine *e = arg;
	int running = 0;

	(void)fd;
	(void)what;
	curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	engine_check_done(e);
}

static int
engine_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct agent_engine *e = userp;
	struct engine_sock *sk;
	short events = 0;

	(void)easy;
	(void)socketp;
	sk = engine_sock_get(e, fd);
	if (sk == NULL) {
		return -1; /* libcurl fails the transfer */
	}
	if (what == CURL_POLL_REMOVE) {
		/* Keep a read watch on our own sockets while they idle in the
		 * connection cache; anything else is dropped now. */
		if (sk->ours && sk->registered && sk->events == EV_READ) {
			sk->parked = 1;
		} else {
			engine_sock_unregister(sk);
		}
		return 0;
	}
	if (what & CURL_POLL_IN) {
		events |= EV_READ;
	}
	if (what & CURL_POLL_OUT) {
		events |= EV_WRITE;
	}
	if (sk->registered && sk->events == events) {
		sk->parked = 0;
		return 0;
	}
	engine_sock_unregister(sk);
	if (sk->ev == NULL) {
		sk->ev = event_new(e->base, fd, events | EV_PERSIST, engine_event_cb, e);
		if (sk->ev == NULL) {
			return -1;
		}
	} else if (event_assign(sk->ev, e->base, fd, events | EV_PERSIST, engine_event_cb, e) !=
	           0) {
		return -1;
	}
	if (event_add(sk->ev, NULL) != 0) {
		return -1;
	}
	sk->registered = 1;
	sk->events = events;
	return 0;
}

static int
engine_timerfn_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct agent_engine *e = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(e->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(e->timer, &tv) == 0 ? 0 : -1;
}

/* Sockets are opened here so that their close is seen (engine_close_cb)
 * and an idle connection's event can stay registered safely. */
static curl_socket_t
engine_open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct agent_engine *e = clientp;
	struct engine_sock *sk;
	curl_socket_t fd;

	(void)purpose;
	fd = socket(addr->family, addr->socktype, addr->protocol);
	if (fd < 0) {
		return CURL_SOCKET_BAD;
	}
	sk = engine_sock_get(e, fd);
	if (sk == NULL) {
		close(fd);
		return CURL_SOCKET_BAD;
	}
	engine_sock_unregister(sk);
	sk->ours = 1;
	return fd;
}

static int
engine_close_cb(void *clientp, curl_socket_t fd)
{
	struct agent_engine *e = clientp;

	if (fd >= 0 && (size_t)fd < e->nsocks && e->socks[fd] != NULL) {
		engine_sock_unregister(e->socks[fd]);
		e->socks[fd]->ours = 0;
	}
	return close(fd);
}

static size_t
engine_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct engine_slot *s = userdata;
	size_t n = size * nmemb;

	if (s->req.want_body && s->body != NULL) {
		size_t room = s->e->body_cap - s->body_len;
		size_t take = n < room ? n : room;
		memcpy(s->body + s->body_len, ptr, take);
		s->body_len += take;
		if (take < n) {
			s->body_truncated = 1;
		}
	}
	return n;
}

static int
engine_is_ows(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Keeps the value of line (one header line, not NUL-terminated) when its
 * name is one the request asked for and that name has no value yet. */
static void
engine_take_header(struct engine_slot *s, const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n);
	size_t nlen;

	if (colon == NULL) {
		return;
	}
	nlen = (size_t)(colon - line);
	for (int i = 0; i < AGENT_RESULT_HEADERS; i++) {
		const char *want = s->req.header_names[i];
		const char *v = colon + 1;
		const char *end = line + n;
		size_t vlen;

		if (s->hname_len[i] != nlen || s->has_hval[i] ||
		    strncasecmp(line, want, nlen) != 0) {
			continue;
		}
		while (v < end && engine_is_ows(*v)) {
			v++;
		}
		while (end > v && engine_is_ows(end[-1])) {
			end--;
		}
		vlen = (size_t)(end - v);
		if (vlen >= AGENT_HEADER_VALUE_MAX) {
			vlen = AGENT_HEADER_VALUE_MAX - 1;
		}
		memcpy(s->hval[i], v, vlen);
		s->hval[i][vlen] = '\0';
		s->has_hval[i] = 1;
		return;
	}
}

/* Caps the response header bytes and picks the wanted header values out
 * of the lines as they arrive: one pass over each line, where three
 * curl_easy_header look-ups after the transfer walked every header three
 * times (about 3,700 instructions per request against nginx). Each
 * status line starts a new head (a 1xx or a followed redirect came
 * before), so the values are those of the final response; trailers,
 * after the head, are not taken. */
static size_t
engine_header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
	struct engine_slot *s = userdata;
	size_t n = size * nitems;

	s->header_bytes += n;
	if (s->header_bytes > AGENT_HEADER_CAP) {
		s->header_overflow = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
		s->in_head = 1;
		memset(s->has_hval, 0, sizeof(s->has_hval));
	} else if (n <= 2 && (n == 0 || ptr[0] == '\r' || ptr[0] == '\n')) {
		s->in_head = 0;
	} else if (s->in_head) {
		engine_take_header(s, ptr, n);
	}
	return n;
}

static int
engine_slot_init(struct agent_engine *e, struct engine_slot *s, const struct agent_engine_opts *o)
{
	CURL *c = curl_easy_init();

	s->e = e;
	s->easy = c;
	if (c == NULL) {
		return CANARY_ENOMEM;
	}
	s->cur_timeout = -1;
	s->cur_follow = -1;
	s->cur_dns_timeout = 0; /* unset: the first prepare sets it */
	s->cur_head = -1;
	if (curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOPROXY, "*") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PRIVATE, s) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, engine_write_cb) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, s) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, engine_header_cb) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HEADERDATA, s) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, engine_open_cb) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, e) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, engine_close_cb) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, e) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)AGENT_RECV_BUFFER_SIZE) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)AGENT_CONNECT_TIMEOUT_MS) !=
	        CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)AGENT_MAX_REDIRECTS) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK) {
		return CANARY_EHTTP;
	}
	if (o->connect_to != NULL &&
	    curl_easy_setopt(c, CURLOPT_CONNECT_TO, o->connect_to) != CURLE_OK) {
		return CANARY_EHTTP;
	}
	return 0;
}

int
agent_engine_new(struct event_base *base, const struct agent_engine_opts *o,
                 struct agent_engine **ep, char *err, size_t errlen)
{
	struct agent_engine *e = NULL;
	int rv = 0;

	*ep = NULL;
	if (o->concurrency < 1 || o->concurrency > AGENT_MAX_CONCURRENCY) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "concurrency: expected 1..%d, got %d", AGENT_MAX_CONCURRENCY,
		                   o->concurrency);
	}
	if (o->body_cap == 0) {
		return canary_errf(err, errlen, CANARY_EINVAL, "body cap: expected > 0");
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "engine: out of memory");
		goto out;
	}
	e->base = base;
	e->body_cap = o->body_cap;
	e->dns_pruned = engine_now_s(); /* nothing is a minute old yet */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		rv = canary_errf(err, errlen, CANARY_EHTTP, "libcurl: global init failed");
		goto out;
	}
	e->curl_inited = 1;
	e->multi = curl_multi_init();
	e->timer = evtimer_new(base, engine_timer_cb, e);
	e->flush = event_new(base, -1, 0, engine_flush_cb, e);
	e->slots = calloc((size_t)o->concurrency, sizeof(*e->slots));
	if (e->multi == NULL || e->timer == NULL || e->flush == NULL || e->slots == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "engine: out of memory");
		goto out;
	}
	e->nslots = o->concurrency;
	if (curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, engine_socket_cb) != CURLM_OK ||
	    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e) != CURLM_OK ||
	    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, engine_timerfn_cb) != CURLM_OK ||
	    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e) != CURLM_OK ||
	    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)o->concurrency) != CURLM_OK) {
		rv = canary_errf(err, errlen, CANARY_EHTTP, "libcurl: multi options refused");
		goto out;
	}
	for (int i = 0; i < e->nslots; i++) {
		rv = engine_slot_init(e, &e->slots[i], o);
		if (rv != 0) {
			rv = canary_errf(err, errlen, rv, "libcurl: easy handle set-up failed");
			goto out;
		}
	}
	*ep = e;
	e = NULL;
out:
	agent_engine_free(e);
	return rv;
}

/* libcurl walks its whole DNS cache at the end of every transfer to drop
 * entries older than the transfer's DNS cache timeout, about 1,700
 * instructions a request. Entries are kept with no expiry (-1) instead, and
 * one transfer a minute carries the usual 60 s timeout, so its end prunes
 * what is older: a name still re-resolves for new connections within about
 * two minutes of changing. */
long
agent_engine_dns_timeout(time_t *last_prune, time_t now)
{
	if (now - *last_prune < AGENT_DNS_CACHE_S) {
		return -1;
	}
	*last_prune = now;
	return AGENT_DNS_CACHE_S;
}

/* Sets only the options that differ from the handle's last request. */
static int
engine_slot_prepare(struct agent_engine *e, struct engine_slot *s)
{
	CURL *c = s->easy;
	const struct agent_request *r = &s->req;
	long dns = agent_engine_dns_timeout(&e->dns_pruned, engine_now_s());

	s->dns_prune = dns == AGENT_DNS_CACHE_S;
	if (r->url != s->cur_url) {
		if (curl_easy_setopt(c, CURLOPT_CURLU, r->url) != CURLE_OK) {
			return -1;
		}
		s->cur_url = r->url;
	}
	if (r->head != s->cur_head) {
		if (curl_easy_setopt(c, CURLOPT_NOBODY, r->head ? 1L : 0L) != CURLE_OK ||
		    (!r->head && curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) != CURLE_OK)) {
			return -1;
		}
		s->cur_head = r->head;
	}
	if (r->timeout_ms != s->cur_timeout) {
		if (curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms) != CURLE_OK) {
			return -1;
		}
		s->cur_timeout = r->timeout_ms;
	}
	if (r->follow != s->cur_follow) {
		if (curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, r->follow ? 1L : 0L) != CURLE_OK) {
			return -1;
		}
		s->cur_follow = r->follow;
	}
	if (r->headers != s->cur_headers) {
		if (curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK) {
			return -1;
		}
		s->cur_headers = r->headers;
	}
	if (dns != s->cur_dns_timeout) {
		if (curl_easy_setopt(c, CURLOPT_DNS_CACHE_TIMEOUT, dns) != CURLE_OK) {
			return -1;
		}
		s->cur_dns_timeout = dns;
	}
	if (r->want_body && s->body == NULL) {
		s->body = malloc(e->body_cap);
		if (s->body == NULL) {
			return -1;
		}
	}
	s->body_len = 0;
	s->body_truncated = 0;
	s->header_bytes = 0;
	s->header_overflow = 0;
	s->in_head = 0;
	memset(s->has_hval, 0, sizeof(s->has_hval));
	for (int i = 0; i < AGENT_RESULT_HEADERS; i++) {
		s->hname_len[i] = r->header_names[i] != NULL ? strlen(r->header_names[i]) : 0;
	}
	s->errbuf[0] = '\0';
	return 0;
}

/* Fills free slots from the feed. A request that cannot even be added is
 * reported done at once as an "http" failure. */
static int
engine_fill(struct agent_engine *e)
{
	int added = 0;

	for (int i = 0; i < e->nslots && e->has_feed; i++) {
		struct engine_slot *s = &e->slots[i];
		if (s->busy) {
			continue;
		}
		memset(&s->req, 0, sizeof(s->req));
		if (!e->feed.next(e->feed.arg, &s->req)) {
			return added;
		}
		if (engine_slot_prepare(e, s) != 0 ||
		    curl_multi_add_handle(e->multi, s->easy) != CURLM_OK) {
			struct agent_result res;
			memset(&res, 0, sizeof(res));
			res.errclass = CANARY_ERRCLASS_HTTP;
			snprintf(res.error, sizeof(res.error), "could not start the transfer");
			s->cur_url = NULL; /* force every option again next time */
			s->cur_headers = NULL;
			s->cur_head = s->cur_follow = -1;
			s->cur_timeout = -1;
			s->cur_dns_timeout = 0;
			if (s->dns_prune) {
				/* The pruning transfer never started: the next one prunes. */
				e->dns_pruned = engine_now_s() - AGENT_DNS_CACHE_S;
			}
			e->feed.done(e->feed.arg, &s->req, &res);
			continue;
		}
		s->busy = 1;
		e->inflight++;
		added++;
	}
	return added;
}

static uint64_t
engine_span_us(curl_off_t from, curl_off_t to)
{
	return to > from ? (uint64_t)(to - from) : 0;
}

static void
engine_result(struct engine_slot *s, CURLcode code, struct agent_result *res)
{
	CURL *c = s->easy;
	long status = 0;
	curl_off_t pre = 0, start = 0, total = 0;

	memset(res, 0, sizeof(*res));
	curl_easy_getinfo(c, CURLINFO_PRETRANSFER_TIME_T, &pre);
	curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME_T, &start);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total);
	res->first_byte_us = engine_span_us(pre, start);
	res->total_us = engine_span_us(pre, total);
	if (code != CURLE_OK) {
		res->errclass = agent_engine_errclass(code);
		if (s->header_overflow) {
			snprintf(res->error, sizeof(res->error), "response headers over %d bytes",
			         AGENT_HEADER_CAP);
		} else {
			snprintf(res->error, sizeof(res->error), "%s",
			         s->errbuf[0] != '\0' ? s->errbuf : curl_easy_strerror(code));
		}
		return;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	/* Any status a server sends is an answer (checks count one outside
	 * 100..599 as an http error); only none at all is a failed transfer. */
	if (status <= 0 || status > AGENT_STATUS_MAX) {
		res->errclass = CANARY_ERRCLASS_HTTP;
		snprintf(res->error, sizeof(res->error), "no valid HTTP status (%ld)", status);
		return;
	}
	res->status = (int)status;
	for (int i = 0; i < AGENT_RESULT_HEADERS; i++) {
		if (s->has_hval[i]) {
			res->header[i] = s->hval[i];
		}
	}
	if (s->req.want_body) {
		res->body = s->body;
		res->body_len = s->body_len;
		res->body_truncated = s->body_truncated;
	}
}

/* Hands finished transfers to the feed and refills their slots; returns the
 * number of transfers started. */
static int
engine_collect(struct agent_engine *e)
{
	CURLMsg *m;
	int left = 0;
	int finished = 0;

	while ((m = curl_multi_info_read(e->multi, &left)) != NULL) {
		struct engine_slot *s = NULL;
		struct agent_result res;
		CURL *easy = m->easy_handle;
		CURLcode code = m->data.result;

		if (m->msg != CURLMSG_DONE) {
			continue;
		}
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&s);
		/* Read the result (times, status) before removing the handle. */
		engine_result(s, code, &res);
		if (e->has_feed) {
			e->feed.done(e->feed.arg, &s->req, &res);
		}
		curl_multi_remove_handle(e->multi, easy);
		s->busy = 0;
		e->inflight--;
		finished = 1;
	}
	return finished ? engine_fill(e) : 0;
}

/* After libcurl acted: collect what finished and start the transfers that
 * replace them in this same wake-up, rather than on the 0 ms timer libcurl
 * asks for. A connection then gets its next request as soon as the answers
 * of this wake-up are read, instead of the whole batch waiting for the
 * slowest answer of the round trip: that lock-step costs about half the
 * throughput against a server on another CPU. Bounded, so a target that
 * fails every request at once cannot hold the loop. */
static void
engine_check_done(struct agent_engine *e)
{
	int running = 0;

	for (int i = 0; i < AGENT_KICK_LIMIT; i++) {
		if (engine_collect(e) == 0) {
			return;
		}
		curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
}

int
agent_engine_run(struct agent_engine *e, const struct agent_engine_feed *feed)
{
	if (e->inflight > 0) {
		return CANARY_ESTATE;
	}
	e->feed = *feed;
	e->has_feed = 1;
	(void)engine_fill(e);
	return 0;
}

void
agent_engine_kick(struct agent_engine *e)
{
	(void)engine_fill(e);
}

void
agent_engine_abort(struct agent_engine *e)
{
	for (int i = 0; i < e->nslots; i++) {
		if (e->slots[i].busy) {
			curl_multi_remove_handle(e->multi, e->slots[i].easy);
			e->slots[i].busy = 0;
		}
	}
	if (e->flush_pending) {
		event_del(e->flush);
		e->flush_pending = 0;
	}
	e->inflight = 0;
	e->has_feed = 0;
	memset(&e->feed, 0, sizeof(e->feed));
}

int
agent_engine_inflight(const struct agent_engine *e)
{
	return e->inflight;
}

void
agent_engine_free(struct agent_engine *e)
{
	if (e == NULL) {
		return;
	}
	if (e->multi != NULL) {
		agent_engine_abort(e);
		/* Closes cached connections through engine_close_cb, which
		 * still needs the socket table. */
		curl_multi_cleanup(e->multi);
	}
	for (int i = 0; i < e->nslots; i++) {
		if (e->slots[i].easy != NULL) {
			curl_easy_cleanup(e->slots[i].easy);
		}
		free(e->slots[i].body);
	}
	free(e->slots);
	for (size_t i = 0; i < e->nsocks; i++) {
		if (e->socks[i] != NULL) {
			engine_sock_unregister(e->socks[i]);
			if (e->socks[i]->ev != NULL) {
				event_free(e->socks[i]->ev);
			}
			free(e->socks[i]);
		}
	}
	free(e->socks);
	if (e->timer != NULL) {
		event_free(e->timer);
	}
	if (e->flush != NULL) {
		event_free(e->flush);
	}
	if (e->curl_inited) {
		curl_global_cleanup();
	}
	free(e);
}
