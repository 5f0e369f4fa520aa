/*
 * main.c: canary-agent, the regional probe (see cli.h for the command line).
 *
 *   run    answers the controller's surveys over nng (respond.h) until
 *          SIGINT or SIGTERM;
 *   probe  one round against one URL, printed as a table or JSON; exit 0
 *          when every check passed, 1 when one failed, 2 on a usage error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "check.h"
#include "cli.h"
#include "defaults.h"
#include "engine.h"
#include "err.h"
#include "log.h"
#include "respond.h"
#include "round.h"

#define AGENT_EXIT_OK    0
#define AGENT_EXIT_CHECK 1 /* probe: a check failed; run: could not start */
#define AGENT_EXIT_USAGE 2

#define PROBE_MAX_FAILURES 8 /* kinds of failure probe_failures can name */

struct probe_state {
	struct event_base *base;
	struct timespec t0, t1;
	int finished;
};

static double
main_seconds(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static uint64_t
main_peak_rss_kib(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0) {
		return 0;
	}
	return (uint64_t)ru.ru_maxrss; /* KiB on Linux */
}

static void
probe_done(struct agent_round *r, void *arg)
{
	struct probe_state *st = arg;

	(void)r;
	clock_gettime(CLOCK_MONOTONIC, &st->t1);
	st->finished = 1;
	event_base_loopbreak(st->base);
}

static struct curl_slist *
main_connect_to(const struct agent_cli *c)
{
	struct curl_slist *l = NULL;

	for (int i = 0; i < c->n_connect_to; i++) {
		struct curl_slist *n = curl_slist_append(l, c->connect_to[i]);
		if (n == NULL) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = n;
	}
	return l;
}

/* Why a probe failed, in words, for the table and the JSON. */
static int
probe_failures(const struct canary_target_report *t, unsigned v, const char **out, int max)
{
	int n = 0;
	uint64_t errors = 0;

	for (int c = 0; c < CANARY_ERRCLASS_COUNT; c++) {
		errors += t->errors[c];
	}
	if (errors > 0 && n < max) {
		out[n++] = "errors";
	}
	if ((v & AGENT_V_UNKNOWN) && n < max) {
		out[n++] = "unknown versions";
	}
	if ((v & AGENT_V_AFFINITY) && n < max) {
		out[n++] = "affinity violations";
	}
	if ((v & AGENT_V_CACHE_MISS) && n < max) {
		out[n++] = "cache misses";
	}
	if ((v & AGENT_V_BODY) && n < max) {
		out[n++] = "body mismatches";
	}
	return n;
}

static int
probe_print_json(const struct agent_cli_probe *p, const struct canary_target_report *t, double secs,
                 const char **fails, int nfails)
{
	cJSON *j = cJSON_CreateObject();
	cJSON *o;
	char *text = NULL;
	char key[16];
	int rv = -1;

	if (j == NULL) {
		return -1;
	}
	cJSON_AddStringToObject(j, "url", p->url);
	cJSON_AddNumberToObject(j, "requests", (double)t->sent);
	cJSON_AddNumberToObject(j, "responses", (double)t->responses);
	cJSON_AddNumberToObject(j, "concurrency", p->concurrency);
	cJSON_AddNumberToObject(j, "seconds", secs);
	cJSON_AddNumberToObject(j, "requests_per_s", secs > 0 ? (double)t->sent / secs : 0);
	o = cJSON_AddObjectToObject(j, "statuses");
	for (int i = 0; o != NULL && i < t->n_statuses; i++) {
		snprintf(key, sizeof(key), "%d", t->statuses[i].status);
		cJSON_AddNumberToObject(o, key, (double)t->statuses[i].count);
	}
	/* Answers whose status is outside 100..599 or found no room in the
	 * table: counted, so the statuses add up to the responses. */
	if (o != NULL && t->statuses_other > 0) {
		cJSON_AddNumberToObject(o, "other", (double)t->statuses_other);
	}
	o = cJSON_AddObjectToObject(j, "errors");
	for (int c = 0; o != NULL && c < CANARY_ERRCLASS_COUNT; c++) {
		cJSON_AddNumberToObject(o, canary_errclass_name((enum canary_errclass)c),
		                        (double)t->errors[c]);
	}
	o = cJSON_AddArrayToObject(j, "versions");
	for (int i = 0; o != NULL && i < t->n_pairs; i++) {
		cJSON *pr = cJSON_CreateObject();
		if (pr == NULL) {
			goto out;
		}
		cJSON_AddStringToObject(pr, "middleware", t->pairs[i].middleware);
		cJSON_AddStringToObject(pr, "server", t->pairs[i].server);
		cJSON_AddNumberToObject(pr, "count", (double)t->pairs[i].count);
		cJSON_AddItemToArray(o, pr);
	}
	o = cJSON_AddObjectToObject(j, "cache");
	if (o != NULL) {
		cJSON_AddNumberToObject(o, "hit", (double)t->cache_hit);
		cJSON_AddNumberToObject(o, "stale", (double)t->cache_stale);
		cJSON_AddNumberToObject(o, "miss", (double)t->cache_miss);
		cJSON_AddNumberToObject(o, "warmup", (double)t->cache_warmup);
	}
	o = cJSON_AddObjectToObject(j, "checks");
	if (o != NULL) {
		cJSON_AddNumberToObject(o, "unknown_versions", (double)t->unknown_versions);
		cJSON_AddNumberToObject(o, "affinity_violations", (double)t->affinity_violations);
		cJSON_AddNumberToObject(o, "body_mismatches", (double)t->body_mismatches);
	}
	o = cJSON_AddObjectToObject(j, "latency_ms");
	if (o != NULL) {
		cJSON_AddNumberToObject(o, "p50",
		                        (double)canary_hist_quantile(&t->latency, 0.5) / 1e3);
		cJSON_AddNumberToObject(o, "p95",
		                        (double)canary_hist_quantile(&t->latency, 0.95) / 1e3);
		cJSON_AddNumberToObject(o, "p99",
		                        (double)canary_hist_quantile(&t->latency, 0.99) / 1e3);
		cJSON_AddNumberToObject(o, "max", (double)t->latency.max_us / 1e3);
	}
	o = cJSON_AddArrayToObject(j, "samples");
	for (int i = 0; o != NULL && i < t->n_samples; i++) {
		cJSON_AddItemToArray(o, cJSON_CreateString(t->samples[i]));
	}
	cJSON_AddNumberToObject(j, "peak_rss_kib", (double)main_peak_rss_kib());
	cJSON_AddBoolToObject(j, "pass", nfails == 0);
	o = cJSON_AddArrayToObject(j, "failures");
	for (int i = 0; o != NULL && i < nfails; i++) {
		cJSON_AddItemToArray(o, cJSON_CreateString(fails[i]));
	}
	text = cJSON_PrintUnformatted(j);
	if (text == NULL) {
		goto out;
	}
	printf("%s\n", text);
	rv = 0;
out:
	free(text);
	cJSON_Delete(j);
	return rv;
}

static void
probe_print_table(const struct agent_cli_probe *p, const struct canary_target_report *t,
                  double secs, const char **fails, int nfails)
{
	printf("url          %s\n", p->url);
	printf("requests     %llu sent, %llu answered, concurrency %d, %.3f s, %.0f requests/s\n",
	       (unsigned long long)t->sent, (unsigned long long)t->responses, p->concurrency, secs,
	       secs > 0 ? (double)t->sent / secs : 0.0);
	printf("statuses    ");
	for (int i = 0; i < t->n_statuses; i++) {
		printf(" %d: %llu", t->statuses[i].status,
		       (unsigned long long)t->statuses[i].count);
	}
	if (t->statuses_other > 0) {
		printf(" other: %llu", (unsigned long long)t->statuses_other);
	}
	printf("\nerrors      ");
	for (int c = 0; c < CANARY_ERRCLASS_COUNT; c++) {
		printf(" %s %llu", canary_errclass_name((enum canary_errclass)c),
		       (unsigned long long)t->errors[c]);
	}
	printf("\nversions     %s\n", t->n_pairs == 0 ? "(no version headers)" : "");
	for (int i = 0; i < t->n_pairs; i++) {
		printf("  middleware %s  server %-36s  %llu\n", t->pairs[i].middleware,
		       t->pairs[i].server[0] != '\0' ? t->pairs[i].server : "(cache hit)",
		       (unsigned long long)t->pairs[i].count);
	}
	if (p->isr) {
		printf("cache        hit %llu, stale %llu, miss %llu, warm-up %llu\n",
		       (unsigned long long)t->cache_hit, (unsigned long long)t->cache_stale,
		       (unsigned long long)t->cache_miss, (unsigned long long)t->cache_warmup);
	}
	printf(
	    "checks       unknown versions %llu, affinity violations %llu, body mismatches %llu\n",
	    (unsigned long long)t->unknown_versions, (unsigned long long)t->affinity_violations,
	    (unsigned long long)t->body_mismatches);
	printf("first byte   p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	       (double)canary_hist_quantile(&t->latency, 0.5) / 1e3,
	       (double)canary_hist_quantile(&t->latency, 0.95) / 1e3,
	       (double)canary_hist_quantile(&t->latency, 0.99) / 1e3,
	       (double)t->latency.max_us / 1e3);
	for (int i = 0; i < t->n_samples; i++) {
		printf("sample       %s\n", t->samples[i]);
	}
	printf("peak RSS     %llu KiB\n", (unsigned long long)main_peak_rss_kib());
	printf("result       %s", nfails == 0 ? "PASS" : "FAIL:");
	for (int i = 0; i < nfails; i++) {
		printf("%s %s", i > 0 ? "," : "", fails[i]);
	}
	printf("\n");
}

static int
main_probe(const struct agent_cli *c)
{
	const struct agent_cli_probe *p = &c->probe;
	struct event_base *base = NULL;
	struct agent_engine *engine = NULL;
	struct agent_round *round = NULL;
	struct curl_slist *ct = NULL;
	struct canary_probe probe;
	struct canary_target target;
	struct agent_engine_opts eo;
	struct agent_round_opts ro;
	struct probe_state st;
	char err[CANARY_ERRLEN];
	const char *fails[PROBE_MAX_FAILURES];
	int nfails;
	int code = AGENT_EXIT_CHECK;

	memset(&probe, 0, sizeof(probe));
	memset(&target, 0, sizeof(target));
	memset(&st, 0, sizeof(st));
	snprintf(target.id, sizeof(target.id), "probe");
	snprintf(target.url, sizeof(target.url), "%s", p->url);
	snprintf(target.method, sizeof(target.method), "%s", p->method);
	target.requests = p->n;
	target.timeout_ms = p->timeout_ms;
	if (p->n_expect_status == 0) {
		target.expect_status[0] = 200;
		target.n_expect_status = 1;
	} else {
		memcpy(target.expect_status, p->expect_status, sizeof(p->expect_status));
		target.n_expect_status = p->n_expect_status;
	}
	target.cache = p->isr ? CANARY_CACHE_ISR : CANARY_CACHE_NONE;
	if (p->body_match != NULL) {
		snprintf(target.body_match, sizeof(target.body_match), "%s", p->body_match);
	}
	probe.proto_version = CANARY_PROTO_VERSION;
	snprintf(probe.rollout_id, sizeof(probe.rollout_id), "probe");
	probe.phase = CANARY_PHASE_CHECK;
	probe.targets = &target;
	probe.n_targets = 1;
	/* Empty names fall back to the defaults in agent_round_start. */
	if (p->middleware_header != NULL) {
		snprintf(probe.headers.middleware_version, CANARY_HEADER_NAME_LEN, "%s",
		         p->middleware_header);
	}
	if (p->server_header != NULL) {
		snprintf(probe.headers.server_version, CANARY_HEADER_NAME_LEN, "%s",
		         p->server_header);
	}
	if (p->cache_header != NULL) {
		snprintf(probe.headers.cache, CANARY_HEADER_NAME_LEN, "%s", p->cache_header);
	}
	if (p->expect_middleware != NULL) {
		snprintf(probe.expect.middleware[0].id, CANARY_UUID_LEN, "%s",
		         p->expect_middleware);
		probe.expect.middleware[0].share = 100;
		probe.expect.n_middleware = 1;
		if (p->expect_server != NULL) {
			snprintf(probe.expect.pins[0], CANARY_UUID_LEN, "%s", p->expect_server);
		}
	}
	if (p->expect_server != NULL) {
		snprintf(probe.expect.server[0].id, CANARY_UUID_LEN, "%s", p->expect_server);
		probe.expect.server[0].share = 100;
		probe.expect.n_server = 1;
	}

	base = event_base_new();
	if (base == NULL) {
		fprintf(stderr, "canary-agent: libevent: no event base\n");
		goto out;
	}
	if (c->n_connect_to > 0 && (ct = main_connect_to(c)) == NULL) {
		fprintf(stderr, "canary-agent: out of memory\n");
		goto out;
	}
	memset(&eo, 0, sizeof(eo));
	eo.concurrency = p->concurrency;
	eo.body_cap = AGENT_BODY_CAP;
	eo.connect_to = ct;
	if (agent_engine_new(base, &eo, &engine, err, sizeof(err)) != 0) {
		fprintf(stderr, "canary-agent: %s\n", err);
		goto out;
	}
	memset(&ro, 0, sizeof(ro));
	ro.max_requests = p->n;
	ro.follow = p->follow;
	st.base = base;
	clock_gettime(CLOCK_MONOTONIC, &st.t0);
	if (agent_round_start(engine, base, &probe, p->duration_s * 1000u, &ro, probe_done, &st,
	                      &round, err, sizeof(err)) != 0) {
		fprintf(stderr, "canary-agent: probe: %s\n", err);
		code = AGENT_EXIT_USAGE;
		goto out;
	}
	event_base_dispatch(base);
	if (!st.finished) {
		fprintf(stderr, "canary-agent: probe: interrupted\n");
		goto out;
	}
	{
		const struct canary_target_report *t = &agent_round_report(round)->targets[0];
		double secs = main_seconds(&st.t0, &st.t1);
		nfails = probe_failures(t, agent_round_verdicts(round), fails, PROBE_MAX_FAILURES);
		if (p->json) {
			if (probe_print_json(p, t, secs, fails, nfails) != 0) {
				fprintf(stderr, "canary-agent: out of memory\n");
				goto out;
			}
		} else {
			probe_print_table(p, t, secs, fails, nfails);
		}
		code = nfails == 0 ? AGENT_EXIT_OK : AGENT_EXIT_CHECK;
	}
out:
	agent_round_free(round);
	agent_engine_free(engine);
	curl_slist_free_all(ct);
	if (base != NULL) {
		event_base_free(base);
	}
	return code;
}

static void
main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	canary_logf(CANARY_LOG_INFO, "stop", "signal %d", (int)sig);
	event_base_loopbreak(arg);
}

static int
main_run(const struct agent_cli *c)
{
	const struct agent_cli_run *r = &c->run;
	struct event_base *base = NULL;
	struct event *sigint = NULL, *sigterm = NULL;
	struct agent_engine *engine = NULL;
	struct agent_respond *resp = NULL;
	struct curl_slist *ct = NULL;
	struct agent_engine_opts eo;
	struct agent_respond_opts ro;
	char err[CANARY_ERRLEN];
	int code = AGENT_EXIT_CHECK;

	canary_log_setup(stderr, r->log_format, CANARY_LOG_INFO);
	base = event_base_new();
	if (base == NULL) {
		canary_logf(CANARY_LOG_ERROR, "start", "libevent: no event base");
		goto out;
	}
	sigint = evsignal_new(base, SIGINT, main_signal_cb, base);
	sigterm = evsignal_new(base, SIGTERM, main_signal_cb, base);
	if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0 ||
	    evsignal_add(sigterm, NULL) != 0) {
		canary_logf(CANARY_LOG_ERROR, "start", "libevent: signal events refused");
		goto out;
	}
	if (c->n_connect_to > 0 && (ct = main_connect_to(c)) == NULL) {
		canary_logf(CANARY_LOG_ERROR, "start", "out of memory");
		goto out;
	}
	memset(&eo, 0, sizeof(eo));
	eo.concurrency = r->concurrency;
	eo.body_cap = AGENT_BODY_CAP;
	eo.connect_to = ct;
	if (agent_engine_new(base, &eo, &engine, err, sizeof(err)) != 0) {
		canary_logf(CANARY_LOG_ERROR, "start", "%s", err);
		goto out;
	}
	memset(&ro, 0, sizeof(ro));
	ro.agent_id = r->id;
	ro.region = r->region;
	ro.listen = r->listen;
	ro.n_listen = r->n_listen;
	ro.dial = r->dial;
	ro.n_dial = r->n_dial;
	ro.insecure = r->insecure;
	ro.tls = r->tls;
	ro.round.allow = &r->allow;
	ro.round.max_requests = r->max_requests;
	ro.round.follow = 0; /* a Location could lead off the allowlist */
	ro.round.key_prefix = AGENT_VERSION_KEY_PREFIX;
	if (agent_respond_new(base, engine, &ro, &resp, err, sizeof(err)) != 0) {
		canary_logf(CANARY_LOG_ERROR, "start", "%s", err);
		goto out;
	}
	{
		struct canary_log_line *l = canary_log_begin(CANARY_LOG_INFO, "start");
		canary_log_str(l, "region", r->region);
		canary_log_str(l, "id", r->id);
		canary_log_u64(l, "listen", (uint64_t)r->n_listen);
		canary_log_u64(l, "dial", (uint64_t)r->n_dial);
		canary_log_u64(l, "concurrency", (uint64_t)r->concurrency);
		canary_log_u64(l, "max_requests", r->max_requests);
		canary_log_end(l);
	}
	event_base_dispatch(base);
	code = AGENT_EXIT_OK;
out:
	agent_respond_free(resp);
	agent_engine_free(engine);
	curl_slist_free_all(ct);
	if (sigint != NULL) {
		event_free(sigint);
	}
	if (sigterm != NULL) {
		event_free(sigterm);
	}
	if (base != NULL) {
		event_base_free(base);
	}
	return code;
}

int
main(int argc, char **argv)
{
	static struct agent_cli cli; /* large (allowlist): not on the stack */
	char err[CANARY_ERRLEN];
	int rv;

	signal(SIGPIPE, SIG_IGN);
	/* nng's threads hand messages to the loop with event_active. */
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "canary-agent: libevent threading unavailable\n");
		return AGENT_EXIT_CHECK;
	}
	rv = agent_cli_parse(argc, argv, &cli, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "canary-agent: %s\n%s", err, agent_cli_usage);
		return AGENT_EXIT_USAGE;
	}
	switch (cli.mode) {
	case AGENT_CLI_RUN:
		return main_run(&cli);
	case AGENT_CLI_PROBE:
		return main_probe(&cli);
	default:
		fputs(agent_cli_usage, stdout);
		return AGENT_EXIT_OK;
	}
}
