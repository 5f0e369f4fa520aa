/* test_deployer_wrangler.c: the wrangler backend against a fake CLI that
 * prints the real wrangler output (tests/unit/fixtures/wrangler) and records
 * the argv and environment it was given; plus the shared deployment
 * helpers of deployer.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "deployer.h"

#ifndef CANARY_WRANGLER_FIXTURES
#error "CANARY_WRANGLER_FIXTURES must name tests/unit/fixtures/wrangler"
#endif

#define FAKE       CANARY_WRANGLER_FIXTURES "/fake-wrangler.sh"
#define ID_A       "92c25d1a-816b-46a7-8cdc-46a34ad69aad"
#define ID_B       "2a9eda0d-85e2-4c68-9ed7-d3330f77f3be"
#define DEP_ID     "b0b679b4-f526-4d00-bfb4-8d48e7c167bb"
#define SECRET     "s3cret-token-never-shown"
#define DEADLINE_S 20

struct ctx {
	struct event_base *base;
	struct deployer *d;
	char log[64];
	char mode_env[64];
	char log_env[96];
	int calls;
	struct deployer_result res;
};

static void
on_result(const struct deployer_result *res, void *arg)
{
	struct ctx *c = arg;

	c->calls++;
	c->res = *res;
	event_base_loopbreak(c->base);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* setup_mode: a deployer running the fake CLI in mode, with timeout_s. The
 * mode and the log file reach the child through the deployer's extra env,
 * which also carries a token that must never show up in errors. */
static void
setup_mode(struct ctx *c, const char *mode, int timeout_s)
{
	const char *cmd[] = {"sh", FAKE};
	const char *env[4];
	char err[CANARY_ERRLEN];
	int fd;

	memset(c, 0, sizeof(*c));
	c->base = event_base_new();
	assert_non_null(c->base);
	snprintf(c->log, sizeof(c->log), "/tmp/canary-fakewr-XXXXXX");
	fd = mkstemp(c->log);
	assert_true(fd >= 0);
	close(fd);
	snprintf(c->mode_env, sizeof(c->mode_env), "FAKE_WRANGLER_MODE=%s", mode);
	snprintf(c->log_env, sizeof(c->log_env), "FAKE_WRANGLER_LOG=%s", c->log);
	env[0] = c->mode_env;
	env[1] = c->log_env;
	env[2] = "CLOUDFLARE_API_TOKEN=" SECRET;
	env[3] = NULL;
	assert_int_equal(
	    deployer_wrangler_new(c->base, cmd, 2, timeout_s, env, &c->d, err, sizeof(err)), 0);
	assert_string_equal(c->d->ops->name, "wrangler");
}

static void
wait_result(struct ctx *c)
{
	struct timeval tv = {DEADLINE_S, 0};
	struct event *dl = evtimer_new(c->base, on_deadline, c->base);

	assert_int_equal(c->calls, 0); /* never from inside the start call */
	evtimer_add(dl, &tv);
	event_base_dispatch(c->base);
	event_free(dl);
	assert_int_equal(c->calls, 1);
}

static void
teardown_ctx(struct ctx *c)
{
	deployer_free(c->d);
	event_base_free(c->base);
	unlink(c->log);
}

/* read_log: the fake CLI's record of its calls. */
static char *
read_log(struct ctx *c)
{
	FILE *f = fopen(c->log, "r");
	static char buf[8192];
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static const struct deployer_worker mw = {"middleware", "wrangler.jsonc"};

static void
test_upload_ndjson(void **state)
{
	const char *vars[1][2] = {{"WORKER_VERSION_ID", ID_A}};
	struct deployer_upload up = {
	    .worker = mw, .vars = vars, .n_vars = 1, .tag = "v2-tag", .message = "second upload"};
	struct ctx c;

	(void)state;
	setup_mode(&c, "ok", 10);
	assert_int_equal(deployer_upload(c.d, &up, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.version_id, ID_A);
	/* The exact argv, one word per line, and the environment it set. */
	assert_string_equal(read_log(&c),
	                    "versions\nupload\n--config\nwrangler.jsonc\n--var\n"
	                    "WORKER_VERSION_ID:" ID_A "\n--tag\nv2-tag\n--message\nsecond upload\n"
	                    "--env SEND_METRICS=false HIDE_BANNER=true OUTPUT_FILE=set\n--end\n");
	teardown_ctx(&c);
}

static void
test_upload_output_file_wins(void **state)
{
	struct deployer_upload up = {.worker = mw};
	struct ctx c;

	(void)state;
	/* stdout says ID_A, the NDJSON record says ID_B: the file is the
	 * machine-readable source and wins. */
	setup_mode(&c, "ndjson-differs", 10);
	assert_int_equal(deployer_upload(c.d, &up, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.version_id, ID_B);
	assert_string_equal(read_log(&c),
	                    "versions\nupload\n--config\nwrangler.jsonc\n"
	                    "--env SEND_METRICS=false HIDE_BANNER=true OUTPUT_FILE=set\n--end\n");
	teardown_ctx(&c);
}

static void
test_upload_stdout_fallback(void **state)
{
	struct deployer_upload up = {.worker = mw};
	struct ctx c;

	(void)state;
	setup_mode(&c, "stdout-only", 10);
	assert_int_equal(deployer_upload(c.d, &up, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.version_id, ID_A);
	teardown_ctx(&c);
}

static void
test_upload_garbage(void **state)
{
	struct deployer_upload up = {.worker = mw};
	struct ctx c;

	(void)state;
	setup_mode(&c, "garbage", 10);
	assert_int_equal(deployer_upload(c.d, &up, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EPARSE);
	assert_non_null(strstr(c.res.err, "version-upload"));
	assert_string_equal(c.res.version_id, "");
	teardown_ctx(&c);
}

static void
test_deploy_split_reads_back(void **state)
{
	struct deployment dep = {.n_versions = 2};
	struct ctx c;

	(void)state;
	strcpy(dep.versions[0].version_id, ID_B);
	dep.versions[0].percentage = 100;
	strcpy(dep.versions[1].version_id, ID_A);
	dep.versions[1].percentage = 0;
	setup_mode(&c, "ok", 10);
	assert_int_equal(deployer_deploy(c.d, &mw, &dep, "split B100 A0", on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.deployment.id, DEP_ID);
	assert_int_equal(c.res.deployment.n_versions, 2);
	assert_string_equal(c.res.deployment.versions[0].version_id, ID_B);
	assert_int_equal(c.res.deployment.versions[0].percentage, 100);
	assert_string_equal(c.res.deployment.versions[1].version_id, ID_A);
	assert_int_equal(c.res.deployment.versions[1].percentage, 0);
	/* The deploy run, then the status read: no output file for either. */
	assert_string_equal(read_log(&c),
	                    "versions\ndeploy\n" ID_B "@100%\n" ID_A "@0%\n-y\n--config\n"
	                    "wrangler.jsonc\n--message\nsplit B100 A0\n"
	                    "--env SEND_METRICS=false HIDE_BANNER=true OUTPUT_FILE=\n--end\n"
	                    "deployments\nstatus\n--config\nwrangler.jsonc\n--json\n"
	                    "--env SEND_METRICS=false HIDE_BANNER=true OUTPUT_FILE=\n--end\n");
	teardown_ctx(&c);
}

static void
test_deploy_drift(void **state)
{
	struct deployment dep = {.n_versions = 1};
	struct ctx c;

	(void)state;
	/* The platform (status.json) holds B100 A0, not A100. */
	strcpy(dep.versions[0].version_id, ID_A);
	dep.versions[0].percentage = 100;
	setup_mode(&c, "ok", 10);
	assert_int_equal(deployer_deploy(c.d, &mw, &dep, NULL, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EDRIFT);
	assert_non_null(strstr(c.res.err, ID_A "@100%"));
	assert_non_null(strstr(c.res.err, ID_B "@100% " ID_A "@0%"));
	/* No --message when none is given. */
	assert_null(strstr(read_log(&c), "--message"));
	teardown_ctx(&c);
}

static void
test_deploy_failure_quotes_stderr(void **state)
{
	struct deployment dep = {.n_versions = 1};
	struct ctx c;

	(void)state;
	strcpy(dep.versions[0].version_id, "00000000-0000-0000-0000-000000000000");
	dep.versions[0].percentage = 100;
	setup_mode(&c, "fail", 10);
	assert_int_equal(deployer_deploy(c.d, &mw, &dep, NULL, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EEXIT);
	assert_non_null(
	    strstr(c.res.err, "versions deploy 00000000-0000-0000-0000-000000000000@100%"));
	assert_non_null(strstr(c.res.err, "exit code 1"));
	assert_non_null(strstr(c.res.err, "[ERROR] A request to the Cloudflare API"));
	assert_non_null(strstr(c.res.err, "workers.api.error.version_not_found [code: 10007]"));
	assert_null(strchr(c.res.err, '\x1b'));
	assert_null(strstr(c.res.err, SECRET));
	/* wrangler's boilerplate after every error is left out */
	assert_null(strstr(c.res.err, "If you think this is a bug"));
	assert_null(strstr(c.res.err, "Logs were written"));
	teardown_ctx(&c);
}

static void
test_status_parses_real_json(void **state)
{
	struct ctx c;

	(void)state;
	setup_mode(&c, "ok", 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, 0);
	assert_string_equal(c.res.deployment.id, DEP_ID);
	assert_int_equal(c.res.deployment.n_versions, 2);
	assert_int_equal(c.res.deployment.versions[0].percentage, 100);
	teardown_ctx(&c);
}

static void
test_status_garbage(void **state)
{
	struct ctx c;

	(void)state;
	/* A percentage given as a string must be refused, not read as 0. */
	setup_mode(&c, "garbage", 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EPARSE);
	assert_non_null(strstr(c.res.err, "versions[0].percentage"));
	assert_non_null(strstr(c.res.err, "deployments status"));
	teardown_ctx(&c);
}

static void
test_status_stdout_quoted_without_colours(void **state)
{
	struct ctx c;

	(void)state;
	/* stdout quoted in an error loses its colour codes, as stderr does. */
	setup_mode(&c, "colour-garbage", 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EPARSE);
	assert_non_null(strstr(c.res.err, "not json"));
	assert_null(strchr(c.res.err, '\033'));
	teardown_ctx(&c);
}

static void
test_token_echoed_by_cli_scrubbed(void **state)
{
	struct ctx c;

	(void)state;
	/* The CLI prints the token it was given: the quoted stderr hides it. */
	setup_mode(&c, "echo-token", 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EEXIT);
	assert_null(strstr(c.res.err, SECRET));
	assert_non_null(strstr(c.res.err, "Authorization: Bearer ***"));
	teardown_ctx(&c);
}

static void
test_status_trailing_data(void **state)
{
	struct ctx c;

	(void)state;
	/* The deployment object followed by another value: stdout is not the
	 * one object `deployments status --json` prints, so nothing is read. */
	setup_mode(&c, "trailing", 10);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	assert_int_equal(c.res.rv, CANARY_EPARSE);
	assert_non_null(strstr(c.res.err, "not one JSON deployment object"));
	teardown_ctx(&c);
}

static void
test_hang_times_out(void **state)
{
	struct ctx c;
	struct timeval t0, t1;
	double took;

	(void)state;
	setup_mode(&c, "hang", 1);
	gettimeofday(&t0, NULL);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	wait_result(&c);
	gettimeofday(&t1, NULL);
	took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_usec - t0.tv_usec) / 1e6;
	assert_int_equal(c.res.rv, CANARY_ETIMEDOUT);
	assert_non_null(strstr(c.res.err, "after 1 s, killed"));
	assert_true(took >= 0.9 && took < 5.0);
	teardown_ctx(&c);
}

static void
test_free_cancels(void **state)
{
	struct ctx c;

	(void)state;
	setup_mode(&c, "hang", 30);
	assert_int_equal(deployer_status(c.d, &mw, on_result, &c), 0);
	deployer_free(c.d);
	c.d = NULL;
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.res.rv, CANARY_ECANCELED);
	/* Nothing left on the loop: the child and its events are gone. */
	assert_int_equal(event_base_dispatch(c.base), 1);
	teardown_ctx(&c);
}

/* A callback that frees the deployer while another run is in flight: that
 * child is killed and its callback hears CANARY_ECANCELED. */
struct reentry {
	struct ctx *c;
	int n;
	int rv[2];
};

static void
on_result_free(const struct deployer_result *res, void *arg)
{
	struct reentry *r = arg;

	r->rv[r->n++] = res->rv;
	if (r->n == 1) {
		deployer_free(r->c->d);
		r->c->d = NULL;
		event_base_loopbreak(r->c->base);
	}
}

static void
test_free_from_callback(void **state)
{
	struct deployment dep = {.n_versions = 1};
	struct reentry r = {0};
	struct ctx c;
	struct timeval tv = {DEADLINE_S, 0};
	struct event *dl;

	(void)state;
	strcpy(dep.versions[0].version_id, ID_A);
	dep.versions[0].percentage = 100;
	setup_mode(&c, "ok", 10);
	r.c = &c;
	/* status is one run; deploy is two (deploy, then the read back), so
	 * status ends first while deploy still runs. */
	assert_int_equal(deployer_deploy(c.d, &mw, &dep, NULL, on_result_free, &r), 0);
	assert_int_equal(deployer_status(c.d, &mw, on_result_free, &r), 0);
	dl = evtimer_new(c.base, on_deadline, c.base);
	evtimer_add(dl, &tv);
	event_base_dispatch(c.base);
	event_free(dl);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.rv[1], CANARY_ECANCELED);
	/* nothing left on the loop: the other child and its events are gone */
	assert_int_equal(event_base_dispatch(c.base), 1);
	teardown_ctx(&c);
}

static void
test_bad_requests(void **state)
{
	const char *badvars[1][2] = {{"A:B", "v"}};
	struct deployer_upload up = {.worker = mw, .vars = badvars, .n_vars = 1};
	struct deployer_worker noconf = {"middleware", NULL};
	struct deployment dep = {.n_versions = 2};
	struct ctx c;
	const char *cmd[] = {"wrangler"};
	struct deployer *d2;
	char err[CANARY_ERRLEN];

	(void)state;
	setup_mode(&c, "ok", 10);
	assert_int_equal(deployer_upload(c.d, &up, on_result, &c), CANARY_EINVAL);
	assert_non_null(strstr(c.d->err, "':'"));
	strcpy(dep.versions[0].version_id, ID_A);
	dep.versions[0].percentage = 50;
	strcpy(dep.versions[1].version_id, ID_B);
	dep.versions[1].percentage = 40;
	assert_int_equal(deployer_deploy(c.d, &mw, &dep, NULL, on_result, &c), CANARY_EINVAL);
	assert_non_null(strstr(c.d->err, "total 90"));
	assert_int_equal(deployer_status(c.d, &noconf, on_result, &c), CANARY_EINVAL);
	assert_int_equal(deployer_migration_tag(c.d, &mw, on_result, &c), CANARY_ESTATE);
	assert_int_equal(c.calls, 0);
	teardown_ctx(&c);
	assert_int_equal(deployer_wrangler_new(NULL, cmd, 1, 0, NULL, &d2, err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_null(d2);
	deployer_free(NULL);
}

static void
test_not_installed(void **state)
{
	struct event_base *base = event_base_new();
	const char *cmd[] = {"canary-no-such-wrangler"};
	struct deployer *d;
	char err[CANARY_ERRLEN];
	struct ctx c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(deployer_wrangler_new(base, cmd, 1, 0, NULL, &d, err, sizeof(err)), 0);
	assert_int_equal(deployer_status(d, &mw, on_result, &c), CANARY_ESPAWN);
	assert_non_null(strstr(d->err, "canary-no-such-wrangler"));
	deployer_free(d);
	event_base_free(base);
}

static void
test_helpers(void **state)
{
	struct deployment a = {.n_versions = 2}, b = {.n_versions = 2};
	const char *bad[] = {
	    "{\"id\":\"x\",\"versions\":[]}",
	    "{\"id\":\"x\",\"versions\":[{\"version_id\":\"" ID_A "\",\"percentage\":50}]}",
	    "{\"id\":\"x\",\"versions\":[{\"version_id\":\"" ID_A "\",\"percentage\":99.5},"
	    "{\"version_id\":\"" ID_B "\",\"percentage\":0.5}]}",
	    "{\"versions\":[{\"version_id\":\"" ID_A "\",\"percentage\":100}]}",
	    "{\"id\":\"x\",\"versions\":[{\"version_id\":\"nope\",\"percentage\":100}]}",
	    "[1]",
	    /* One version twice: {A:50, A:50} would compare equal to
	     * {A:50, B:50}, so drift could go unseen. */
	    "{\"id\":\"x\",\"versions\":[{\"version_id\":\"" ID_A "\",\"percentage\":50},"
	    "{\"version_id\":\"" ID_A "\",\"percentage\":50}]}",
	};
	char err[CANARY_ERRLEN], buf[128];
	cJSON *j;
	struct deployment p;

	(void)state;
	assert_true(canary_is_uuid(ID_A));
	assert_false(canary_is_uuid("92c25d1a-816b-46a7-8cdc-46a34ad69aa"));
	assert_false(canary_is_uuid("92c25d1a_816b-46a7-8cdc-46a34ad69aad"));
	assert_false(canary_is_uuid("g2c25d1a-816b-46a7-8cdc-46a34ad69aad"));
	strcpy(a.versions[0].version_id, ID_A);
	a.versions[0].percentage = 10;
	strcpy(a.versions[1].version_id, ID_B);
	a.versions[1].percentage = 90;
	b.versions[0] = a.versions[1];
	b.versions[1] = a.versions[0];
	assert_true(deployer_deployment_equal(&a, &b));
	b.versions[0].percentage = 80;
	assert_false(deployer_deployment_equal(&a, &b));
	/* A count out of range is never equal, and never read past the array. */
	b = a;
	a.n_versions = b.n_versions = CANARY_MAX_VERSIONS + 1;
	assert_false(deployer_deployment_equal(&a, &b));
	a.n_versions = b.n_versions = -1;
	assert_false(deployer_deployment_equal(&a, &b));
	a.n_versions = 2;
	b.versions[0] = a.versions[1];
	b.versions[1] = a.versions[0];
	b.versions[0].percentage = 80;
	assert_int_equal(deployer_check_deployment(&a, err, sizeof(err)), 0);
	strcpy(a.versions[1].version_id, ID_A);
	assert_int_equal(deployer_check_deployment(&a, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "twice"));
	strcpy(a.versions[1].version_id, ID_B);
	strcpy(a.id, "dep-1");
	/* JSON round trip */
	j = deployer_deployment_json(&a);
	assert_non_null(j);
	assert_int_equal(deployer_deployment_parse(j, "rt", &p, err, sizeof(err)), 0);
	cJSON_Delete(j);
	assert_string_equal(p.id, "dep-1");
	assert_true(deployer_deployment_equal(&a, &p));
	deployer_deployment_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, ID_A "@10% " ID_B "@90%");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = cJSON_Parse(bad[i]);
		assert_non_null(j);
		assert_int_equal(deployer_deployment_parse(j, "where", &p, err, sizeof(err)),
		                 CANARY_EPARSE);
		assert_memory_equal(err, "where", 5);
		cJSON_Delete(j);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_upload_ndjson),
	    cmocka_unit_test(test_upload_output_file_wins),
	    cmocka_unit_test(test_upload_stdout_fallback),
	    cmocka_unit_test(test_upload_garbage),
	    cmocka_unit_test(test_deploy_split_reads_back),
	    cmocka_unit_test(test_deploy_drift),
	    cmocka_unit_test(test_deploy_failure_quotes_stderr),
	    cmocka_unit_test(test_status_parses_real_json),
	    cmocka_unit_test(test_status_garbage),
	    cmocka_unit_test(test_status_stdout_quoted_without_colours),
	    cmocka_unit_test(test_status_trailing_data),
	    cmocka_unit_test(test_token_echoed_by_cli_scrubbed),
	    cmocka_unit_test(test_hang_times_out),
	    cmocka_unit_test(test_free_cancels),
	    cmocka_unit_test(test_free_from_callback),
	    cmocka_unit_test(test_bad_requests),
	    cmocka_unit_test(test_not_installed),
	    cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
