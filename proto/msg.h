/*
 * msg.h: the two messages between controller and agents, as C structs, with
 * JSON encoding and strict decoding.
 *
 *   probe  (controller -> agents, one nng survey per round)
 *   report (agent -> controller, the answer to one survey)
 *
 * Wire form: one JSON object per nng message, at most CANARY_MSG_MAX_BYTES,
 * nested at most CANARY_MSG_MAX_DEPTH. Decoding is strict: the protocol
 * version must be CANARY_PROTO_VERSION, "type" must match, every required
 * field must be present with the right type and range (counts >= 0, shares in
 * 0..100, statuses 100..599, version ids are lowercase or uppercase UUIDs),
 * and every rejection names the field path:
 *   targets[2].expect_status[0]: expected an integer 100..599, got "abc"
 * Unknown fields are ignored (forward compatibility inside one version).
 *
 * Wire fields (snake_case, named after the struct fields; "*" optional, with
 * the default the decoder fills in; integers are JSON numbers with no
 * fraction, at most CANARY_MSG_INT_MAX = 2^52-1 so they travel exactly):
 *
 *   probe: {"v":1, "type":"probe", "rollout_id":ID, "round":N,
 *     "phase":"baseline"|"converge"|"bake"|"rollback-verify"|"check",
 *     "deadline_ms":1..CANARY_MAX_DEADLINE_MS,
 *     "targets":[ 1..16 of {"id":ID (unique), "url":"http(s)://...",
 *        "method"*:"GET"|"HEAD" (GET), "requests":1..CANARY_MAX_REQUESTS,
 *        "timeout_ms":1..CANARY_MAX_TIMEOUT_MS,
 *        "expect_status":[1..8 distinct 100..599], "cache"*:"none"|"isr" (none),
 *        "body_match"*:TEXT ("")} ],
 *     "headers":{"middleware_version":H, "server_version":H, "cache":H},
 *     "expect":{"middleware":[1..2 of {"id":UUID, "share":0..100}],
 *               "server":[1..2 of {"id":UUID, "share":0..100}],
 *               "pins":[UUID, one per middleware entry]},
 *     "override"*:{"share":0..100, "worker":ID, "version_id":UUID, "pin":UUID}
 *        (absent: override.enabled = 0),
 *     "version_keys"*:0..CANARY_MAX_VERSION_KEYS (0)}
 *
 *   report: {"v":1, "type":"report", "agent_id":ID, "region":ID,
 *     "rollout_id":ID (may be "" when "error" is set), "round":N,
 *     "partial"*:bool (false), "error"*:TEXT (""),
 *     "targets":[ 0..16 of {"id":ID (unique), "sent":N, "responses":N (<= sent),
 *        "statuses":[0..16 of {"status":100..599 (distinct), "count":N}],
 *        "statuses_other":N,
 *        "errors":{"dns":N, "connect":N, "tls":N, "timeout":N, "http":N},
 *        "latency":HIST (hist.h's compact form),
 *        "pairs":[0..8 of {"middleware":UUID, "server":UUID or "", "count":N}
 *                 (distinct pairs)],
 *        "pairs_other":N, "cache_hit":N, "cache_stale":N, "cache_miss":N,
 *        "cache_warmup":N, "affinity_violations":N, "unknown_versions":N,
 *        "body_mismatches":N, "override_sent":N, "override_violations":N,
 *        "key_violations":N, "samples":[0..4 of TEXT]} ]}
 *     (per target, as an agent counts: the statuses' counts plus
 *      statuses_other equal responses; the pairs' counts plus pairs_other,
 *      and cache_hit + cache_stale + cache_miss + cache_warmup, are at most
 *      responses; override_violations <= override_sent <= sent)
 *
 * ID: 1..CANARY_ID_LEN-1 bytes, no control characters. TEXT: at most the
 * field's buffer less one byte. H: an HTTP header name (token characters).
 * UUID: canary_is_uuid. Within "expect", a worker's ids are distinct and its
 * shares total 100 (within CANARY_SHARE_EPSILON). A field that appears twice
 * in one object is rejected. Input with a NUL byte, a raw control character,
 * or a \u0000 escape is rejected before it reaches cJSON.
 *
 * Error codes: CANARY_ETOOBIG (over the byte cap), CANARY_ETOODEEP,
 * CANARY_EPARSE (not JSON, trailing data), CANARY_EPROTO ("v" or "type"
 * missing or wrong), CANARY_EINVAL (anything else), CANARY_ENOMEM.
 *
 * Ownership: structs are plain data except the arrays the decoder allocates
 * (targets); free them with canary_probe_free / canary_report_free, which
 * accept NULL and leave a zeroed struct. Strings are fixed NUL-terminated
 * buffers; decoding rejects a string that does not fit, naming the field.
 */
#ifndef CANARY_MSG_H
#define CANARY_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define CANARY_PROTO_VERSION    1
#define CANARY_MSG_MAX_BYTES    (1024 * 1024)
#define CANARY_MSG_MAX_DEPTH    16
#define CANARY_MAX_TARGETS      16
#define CANARY_MAX_STATUSES     8  /* expected statuses per target */
#define CANARY_MAX_SEEN_STATUS  16 /* distinct statuses counted per target */
#define CANARY_MAX_PAIRS        8  /* distinct (middleware, server) pairs per target */
#define CANARY_MAX_SAMPLES      4  /* failure samples per target */
#define CANARY_MAX_VERSIONS     2  /* a deployment holds one or two versions */
#define CANARY_MAX_VERSION_KEYS 64
#define CANARY_ID_LEN           64 /* ids and names, including the NUL */
#define CANARY_UUID_LEN         37 /* 36 characters and the NUL */
#define CANARY_URL_LEN          2048
#define CANARY_HEADER_NAME_LEN  64
#define CANARY_BODY_MATCH_LEN   256
#define CANARY_SAMPLE_LEN       256
#define CANARY_MSG_INT_MAX      CANARY_HIST_INT_MAX /* 2^52-1: exact through cJSON */
#define CANARY_MAX_REQUESTS     100000              /* per target per round */
#define CANARY_MAX_TIMEOUT_MS   600000              /* per request */
#define CANARY_MAX_DEADLINE_MS  3600000             /* a survey's time budget */
#define CANARY_SHARE_EPSILON    1e-6                /* shares total 100 within this */

enum canary_phase {
	CANARY_PHASE_BASELINE = 0,
	CANARY_PHASE_CONVERGE,
	CANARY_PHASE_BAKE,
	CANARY_PHASE_ROLLBACK_VERIFY,
	CANARY_PHASE_CHECK, /* a smoke check with no deploy */
	CANARY_PHASE_COUNT
};

enum canary_cache_kind {
	CANARY_CACHE_NONE = 0,
	CANARY_CACHE_ISR,
};

/* Error classes an agent counts, one per failed request. */
enum canary_errclass {
	CANARY_ERRCLASS_DNS = 0,
	CANARY_ERRCLASS_CONNECT,
	CANARY_ERRCLASS_TLS,
	CANARY_ERRCLASS_TIMEOUT,
	CANARY_ERRCLASS_HTTP, /* a response with an unexpected status, or a broken response */
	CANARY_ERRCLASS_COUNT
};

/* Wire names: "baseline", "converge", "bake", "rollback-verify", "check";
 * "none", "isr"; "dns", "connect", "tls", "timeout", "http". */
const char *canary_phase_name(enum canary_phase p);
const char *canary_errclass_name(enum canary_errclass c);
const char *canary_cache_kind_name(enum canary_cache_kind k);

/* The names above back to their values: 0, or CANARY_EINVAL for a name not
 * in the list (*out untouched). Names are case-sensitive. */
int canary_phase_from_name(const char *s, enum canary_phase *out);
int canary_errclass_from_name(const char *s, enum canary_errclass *out);
int canary_cache_kind_from_name(const char *s, enum canary_cache_kind *out);

/* canary_is_uuid: s is 8-4-4-4-12 hex digits. NULL is not. */
int canary_is_uuid(const char *s);

/* canary_is_url: s is what a probe target's url must be: http:// or
 * https://, then a host (not "/", "?" or "#" at once), and no spaces or
 * control characters anywhere. NULL is not. */
int canary_is_url(const char *s);

struct canary_target {
	char id[CANARY_ID_LEN];   /* unique within the probe */
	char url[CANARY_URL_LEN]; /* http:// or https:// */
	char method[8];           /* "GET" or "HEAD" */
	uint32_t requests;        /* 1..100000 */
	uint32_t timeout_ms;      /* 1..600000 */
	int expect_status[CANARY_MAX_STATUSES];
	int n_expect_status; /* 1..CANARY_MAX_STATUSES */
	enum canary_cache_kind cache;
	char body_match[CANARY_BODY_MATCH_LEN]; /* substring the body must hold; "" none */
};

struct canary_version_share {
	char id[CANARY_UUID_LEN];
	double share; /* percent, 0..100 */
};

/* What probes must see after the step. Shares of each worker total 100.
 * pins[i] is the server version that middleware[i] pins (its
 * WORKER_VERSION_ID); a response from middleware[i] must come with pins[i]
 * or with no server header (a cache hit the middleware answered alone). */
struct canary_expect {
	struct canary_version_share middleware[CANARY_MAX_VERSIONS];
	int n_middleware; /* 1..2 */
	struct canary_version_share server[CANARY_MAX_VERSIONS];
	int n_server; /* 1..2 */
	char pins[CANARY_MAX_VERSIONS][CANARY_UUID_LEN];
};

/* The dark step: on `share` percent of requests the agent sends
 * `Cloudflare-Workers-Version-Overrides: <worker>="<version_id>"`; those
 * responses must come from version_id paired with its pin. */
struct canary_override {
	int enabled;
	double share; /* percent, 0..100 */
	char worker[CANARY_ID_LEN];
	char version_id[CANARY_UUID_LEN];
	char pin[CANARY_UUID_LEN]; /* server version the overridden middleware must reach */
};

struct canary_header_names {
	char middleware_version[CANARY_HEADER_NAME_LEN];
	char server_version[CANARY_HEADER_NAME_LEN];
	char cache[CANARY_HEADER_NAME_LEN];
};

struct canary_probe {
	int proto_version; /* CANARY_PROTO_VERSION */
	char rollout_id[CANARY_ID_LEN];
	uint64_t round;
	enum canary_phase phase;
	uint32_t deadline_ms; /* time budget from receipt; the report must be sent within it */
	struct canary_target *targets; /* owned; n_targets entries */
	int n_targets;                 /* 1..CANARY_MAX_TARGETS */
	struct canary_header_names headers;
	struct canary_expect expect;
	struct canary_override override;
	/* Number of distinct Cloudflare-Workers-Version-Key values the agent
	 * spreads over its requests; each must see one version for the round.
	 * 0: send none. At most CANARY_MAX_VERSION_KEYS. */
	uint32_t version_keys;
};

struct canary_status_count {
	int status; /* 100..599 */
	uint64_t count;
};

/* server is "" when the middleware answered alone (ISR hit). A version that
 * is not a UUID is not recorded here but counted in unknown_versions. */
struct canary_pair_count {
	char middleware[CANARY_UUID_LEN];
	char server[CANARY_UUID_LEN];
	uint64_t count;
};

struct canary_target_report {
	char id[CANARY_ID_LEN];
	uint64_t sent;      /* requests attempted */
	uint64_t responses; /* requests that got an HTTP response */
	struct canary_status_count statuses[CANARY_MAX_SEEN_STATUS];
	int n_statuses;
	uint64_t statuses_other; /* responses whose status did not fit in statuses[] */
	uint64_t errors[CANARY_ERRCLASS_COUNT];
	struct canary_hist latency; /* first byte, from the transfer's own start */
	struct canary_pair_count pairs[CANARY_MAX_PAIRS];
	int n_pairs;
	uint64_t pairs_other; /* responses whose pair did not fit in pairs[] */
	uint64_t cache_hit, cache_stale, cache_miss;
	uint64_t cache_warmup; /* isr: first requests excluded from the cache check */
	uint64_t affinity_violations;
	uint64_t unknown_versions;
	uint64_t body_mismatches;
	uint64_t override_sent;       /* requests that carried the override */
	uint64_t override_violations; /* overridden responses not from version_id + pin */
	uint64_t key_violations;      /* version keys that saw more than one version */
	char samples[CANARY_MAX_SAMPLES][CANARY_SAMPLE_LEN];
	int n_samples;
};

struct canary_report {
	int proto_version;
	char agent_id[CANARY_ID_LEN];
	char region[CANARY_ID_LEN];
	char rollout_id[CANARY_ID_LEN];
	uint64_t round;
	int partial; /* the round ran out of time; counts are what was done */
	/* Non-empty: the agent could not run the survey (malformed, refused by
	 * its allowlist or caps); targets may be empty. */
	char error[CANARY_SAMPLE_LEN];
	struct canary_target_report *targets; /* owned */
	int n_targets;                        /* 0..CANARY_MAX_TARGETS */
};

/* Encoding: returns a malloc'd NUL-terminated JSON text in *outp (caller
 * frees with free()) and its length in *lenp (may be NULL). Validates the
 * struct with the same rules as decoding (CANARY_EINVAL with a field path in
 * err), so nothing invalid goes on the wire. */
int canary_probe_encode(const struct canary_probe *p, char **outp, size_t *lenp, char *err,
                        size_t errlen);
int canary_report_encode(const struct canary_report *r, char **outp, size_t *lenp, char *err,
                         size_t errlen);

/* Decoding: buf need not be NUL-terminated. On failure returns
 * CANARY_ETOOBIG, CANARY_ETOODEEP, CANARY_EPARSE, CANARY_EPROTO,
 * CANARY_EINVAL or CANARY_ENOMEM with the reason and field path in err, and
 * leaves *p zeroed (nothing to free). On success the caller frees with
 * canary_probe_free / canary_report_free. */
int canary_probe_decode(const char *buf, size_t len, struct canary_probe *p, char *err,
                        size_t errlen);
int canary_report_decode(const char *buf, size_t len, struct canary_report *r, char *err,
                         size_t errlen);

void canary_probe_free(struct canary_probe *p);
void canary_report_free(struct canary_report *r);

/* canary_target_report_merge: adds src's counts to dst (same target id):
 * statuses and pairs by value (a status or pair that finds no room in dst
 * is added to statuses_other / pairs_other), errors, histogram, cache and
 * check counters; samples kept while room remains. A dst with an empty id
 * (a zeroed accumulator) takes src's id. Exact: merging reports equals
 * counting all their requests at once (the itemised tables in the order
 * each value was first seen, the rest in *_other once a table is full),
 * provided no src had itself to put a status or pair in its *_other; when
 * one had, the totals (itemised counts plus *_other) stay exact but which
 * values are itemised may differ. Counters saturate at UINT64_MAX. */
void canary_target_report_merge(struct canary_target_report *dst,
                                const struct canary_target_report *src);

#endif /* CANARY_MSG_H */
