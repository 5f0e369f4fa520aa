/*
 * httpc.h: an HTTP client on the controller's libevent loop (libcurl multi,
 * driven by socket and timer callbacks), for the platform's REST API.
 *
 * Each request has a per-attempt timeout, a response body cap, and retries
 * with exponential backoff. What is retried depends on what a repeat could
 * do, chosen per request:
 *   HTTPC_RETRY_SAFE    5xx, 429 and network errors: reads, and requests
 *                       whose repeat is harmless (a version upload makes at
 *                       most a spare version, as wrangler itself retries it);
 *   HTTPC_RETRY_UNSENT  429 (the server says it did nothing) and failures
 *                       where the request never left (nothing was written to
 *                       the connection: refused, DNS, TLS handshake). For a
 *                       POST that creates a deployment: a 5xx or a timeout
 *                       after sending may have applied it, and applying a
 *                       deployment twice, or late, is for the caller to
 *                       decide after reading the platform's state;
 *   HTTPC_RETRY_NEVER   one attempt.
 * A 429 or 503 with `Retry-After: <seconds>` waits that long (at most
 * HTTPC_RETRY_AFTER_MAX_S) instead of the backoff. Redirects are not
 * followed; CURLOPT_NOSIGNAL is set (no signal handlers touched, no alarm()
 * for DNS timeouts).
 *
 * Secrets: request headers (the Authorization token) are sent and never
 * stored in errors or logs; error texts hold the method, the URL and
 * libcurl's words only.
 *
 * Threads: one struct httpc per loop, used only on that loop's thread.
 * Callbacks run on the loop, never from inside httpc_start().
 */
#ifndef CANARY_HTTPC_H
#define CANARY_HTTPC_H

#include <stddef.h>

#include <event2/event.h>

#include "err.h"

#define HTTPC_TIMEOUT_MS_DEFAULT 30000 /* one attempt, connect to last byte */
#define HTTPC_CONNECT_TIMEOUT_MS 10000
#define HTTPC_BODY_MAX_DEFAULT   (4 * 1024 * 1024)
#define HTTPC_BODY_MAX_CEILING   (256 * 1024 * 1024) /* the largest max_body taken */
#define HTTPC_ATTEMPTS_DEFAULT   4
#define HTTPC_ATTEMPTS_MAX       10
#define HTTPC_BACKOFF_MS_DEFAULT 500
#define HTTPC_BACKOFF_MAX_MS     8000
#define HTTPC_RETRY_AFTER_MAX_S  60
#define HTTPC_MAX_HEADERS        16
#define HTTPC_MAX_PARTS          64
#define HTTPC_USER_AGENT         "canary-controller/0.1"

enum httpc_retry {
	HTTPC_RETRY_SAFE = 0,
	HTTPC_RETRY_UNSENT,
	HTTPC_RETRY_NEVER,
};

/* One part of a multipart/form-data body: data[0..len) or the file at path
 * (read by libcurl when sending). */
struct httpc_part {
	const char *name;
	const char *filename;     /* NULL: a plain form field */
	const char *content_type; /* NULL: libcurl's default */
	const char *data;
	size_t len;
	const char *path; /* used when data is NULL */
};

struct httpc_request {
	const char *method; /* "GET", "POST", "PUT", "DELETE", "PATCH" */
	const char *url;    /* http:// or https:// */
	/* "Name: value" lines, NULL-terminated, may be NULL. May hold secrets:
	 * copied for the transfer, never logged. */
	const char *const *headers;
	const char *body; /* request body, or NULL; copied */
	size_t body_len;
	const struct httpc_part *parts; /* multipart body instead of body; copied */
	int n_parts;
	int timeout_ms;   /* per attempt; 0: HTTPC_TIMEOUT_MS_DEFAULT */
	size_t max_body;  /* response body cap; 0: HTTPC_BODY_MAX_DEFAULT; <= _CEILING */
	int max_attempts; /* 0: HTTPC_ATTEMPTS_DEFAULT; at most HTTPC_ATTEMPTS_MAX */
	int backoff_ms;   /* first retry delay, doubled each time; 0: default */
	enum httpc_retry retry;
};

struct httpc_response {
	/* 0 when a response arrived (any status: see status), else
	 * CANARY_EHTTP (network), CANARY_ETIMEDOUT, CANARY_ETOOBIG (body over
	 * the cap) with err saying "METHOD URL: what" */
	int rv;
	char err[CANARY_ERRLEN];
	long status;      /* HTTP status of the last attempt, 0 when none */
	const char *body; /* NUL-terminated; valid only during the callback */
	size_t body_len;
	int attempts; /* attempts made */
};

typedef void (*httpc_cb)(const struct httpc_response *res, void *arg);

struct httpc;
struct httpc_xfer;

/* httpc_new: a client on base. Returns 0 or CANARY_ENOMEM / CANARY_EHTTP
 * (libcurl could not start). Call curl_global_init once in main first;
 * httpc_new does it when nobody has (libcurl counts the calls). */
int httpc_new(struct event_base *base, struct httpc **hp, char *err, size_t errlen);

/* httpc_free: drops transfers in flight (their callbacks do not run) and
 * frees h. Accepts NULL. May be called from inside a callback. */
void httpc_free(struct httpc *h);

/* httpc_start: starts req. Returns 0 (cb runs exactly once, later, unless
 * the transfer is canceled; *xp, when xp is not NULL, is a handle valid
 * until then) or CANARY_EINVAL / CANARY_ENOMEM with err filled. */
int httpc_start(struct httpc *h, const struct httpc_request *req, httpc_cb cb, void *arg,
                struct httpc_xfer **xp, char *err, size_t errlen);

/* httpc_cancel: stops x; its callback does not run. Accepts NULL. Not for
 * use on x from inside x's own callback (it is already gone then). */
void httpc_cancel(struct httpc_xfer *x);

/* httpc_retry_after: pure. The delay in seconds a Retry-After value asks
 * for (delta-seconds only; HTTP dates and junk give -1), capped at max_s. */
long httpc_retry_after(const char *value, long max_s);

#endif /* CANARY_HTTPC_H */
