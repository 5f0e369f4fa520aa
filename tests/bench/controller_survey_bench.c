/*
 * controller_survey_bench.c: one survey round with many agents connected.
 *
 *   controller_survey_bench [AGENTS] [ROUNDS]     (defaults 1000 and 5)
 *
 * The process forks before touching nng. The child simulates AGENTS agents:
 * one nng respondent0 socket each, dialing the parent over tcp:// on
 * loopback (the --insecure transport), answering every probe with a canned
 * report for the probe's round (two targets, a filled latency histogram).
 * The parent is the controller side: the real survey module on a libevent
 * loop (fan-out, fan-in, strict decoding of every report), then the gate
 * module (gate.h): every report merged into its region, the round judged.
 *
 * Prints, per round, the time from send to the last report, the time to
 * merge and judge, and the reports received; then the median and worst
 * round (survey plus merge and judge) and the parent's peak RSS (getrusage
 * ru_maxrss). Never fails on speed: it exits non-zero only when the set-up
 * fails or a round loses reports.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <nng/nng.h>
#include <nng/protocol/survey0/respond.h>

#include "err.h"
#include "gate.h"
#include "log.h"
#include "msg.h"
#include "survey.h"

#define BENCH_DEFAULT_AGENTS  1000
#define BENCH_DEFAULT_ROUNDS  5
#define BENCH_MAX_AGENTS      5000
#define BENCH_MAX_ROUNDS      100
#define BENCH_CONNECT_WAIT_MS 60000
#define BENCH_DEADLINE_MS     10000
#define BENCH_REGIONS         3

/* ---- the agents (child process) ---- */

struct bench_agent {
	nng_socket sock;
	nng_aio *rx;
	nng_aio *tx;
	int index;
};

/* The canned report with its round left out: "round" is written per reply. */
static struct canary_report canned;

static void agent_rx_done(void *arg);

/* What the simulated agents did, printed when they stop. */
static atomic_uint_fast64_t probes_seen, replies_sent, send_failed;

static void
agent_tx_done(void *arg)
{
	struct bench_agent *a = arg;

	if (nng_aio_result(a->tx) != 0) {
		atomic_fetch_add(&send_failed, 1);
		nng_msg_free(nng_aio_get_msg(a->tx));
	} else {
		atomic_fetch_add(&replies_sent, 1);
	}
	nng_recv_aio(a->sock, a->rx);
}

static void
agent_rx_done(void *arg)
{
	struct bench_agent *a = arg;
	struct canary_probe p;
	struct canary_report r;
	char err[CANARY_ERRLEN];
	nng_msg *m;
	char *text = NULL;
	size_t len = 0;

	if (nng_aio_result(a->rx) != 0) {
		return; /* closed */
	}
	m = nng_aio_get_msg(a->rx);
	if (canary_probe_decode(nng_msg_body(m), nng_msg_len(m), &p, err, sizeof(err)) != 0) {
		nng_msg_free(m);
		nng_recv_aio(a->sock, a->rx);
		return;
	}
	atomic_fetch_add(&probes_seen, 1);
	r = canned;
	snprintf(r.agent_id, sizeof(r.agent_id), "bench-%d", a->index);
	snprintf(r.region, sizeof(r.region), "region-%d", a->index % BENCH_REGIONS);
	snprintf(r.rollout_id, sizeof(r.rollout_id), "%s", p.rollout_id);
	r.round = p.round;
	canary_probe_free(&p);
	nng_msg_clear(m);
	if (canary_report_encode(&r, &text, &len, err, sizeof(err)) != 0 ||
	    nng_msg_append(m, text, len) != 0) {
		free(text);
		nng_msg_free(m);
		nng_recv_aio(a->sock, a->rx);
		return;
	}
	free(text);
	nng_aio_set_msg(a->tx, m);
	nng_send_aio(a->sock, a->tx);
}

static void
make_canned(void)
{
	static struct canary_target_report t[2];
	static const char *ids[2] = {"home", "api"};
	uint64_t x = 88172645463325252ULL;

	memset(&canned, 0, sizeof(canned));
	canned.proto_version = CANARY_PROTO_VERSION;
	for (int i = 0; i < 2; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		snprintf(t[i].id, sizeof(t[i].id), "%s", ids[i]);
		canary_hist_init(&t[i].latency);
		for (int k = 0; k < 20; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			canary_hist_record(&t[i].latency, 2000 + x % 50000);
		}
		t[i].sent = 20;
		t[i].responses = 20;
		t[i].statuses[0].status = 200;
		t[i].statuses[0].count = 20;
		t[i].n_statuses = 1;
		snprintf(t[i].pairs[0].middleware, CANARY_UUID_LEN,
		         "11111111-1111-4111-8111-111111111111");
		snprintf(t[i].pairs[0].server, CANARY_UUID_LEN,
		         "22222222-2222-4222-8222-222222222222");
		t[i].pairs[0].count = 20;
		t[i].n_pairs = 1;
		t[i].cache_hit = i == 0 ? 19 : 0;
		t[i].cache_warmup = i == 0 ? 1 : 0;
	}
	canned.targets = t;
	canned.n_targets = 2;
}

static int
run_agents(const char *url, int n)
{
	struct bench_agent *agents = calloc((size_t)n, sizeof(*agents));
	sigset_t set;
	int sig;

	if (agents == NULL) {
		return 1;
	}
	make_canned();
	for (int i = 0; i < n; i++) {
		struct bench_agent *a = &agents[i];

		a->index = i;
		if (nng_respondent0_open(&a->sock) != 0 ||
		    nng_aio_alloc(&a->rx, agent_rx_done, a) != 0 ||
		    nng_aio_alloc(&a->tx, agent_tx_done, a) != 0 ||
		    nng_dial(a->sock, url, NULL, NNG_FLAG_NONBLOCK) != 0) {
			fprintf(stderr, "bench agent %d: set-up failed\n", i);
			return 1;
		}
		nng_recv_aio(a->sock, a->rx);
	}
	/* Serve until the parent says stop. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigwait(&set, &sig);
	printf("agents: %llu probes received, %llu reports sent, %llu sends failed\n",
	       (unsigned long long)atomic_load(&probes_seen),
	       (unsigned long long)atomic_load(&replies_sent),
	       (unsigned long long)atomic_load(&send_failed));
	fflush(stdout);
	return 0;
}

/* ---- the controller side (parent) ---- */

struct bench_round {
	int done;
	struct survey_result res;
	const struct canary_probe *probe;
	int64_t judge_us;
	int merged;
	enum gate_result verdict;
};

static const struct gate_region bench_regions[BENCH_REGIONS] = {
    {.name = "region-0", .min_agents = 1},
    {.name = "region-1", .min_agents = 1},
    {.name = "region-2", .min_agents = 1},
};

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The round's reports merged per region and judged, as the driver does. */
static void
on_round(struct survey_result *res, void *arg)
{
	struct bench_round *b = arg;
	struct gate_round *g = NULL;
	struct gate_policy policy;
	struct gate_verdict v;
	char err[CANARY_ERRLEN];
	int64_t t0 = now_us();

	b->done = 1;
	b->res.rv = res->rv;
	b->res.stats = res->stats;
	b->res.n_reports = res->n_reports;
	gate_policy_default(&policy);
	if (gate_round_new(b->probe, bench_regions, BENCH_REGIONS, &g, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench: gate round: %s\n", err);
		return;
	}
	for (int i = 0; i < res->n_reports; i++) {
		b->merged += gate_round_add(g, &res->reports[i], err, sizeof(err)) == 0;
	}
	gate_judge(g, NULL, &policy, &v);
	b->verdict = v.result;
	gate_round_free(g);
	b->judge_us = now_us() - t0;
}

static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port = -1;

	if (fd < 0) {
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
		port = ntohs(sa.sin_port);
	}
	close(fd);
	return port;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

int
main(int argc, char **argv)
{
	int n_agents = argc > 1 ? atoi(argv[1]) : BENCH_DEFAULT_AGENTS;
	int n_rounds = argc > 2 ? atoi(argv[2]) : BENCH_DEFAULT_ROUNDS;
	static struct canary_target targets[2] = {
	    {.id = "home",
	     .url = "https://docs.example.com/",
	     .method = "GET",
	     .requests = 20,
	     .timeout_ms = 5000,
	     .expect_status = {200},
	     .n_expect_status = 1,
	     .cache = CANARY_CACHE_ISR},
	    {.id = "api",
	     .url = "https://docs.example.com/api/health",
	     .method = "GET",
	     .requests = 20,
	     .timeout_ms = 5000,
	     .expect_status = {200},
	     .n_expect_status = 1},
	};
	struct event_base *base = NULL;
	struct survey *s = NULL;
	struct survey_config cfg;
	struct canary_probe p;
	char url[64], err[CANARY_ERRLEN];
	const char *listen[1] = {url};
	int64_t times[BENCH_MAX_ROUNDS];
	struct rusage ru;
	sigset_t set;
	pid_t child;
	int port, rc = 1, waited;

	if (n_agents < 1 || n_agents > BENCH_MAX_AGENTS || n_rounds < 1 ||
	    n_rounds > BENCH_MAX_ROUNDS) {
		fprintf(stderr, "usage: %s [AGENTS 1..%d] [ROUNDS 1..%d]\n", argv[0],
		        BENCH_MAX_AGENTS, BENCH_MAX_ROUNDS);
		return 1;
	}
	port = free_port();
	if (port < 0) {
		perror("bench: free port");
		return 1;
	}
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	/* SIGTERM blocked before the fork, so the child can sigwait for it. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	child = fork();
	if (child < 0) {
		perror("bench: fork");
		return 1;
	}
	if (child == 0) {
		_exit(run_agents(url, n_agents));
	}
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	canary_log_setup(stderr, CANARY_LOG_TEXT, CANARY_LOG_WARN);
	/* nng threads wake the loop through event_active. */
	if (evthread_use_pthreads() != 0) {
		goto out;
	}
	base = event_base_new();
	memset(&cfg, 0, sizeof(cfg));
	cfg.listen = listen;
	cfg.n_listen = 1;
	cfg.insecure = 1;
	if (base == NULL || survey_new(base, &cfg, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench: survey: %s\n", err);
		goto out;
	}
	for (waited = 0; survey_agents(s) < n_agents && waited < BENCH_CONNECT_WAIT_MS;
	     waited += 50) {
		sleep_ms(50);
	}
	printf("agents connected: %d of %d after %d ms\n", survey_agents(s), n_agents, waited);
	if (survey_agents(s) < n_agents) {
		goto out;
	}
	memset(&p, 0, sizeof(p));
	p.proto_version = CANARY_PROTO_VERSION;
	snprintf(p.rollout_id, sizeof(p.rollout_id), "bench");
	p.phase = CANARY_PHASE_BAKE;
	p.deadline_ms = BENCH_DEADLINE_MS;
	p.targets = targets;
	p.n_targets = 2;
	snprintf(p.headers.middleware_version, CANARY_HEADER_NAME_LEN,
	         "x-canary-middleware-version");
	snprintf(p.headers.server_version, CANARY_HEADER_NAME_LEN, "x-canary-server-version");
	snprintf(p.headers.cache, CANARY_HEADER_NAME_LEN, "x-opennext-cache");
	p.expect.n_middleware = 1;
	snprintf(p.expect.middleware[0].id, CANARY_UUID_LEN,
	         "11111111-1111-4111-8111-111111111111");
	p.expect.middleware[0].share = 100;
	p.expect.n_server = 1;
	snprintf(p.expect.server[0].id, CANARY_UUID_LEN, "22222222-2222-4222-8222-222222222222");
	p.expect.server[0].share = 100;
	snprintf(p.expect.pins[0], CANARY_UUID_LEN, "22222222-2222-4222-8222-222222222222");
	rc = 0;
	for (int i = 0; i < n_rounds; i++) {
		struct bench_round b;

		memset(&b, 0, sizeof(b));
		b.probe = &p;
		p.round = (uint64_t)i + 1;
		if (survey_round(s, &p, on_round, &b, err, sizeof(err)) != 0) {
			fprintf(stderr, "bench: round %d: %s\n", i + 1, err);
			rc = 1;
			break;
		}
		while (!b.done) {
			event_base_loop(base, EVLOOP_ONCE);
		}
		times[i] = b.res.stats.elapsed_us + b.judge_us;
		printf("round %d: %d reports of %d agents (%d now) in %.1f ms%s (malformed %d); "
		       "merged %d, judged %s in %.1f ms\n",
		       i + 1, b.res.n_reports, b.res.stats.agents, survey_agents(s),
		       (double)b.res.stats.elapsed_us / 1000.0,
		       b.res.stats.timed_out ? " (hit the deadline)" : "", b.res.stats.malformed,
		       b.merged, gate_result_name(b.verdict), (double)b.judge_us / 1000.0);
		if (b.res.rv != 0 || b.res.n_reports != n_agents || b.merged != n_agents) {
			rc = 1;
		}
	}
	if (rc == 0) {
		qsort(times, (size_t)n_rounds, sizeof(times[0]), cmp_i64);
		getrusage(RUSAGE_SELF, &ru);
		printf(
		    "survey round with %d agents (fan-out, fan-in, decode, merge, judge): median "
		    "%.1f ms, worst %.1f ms over %d rounds\n",
		    n_agents, (double)times[n_rounds / 2] / 1000.0,
		    (double)times[n_rounds - 1] / 1000.0, n_rounds);
		printf("controller peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
	}
out:
	survey_free(s);
	if (base != NULL) {
		event_base_free(base);
	}
	kill(child, SIGTERM);
	waitpid(child, NULL, 0);
	return rc;
}
