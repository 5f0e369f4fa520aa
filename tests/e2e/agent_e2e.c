/*
 * agent_e2e.c: canary-agent as a real process on loopback.
 *
 * The test is the controller's side: an nng surveyor on tls+tcp with
 * certificates made by the openssl CLI (agent_certs.sh), the HTTP target of
 * agent_target.c, and canary-agent processes started with fork/exec:
 *   - rounds: counts, version pairs, ISR warm-up, the override share and
 *     version keys, a partial report when the deadline comes first;
 *   - refusals answered with error reports: a host off the allowlist, a
 *     survey over the agent's cap, malformed and unsupported surveys, and the
 *     agent serving on afterwards;
 *   - an agent holding a certificate of another CA is never heard;
 *   - an agent that listens, and a controller that dials it;
 *   - the command line: tcp:// without --insecure, missing flags, a missing
 *     certificate, and `canary-agent probe` exit codes and JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <nng/protocol/survey0/survey.h>
#include <nng/supplemental/util/platform.h>

#include "agent_port.h"
#include "agent_target.h"
#include "err.h"
#include "link.h"
#include "msg.h"

#ifndef CANARY_AGENT_BIN
#error "CANARY_AGENT_BIN must name the canary-agent program"
#endif
#ifndef CANARY_CERTS_SCRIPT
#error "CANARY_CERTS_SCRIPT must name tests/e2e/agent_certs.sh"
#endif

#define HOST         "docs.example.test" /* resolves nowhere: --connect-to points it */
#define CONNECT_WAIT 10000               /* ms for an agent to connect */
#define SURVEY_SLACK 1000                /* ms the surveyor waits beyond a deadline */
#define MAX_ARGS     40

static struct {
	char dir[64];
	int http_port;
	char url[64]; /* the surveyor's listener */
	nng_socket sv;
	pid_t agent;
	char agent_log[128];
} e2e;

/* ---- helpers ------------------------------------------------------------ */

static void
path_in(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", e2e.dir, name);
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts canary-agent with argv (NULL-terminated, without the program),
 * stdout and stderr to out (a path, or NULL for /dev/null). */
static pid_t
spawn_agent(const char *const *args, const char *out)
{
	const char *argv[MAX_ARGS];
	int n = 0;
	pid_t pid;

	argv[n++] = CANARY_AGENT_BIN;
	for (; args[n - 1] != NULL && n < MAX_ARGS - 1; n++) {
		argv[n] = args[n - 1];
	}
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out != NULL ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Waits for pid at most ms; returns its exit status, or -1 (killed then). */
static int
wait_exit(pid_t pid, int ms)
{
	int st = 0;
	for (int waited = 0; waited <= ms; waited += 20) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		nng_msleep(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* Runs the agent to completion; returns its exit status and its output. */
static int
run_agent(const char *const *args, char *output, size_t n)
{
	char out[128];
	FILE *f;
	size_t len = 0;
	int code;

	path_in(out, sizeof(out), "cli.out");
	code = wait_exit(spawn_agent(args, out), 30000);
	output[0] = '\0';
	f = fopen(out, "r");
	if (f != NULL) {
		len = fread(output, 1, n - 1, f);
		fclose(f);
	}
	output[len] = '\0';
	return code;
}

static void
read_file(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "r");
	size_t len = 0;
	if (f != NULL) {
		len = fread(buf, 1, n - 1, f);
		fclose(f);
	}
	buf[len] = '\0';
}

/* A probe of one target with the m0+s0 expectation; the caller adjusts. */
static struct canary_target targets[4];

static void
probe_init(struct canary_probe *p, uint64_t round, const char *path, uint32_t requests)
{
	char url[CANARY_URL_LEN];

	snprintf(url, sizeof(url), "http://%s:%d%s", HOST, e2e.http_port, path);
	agent_target_probe(p, targets, sizeof(targets) / sizeof(targets[0]), url, requests);
	p->round = round;
}

/* Sends raw bytes as one survey and decodes the answers into reps (up to
 * max), until max have come or, with whole, until the survey time (deadline
 * + slack) ends. Without whole, resends while no agent is connected, up to
 * CONNECT_WAIT. Returns the count. */
static int
survey_raw(nng_socket sv, const void *buf, size_t len, uint32_t deadline_ms,
           struct canary_report *reps, int max, int whole)
{
	int retry = !whole;
	int64_t until = now_ms() + CONNECT_WAIT;
	int got = 0;

	assert_int_equal(nng_socket_set_ms(sv, NNG_OPT_SURVEYOR_SURVEYTIME,
	                                   (nng_duration)(deadline_ms + SURVEY_SLACK)),
	                 0);
	do {
		assert_int_equal(nng_send(sv, (void *)buf, len, 0), 0);
		for (;;) {
			char *ans = NULL;
			size_t alen = 0;
			char err[CANARY_ERRLEN];
			int rv = nng_recv(sv, &ans, &alen, NNG_FLAG_ALLOC);
			if (rv != 0) {
				break; /* the survey time is over */
			}
			if (got < max) {
				rv = canary_report_decode(ans, alen, &reps[got], err, sizeof(err));
				if (rv != 0) {
					fail_msg("report does not decode: %s", err);
				}
				got++;
			}
			nng_free(ans, alen);
			if (got == max && !whole) {
				break;
			}
		}
	} while (got == 0 && retry && now_ms() < until);
	return got;
}

static int
survey(const struct canary_probe *p, struct canary_report *rep)
{
	char *text = NULL;
	size_t len = 0;
	char err[CANARY_ERRLEN];
	int n;

	if (canary_probe_encode(p, &text, &len, err, sizeof(err)) != 0) {
		fail_msg("probe does not encode: %s", err);
	}
	n = survey_raw(e2e.sv, text, len, p->deadline_ms, rep, 1, 0);
	free(text);
	return n;
}

static const struct canary_pair_count *
find_pair(const struct canary_target_report *t, const char *mw, const char *srv)
{
	for (int i = 0; i < t->n_pairs; i++) {
		if (strcmp(t->pairs[i].middleware, mw) == 0 &&
		    strcmp(t->pairs[i].server, srv) == 0) {
			return &t->pairs[i];
		}
	}
	return NULL;
}

/* ---- fixture: certificates, target, surveyor, one agent that dials ------ */

static int
setup(void **state)
{
	char cmd[512];
	char cert[128], key[128], ca[128], ct[128], err[CANARY_ERRLEN];
	struct canary_tls_files tls = {cert, key, ca};

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	snprintf(e2e.dir, sizeof(e2e.dir), "/tmp/agent-e2e.XXXXXX");
	assert_non_null(mkdtemp(e2e.dir));
	snprintf(cmd, sizeof(cmd), "sh %s %s", CANARY_CERTS_SCRIPT, e2e.dir);
	assert_int_equal(system(cmd), 0);
	e2e.http_port = agent_target_start();
	assert_true(e2e.http_port > 0);

	path_in(cert, sizeof(cert), "server.pem");
	path_in(key, sizeof(key), "server.key");
	path_in(ca, sizeof(ca), "ca.pem");
	snprintf(e2e.url, sizeof(e2e.url), "tls+tcp://127.0.0.1:%d", agent_test_free_port());
	assert_int_equal(nng_surveyor0_open(&e2e.sv), 0);
	if (canary_link_listen(e2e.sv, e2e.url, 0, &tls, err, sizeof(err)) != 0) {
		fail_msg("surveyor: %s", err);
	}

	path_in(cert, sizeof(cert), "client.pem");
	path_in(key, sizeof(key), "client.key");
	snprintf(ct, sizeof(ct), "%s:%d:127.0.0.1:%d", HOST, e2e.http_port, e2e.http_port);
	path_in(e2e.agent_log, sizeof(e2e.agent_log), "agent.log");
	const char *args[] = {"run",
	                      "--region",
	                      "enam",
	                      "--id",
	                      "agent-1",
	                      "--dial",
	                      e2e.url,
	                      "--cert",
	                      cert,
	                      "--key",
	                      key,
	                      "--ca",
	                      ca,
	                      "--allow-host",
	                      "*.example.test",
	                      "--connect-to",
	                      ct,
	                      "--max-requests",
	                      "500",
	                      "--log-format",
	                      "json",
	                      NULL};
	e2e.agent = spawn_agent(args, e2e.agent_log);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[256];
	int code;

	(void)state;
	kill(e2e.agent, SIGTERM);
	code = wait_exit(e2e.agent, 5000);
	nng_close(e2e.sv);
	agent_target_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e2e.dir);
	if (system(cmd) != 0) {
		return -1;
	}
	return code == 0 ? 0 : -1; /* SIGTERM is a clean stop */
}

/* ---- rounds ------------------------------------------------------------- */

static void
test_round_counts_and_isr(void **state)
{
	struct canary_probe p;
	struct canary_report rep;

	(void)state;
	probe_init(&p, 1, "/ok", 20);
	snprintf(targets[1].id, CANARY_ID_LEN, "isr");
	snprintf(targets[1].url, CANARY_URL_LEN, "http://www.%s:%d/isr", "example.test",
	         e2e.http_port);
	snprintf(targets[1].method, sizeof(targets[1].method), "GET");
	targets[1].requests = 10;
	targets[1].timeout_ms = 2000;
	targets[1].expect_status[0] = 200;
	targets[1].n_expect_status = 1;
	targets[1].cache = CANARY_CACHE_ISR;
	p.n_targets = 2;
	/* www.example.test is allowed (*.example.test) but no --connect-to
	 * points it anywhere, and .test names never resolve. */
	assert_int_equal(survey(&p, &rep), 1);
	assert_string_equal(rep.agent_id, "agent-1");
	assert_string_equal(rep.region, "enam");
	assert_string_equal(rep.rollout_id, "docs-site");
	assert_int_equal(rep.round, 1);
	assert_string_equal(rep.error, "");
	assert_int_equal(rep.partial, 0);
	assert_int_equal(rep.n_targets, 2);
	const struct canary_target_report *t = &rep.targets[0];
	assert_string_equal(t->id, "t0");
	assert_int_equal(t->sent, 20);
	assert_int_equal(t->responses, 20);
	assert_int_equal(t->latency.count, 20);
	const struct canary_pair_count *pc = find_pair(t, AGENT_TARGET_M0, AGENT_TARGET_S0);
	assert_non_null(pc);
	assert_int_equal(pc->count, 20);
	assert_int_equal(t->unknown_versions + t->affinity_violations, 0);
	/* The second target's name resolves nowhere: every request a dns error. */
	assert_int_equal(rep.targets[1].sent, 10);
	assert_int_equal(rep.targets[1].errors[CANARY_ERRCLASS_DNS], 10);
	canary_report_free(&rep);
}

static void
test_isr_warmup(void **state)
{
	struct canary_probe p;
	struct canary_report rep;

	(void)state;
	probe_init(&p, 2, "/isr", 12);
	targets[0].cache = CANARY_CACHE_ISR;
	assert_int_equal(survey(&p, &rep), 1);
	const struct canary_target_report *t = &rep.targets[0];
	assert_int_equal(t->sent, 12);
	/* The first request goes alone and warms the cache; the rest hit. */
	assert_int_equal(t->cache_warmup, 1);
	assert_int_equal(t->cache_hit, 11);
	assert_int_equal(t->cache_miss, 0);
	canary_report_free(&rep);
}

static void
test_override_share_and_keys(void **state)
{
	struct canary_probe p;
	struct canary_report rep;

	(void)state;
	probe_init(&p, 3, "/override", 40);
	/* The dark step: server {s0:100, s1:0}, middleware {m0:100}, m1 reached
	 * by override on 25% of requests. */
	snprintf(p.expect.server[1].id, CANARY_UUID_LEN, AGENT_TARGET_S1);
	p.expect.server[1].share = 0;
	p.expect.n_server = 2;
	p.override.enabled = 1;
	p.override.share = 25;
	snprintf(p.override.worker, CANARY_ID_LEN, "middleware");
	snprintf(p.override.version_id, CANARY_UUID_LEN, AGENT_TARGET_M1);
	snprintf(p.override.pin, CANARY_UUID_LEN, AGENT_TARGET_S1);
	p.version_keys = 4;
	assert_int_equal(survey(&p, &rep), 1);
	const struct canary_target_report *t = &rep.targets[0];
	assert_int_equal(t->sent, 40);
	assert_int_equal(t->override_sent, 10);
	assert_int_equal(t->override_violations, 0);
	assert_int_equal(t->unknown_versions, 0);
	assert_int_equal(t->affinity_violations, 0);
	/* Overrides fall on every 4th request, so on one key: no key moves. */
	assert_int_equal(t->key_violations, 0);
	assert_int_equal(find_pair(t, AGENT_TARGET_M1, AGENT_TARGET_S1)->count, 10);
	assert_int_equal(find_pair(t, AGENT_TARGET_M0, AGENT_TARGET_S0)->count, 30);
	canary_report_free(&rep);

	/* A third of requests overridden: keys see both versions. */
	p.round = 4;
	p.override.share = 100.0 / 3.0;
	assert_int_equal(survey(&p, &rep), 1);
	assert_true(rep.targets[0].key_violations > 0);
	canary_report_free(&rep);
}

static void
test_deadline_gives_partial_report(void **state)
{
	struct canary_probe p;
	struct canary_report rep;
	int64_t t0;

	(void)state;
	probe_init(&p, 5, "/slow-head", 8);
	targets[0].timeout_ms = 5000;
	p.deadline_ms = 500;
	t0 = now_ms();
	assert_int_equal(survey(&p, &rep), 1);
	/* The report comes before the deadline (the agent keeps a margin to
	 * send it; 400 ms of scheduling noise allowed), marked partial. */
	assert_true(now_ms() - t0 < p.deadline_ms + 400);
	assert_int_equal(rep.partial, 1);
	assert_true(rep.targets[0].sent < 8);
	canary_report_free(&rep);
}

/* ---- refusals ----------------------------------------------------------- */

static void
test_host_off_allowlist_refused(void **state)
{
	struct canary_probe p;
	struct canary_report rep;
	int conns, reqs;

	(void)state;
	agent_target_counts(&conns, &reqs);
	probe_init(&p, 6, "/ok", 5);
	snprintf(targets[0].url, CANARY_URL_LEN, "http://127.0.0.1:%d/ok", e2e.http_port);
	assert_int_equal(survey(&p, &rep), 1);
	assert_non_null(strstr(rep.error, "allowlist"));
	assert_non_null(strstr(rep.error, "targets[0].url"));
	assert_int_equal(rep.round, 6);
	assert_int_equal(rep.n_targets, 0);
	canary_report_free(&rep);
	agent_target_counts(&conns, &reqs);
	assert_int_equal(reqs, 0); /* nothing was probed */
}

static void
test_over_cap_refused(void **state)
{
	struct canary_probe p;
	struct canary_report rep;

	(void)state;
	probe_init(&p, 7, "/ok", 501); /* the agent runs with --max-requests 500 */
	assert_int_equal(survey(&p, &rep), 1);
	assert_non_null(strstr(rep.error, "cap of 500"));
	canary_report_free(&rep);
}

static void
test_malformed_surveys_answered(void **state)
{
	struct canary_report rep;
	struct canary_probe p;
	const char *bad[] = {
	    "{not json",
	    "{\"v\":99,\"type\":\"probe\"}",
	    "{\"v\":1,\"type\":\"report\"}",
	    "{\"v\":1,\"type\":\"probe\",\"rollout_id\":\"x\",\"round\":-1}",
	    "[]",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(survey_raw(e2e.sv, bad[i], strlen(bad[i]), 200, &rep, 1, 0), 1);
		assert_non_null(strstr(rep.error, "survey rejected"));
		assert_int_equal(rep.n_targets, 0);
		canary_report_free(&rep);
	}
	/* A survey that fails on a field but names its rollout and round is
	 * answered in that round, so the controller files the error there. */
	const char *badfield = "{\"v\":1,\"type\":\"probe\",\"rollout_id\":\"docs-site\","
	                       "\"round\":41,\"phase\":\"nope\"}";
	assert_int_equal(survey_raw(e2e.sv, badfield, strlen(badfield), 200, &rep, 1, 0), 1);
	assert_non_null(strstr(rep.error, "survey rejected"));
	assert_int_equal(rep.round, 41);
	assert_string_equal(rep.rollout_id, "docs-site");
	canary_report_free(&rep);
	/* Still serving. */
	probe_init(&p, 8, "/ok", 3);
	assert_int_equal(survey(&p, &rep), 1);
	assert_string_equal(rep.error, "");
	assert_int_equal(rep.targets[0].sent, 3);
	canary_report_free(&rep);
}

static void
test_round_log_line(void **state)
{
	char log[65536];

	(void)state;
	read_file(e2e.agent_log, log, sizeof(log));
	assert_non_null(strstr(log, "\"event\":\"round\""));
	assert_non_null(strstr(log, "\"region\":\"enam\""));
	assert_non_null(strstr(log, "\"sent\":30")); /* round 1: 20 + 10 */
	assert_non_null(strstr(log, "survey_rejected"));
	assert_non_null(strstr(log, "\"event\":\"controller_connected\""));
	assert_non_null(strstr(log, "\"peer\":\"127.0.0.1:"));
}

/* ---- TLS: another CA's agent, and an agent that listens ----------------- */

static void
test_agent_from_other_ca_not_heard(void **state)
{
	char cert[128], key[128], ca[128], ct[128];
	struct canary_probe p;
	struct canary_report reps[2];
	char *text = NULL;
	size_t len = 0;
	char err[CANARY_ERRLEN];
	pid_t pid;

	(void)state;
	path_in(cert, sizeof(cert), "other.pem");
	path_in(key, sizeof(key), "other.key");
	path_in(ca, sizeof(ca), "ca.pem");
	snprintf(ct, sizeof(ct), "%s:%d:127.0.0.1:%d", HOST, e2e.http_port, e2e.http_port);
	const char *args[] = {"run",   "--region",     "weur", "--id",         "intruder", "--dial",
	                      e2e.url, "--cert",       cert,   "--key",        key,        "--ca",
	                      ca,      "--allow-host", HOST,   "--connect-to", ct,         NULL};
	pid = spawn_agent(args, NULL);
	nng_msleep(1000); /* time to dial and fail its handshakes */
	probe_init(&p, 9, "/ok", 2);
	assert_int_equal(canary_probe_encode(&p, &text, &len, err, sizeof(err)), 0);
	/* Every answer of the survey window: only the trusted agent's. */
	assert_int_equal(survey_raw(e2e.sv, text, len, p.deadline_ms, reps, 2, 1), 1);
	assert_string_equal(reps[0].agent_id, "agent-1");
	canary_report_free(&reps[0]);
	free(text);
	kill(pid, SIGTERM);
	assert_int_equal(wait_exit(pid, 5000), 0);
}

static void
test_agent_that_listens(void **state)
{
	char cert[128], key[128], ca[128], ct[128], url[64], err[CANARY_ERRLEN];
	struct canary_tls_files tls = {cert, key, ca};
	struct canary_probe p;
	struct canary_report rep;
	char *text = NULL;
	size_t len = 0;
	nng_socket sv;
	pid_t pid;

	(void)state;
	path_in(cert, sizeof(cert), "server.pem");
	path_in(key, sizeof(key), "server.key");
	path_in(ca, sizeof(ca), "ca.pem");
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", agent_test_free_port());
	snprintf(ct, sizeof(ct), "%s:%d:127.0.0.1:%d", HOST, e2e.http_port, e2e.http_port);
	const char *args[] = {"run", "--region",     "apac", "--id",         "fixed-1", "--listen",
	                      url,   "--cert",       cert,   "--key",        key,       "--ca",
	                      ca,    "--allow-host", HOST,   "--connect-to", ct,        NULL};
	pid = spawn_agent(args, NULL);
	/* The controller side dials, with the client certificate. */
	path_in(cert, sizeof(cert), "client.pem");
	path_in(key, sizeof(key), "client.key");
	assert_int_equal(nng_surveyor0_open(&sv), 0);
	if (canary_link_dial(sv, url, 0, &tls, err, sizeof(err)) != 0) {
		fail_msg("dial: %s", err);
	}
	probe_init(&p, 10, "/ok", 4);
	assert_int_equal(canary_probe_encode(&p, &text, &len, err, sizeof(err)), 0);
	assert_int_equal(survey_raw(sv, text, len, p.deadline_ms, &rep, 1, 0), 1);
	assert_string_equal(rep.agent_id, "fixed-1");
	assert_string_equal(rep.region, "apac");
	assert_int_equal(rep.targets[0].sent, 4);
	canary_report_free(&rep);
	free(text);
	nng_close(sv);
	kill(pid, SIGTERM);
	assert_int_equal(wait_exit(pid, 5000), 0);
}

/* ---- the command line --------------------------------------------------- */

static void
test_cli_refusals(void **state)
{
	char out[8192];
	char cert[128], key[128], ca[128];

	(void)state;
	const char *tcp[] = {"run",    "--region",          "enam",         "--id", "a",
	                     "--dial", "tcp://127.0.0.1:9", "--allow-host", HOST,   NULL};
	assert_int_equal(run_agent(tcp, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--insecure"));

	const char *ipc[] = {"run",      "--region",     "enam",         "--id", "a",
	                     "--listen", "ipc:///tmp/x", "--allow-host", HOST,   NULL};
	assert_int_equal(run_agent(ipc, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--insecure"));

	const char *noallow[] = {"run",    "--region",          "enam", "--id", "a", "--insecure",
	                         "--dial", "tcp://127.0.0.1:9", NULL};
	assert_int_equal(run_agent(noallow, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--allow-host"));

	const char *noregion[] = {"run",          "--id",   "a",
	                          "--insecure",   "--dial", "tcp://127.0.0.1:9",
	                          "--allow-host", HOST,     NULL};
	assert_int_equal(run_agent(noregion, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--region"));

	const char *notls[] = {"run",    "--region", "enam",         "--id", "a",
	                       "--dial", e2e.url,    "--allow-host", HOST,   NULL};
	assert_int_equal(run_agent(notls, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--cert"));

	const char *badhost[] = {
	    "run",    "--region",          "enam",         "--id",   "a", "--insecure",
	    "--dial", "tcp://127.0.0.1:9", "--allow-host", "*evil*", NULL};
	assert_int_equal(run_agent(badhost, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "*evil*"));

	const char *badct[] = {"run",
	                       "--region",
	                       "enam",
	                       "--id",
	                       "a",
	                       "--insecure",
	                       "--dial",
	                       "tcp://127.0.0.1:9",
	                       "--allow-host",
	                       HOST,
	                       "--connect-to",
	                       "nonsense",
	                       NULL};
	assert_int_equal(run_agent(badct, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--connect-to"));

	/* A certificate file that is not there: named, and the agent stops. */
	path_in(cert, sizeof(cert), "missing.pem");
	path_in(key, sizeof(key), "client.key");
	path_in(ca, sizeof(ca), "ca.pem");
	const char *nocert[] = {"run",   "--region",     "enam", "--id",  "a", "--dial",
	                        e2e.url, "--cert",       cert,   "--key", key, "--ca",
	                        ca,      "--allow-host", HOST,   NULL};
	assert_int_equal(run_agent(nocert, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "missing.pem"));
}

static void
test_probe_exit_codes_and_json(void **state)
{
	char out[16384];
	char url[128], ct[128];
	cJSON *j;

	(void)state;
	snprintf(url, sizeof(url), "http://%s:%d/ok", HOST, e2e.http_port);
	snprintf(ct, sizeof(ct), "%s:%d:127.0.0.1:%d", HOST, e2e.http_port, e2e.http_port);

	const char *good[] = {"probe",
	                      url,
	                      "-n",
	                      "50",
	                      "-c",
	                      "4",
	                      "--isr",
	                      "--expect-middleware",
	                      AGENT_TARGET_M0,
	                      "--expect-server",
	                      AGENT_TARGET_S0,
	                      "--connect-to",
	                      ct,
	                      "--json",
	                      NULL};
	assert_int_equal(run_agent(good, out, sizeof(out)), 0);
	j = cJSON_Parse(out);
	assert_non_null(j);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "pass")));
	assert_int_equal(cJSON_GetObjectItem(j, "requests")->valuedouble, 50);
	assert_int_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(j, "statuses"), "200")->valuedouble, 50);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "cache"), "hit")->valuedouble,
	                 49);
	assert_true(cJSON_GetObjectItem(j, "peak_rss_kib")->valuedouble > 0);
	cJSON_Delete(j);

	/* The table form says PASS. */
	const char *table[] = {"probe", url, "-n", "5", "--connect-to", ct, NULL};
	assert_int_equal(run_agent(table, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "PASS"));
	assert_non_null(strstr(out, "200: 5"));

	const char *status[] = {"probe",        url, "-n", "5", "--expect-status", "204",
	                        "--connect-to", ct,  NULL};
	assert_int_equal(run_agent(status, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "FAIL"));

	const char *version[] = {
	    "probe",        url, "-n",     "5", "--expect-middleware", AGENT_TARGET_M1,
	    "--connect-to", ct,  "--json", NULL};
	assert_int_equal(run_agent(version, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "unknown versions"));

	/* A status outside 100..599 is shown as "other" and fails the probe. */
	char odd[128];
	snprintf(odd, sizeof(odd), "http://%s:%d/status999", HOST, e2e.http_port);
	const char *oddstatus[] = {"probe", odd, "-n", "3", "--connect-to", ct, "--json", NULL};
	assert_int_equal(run_agent(oddstatus, out, sizeof(out)), 1);
	j = cJSON_Parse(out);
	assert_non_null(j);
	assert_int_equal(cJSON_GetObjectItem(j, "responses")->valuedouble, 3);
	assert_int_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(j, "statuses"), "other")->valuedouble, 3);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "errors"), "http")->valuedouble,
	                 3);
	cJSON_Delete(j);
	const char *oddtable[] = {"probe", odd, "-n", "2", "--connect-to", ct, NULL};
	assert_int_equal(run_agent(oddtable, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "other: 2"));

	char refused[64];
	snprintf(refused, sizeof(refused), "http://127.0.0.1:%d/ok", agent_test_free_port());
	const char *conn[] = {"probe", refused, "-n", "2", "--json", NULL};
	assert_int_equal(run_agent(conn, out, sizeof(out)), 1);
	j = cJSON_Parse(out);
	assert_non_null(j);
	assert_int_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(j, "errors"), "connect")->valuedouble, 2);
	cJSON_Delete(j);

	const char *ftp[] = {"probe", "ftp://example.test/", NULL};
	assert_int_equal(run_agent(ftp, out, sizeof(out)), 2);
	const char *badn[] = {"probe", url, "-n", "0", NULL};
	assert_int_equal(run_agent(badn, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "-n"));
	const char *unknown[] = {"probe", url, "--frobnicate", NULL};
	assert_int_equal(run_agent(unknown, out, sizeof(out)), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_counts_and_isr),
	    cmocka_unit_test(test_isr_warmup),
	    cmocka_unit_test(test_override_share_and_keys),
	    cmocka_unit_test(test_deadline_gives_partial_report),
	    cmocka_unit_test(test_host_off_allowlist_refused),
	    cmocka_unit_test(test_over_cap_refused),
	    cmocka_unit_test(test_malformed_surveys_answered),
	    cmocka_unit_test(test_round_log_line),
	    cmocka_unit_test(test_agent_from_other_ca_not_heard),
	    cmocka_unit_test(test_agent_that_listens),
	    cmocka_unit_test(test_cli_refusals),
	    cmocka_unit_test(test_probe_exit_codes_and_json),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
