/*
 * test_edge_state.c: canary-edge's workers, versions, deployments, their
 * rules, and the state file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "edge_state.h"
#include "err.h"

#define T0 1795000000000LL

struct fx {
	struct edge_state *st;
	struct edge_rng rng;
	char err[CANARY_ERRLEN];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	edge_rng_seed(&f->rng, 1);
	assert_int_equal(edge_state_new(&f->st), 0);
	assert_int_equal(edge_state_seed(f->st, "middleware", "main-server", &f->rng, T0, f->err,
	                                 sizeof(f->err)),
	                 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	edge_state_free(f->st);
	free(f);
	return 0;
}

static int
upload(struct fx *f, const char *worker, const char *meta_json, char id[EDGE_UUID_LEN])
{
	cJSON *meta = cJSON_Parse(meta_json);
	struct edge_version *v;
	struct edge_stamp s = {.id = id, .now_ms = T0 + 1000, .source = "wrangler"};
	int rv;

	edge_rng_uuid(&f->rng, id);
	assert_non_null(meta);
	rv = edge_state_upload(f->st, worker, meta, NULL, &s, &v, f->err, sizeof(f->err));
	cJSON_Delete(meta);
	if (rv == 0) {
		assert_string_equal(v->id, id);
	}
	return rv;
}

static int
deploy(struct fx *f, const char *worker, const char *body_json)
{
	cJSON *body = cJSON_Parse(body_json);
	char id[EDGE_UUID_LEN];
	const struct edge_deployment *d;
	struct edge_stamp s = {.id = id, .now_ms = T0 + 2000, .source = "api"};
	int rv;

	edge_rng_uuid(&f->rng, id);
	assert_non_null(body);
	rv = edge_state_deploy(f->st, worker, body, &s, &d, f->err, sizeof(f->err));
	cJSON_Delete(body);
	return rv;
}

static void
test_seed_pins_middleware_to_server(void **state)
{
	struct fx *f = *state;
	struct edge_worker *m = edge_state_worker(f->st, "middleware");
	struct edge_worker *s = edge_state_worker(f->st, "main-server");
	const struct edge_deployment *dm, *ds;

	assert_non_null(m);
	assert_non_null(s);
	dm = edge_state_current(m);
	ds = edge_state_current(s);
	assert_non_null(dm);
	assert_non_null(ds);
	assert_int_equal(dm->n, 1);
	assert_int_equal(dm->v[0].percentage, 100);
	assert_int_equal(ds->v[0].percentage, 100);
	assert_string_equal(edge_binding_text(m->versions[0].bindings, "WORKER_VERSION_ID"),
	                    ds->v[0].version_id);
	assert_string_not_equal(dm->v[0].version_id, ds->v[0].version_id);
}

static void
test_upload_rules(void **state)
{
	struct fx *f = *state;
	char id[EDGE_UUID_LEN];
	struct edge_worker *m = edge_state_worker(f->st, "middleware");
	cJSON *j;
	const cJSON *ann;

	assert_int_equal(
	    upload(f, "middleware",
	           "{\"main_module\":\"index.js\",\"bindings\":[{\"name\":"
	           "\"WORKER_VERSION_ID\",\"type\":\"plain_text\",\"text\":\"x\"}],"
	           "\"annotations\":{\"workers/tag\":\"v2\",\"workers/message\":\"m\"}}",
	           id),
	    0);
	assert_int_equal(m->n_versions, 2);
	assert_int_equal(m->versions[1].number, 2);
	j = edge_state_version_json(&m->versions[1]);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, id);
	ann = cJSON_GetObjectItem(j, "annotations");
	assert_string_equal(cJSON_GetObjectItem(ann, "workers/tag")->valuestring, "v2");
	assert_string_equal(cJSON_GetObjectItem(ann, "workers/triggered_by")->valuestring,
	                    "upload");
	/* What wrangler needs or it crashes. */
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "created_on"));
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "resources"), "script_runtime"));
	cJSON_Delete(j);

	assert_int_equal(upload(f, "nope", "{}", id), CANARY_ENOENT);
	assert_int_equal(upload(f, "middleware", "[]", id), CANARY_EINVAL);
	assert_int_equal(upload(f, "middleware", "{\"bindings\":{}}", id), CANARY_EINVAL);
	assert_int_equal(upload(f, "middleware", "{\"bindings\":[{\"name\":\"A\"}]}", id),
	                 CANARY_EINVAL);
	assert_non_null(strstr(f->err, "metadata.bindings[0].type"));
	assert_int_equal(upload(f, "middleware",
	                        "{\"bindings\":[{\"name\":\"A\",\"type\":\"plain_text\"}]}", id),
	                 CANARY_EINVAL);
	assert_int_equal(upload(f, "middleware",
	                        "{\"bindings\":[{\"name\":\"A\",\"type\":\"plain_text\",\"text\":"
	                        "\"1\"},{\"name\":\"A\",\"type\":\"plain_text\",\"text\":\"2\"}]}",
	                        id),
	                 CANARY_EINVAL);
	assert_non_null(strstr(f->err, "twice"));
	assert_int_equal(upload(f, "middleware", "{\"annotations\":{\"workers/tag\":1}}", id),
	                 CANARY_EINVAL);
	/* A malformed fault binding is refused at upload, naming it. */
	assert_int_equal(upload(f, "middleware",
	                        "{\"bindings\":[{\"name\":\"CANARY_EDGE_STATUS\",\"type\":"
	                        "\"plain_text\",\"text\":\"abc\"}]}",
	                        id),
	                 CANARY_EINVAL);
	assert_non_null(strstr(f->err, "CANARY_EDGE_STATUS"));
	/* Durable Object migrations do not go through a version upload. */
	snprintf(m->migration_tag, sizeof(m->migration_tag), "v1");
	assert_int_equal(upload(f, "middleware",
	                        "{\"migrations\":{\"old_tag\":\"v1\",\"new_tag\":\"v2\","
	                        "\"steps\":[{\"new_classes\":[\"C\"]}]}}",
	                        id),
	                 CANARY_EINVAL);
	assert_non_null(strstr(f->err, "migration tag \"v1\""));
	assert_int_equal(upload(f, "middleware", "{\"migrations\":{\"new_tag\":\"v2\"}}", id),
	                 CANARY_EINVAL);
	assert_int_equal(upload(f, "middleware", "{\"migrations\":[]}", id), CANARY_EINVAL);
	assert_int_equal(m->n_versions, 2); /* nothing half-added */
	/* Nothing to migrate: the tags agree. */
	assert_int_equal(upload(f, "middleware", "{\"migrations\":{\"new_tag\":\"v1\"}}", id), 0);
}

static void
test_deploy_rules(void **state)
{
	struct fx *f = *state;
	struct edge_worker *m = edge_state_worker(f->st, "middleware");
	char a[EDGE_UUID_LEN], b[EDGE_UUID_LEN], body[512];
	const char *old = m->versions[0].id;

	strcpy(a, old);
	assert_int_equal(upload(f, "middleware", "{}", b), 0);
	old = NULL;

	snprintf(body, sizeof(body),
	         "{\"strategy\":\"percentage\",\"versions\":[{\"version_id\":\"%s\",\"percentage\":"
	         "90},{\"version_id\":\"%s\",\"percentage\":10}],\"annotations\":{\"workers/"
	         "message\":\"canary\"}}",
	         a, b);
	assert_int_equal(deploy(f, "middleware", body), 0);
	assert_int_equal(edge_state_current(m)->n, 2);
	assert_int_equal(edge_state_current(m)->v[1].percentage, 10);
	assert_int_equal(m->n_deps, 2);

	/* Each rejection, and none of them adds a deployment. */
	snprintf(body, sizeof(body), "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":90}]}",
	         a);
	assert_int_equal(deploy(f, "middleware", body), CANARY_EINVAL);
	assert_non_null(strstr(f->err, "total 100"));
	snprintf(body, sizeof(body),
	         "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":50},{\"version_id\":\"%s\","
	         "\"percentage\":50}]}",
	         a, a);
	assert_int_equal(deploy(f, "middleware", body), CANARY_EINVAL);
	assert_non_null(strstr(f->err, "twice"));
	snprintf(body, sizeof(body),
	         "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":50},{\"version_id\":\"%s\","
	         "\"percentage\":25},{\"version_id\":\"%s\",\"percentage\":25}]}",
	         a, b, a);
	assert_int_equal(deploy(f, "middleware", body), CANARY_EINVAL);
	assert_non_null(strstr(f->err, "one or two"));
	assert_int_equal(deploy(f, "middleware", "{\"versions\":[]}"), CANARY_EINVAL);
	snprintf(body, sizeof(body),
	         "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":100.5}]}", a);
	assert_int_equal(deploy(f, "middleware", body), CANARY_EINVAL);
	snprintf(body, sizeof(body),
	         "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":\"100\"}]}", a);
	assert_int_equal(deploy(f, "middleware", body), CANARY_EINVAL);
	snprintf(body, sizeof(body),
	         "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":110},{\"version_id\":\"%s\","
	         "\"percentage\":-10}]}",
	         a, b);
	assert_int_equal(deploy(f, "middleware", body), CANARY_EINVAL);
	assert_int_equal(deploy(f, "middleware",
	                        "{\"versions\":[{\"version_id\":\"00000000-0000-0000-0000-"
	                        "000000000000\",\"percentage\":100}]}"),
	                 CANARY_ENOENT);
	assert_non_null(strstr(f->err, "workers.api.error.version_not_found"));
	/* A server version is not a middleware version. */
	snprintf(body, sizeof(body), "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":100}]}",
	         edge_state_worker(f->st, "main-server")->versions[0].id);
	assert_int_equal(deploy(f, "middleware", body), CANARY_ENOENT);
	assert_int_equal(deploy(f, "nope", body), CANARY_ENOENT);
	assert_int_equal(deploy(f, "middleware", "{\"strategy\":\"immediate\",\"versions\":[]}"),
	                 CANARY_EINVAL);
	assert_int_equal(deploy(f, "middleware", "[1]"), CANARY_EINVAL);
	assert_int_equal(m->n_deps, 2);
}

static void
test_only_newest_100_deployable(void **state)
{
	struct fx *f = *state;
	struct edge_worker *s = edge_state_worker(f->st, "main-server");
	char first[EDGE_UUID_LEN], id[EDGE_UUID_LEN], body[256];

	strcpy(first, s->versions[0].id);
	for (int i = 0; i < EDGE_DEPLOYABLE - 1; i++) {
		assert_int_equal(upload(f, "main-server", "{}", id), 0);
	}
	snprintf(body, sizeof(body), "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":100}]}",
	         first);
	assert_int_equal(deploy(f, "main-server", body), 0); /* the 100th newest */
	assert_int_equal(upload(f, "main-server", "{}", id), 0);
	assert_int_equal(deploy(f, "main-server", body), CANARY_EINVAL);
	assert_non_null(strstr(f->err, "newest"));
}

static void
test_state_file_round_trip(void **state)
{
	struct fx *f = *state;
	char path[] = "/tmp/test_edge_state_XXXXXX";
	char file[64], id[EDGE_UUID_LEN], body[256];
	struct edge_state *back = NULL;
	char *t1, *t2;
	cJSON *j1, *j2;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	snprintf(file, sizeof(file), "%s.json", path);
	assert_int_equal(
	    upload(f, "main-server",
	           "{\"bindings\":[{\"name\":\"NEXT_BUILD_ID\",\"type\":\"plain_text\","
	           "\"text\":\"b2\"}],\"annotations\":{\"workers/tag\":\"t\"}}",
	           id),
	    0);
	snprintf(body, sizeof(body), "{\"versions\":[{\"version_id\":\"%s\",\"percentage\":100}]}",
	         id);
	assert_int_equal(deploy(f, "main-server", body), 0);
	snprintf(edge_state_worker(f->st, "middleware")->migration_tag, EDGE_TAG_MAX, "v3");

	assert_int_equal(edge_state_load(file, &back, f->err, sizeof(f->err)), CANARY_ENOENT);
	assert_int_equal(edge_state_save(f->st, file, f->err, sizeof(f->err)), 0);
	assert_int_equal(access(file, F_OK), 0);
	assert_int_equal(edge_state_load(file, &back, f->err, sizeof(f->err)), 0);
	j1 = edge_state_to_json(f->st);
	j2 = edge_state_to_json(back);
	t1 = cJSON_PrintUnformatted(j1);
	t2 = cJSON_PrintUnformatted(j2);
	assert_string_equal(t1, t2);
	assert_string_equal(
	    edge_state_current(edge_state_worker(back, "main-server"))->v[0].version_id, id);
	assert_string_equal(edge_state_worker(back, "middleware")->migration_tag, "v3");
	free(t1);
	free(t2);
	cJSON_Delete(j1);
	cJSON_Delete(j2);
	edge_state_free(back);

	/* A damaged file is refused with the field that is wrong. */
	{
		FILE *fp = fopen(file, "w");

		assert_non_null(fp);
		fputs("{\"format\":1,\"workers\":[{\"name\":\"x\",\"migration_tag\":\"\","
		      "\"created_ms\":1,\"versions\":[{\"id\":\"nope\"}],\"deployments\":[]}]}",
		      fp);
		fclose(fp);
	}
	assert_int_equal(edge_state_load(file, &back, f->err, sizeof(f->err)), CANARY_EPARSE);
	assert_non_null(strstr(f->err, "workers[0].versions[0]"));
	assert_null(back);
	{
		FILE *fp = fopen(file, "w");

		assert_non_null(fp);
		fputs("{\"format\":1,\"workers\":[", fp);
		fclose(fp);
	}
	assert_int_equal(edge_state_load(file, &back, f->err, sizeof(f->err)), CANARY_EPARSE);
	unlink(file);

	/* A save that cannot be renamed into place (a directory is there) fails
	 * with the paths, and leaves no temporary file behind. */
	{
		char tmp[80], inner[80];

		snprintf(inner, sizeof(inner), "%s/x", file);
		snprintf(tmp, sizeof(tmp), "%s.tmp", file);
		assert_int_equal(mkdir(file, 0700), 0);
		assert_int_equal(mkdir(inner, 0700), 0);
		assert_int_equal(edge_state_save(f->st, file, f->err, sizeof(f->err)), CANARY_EIO);
		assert_non_null(strstr(f->err, "rename"));
		assert_int_equal(access(tmp, F_OK), -1);
		rmdir(inner);
		rmdir(file);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_seed_pins_middleware_to_server, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upload_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deploy_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_only_newest_100_deployable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_file_round_trip, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
