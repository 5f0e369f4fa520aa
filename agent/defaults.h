/*
 * defaults.h: the limits and defaults of canary-agent, in one place.
 *
 * The caps here hold whatever a survey asks: a controller can ask for fewer
 * requests than these, never more (a survey over a cap is refused with an
 * error report naming the cap).
 */
#ifndef AGENT_DEFAULTS_H
#define AGENT_DEFAULTS_H

/* Engine */
#define AGENT_MAX_CONCURRENCY     1024 /* transfers in flight, upper bound of -c/--concurrency */
#define AGENT_DEFAULT_CONCURRENCY 16   /* run mode: transfers in flight per round */
#define AGENT_PROBE_CONCURRENCY   8    /* probe mode: default -c */
#define AGENT_BODY_CAP            (64 * 1024) /* bytes of a body kept for the body match */
#define AGENT_HEADER_CAP          (64 * 1024) /* bytes of all response headers */
#define AGENT_HEADER_VALUE_MAX    128  /* bytes kept of a checked header's value, with the NUL */
#define AGENT_CONNECT_TIMEOUT_MS  5000 /* connect phase, capped again by the request timeout */
#define AGENT_MAX_REDIRECTS       5    /* when a request follows redirects */
#define AGENT_RECV_BUFFER_SIZE    (16 * 1024) /* libcurl receive buffer per transfer */
#define AGENT_KICK_LIMIT          8           /* refill rounds per wake-up (engine_check_done) */
#define AGENT_DNS_CACHE_S         60          /* age at which a cached name is resolved again */
#define AGENT_MAX_FDS             65536       /* socket table bound: fds beyond it are refused */
#define AGENT_STATUS_MAX          999         /* highest status line code libcurl hands over */

/* Probe mode */
#define AGENT_PROBE_DEFAULT_N       100
#define AGENT_PROBE_MAX_N           100000000
#define AGENT_PROBE_MAX_DURATION_S  86400
#define AGENT_PROBE_DEFAULT_TIMEOUT 10000 /* ms per request */
#define AGENT_MAX_CONNECT_TO        16    /* --connect-to entries */
#define AGENT_MAX_ALLOW_HOSTS       64    /* --allow-host entries */
#define AGENT_MAX_LINK_URLS         16    /* --dial plus --listen entries */

/* Run mode */
#define AGENT_DEFAULT_MAX_REQUESTS 5000   /* requests per round, all targets */
#define AGENT_MAX_MAX_REQUESTS     100000 /* upper bound of --max-requests */
#define AGENT_REPLY_MARGIN_MIN_MS  20     /* kept free before a survey's deadline to answer */
#define AGENT_REPLY_MARGIN_MAX_MS  250
#define AGENT_REPLY_MARGIN_DIV     5 /* margin = deadline / DIV, within MIN..MAX */
#define AGENT_VERSION_KEY_PREFIX   "canary-key-"

/* Default header names (DESIGN.md "Interfaces") */
#define AGENT_HDR_MIDDLEWARE  "x-canary-middleware-version"
#define AGENT_HDR_SERVER      "x-canary-server-version"
#define AGENT_HDR_CACHE       "x-opennext-cache"
#define AGENT_HDR_OVERRIDE    "Cloudflare-Workers-Version-Overrides"
#define AGENT_HDR_VERSION_KEY "Cloudflare-Workers-Version-Key"

#endif /* AGENT_DEFAULTS_H */
