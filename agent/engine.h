/*
 * engine.h: HTTP transfers with libcurl's multi interface on a libevent loop.
 *
 * One engine keeps at most `concurrency` transfers in flight. It pulls work
 * from a feed: whenever a transfer slot is free it asks feed.next for a
 * request, and hands each finished request to feed.done. No thread per
 * request and no busy loop: libcurl's socket and timer callbacks drive
 * libevent events.
 *
 * What the engine does for every request (issue 4, libcurl-perf.md):
 *  - keep-alive: finished easy handles are re-added with their options kept
 *    (no curl_easy_reset), connections stay in the multi's cache;
 *  - a socket stays registered with libevent while its connection sits idle
 *    in the cache, and is dropped when libcurl closes it (or when it turns
 *    readable while idle: the peer closed it), saving two epoll_ctl calls
 *    per request;
 *  - CURLOPT_NOSIGNAL, CURLOPT_NOPROXY "*", a pre-parsed URL (CURLOPT_CURLU);
 *  - latency from the transfer's own start: pre-transfer to first byte and
 *    to the end, so time queued for a slot never counts;
 *  - response headers capped at AGENT_HEADER_CAP bytes in all; the values
 *    of the (up to AGENT_RESULT_HEADERS) wanted ones taken from the header
 *    lines as they arrive, from the final response's head (first
 *    occurrence, trimmed, cut at AGENT_HEADER_VALUE_MAX - 1 bytes: longer
 *    than any version id or cache state); the body kept up to body_cap
 *    bytes (the rest is read and dropped, so the connection stays usable);
 *  - redirects are not followed unless the request says so.
 *
 * Threads: everything runs on the thread of the event_base given to
 * agent_engine_new; no call may come from another thread.
 */
#ifndef AGENT_ENGINE_H
#define AGENT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <time.h>
#include <event2/event.h>

#include "defaults.h"
#include "msg.h"

#define AGENT_RESULT_HEADERS 3 /* header values one request can ask for */

struct agent_engine_opts {
	int concurrency;               /* 1..AGENT_MAX_CONCURRENCY */
	size_t body_cap;               /* bytes of a body kept when a request wants it */
	struct curl_slist *connect_to; /* borrowed for the engine's life; may be NULL */
};

/* A request, filled in by feed.next. Everything is borrowed: it must stay
 * valid until feed.done is called for the request. */
struct agent_request {
	CURLU *url;                 /* pre-parsed http:// or https:// URL */
	int head;                   /* 1: HEAD, 0: GET */
	long timeout_ms;            /* whole transfer, > 0 */
	int follow;                 /* follow redirects */
	int want_body;              /* keep the body (up to body_cap) for feed.done */
	struct curl_slist *headers; /* extra request headers, or NULL */
	/* Names of response headers whose values feed.done receives; NULL
	 * entries are skipped. */
	const char *header_names[AGENT_RESULT_HEADERS];
	void *tag; /* the feed's own, handed back untouched */
	long tag_i;
};

/* What a request produced; valid only during feed.done. */
struct agent_result {
	int status;                    /* HTTP status, 0 when the transfer failed */
	enum canary_errclass errclass; /* when status == 0 */
	char error[CURL_ERROR_SIZE];   /* libcurl's words, when status == 0 */
	/* header[i] is NULL when header_names[i] was NULL or absent */
	const char *header[AGENT_RESULT_HEADERS];
	const char *body; /* NULL unless want_body */
	size_t body_len;
	int body_truncated;     /* the body was longer than body_cap */
	uint64_t first_byte_us; /* pre-transfer to first byte */
	uint64_t total_us;      /* pre-transfer to the end */
};

struct agent_engine_feed {
	/* next: fill *req and return 1, or return 0 when nothing is to start
	 * now (the engine asks again after the next transfer finishes, or on
	 * agent_engine_kick). */
	int (*next)(void *arg, struct agent_request *req);
	/* done: one call per started request. It may not call
	 * agent_engine_abort or agent_engine_free. */
	void (*done)(void *arg, const struct agent_request *req, const struct agent_result *res);
	void *arg;
};

struct agent_engine;

/* agent_engine_new: an idle engine on base. Returns 0, CANARY_EINVAL (bad
 * opts) or CANARY_ENOMEM / CANARY_EHTTP (libcurl could not start), with
 * words in err. */
int agent_engine_new(struct event_base *base, const struct agent_engine_opts *o,
                     struct agent_engine **ep, char *err, size_t errlen);

/* agent_engine_run: makes feed the engine's source of work and fills free
 * slots from it now. feed is copied. Returns 0, or CANARY_ESTATE while
 * transfers of an earlier feed are in flight. */
int agent_engine_run(struct agent_engine *e, const struct agent_engine_feed *feed);

/* agent_engine_kick: asks the feed for work again (it had none before). */
void agent_engine_kick(struct agent_engine *e);

/* agent_engine_abort: stops every transfer in flight without calling
 * feed.done and forgets the feed. Idle connections stay cached. */
void agent_engine_abort(struct agent_engine *e);

/* agent_engine_inflight: transfers started and not yet done. */
int agent_engine_inflight(const struct agent_engine *e);

/* agent_engine_free: aborts, closes every connection. Accepts NULL. */
void agent_engine_free(struct agent_engine *e);

/* agent_engine_errclass: the error class of a failed libcurl transfer. */
enum canary_errclass agent_engine_errclass(CURLcode code);

/* agent_engine_dns_timeout: the CURLOPT_DNS_CACHE_TIMEOUT for a transfer
 * starting at now (seconds of a monotonic clock): AGENT_DNS_CACHE_S, with
 * *last_prune set to now, when AGENT_DNS_CACHE_S seconds have passed since
 * *last_prune, so that transfer prunes libcurl's DNS cache; -1 (keep
 * entries) otherwise. */
long agent_engine_dns_timeout(time_t *last_prune, time_t now);

#endif /* AGENT_ENGINE_H */
