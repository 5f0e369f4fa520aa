/*
 * edge_e2e.c: canary-edge end to end: the real program on 127.0.0.1 with
 * free ports, driven over HTTP. Usage: edge_e2e PATH/TO/canary-edge
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "edge_harness.h"

#define ACCT "/client/v4/accounts/acct/workers"
#define MW   "middleware"
#define SRV  "main-server"

static const char *bin;

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0) {
	}
}

static void
start(struct eh_edge *e, const char *const *extra)
{
	const char *args[48];
	int n = 0;

	args[n++] = "--token";
	args[n++] = "tok";
	args[n++] = "--seed";
	args[n++] = "11";
	for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
		args[n++] = extra[i];
	}
	args[n] = NULL;
	assert_int_equal(eh_start(e, bin, args), 0);
}

/* pin_bindings: the bindings of a middleware version pinned to sid, plus
 * extra bindings (JSON objects text, may be ""). */
static void
pin_bindings(char *out, size_t n, const char *sid, const char *extra)
{
	snprintf(
	    out, n,
	    "[{\"name\":\"WORKER_VERSION_ID\",\"type\":\"plain_text\",\"text\":\"%s\"},"
	    "{\"name\":\"DEFAULT_WORKER\",\"type\":\"service\",\"service\":\"main-server\"}%s%s]",
	    sid, extra[0] != '\0' ? "," : "", extra);
}

static const char *
err_message(const cJSON *j, int *code)
{
	const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "errors"), 0);

	*code =
	    cJSON_GetObjectItem(e, "code") != NULL ? cJSON_GetObjectItem(e, "code")->valueint : 0;
	return cJSON_GetObjectItem(e, "message") != NULL
	           ? cJSON_GetObjectItem(e, "message")->valuestring
	           : "";
}

/* expect_error: a request that must fail with status and Cloudflare code. */
static void
expect_error(struct eh_edge *e, const char *method, const char *path, const char *ctype,
             const char *body, long status, int code, const char *needle)
{
	long st;
	int c;
	cJSON *j = eh_api(e, method, path, ctype, body, body != NULL ? strlen(body) : 0, &st);
	const char *msg;

	if (st != status) {
		fail_msg("%s %s: expected %ld, got %ld", method, path, status, st);
	}
	assert_non_null(j);
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "success")));
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "messages")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "result")));
	msg = err_message(j, &c);
	if (c != code || (needle != NULL && strstr(msg, needle) == NULL)) {
		fail_msg("%s %s: expected code %d with \"%s\", got %d \"%s\"", method, path, code,
		         needle != NULL ? needle : "", c, msg);
	}
	cJSON_Delete(j);
}

static void
still_serving(struct eh_edge *e)
{
	long st;
	cJSON *j = eh_api(e, "GET", ACCT "/scripts/middleware/deployments", NULL, NULL, 0, &st);

	assert_int_equal(st, 200);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "success")));
	cJSON_Delete(j);
	assert_int_equal(eh_get(eh_region(e, "enam"), "/", NULL, NULL, NULL, NULL), 200);
}

static void
test_api_rules_and_rejections(void **state)
{
	struct eh_edge e;
	const char *extra[] = {"--region", "enam=127.0.0.1:0", "--account", "acct", NULL};
	char m1[40], body[1024], url[256];
	struct eh_resp r;
	long st;
	cJSON *j;

	(void)state;
	start(&e, extra);

	/* Token. */
	snprintf(url, sizeof(url), "%s" ACCT "/services/middleware", e.api);
	assert_int_equal(eh_http("GET", url, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.body, "\"code\":10000"));
	eh_resp_free(&r);
	{
		const char *bad[] = {"Authorization: Bearer wrong", NULL};

		assert_int_equal(eh_http("GET", url, bad, NULL, 0, &r), 0);
		assert_int_equal(r.status, 401);
		eh_resp_free(&r);
	}
	/* The service endpoint wrangler reads first. */
	j = eh_api(&e, "GET", ACCT "/services/middleware", NULL, NULL, 0, &st);
	assert_int_equal(st, 200);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "success")));
	assert_non_null(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "default_environment"),
	        "script"),
	    "tag"));
	cJSON_Delete(j);

	/* Routes, methods, workers, versions, accounts. */
	expect_error(&e, "GET", "/client/v4/nothing", NULL, NULL, 404, 7000, "No route");
	expect_error(&e, "GET", ACCT "/scripts/middleware/bogus", NULL, NULL, 404, 7000, NULL);
	expect_error(&e, "GET", "/client/v4/accounts/other/workers/scripts", NULL, NULL, 404, 7003,
	             "other");
	expect_error(&e, "DELETE", ACCT "/scripts/middleware/versions", NULL, NULL, 405, 7001,
	             "GET, POST");
	expect_error(&e, "POST", ACCT "/services/middleware", "application/json", "{}", 405, 7001,
	             NULL);
	expect_error(&e, "GET", ACCT "/services/nope", NULL, NULL, 404, 10007, "does not exist");
	expect_error(&e, "GET", ACCT "/scripts/nope/deployments", NULL, NULL, 404, 10007, NULL);
	expect_error(&e, "GET", ACCT "/scripts/middleware/deployments/nope", NULL, NULL, 404, 10007,
	             "deployment_not_found");
	expect_error(&e, "GET",
	             ACCT "/scripts/middleware/versions/00000000-0000-0000-0000-000000000000", NULL,
	             NULL, 404, 10007, "workers.api.error.version_not_found");

	/* Deployment rules. */
	assert_int_equal(eh_upload(&e, MW, "[]", m1), 0);
	expect_error(&e, "POST", ACCT "/scripts/middleware/deployments", "application/json",
	             "{\"versions\":[", 400, 10001, "malformed JSON at 1:");
	expect_error(&e, "POST", ACCT "/scripts/middleware/deployments", "application/json",
	             "{\"versions\":[] // JSONC, not JSON\n}", 400, 10001, "malformed JSON");
	expect_error(&e, "POST", ACCT "/scripts/middleware/deployments", "application/json", "",
	             400, 10001, NULL);
	snprintf(body, sizeof(body),
	         "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":60},{\"version_id\":\"%s\","
	         "\"percentage\":30}]}",
	         m1, e.seed_middleware);
	expect_error(&e, "POST", ACCT "/scripts/middleware/deployments", "application/json", body,
	             400, 10001, "total 100");
	snprintf(body, sizeof(body),
	         "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":50},{\"version_id\":\"%s\","
	         "\"percentage\":25},{\"version_id\":\"%s\",\"percentage\":25}]}",
	         m1, e.seed_middleware, m1);
	expect_error(&e, "POST", ACCT "/scripts/middleware/deployments", "application/json", body,
	             400, 10001, "one or two");
	snprintf(body, sizeof(body), "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":100}]}",
	         e.seed_server);
	expect_error(&e, "POST", ACCT "/scripts/middleware/deployments", "application/json", body,
	             404, 10007, "version_not_found");
	expect_error(&e, "POST", ACCT "/scripts/nope/deployments", "application/json", body, 404,
	             10007, NULL);

	/* Versions and deployments are listed newest first; each can be read. */
	j = eh_api(&e, "GET", ACCT "/scripts/middleware/versions?deployable=true", NULL, NULL, 0,
	           &st);
	assert_int_equal(st, 200);
	{
		const cJSON *items = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "items");

		assert_int_equal(cJSON_GetArraySize(items), 2);
		assert_string_equal(
		    cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "id")->valuestring, m1);
	}
	cJSON_Delete(j);
	assert_int_equal(eh_deploy(&e, MW, m1, 100, NULL, 0), 0);
	assert_int_equal(eh_deploy(&e, MW, e.seed_middleware, 90, m1, 10), 0);
	j = eh_api(&e, "GET", ACCT "/scripts/middleware/deployments", NULL, NULL, 0, &st);
	{
		const cJSON *ds =
		    cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "deployments");
		char path[256];
		cJSON *one;

		snprintf(path, sizeof(path), ACCT "/scripts/middleware/deployments/%s",
		         cJSON_GetObjectItem(cJSON_GetArrayItem(ds, 1), "id")->valuestring);
		one = eh_api(&e, "GET", path, NULL, NULL, 0, &st);
		assert_int_equal(st, 200);
		assert_string_equal(
		    cJSON_GetObjectItem(cJSON_GetObjectItem(one, "result"), "id")->valuestring,
		    cJSON_GetObjectItem(cJSON_GetArrayItem(ds, 1), "id")->valuestring);
		cJSON_Delete(one);

		assert_int_equal(cJSON_GetArraySize(ds), 3);
		assert_int_equal(
		    cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(ds, 0), "versions")),
		    2);
		assert_string_equal(
		    cJSON_GetObjectItem(
		        cJSON_GetArrayItem(
		            cJSON_GetObjectItem(cJSON_GetArrayItem(ds, 1), "versions"), 0),
		        "version_id")
		        ->valuestring,
		    m1);
	}
	cJSON_Delete(j);

	/* Uploads: malformed multipart, wrong content type, bad metadata. */
	{
		const char *ct = "multipart/form-data; boundary=XyZ";

		expect_error(&e, "POST", ACCT "/scripts/middleware/versions", "application/json",
		             "{}", 400, 10001, "multipart/form-data");
		expect_error(&e, "POST", ACCT "/scripts/middleware/versions", ct, "garbage", 400,
		             10001, "multipart");
		expect_error(&e, "POST", ACCT "/scripts/middleware/versions", ct,
		             "--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{",
		             400, 10001, "closing delimiter");
		expect_error(
		    &e, "POST", ACCT "/scripts/middleware/versions", ct,
		    "--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n{}\r\n--XyZ--", 400,
		    10001, "metadata");
		expect_error(
		    &e, "POST", ACCT "/scripts/middleware/versions", ct,
		    "--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"a\":}"
		    "\r\n--XyZ--",
		    400, 10001, "metadata: malformed JSON");
		expect_error(&e, "POST", ACCT "/scripts/middleware/versions", ct,
		             "--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n"
		             "{\"main_module\":\"index.js\"}\r\n--XyZ--",
		             400, 10001, "main_module");
		/* Cloudflare takes strict JSON: no comments, no trailing commas. */
		expect_error(&e, "POST", ACCT "/scripts/middleware/versions", ct,
		             "--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n"
		             "{\"bindings\":[],}\r\n--XyZ--",
		             400, 10001, "metadata: malformed JSON");
		expect_error(&e, "POST", ACCT "/scripts/middleware/versions", ct,
		             "--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n"
		             "{\"bindings\":[{\"name\":\"CANARY_EDGE_ERROR_RATE\",\"type\":"
		             "\"plain_text\",\"text\":\"2\"}]}\r\n--XyZ--",
		             400, 10001, "CANARY_EDGE_ERROR_RATE");
		expect_error(&e, "POST", ACCT "/scripts/nope/versions", ct, "x", 404, 10007, NULL);
	}
	/* An oversized body is refused without being kept, with Cloudflare's
	 * envelope (not libevent's HTML page), whether the client waits for
	 * 100-continue (libcurl's default) or sends the body at once (undici). */
	{
		size_t big = 9 * 1024 * 1024;
		char *p = malloc(big);
		const char *hs[2][4] = {
		    {"Authorization: Bearer tok", "Content-Type: application/json", NULL},
		    {"Authorization: Bearer tok", "Content-Type: application/json",
		     "Expect:", NULL}};

		assert_non_null(p);
		memset(p, ' ', big);
		snprintf(url, sizeof(url), "%s" ACCT "/scripts/middleware/deployments", e.api);
		for (int i = 0; i < 2; i++) {
			char ct[64];

			assert_int_equal(eh_http("POST", url, hs[i], p, big, &r), 0);
			assert_int_equal(r.status, 413);
			assert_string_equal(eh_header(&r, "Content-Type", ct, sizeof(ct)),
			                    "application/json");
			j = cJSON_Parse(r.body);
			assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "success")));
			assert_int_equal(
			    cJSON_GetObjectItem(
			        cJSON_GetArrayItem(cJSON_GetObjectItem(j, "errors"), 0), "code")
			        ->valueint,
			    10021);
			assert_non_null(strstr(r.body, "8388608"));
			cJSON_Delete(j);
			eh_resp_free(&r);
		}
		free(p);
	}
	/* A method libevent does not serve: its 501, in the envelope. */
	expect_error(&e, "TRACE", ACCT "/scripts", NULL, NULL, 501, 7001, "Not Implemented");
	still_serving(&e);

	/* Injected API failures: two 429s with Retry-After, then a 503, then normal. */
	{
		static const char *const bodies[] = {
		    "{\"status\":99,\"count\":1}", "{\"count\":1}", "[1]",
		    "{\"status\":503,\"count\":1}garbage",
		    "{\"status\":429,\"count\":2,\"retry_after_s\":3}"};

		for (int i = 0; i < 5; i++) {
			cJSON_Delete(eh_api(&e, "POST", "/__edge/api-faults", "application/json",
			                    bodies[i], strlen(bodies[i]), &st));
			assert_int_equal(st, i < 4 ? 400 : 200);
		}
	}
	snprintf(url, sizeof(url), "%s" ACCT "/services/middleware", e.api);
	for (int i = 0; i < 2; i++) {
		const char *hs[] = {"Authorization: Bearer tok", NULL};
		char ra[16];

		assert_int_equal(eh_http("GET", url, hs, NULL, 0, &r), 0);
		assert_int_equal(r.status, 429);
		assert_string_equal(eh_header(&r, "Retry-After", ra, sizeof(ra)), "3");
		assert_non_null(strstr(r.body, "\"code\":971"));
		eh_resp_free(&r);
	}
	cJSON_Delete(eh_api(&e, "POST", "/__edge/api-faults", "application/json",
	                    "{\"status\":503,\"count\":1}", strlen("{\"status\":503,\"count\":1}"),
	                    &st));
	expect_error(&e, "GET", ACCT "/services/middleware", NULL, NULL, 503, 10013, "injected");
	j = eh_api(&e, "GET", ACCT "/services/middleware", NULL, NULL, 0, &st);
	assert_int_equal(st, 200);
	cJSON_Delete(j);

	j = eh_api(&e, "GET", ACCT "/scripts/middleware/versions", NULL, NULL, 0, &st);
	/* Nothing rejected was stored: seed + m1. */
	assert_int_equal(
	    cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "items")), 2);
	cJSON_Delete(j);
	assert_int_equal(eh_stop(&e), 0);
}

static void
test_state_survives_restart(void **state)
{
	struct eh_edge e;
	char dir[] = "/tmp/edge_e2e_XXXXXX";
	char file[64], s1[40], m1[40], seed_m[40], mw[64], srv[64];
	const char *extra[] = {
	    "--region", "enam=127.0.0.1:0", "--state", file, "--migration-tag", "v7", NULL};

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/edge.json", dir);
	start(&e, extra);
	strcpy(seed_m, e.seed_middleware);
	assert_int_equal(eh_upload(&e, SRV, "[]", s1), 0);
	assert_int_equal(eh_deploy(&e, SRV, e.seed_server, 100, s1, 0), 0);
	{
		char b[512];

		pin_bindings(b, sizeof(b), s1, "");
		assert_int_equal(eh_upload(&e, MW, b, m1), 0);
	}
	assert_int_equal(eh_deploy(&e, MW, m1, 100, NULL, 0), 0);
	assert_int_equal(eh_stop(&e), 0);

	start(&e, extra);
	/* The same seed versions (not re-seeded) and the deployment in force. */
	assert_string_equal(e.seed_middleware, m1);
	assert_int_equal(eh_get(eh_region(&e, "enam"), "/", NULL, mw, srv, NULL), 200);
	assert_string_equal(mw, m1);
	assert_string_equal(srv, s1);
	{
		long st;
		cJSON *j =
		    eh_api(&e, "GET", ACCT "/scripts/middleware/versions", NULL, NULL, 0, &st);
		const cJSON *items = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "items");

		assert_int_equal(cJSON_GetArraySize(items), 2);
		assert_string_equal(
		    cJSON_GetObjectItem(cJSON_GetArrayItem(items, 1), "id")->valuestring, seed_m);
		cJSON_Delete(j);
		j = eh_api(&e, "GET", ACCT "/services/middleware", NULL, NULL, 0, &st);
		assert_string_equal(
		    cJSON_GetObjectItem(
		        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"),
		                                                "default_environment"),
		                            "script"),
		        "migration_tag")
		        ->valuestring,
		    "v7");
		cJSON_Delete(j);
	}
	/* A state file that cannot be written: the API says so with Cloudflare's
	 * internal-error code and the path, and the file keeps its last state. */
	{
		char tmp[80];

		snprintf(tmp, sizeof(tmp), "%s.tmp", file);
		assert_int_equal(mkdir(tmp, 0700), 0);
		expect_error(&e, "POST", ACCT "/scripts/middleware/versions",
		             "multipart/form-data; boundary=XyZ",
		             "--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{}"
		             "\r\n--XyZ--",
		             500, 10013, "edge.json.tmp");
		/* ... and a deployment that cannot be saved is not made: the
		 * regions keep serving what the file holds. */
		{
			char body[160];
			long st;
			cJSON *j;

			snprintf(body, sizeof(body),
			         "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":100}]}",
			         seed_m);
			expect_error(&e, "POST", ACCT "/scripts/middleware/deployments",
			             "application/json", body, 500, 10013, "edge.json.tmp");
			j = eh_api(&e, "GET", ACCT "/scripts/middleware/versions", NULL, NULL, 0,
			           &st);
			assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(
			                     cJSON_GetObjectItem(j, "result"), "items")),
			                 2);
			cJSON_Delete(j);
			assert_int_equal(eh_get(eh_region(&e, "enam"), "/", NULL, mw, srv, NULL),
			                 200);
			assert_string_equal(mw, m1);
		}
		assert_int_equal(rmdir(tmp), 0);
	}
	assert_int_equal(eh_stop(&e), 0);
	start(&e, extra);
	{
		long st;
		cJSON *j =
		    eh_api(&e, "GET", ACCT "/scripts/middleware/versions", NULL, NULL, 0, &st);

		assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(
		                     cJSON_GetObjectItem(j, "result"), "items")),
		                 2);
		cJSON_Delete(j);
	}
	assert_int_equal(eh_stop(&e), 0);
	unlink(file);
	rmdir(dir);
}

static void
test_overrides_pins_and_split(void **state)
{
	struct eh_edge e;
	const char *extra[] = {"--region", "enam=127.0.0.1:0", NULL};
	char s1[40], m1[40], b[1024], mw[64], srv[64], hdr[160];
	const char *url;
	int on_m1 = 0;
	const int n = 10000;

	(void)state;
	start(&e, extra);
	url = eh_region(&e, "enam");
	assert_int_equal(eh_upload(&e, SRV, "[]", s1), 0);
	assert_int_equal(eh_deploy(&e, SRV, e.seed_server, 100, s1, 0), 0);
	pin_bindings(b, sizeof(b), s1, "");
	assert_int_equal(eh_upload(&e, MW, b, m1), 0);
	assert_int_equal(eh_deploy(&e, MW, e.seed_middleware, 100, m1, 0), 0);

	/* Dark step: live traffic m0+s0; an override for m1 reaches m1, whose
	 * pin reaches the 0% s1. */
	for (int i = 0; i < 50; i++) {
		assert_int_equal(eh_get(url, "/", NULL, mw, srv, NULL), 200);
		assert_string_equal(mw, e.seed_middleware);
		assert_string_equal(srv, e.seed_server);
	}
	snprintf(hdr, sizeof(hdr), "Cloudflare-Workers-Version-Overrides: middleware=\"%s\"", m1);
	{
		const char *hs[] = {hdr, NULL};

		for (int i = 0; i < 50; i++) {
			assert_int_equal(eh_get(url, "/", hs, mw, srv, NULL), 200);
			assert_string_equal(mw, m1);
			assert_string_equal(srv, s1);
		}
	}
	/* The field may come on several lines: they form one dictionary
	 * (RFC 9110 5.3), so an entry on the second line counts. */
	{
		char two[160];
		const char *hs[] = {"Cloudflare-Workers-Version-Overrides: other=\"x\"", two, NULL};
		const char *bad[] = {"Cloudflare-Workers-Version-Overrides: other=1.2.3", hdr,
		                     NULL};

		snprintf(two, sizeof(two),
		         "Cloudflare-Workers-Version-Overrides: middleware=\"%s\"", m1);
		for (int i = 0; i < 20; i++) {
			assert_int_equal(eh_get(url, "/", hs, mw, srv, NULL), 200);
			assert_string_equal(mw, m1);
			/* One invalid line spoils the whole dictionary: ignored. */
			assert_int_equal(eh_get(url, "/", bad, mw, srv, NULL), 200);
			assert_string_equal(mw, e.seed_middleware);
		}
	}
	/* An override for a version that is not deployed: the split, silently. */
	{
		char m2[40];
		const char *hs[] = {hdr, NULL};

		assert_int_equal(eh_upload(&e, MW, b, m2), 0);
		snprintf(hdr, sizeof(hdr),
		         "Cloudflare-Workers-Version-Overrides: middleware=\"%s\"", m2);
		for (int i = 0; i < 50; i++) {
			assert_int_equal(eh_get(url, "/", hs, mw, srv, NULL), 200);
			assert_string_equal(mw, e.seed_middleware);
		}
	}

	/* Split share over 10,000 requests inside the 99.9% binomial interval. */
	assert_int_equal(eh_deploy(&e, MW, e.seed_middleware, 70, m1, 30), 0);
	for (int i = 0; i < n; i++) {
		assert_int_equal(eh_get(url, "/", NULL, mw, srv, NULL), 200);
		if (strcmp(mw, m1) == 0) {
			on_m1++;
			assert_string_equal(srv, s1); /* every m1 with s1 */
		} else {
			assert_string_equal(srv, e.seed_server); /* every m0 with s0 */
		}
	}
	assert_true(fabs(on_m1 - 0.3 * n) < 3.29 * sqrt(n * 0.3 * 0.7));

	/* Version keys: 1,000 keys stay on m1 as its share grows. */
	{
		static char was[1000];

		for (int pct = 10; pct <= 90; pct += 40) {
			int now_m1 = 0;

			assert_int_equal(eh_deploy(&e, MW, e.seed_middleware, 100 - pct, m1, pct),
			                 0);
			for (int k = 0; k < 1000; k++) {
				char kh[64];
				const char *hs[] = {kh, NULL};
				int is_m1;

				snprintf(kh, sizeof(kh), "Cloudflare-Workers-Version-Key: user-%d",
				         k);
				assert_int_equal(eh_get(url, "/", hs, mw, NULL, NULL), 200);
				is_m1 = strcmp(mw, m1) == 0;
				if (pct > 10 && was[k]) {
					assert_true(is_m1);
				}
				/* and the same key twice gives the same version */
				if (k % 100 == 0) {
					char mw2[64];

					assert_int_equal(eh_get(url, "/", hs, mw2, NULL, NULL),
					                 200);
					assert_string_equal(mw, mw2);
				}
				was[k] = (char)is_m1;
				now_m1 += is_m1;
			}
			assert_true(abs(now_m1 - pct * 10) < 80);
		}
	}

	/* Pin not honoured when s1 is not deployed: m1 talks to s0, silently. */
	assert_int_equal(eh_deploy(&e, MW, m1, 100, NULL, 0), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(eh_get(url, "/", NULL, mw, srv, NULL), 200);
		assert_string_equal(srv, s1);
	}
	assert_int_equal(eh_deploy(&e, SRV, e.seed_server, 100, NULL, 0), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(eh_get(url, "/", NULL, mw, srv, NULL), 200);
		assert_string_equal(mw, m1);
		assert_string_equal(srv, e.seed_server);
	}
	assert_int_equal(eh_stop(&e), 0);
}

static void
test_isr_cache_per_region(void **state)
{
	struct eh_edge e;
	const char *extra[] = {"--region",
	                       "enam=127.0.0.1:0",
	                       "--region",
	                       "weur=127.0.0.1:0",
	                       "--isr",
	                       "/isr",
	                       "--revalidate-s",
	                       "1",
	                       NULL};
	char s1[40], m1[40], b[512], mw[64], srv[64], cache[64];
	const char *en, *we;

	(void)state;
	start(&e, extra);
	en = eh_region(&e, "enam");
	we = eh_region(&e, "weur");
	/* Miss (answered by the server), then hit (the middleware alone). */
	assert_int_equal(eh_get(en, "/isr", NULL, mw, srv, cache), 200);
	assert_string_equal(cache, "");
	assert_string_equal(srv, e.seed_server);
	assert_int_equal(eh_get(en, "/isr", NULL, mw, srv, cache), 200);
	assert_string_equal(cache, "HIT");
	assert_string_equal(srv, "");
	assert_string_equal(mw, e.seed_middleware);
	/* Each region warms on its own. */
	assert_int_equal(eh_get(we, "/isr", NULL, mw, srv, cache), 200);
	assert_string_equal(cache, "");
	assert_int_equal(eh_get(we, "/isr", NULL, mw, srv, cache), 200);
	assert_string_equal(cache, "HIT");
	/* Server actions, on-demand revalidation and draft mode skip the cache
	 * interception (OpenNext), even on a cached path. */
	{
		static const char *const skip[] = {"next-action: 7f3a", "x-prerender-revalidate: 1",
		                                   "Cookie: a=b; __prerender_bypass=1"};

		for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
			const char *hs[] = {skip[i], NULL};

			assert_int_equal(eh_get(en, "/isr", hs, mw, srv, cache), 200);
			assert_string_equal(cache, "");
			assert_string_equal(srv, e.seed_server);
		}
	}
	/* Paths not listed are never cached. */
	assert_int_equal(eh_get(en, "/other", NULL, mw, srv, cache), 200);
	assert_int_equal(eh_get(en, "/other", NULL, mw, srv, cache), 200);
	assert_string_equal(cache, "");
	assert_string_equal(srv, e.seed_server);

	/* STALE once past the revalidate time, then refreshed (HIT). */
	sleep_ms(1100);
	assert_int_equal(eh_get(en, "/isr", NULL, mw, srv, cache), 200);
	assert_string_equal(cache, "STALE");
	assert_int_equal(eh_get(en, "/isr", NULL, mw, srv, cache), 200);
	assert_string_equal(cache, "HIT");

	/* A new build starts cold. */
	assert_int_equal(eh_upload(&e, SRV,
	                           "[{\"name\":\"NEXT_BUILD_ID\",\"type\":\"plain_text\",\"text\":"
	                           "\"build-2\"}]",
	                           s1),
	                 0);
	assert_int_equal(eh_deploy(&e, SRV, e.seed_server, 100, s1, 0), 0);
	pin_bindings(b, sizeof(b), s1, "");
	assert_int_equal(eh_upload(&e, MW, b, m1), 0);
	assert_int_equal(eh_deploy(&e, MW, m1, 100, NULL, 0), 0);
	assert_int_equal(eh_get(en, "/isr", NULL, mw, srv, cache), 200);
	assert_string_equal(mw, m1);
	assert_string_equal(srv, s1);
	assert_string_equal(cache, "");
	assert_int_equal(eh_get(en, "/isr", NULL, mw, srv, cache), 200);
	assert_string_equal(cache, "HIT");
	assert_int_equal(eh_stop(&e), 0);
}

/* fault_version: uploads a middleware (pinned to the seed server) or
 * server version with one fault binding and deploys it at 100%. */
static void
fault_version(struct eh_edge *e, const char *worker, const char *name, const char *value,
              const char *regions)
{
	char b[1024], f[512], id[40];

	snprintf(f, sizeof(f), "{\"name\":\"%s\",\"type\":\"plain_text\",\"text\":\"%s\"}%s", name,
	         value, regions != NULL ? "," : "");
	if (regions != NULL) {
		size_t k = strlen(f);

		snprintf(
		    f + k, sizeof(f) - k,
		    "{\"name\":\"CANARY_EDGE_REGIONS\",\"type\":\"plain_text\",\"text\":\"%s\"}",
		    regions);
	}
	if (strcmp(worker, MW) == 0) {
		pin_bindings(b, sizeof(b), e->seed_server, f);
	} else {
		snprintf(b, sizeof(b), "[%s]", f);
	}
	assert_int_equal(eh_upload(e, worker, b, id), 0);
	assert_int_equal(eh_deploy(e, worker, id, 100, NULL, 0), 0);
}

static void
test_faults(void **state)
{
	struct eh_edge e;
	const char *extra[] = {
	    "--region", "enam=127.0.0.1:0", "--region", "weur=127.0.0.1:0", "--isr", "/isr", NULL};
	char mw[64], srv[64], cache[64], s1[40];
	const char *en, *we;
	int fails = 0;

	(void)state;
	start(&e, extra);
	en = eh_region(&e, "enam");
	we = eh_region(&e, "weur");

	/* Fixed status in the middleware: no server answered. */
	fault_version(&e, MW, "CANARY_EDGE_STATUS", "503", NULL);
	assert_int_equal(eh_get(en, "/", NULL, mw, srv, NULL), 503);
	assert_string_not_equal(mw, "");
	assert_string_equal(srv, "");
	/* Fixed status in the server: the server's header is there. */
	fault_version(&e, MW, "CANARY_EDGE_STATUS", "200", "nowhere");
	assert_int_equal(eh_get(en, "/", NULL, mw, srv, NULL), 200);
	fault_version(&e, SRV, "CANARY_EDGE_STATUS", "502", NULL);
	assert_int_equal(eh_get(en, "/x", NULL, mw, srv, NULL), 502);
	assert_string_not_equal(srv, "");
	assert_string_not_equal(srv, e.seed_server);
	assert_int_equal(eh_deploy(&e, SRV, e.seed_server, 100, NULL, 0), 0);

	/* Error rate 0.5: about half the answers are 500. */
	fault_version(&e, MW, "CANARY_EDGE_ERROR_RATE", "0.5", NULL);
	for (int i = 0; i < 400; i++) {
		long st = eh_get(en, "/", NULL, NULL, NULL, NULL);

		assert_true(st == 200 || st == 500);
		fails += st == 500;
	}
	assert_true(fails > 120 && fails < 280);

	/* Latency, only in the listed region. */
	fault_version(&e, MW, "CANARY_EDGE_LATENCY_MS", "300", "enam");
	{
		long long t0 = eh_now_ms();

		assert_int_equal(eh_get(en, "/", NULL, NULL, NULL, NULL), 200);
		assert_true(eh_now_ms() - t0 >= 300);
		/* weur adds nothing: the fastest of three answers is well under it
		 * (three, so one slow moment on a busy machine does not count). */
		{
			long long best = 1000000;

			for (int i = 0; i < 3; i++) {
				t0 = eh_now_ms();
				assert_int_equal(eh_get(we, "/", NULL, NULL, NULL, NULL), 200);
				if (eh_now_ms() - t0 < best) {
					best = eh_now_ms() - t0;
				}
			}
			assert_true(best < 300);
		}
	}

	/* Ignore pin and a wrong override key: the split picks s0, not the
	 * pinned 0% s1. The right key reaches s1. */
	assert_int_equal(eh_upload(&e, SRV, "[]", s1), 0);
	assert_int_equal(eh_deploy(&e, SRV, e.seed_server, 100, s1, 0), 0);
	{
		char b[1024], id[40];
		static const char *const cases[][2] = {
		    {"", "pinned"},
		    {",{\"name\":\"CANARY_EDGE_IGNORE_PIN\",\"type\":\"plain_text\",\"text\":"
		     "\"1\"}",
		     "split"},
		    {",{\"name\":\"CANARY_EDGE_OVERRIDE_KEY\",\"type\":\"plain_text\",\"text\":"
		     "\"server\"}",
		     "split"},
		};

		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			snprintf(
			    b, sizeof(b),
			    "[{\"name\":\"WORKER_VERSION_ID\",\"type\":\"plain_text\",\"text\":"
			    "\"%s\"}%s]",
			    s1, cases[c][0]);
			assert_int_equal(eh_upload(&e, MW, b, id), 0);
			assert_int_equal(eh_deploy(&e, MW, id, 100, NULL, 0), 0);
			for (int i = 0; i < 20; i++) {
				assert_int_equal(eh_get(en, "/", NULL, mw, srv, NULL), 200);
				assert_string_equal(mw, id);
				assert_string_equal(
				    srv, strcmp(cases[c][1], "pinned") == 0 ? s1 : e.seed_server);
			}
		}
	}

	/* Cache interception off: an ISR path always goes to the server. */
	fault_version(&e, MW, "CANARY_EDGE_NO_CACHE", "1", NULL);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(eh_get(en, "/isr", NULL, mw, srv, cache), 200);
		assert_string_equal(cache, "");
		assert_string_not_equal(srv, "");
	}
	still_serving(&e);
	assert_int_equal(eh_stop(&e), 0);
}

/* seen: the middleware deployment region r shows in /__edge/state. */
static int
region_sees(struct eh_edge *e, const char *region, const char *version)
{
	long st;
	cJSON *j = eh_api(e, "GET", "/__edge/state", NULL, NULL, 0, &st);
	const cJSON *r;
	int yes = 0;

	cJSON_ArrayForEach(r, cJSON_GetObjectItem(j, "regions"))
	{
		if (strcmp(cJSON_GetObjectItem(r, "name")->valuestring, region) == 0) {
			const cJSON *vs = cJSON_GetObjectItem(
			    cJSON_GetObjectItem(cJSON_GetObjectItem(r, "deployments"), MW),
			    "versions");

			yes = strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(vs, 0), "version_id")
			                 ->valuestring,
			             version) == 0;
		}
	}
	cJSON_Delete(j);
	return yes;
}

static void
test_propagation_regions_and_timeline(void **state)
{
	struct eh_edge e;
	const char *extra[] = {"--region", "enam=127.0.0.1:0", "--region", "weur=127.0.0.1:0",
	                       "--delay",  "weur=600",         NULL};
	char m1[40], b[512], mw[64];
	const char *en, *we;
	long long t0, seen_at = 0;
	long st;

	(void)state;
	start(&e, extra);
	en = eh_region(&e, "enam");
	we = eh_region(&e, "weur");
	pin_bindings(b, sizeof(b), e.seed_server, "");
	assert_int_equal(eh_upload(&e, MW, b, m1), 0);
	t0 = eh_now_ms();
	assert_int_equal(eh_deploy(&e, MW, m1, 100, NULL, 0), 0);
	assert_int_equal(eh_get(en, "/", NULL, mw, NULL, NULL), 200);
	assert_string_equal(mw, m1); /* no delay in enam */
	for (;;) {
		assert_int_equal(eh_get(we, "/", NULL, mw, NULL, NULL), 200);
		if (strcmp(mw, m1) == 0) {
			seen_at = eh_now_ms();
			break;
		}
		assert_string_equal(mw, e.seed_middleware);
		assert_true(eh_now_ms() - t0 < 5000);
		sleep_ms(20);
	}
	assert_true(seen_at - t0 >= 600);
	assert_true(region_sees(&e, "weur", m1));

	/* A sequence: back to m0, then a split; weur shows each in order. */
	assert_int_equal(eh_deploy(&e, MW, e.seed_middleware, 100, NULL, 0), 0);
	assert_int_equal(eh_deploy(&e, MW, e.seed_middleware, 50, m1, 50), 0);
	assert_false(region_sees(&e, "weur", e.seed_middleware) &&
	             !region_sees(&e, "weur", m1)); /* still m1 right after */
	sleep_ms(900);

	/* Region down: 503 there, the other serves; up again. */
	cJSON_Delete(eh_api(&e, "POST", "/__edge/regions/weur/down", NULL, "", 0, &st));
	assert_int_equal(st, 200);
	assert_int_equal(eh_get(we, "/", NULL, NULL, NULL, NULL), 503);
	assert_int_equal(eh_get(en, "/", NULL, NULL, NULL, NULL), 200);
	cJSON_Delete(eh_api(&e, "POST", "/__edge/regions/weur/up", NULL, "", 0, &st));
	assert_int_equal(eh_get(we, "/", NULL, NULL, NULL, NULL), 200);
	cJSON_Delete(eh_api(&e, "POST", "/__edge/regions/nowhere/down", NULL, "", 0, &st));
	assert_int_equal(st, 404);
	cJSON_Delete(eh_api(&e, "GET", "/__edge/regions/weur/down", NULL, NULL, 0, &st));
	assert_int_equal(st, 405);

	/* The timeline: per region, the initial state then each change in order. */
	{
		cJSON *j = eh_api(&e, "GET", "/__edge/timeline", NULL, NULL, 0, &st);
		const cJSON *ev;
		const char *want[] = {NULL, m1, e.seed_middleware, e.seed_middleware};
		int idx[2] = {0, 0}; /* per region: middleware events seen */
		double t_en[4] = {0}, t_we[4] = {0};
		double last = 0;

		assert_int_equal(st, 200);
		want[0] = e.seed_middleware;
		cJSON_ArrayForEach(ev, cJSON_GetObjectItem(j, "events"))
		{
			const char *region = cJSON_GetObjectItem(ev, "region")->valuestring;
			const char *worker = cJSON_GetObjectItem(ev, "worker")->valuestring;
			const cJSON *vs = cJSON_GetObjectItem(ev, "versions");
			double t = cJSON_GetObjectItem(ev, "t_ms")->valuedouble;
			int r = strcmp(region, "enam") == 0 ? 0 : 1;

			assert_true(t >= last); /* in the order they became visible */
			last = t;
			if (strcmp(worker, MW) != 0) {
				continue;
			}
			assert_true(idx[r] < 4);
			assert_string_equal(
			    cJSON_GetObjectItem(cJSON_GetArrayItem(vs, 0), "version_id")
			        ->valuestring,
			    want[idx[r]]);
			(r == 0 ? t_en : t_we)[idx[r]] = t;
			if (idx[r] == 3) {
				assert_int_equal(cJSON_GetArraySize(vs), 2);
				assert_int_equal(
				    cJSON_GetObjectItem(cJSON_GetArrayItem(vs, 1), "percentage")
				        ->valueint,
				    50);
			}
			idx[r]++;
		}
		assert_int_equal(idx[0], 4);
		assert_int_equal(idx[1], 4);
		for (int i = 1; i < 4; i++) {
			assert_true(t_we[i] - t_en[i] >= 590);
		}
		cJSON_Delete(j);
	}
	assert_int_equal(eh_stop(&e), 0);
}

static void
test_flags_validated(void **state)
{
	static const char *const bad[][4] = {
	    {"--region", "BAD=127.0.0.1:0", NULL},
	    {"--region", "enam=localhost:0", NULL},
	    {"--region", "enam=127.0.0.1:70000", NULL},
	    {"--delay", "enam=5", NULL},
	    {"--isr", "noslash", NULL},
	    {"--revalidate-s", "-1", NULL},
	    {"--seed", "x", NULL},
	    {"--middleware", "main-server", NULL},
	    {"--bogus", NULL},
	};
	struct eh_edge e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(eh_start(&e, bin, bad[i]), -1);
	}
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_api_rules_and_rejections),
	    cmocka_unit_test(test_state_survives_restart),
	    cmocka_unit_test(test_overrides_pins_and_split),
	    cmocka_unit_test(test_isr_cache_per_region),
	    cmocka_unit_test(test_faults),
	    cmocka_unit_test(test_propagation_regions_and_timeline),
	    cmocka_unit_test(test_flags_validated),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH/TO/canary-edge\n", argv[0]);
		return 2;
	}
	bin = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
