/*
 * edge_harness.h: starts the real canary-edge on 127.0.0.1 with free ports
 * (port 0, read back from its stdout) and talks HTTP to it with libcurl.
 * Shared by the end-to-end tests of canary-edge. Single-threaded.
 */
#ifndef CANARY_EDGE_HARNESS_H
#define CANARY_EDGE_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#define EH_MAX_REGIONS 8
#define EH_URL_MAX     128
#define EH_HEADERS_MAX 8192

struct eh_edge {
	pid_t pid;
	int out_fd; /* the child's stdout */
	char api[EH_URL_MAX];
	int n_regions;
	char region_name[EH_MAX_REGIONS][64];
	char region_url[EH_MAX_REGIONS][EH_URL_MAX];
	char seed_server[40]; /* the seeded versions, read from /__edge/state */
	char seed_middleware[40];
};

/* eh_start: runs `bin --api 127.0.0.1:0 ARGS...` (args NULL-terminated) and
 * waits for its "ready" line. Returns 0, or -1 when it failed to start
 * (its stderr is left on the test's stderr). */
int eh_start(struct eh_edge *e, const char *bin, const char *const *args);
/* eh_stop: SIGTERM and wait; returns the exit status (or -1). */
int eh_stop(struct eh_edge *e);
const char *eh_region(const struct eh_edge *e, const char *name);

struct eh_resp {
	long status;
	char *body; /* NUL-terminated, owned */
	size_t len;
	char headers[EH_HEADERS_MAX];
	double seconds;
};

/* eh_http: one request (headers NULL-terminated "Name: value" strings; body
 * may be NULL). Connections are reused between calls. 0, or -1 when the
 * transfer failed (no HTTP answer). */
int eh_http(const char *method, const char *url, const char *const *headers, const char *body,
            size_t body_len, struct eh_resp *r);
void eh_resp_free(struct eh_resp *r);
/* eh_header: the value of header name in r (case-insensitive), copied into
 * out; "" when absent. Returns out. */
char *eh_header(const struct eh_resp *r, const char *name, char *out, size_t outlen);

/* eh_api: a request to e's API at path (under the API's base URL) with the
 * bearer token "tok"; the parsed JSON body is returned (caller frees) and
 * the status stored in *status. */
cJSON *eh_api(const struct eh_edge *e, const char *method, const char *path, const char *ctype,
              const char *body, size_t len, long *status);

/* eh_upload: uploads a version of worker with these bindings (a JSON array
 * text) as a multipart request; the new id into id (37 bytes). 0 or the
 * HTTP status. */
long eh_upload(const struct eh_edge *e, const char *worker, const char *bindings_json, char *id);
/* eh_deploy: deploys "ID@PCT" (one or two, second may be NULL). 0 or the
 * HTTP status. */
long eh_deploy(const struct eh_edge *e, const char *worker, const char *id1, int pct1,
               const char *id2, int pct2);

/* eh_get_versions: GET region url+path with optional extra headers; the
 * middleware and server version headers and x-opennext-cache are copied
 * out (each 64 bytes, "" when absent). Returns the status, -1 on failure. */
long eh_get(const char *url, const char *path, const char *const *headers, char *mw, char *srv,
            char *cache);

/* eh_now_ms: a monotonic clock for measuring delays. */
long long eh_now_ms(void);

#endif /* CANARY_EDGE_HARNESS_H */
