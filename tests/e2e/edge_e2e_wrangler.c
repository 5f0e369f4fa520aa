/*
 * edge_e2e_wrangler.c: the real wrangler CLI against canary-edge on
 * 127.0.0.1: versions upload (with and without --var, --tag, --message),
 * versions deploy with one and two versions, deployments status with and
 * without --json, an unknown version; after each, wrangler's output and the
 * edge's state are checked.
 *
 * Usage: edge_e2e_wrangler CANARY_EDGE WRANGLER FIXTURE_DIR [TEST_GLOB]
 * The fixture is copied to a temporary directory (wrangler writes .wrangler/
 * beside its config); HOME and TMPDIR point there too, with wrangler's
 * update check pre-seeded so nothing tries the network.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "edge_harness.h"

#define ACCT_ID "0123456789abcdef0123456789abcdef"
#define API_W   "/client/v4/accounts/" ACCT_ID "/workers/scripts/middleware"
#define OUT_MAX (1024 * 1024)
#define WR_ARGS 16

static const char *edge_bin, *wrangler, *fixture;
static char work[256], home[300], tmpdir[300];
static struct eh_edge edge;
/* The edge and directory wrangler runs against (the main ones, or those of
 * the migration test). */
static struct eh_edge *cur = &edge;
static const char *cur_work = work;

struct run {
	int code;
	char out[OUT_MAX]; /* stdout and stderr together */
};

static void
copy_file(const char *from, const char *to)
{
	char buf[8192];
	int in = open(from, O_RDONLY);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		assert_int_equal(write(out, buf, (size_t)n), n);
	}
	close(in);
	close(out);
}

/* wr: runs wrangler with args (NULL-terminated) in the work directory. */
static void
wr(struct run *r, const char *const *args)
{
	const char *argv[WR_ARGS + 2];
	char env_base[256], env_home[320], env_tmp[320], env_path[4096];
	const char *path = getenv("PATH");
	char *envp[] = {env_base,
	                env_home,
	                env_tmp,
	                env_path,
	                "CLOUDFLARE_API_TOKEN=tok",
	                "CLOUDFLARE_ACCOUNT_ID=" ACCT_ID,
	                "WRANGLER_SEND_METRICS=false",
	                "NO_COLOR=1",
	                NULL};
	int fds[2], n = 0, status;
	size_t len = 0;
	pid_t pid;

	argv[n++] = wrangler;
	for (int i = 0; args[i] != NULL && n < WR_ARGS; i++) {
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	snprintf(env_base, sizeof(env_base), "CLOUDFLARE_API_BASE_URL=%s/client/v4", cur->api);
	snprintf(env_home, sizeof(env_home), "HOME=%s", home);
	snprintf(env_tmp, sizeof(env_tmp), "TMPDIR=%s", tmpdir);
	snprintf(env_path, sizeof(env_path), "PATH=%s", path != NULL ? path : "/usr/bin:/bin");
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		if (chdir(cur_work) != 0) {
			_exit(126);
		}
		execve(wrangler, (char *const *)argv, envp);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t k = read(fds[0], r->out + len, sizeof(r->out) - 1 - len);

		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			break;
		}
		len += (size_t)k;
		if (len == sizeof(r->out) - 1) {
			break;
		}
	}
	r->out[len] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void
expect_out(const struct run *r, const char *needle)
{
	if (strstr(r->out, needle) == NULL) {
		fail_msg("wrangler output lacks \"%s\":\n%s", needle, r->out);
	}
}

/* version_id: the id after "Worker Version ID: ". */
static void
version_id(const struct run *r, char id[40])
{
	const char *p = strstr(r->out, "Worker Version ID: ");

	if (p == NULL) {
		fail_msg("no Worker Version ID in:\n%s", r->out);
	}
	snprintf(id, 37, "%s", p + 19);
}

static cJSON *
version(const char *id)
{
	char path[256];
	long st;
	cJSON *j;

	snprintf(path, sizeof(path), API_W "/versions/%s", id);
	j = eh_api(&edge, "GET", path, NULL, NULL, 0, &st);
	assert_int_equal(st, 200);
	return j;
}

static const char *
binding_text(const cJSON *v, const char *name)
{
	const cJSON *b;

	cJSON_ArrayForEach(
	    b, cJSON_GetObjectItem(
	           cJSON_GetObjectItem(cJSON_GetObjectItem(v, "result"), "resources"), "bindings"))
	{
		if (strcmp(cJSON_GetObjectItem(b, "name")->valuestring, name) == 0) {
			return cJSON_GetObjectItem(b, "text")->valuestring;
		}
	}
	return NULL;
}

/* current: the middleware's newest deployment as "ID@PCT[,ID@PCT]". */
static void
current(char *out, size_t n)
{
	long st;
	cJSON *j = eh_api(&edge, "GET", API_W "/deployments", NULL, NULL, 0, &st);
	const cJSON *d = cJSON_GetArrayItem(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "deployments"), 0);
	const cJSON *v;
	size_t k = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(v, cJSON_GetObjectItem(d, "versions"))
	{
		k += (size_t)snprintf(out + k, n - k, "%s%s@%d", k > 0 ? "," : "",
		                      cJSON_GetObjectItem(v, "version_id")->valuestring,
		                      cJSON_GetObjectItem(v, "percentage")->valueint);
	}
	cJSON_Delete(j);
}

static void
test_wrangler_flow(void **state)
{
	static struct run r;
	char a[40], b[40], want[256], got[256], split[256], arg[128], mw[64];
	cJSON *v;

	(void)state;
	/* 1. Upload as the config says. */
	wr(&r, (const char *[]){"versions", "upload", "--config", "wrangler.jsonc", NULL});
	assert_int_equal(r.code, 0);
	expect_out(&r, "Uploaded middleware");
	version_id(&r, a);
	v = version(a);
	assert_string_equal(binding_text(v, "WORKER_VERSION_ID"), "TO_REPLACE");
	cJSON_Delete(v);

	/* 2. Upload with --var (the pin, as the controller passes it), --tag, --message. */
	snprintf(arg, sizeof(arg), "WORKER_VERSION_ID:%s", edge.seed_server);
	wr(&r, (const char *[]){"versions", "upload", "--config", "wrangler.jsonc", "--var", arg,
	                        "--tag", "v2-tag", "--message", "second upload", NULL});
	assert_int_equal(r.code, 0);
	version_id(&r, b);
	assert_string_not_equal(a, b);
	v = version(b);
	assert_string_equal(binding_text(v, "WORKER_VERSION_ID"), edge.seed_server);
	{
		const cJSON *ann =
		    cJSON_GetObjectItem(cJSON_GetObjectItem(v, "result"), "annotations");

		assert_string_equal(cJSON_GetObjectItem(ann, "workers/tag")->valuestring, "v2-tag");
		assert_string_equal(cJSON_GetObjectItem(ann, "workers/message")->valuestring,
		                    "second upload");
	}
	cJSON_Delete(v);

	/* 3. Deploy one version. */
	snprintf(arg, sizeof(arg), "%s@100%%", b);
	wr(&r,
	   (const char *[]){"versions", "deploy", arg, "-y", "--config", "wrangler.jsonc", NULL});
	assert_int_equal(r.code, 0);
	snprintf(want, sizeof(want), "Deployed middleware version %s at 100%%", b);
	expect_out(&r, want);
	snprintf(want, sizeof(want), "%s@100", b);
	current(got, sizeof(got));
	assert_string_equal(got, want);
	assert_int_equal(eh_get(eh_region(&edge, "enam"), "/", NULL, mw, NULL, NULL), 200);
	assert_string_equal(mw, b);

	/* 4. Deploy two versions, with a message. */
	{
		char arg2[128];

		snprintf(arg, sizeof(arg), "%s@30%%", b);
		snprintf(arg2, sizeof(arg2), "%s@70%%", a);
		wr(&r, (const char *[]){"versions", "deploy", arg, arg2, "-y", "--config",
		                        "wrangler.jsonc", "--message", "split", NULL});
	}
	assert_int_equal(r.code, 0);
	snprintf(want, sizeof(want),
	         "Deployed middleware version %s at 30%% and version %s at 70%%", b, a);
	expect_out(&r, want);
	snprintf(split, sizeof(split), "%s@30,%s@70", b, a);
	current(got, sizeof(got));
	assert_string_equal(got, split);

	/* 5. Status, for people. */
	wr(&r, (const char *[]){"deployments", "status", "--config", "wrangler.jsonc", NULL});
	assert_int_equal(r.code, 0);
	expect_out(&r, "Message:     split");
	snprintf(want, sizeof(want), "(30%%) %s", b);
	expect_out(&r, want);
	snprintf(want, sizeof(want), "(70%%) %s", a);
	expect_out(&r, want);
	expect_out(&r, "Tag:  v2-tag");

	/* 6. Status --json: the newest deployment object. */
	wr(&r,
	   (const char *[]){"deployments", "status", "--config", "wrangler.jsonc", "--json", NULL});
	assert_int_equal(r.code, 0);
	{
		const char *brace = strchr(r.out, '{');
		cJSON *j, *vs;

		assert_non_null(brace);
		j = cJSON_Parse(brace);
		assert_non_null(j);
		vs = cJSON_GetObjectItem(j, "versions");
		assert_int_equal(cJSON_GetArraySize(vs), 2);
		assert_string_equal(
		    cJSON_GetObjectItem(cJSON_GetArrayItem(vs, 0), "version_id")->valuestring, b);
		assert_int_equal(
		    cJSON_GetObjectItem(cJSON_GetArrayItem(vs, 1), "percentage")->valueint, 70);
		assert_string_equal(
		    cJSON_GetObjectItem(cJSON_GetObjectItem(j, "annotations"), "workers/message")
		        ->valuestring,
		    "split");
		cJSON_Delete(j);
	}

	/* 7. An unknown version: Cloudflare's error, nothing deployed. */
	wr(&r, (const char *[]){"versions", "deploy", "00000000-0000-0000-0000-000000000000@100%",
	                        "-y", "--config", "wrangler.jsonc", NULL});
	assert_int_not_equal(r.code, 0);
	expect_out(&r, "workers.api.error.version_not_found [code: 10007]");
	current(got, sizeof(got));
	assert_string_equal(got, split);
}

/* Faults are plain-text vars of an upload: a malformed value is refused by
 * name, a good one acts in the data plane once deployed. */
static void
test_wrangler_fault_bindings(void **state)
{
	static struct run r;
	char a[40], arg[128], mw[64];

	(void)state;
	/* A bad build uploaded with a malformed fault value is refused by name. */
	wr(&r, (const char *[]){"versions", "upload", "--config", "wrangler.jsonc", "--var",
	                        "CANARY_EDGE_STATUS:abc", NULL});
	assert_int_not_equal(r.code, 0);
	expect_out(&r, "CANARY_EDGE_STATUS");
	/* and a good one acts in the data plane once deployed. */
	wr(&r, (const char *[]){"versions", "upload", "--config", "wrangler.jsonc", "--var",
	                        "CANARY_EDGE_STATUS:418", NULL});
	assert_int_equal(r.code, 0);
	version_id(&r, a);
	snprintf(arg, sizeof(arg), "%s@100%%", a);
	wr(&r,
	   (const char *[]){"versions", "deploy", arg, "-y", "--config", "wrangler.jsonc", NULL});
	assert_int_equal(r.code, 0);
	assert_int_equal(eh_get(eh_region(&edge, "enam"), "/", NULL, mw, NULL, NULL), 418);
	assert_string_equal(mw, a);
}

/* copy_fixture: the two files of fixture directory name into dir. */
static void
copy_fixture(const char *name, const char *dir)
{
	char from[600], to[600];

	for (int i = 0; i < 2; i++) {
		const char *file = i == 0 ? "wrangler.jsonc" : "index.js";

		snprintf(from, sizeof(from), "%s/../%s/%s", fixture, name, file);
		snprintf(to, sizeof(to), "%s/%s", dir, file);
		copy_file(from, to);
	}
}

/* The migration tag canary-edge reports decides whether wrangler sends
 * Durable Object migrations with an upload; a version upload that would
 * apply them is refused, naming both tags. */
static void
test_wrangler_migration_tag(void **state)
{
	static struct run r;
	char dir[300];
	struct eh_edge e2;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/do", work);
	assert_int_equal(mkdir(dir, 0700), 0);
	copy_fixture("do-worker", dir);
	cur_work = dir;
	cur = &e2;
	for (int i = 0; i < 2; i++) {
		const char *tag = i == 0 ? "v1" : "v0";
		const char *args[] = {"--token", "tok", "--migration-tag", tag, NULL};

		assert_int_equal(eh_start(&e2, edge_bin, args), 0);
		wr(&r, (const char *[]){"versions", "upload", NULL});
		assert_int_equal(eh_stop(&e2), 0); /* a clean exit (sanitizers report here) */
		if (i == 0) {
			assert_int_equal(r.code, 0);
			expect_out(&r, "Worker Version ID: ");
		} else {
			assert_int_not_equal(r.code, 0);
			expect_out(&r, "migration tag \"v0\", the upload moves it to \"v1\"");
		}
	}
	cur = &edge;
	cur_work = work;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wrangler_flow),
	    cmocka_unit_test(test_wrangler_fault_bindings),
	    cmocka_unit_test(test_wrangler_migration_tag),
	};
	const char *args[] = {"--token", "tok", "--region", "enam=127.0.0.1:0", NULL};
	char path[600], from[600];
	FILE *f;
	int rv;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s CANARY_EDGE WRANGLER FIXTURE_DIR [TEST_GLOB]\n",
		        argv[0]);
		return 2;
	}
	if (argc == 5) {
		/* ctest runs the tests as separate entries, so each stays short. */
		cmocka_set_test_filter(argv[4]);
	}
	edge_bin = argv[1];
	wrangler = argv[2];
	fixture = argv[3];
	snprintf(work, sizeof(work), "/tmp/edge_wrangler_XXXXXX");
	if (mkdtemp(work) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(home, sizeof(home), "%s/home", work);
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", work);
	mkdir(home, 0700);
	mkdir(tmpdir, 0700);
	snprintf(path, sizeof(path), "%s/update-check", tmpdir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/update-check/wrangler-latest.json", tmpdir);
	f = fopen(path, "w");
	if (f == NULL) {
		perror(path);
		return 1;
	}
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		fprintf(f, "{\"latest\":\"4.86.0\",\"lastUpdate\":%lld}\n",
		        (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	}
	fclose(f);
	for (int i = 0; i < 2; i++) {
		const char *name = i == 0 ? "wrangler.jsonc" : "index.js";

		snprintf(from, sizeof(from), "%s/%s", fixture, name);
		snprintf(path, sizeof(path), "%s/%s", work, name);
		copy_file(from, path);
	}
	if (eh_start(&edge, edge_bin, args) != 0) {
		fprintf(stderr, "canary-edge did not start\n");
		return 1;
	}
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	if (eh_stop(&edge) != 0) {
		fprintf(stderr, "canary-edge did not exit cleanly\n");
		rv = 1;
	}
	{
		char cmd[400];

		/* The temporary tree holds wrangler's caches and logs. */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
		if (system(cmd) != 0) {
			fprintf(stderr, "could not remove %s\n", work);
		}
	}
	return rv;
}
