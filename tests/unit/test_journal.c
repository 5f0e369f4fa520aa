/* test_journal.c: the journal file (round trip, one durable line per record,
 * torn last line, corruption in the middle), the state-dir lock against
 * another process, and replay after each record type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal.h"

#define ID_S0 "4d990020-21c4-410e-8683-9f1c98e4a3ab"
#define ID_S1 "92c25d1a-816b-46a7-8cdc-46a34ad69aad"

/* The test links with --wrap=fsync,--wrap=write: every fsync and write()
 * of the journal module comes here first, so the test can count them and
 * make them fail. */
int __real_fsync(int fd);
ssize_t __real_write(int fd, const void *buf, size_t n);

static int fsyncs;      /* fsync calls seen */
static int fail_fsync;  /* 1: the next fsync fails with EIO */
static int short_write; /* 1: the next write() writes half and returns that */
static int writes_seen;

int
__wrap_fsync(int fd)
{
	fsyncs++;
	if (fail_fsync) {
		fail_fsync = 0;
		errno = EIO;
		return -1;
	}
	return __real_fsync(fd);
}

ssize_t
__wrap_write(int fd, const void *buf, size_t n)
{
	writes_seen++;
	if (short_write && n > 1) {
		short_write = 0;
		return __real_write(fd, buf, n / 2);
	}
	return __real_write(fd, buf, n);
}

struct tmp {
	char root[64];
	char dir[128]; /* root/state/nested: made by journal_open */
	char file[192];
};

static void
tmp_make(struct tmp *t)
{
	snprintf(t->root, sizeof(t->root), "/tmp/canary-journal-XXXXXX");
	assert_non_null(mkdtemp(t->root));
	snprintf(t->dir, sizeof(t->dir), "%s/state/nested", t->root);
	snprintf(t->file, sizeof(t->file), "%s/%s", t->dir, JOURNAL_FILE);
}

static void
tmp_remove(struct tmp *t)
{
	char p[256];

	unlink(t->file);
	snprintf(p, sizeof(p), "%s/%s", t->dir, JOURNAL_LOCK_FILE);
	unlink(p);
	rmdir(t->dir);
	snprintf(p, sizeof(p), "%s/state", t->root);
	rmdir(p);
	rmdir(t->root);
}

static char *
slurp(const char *path, size_t *len)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (len != NULL) {
		*len = n;
	}
	return buf;
}

static void
put(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
count_char(const char *s, char c)
{
	int n = 0;

	for (; *s != '\0'; s++) {
		n += *s == c;
	}
	return n;
}

static cJSON *
obj(const char *json)
{
	cJSON *o = cJSON_Parse(json);

	assert_non_null(o);
	return o;
}

static void
append(struct journal *j, const char *type, const char *json)
{
	char err[CANARY_ERRLEN];
	cJSON *f = json != NULL ? obj(json) : NULL;
	int rv = journal_append(j, type, f, err, sizeof(err));

	if (rv != 0) {
		fail_msg("append %s: %s", type, err);
	}
	cJSON_Delete(f);
}

static void
test_round_trip_one_line_each(void **state)
{
	struct tmp t;
	struct journal *j;
	struct journal_log log;
	char err[CANARY_ERRLEN];
	size_t len;
	const char *text;

	(void)state;
	tmp_make(&t);
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	assert_int_equal(journal_records(j), 0);
	append(j, "start", "{\"rollout\":\"docs-site\"}");
	/* On disk, whole, as soon as append returns: one line per record. */
	text = slurp(t.file, &len);
	assert_int_equal(count_char(text, '\n'), 1);
	assert_int_equal(text[len - 1], '\n');
	append(j, "intent",
	       "{\"id\":1,\"op\":\"upload\",\"worker\":\"main-server\",\"note\":\"a\\nb\"}");
	append(j, "verdict", NULL);
	text = slurp(t.file, &len);
	assert_int_equal(count_char(text, '\n'), 3);
	assert_int_equal(journal_records(j), 3);
	journal_close(j);

	assert_int_equal(journal_read(t.dir, &log, err, sizeof(err)), 0);
	assert_int_equal(log.n, 3);
	assert_int_equal(log.torn, 0);
	assert_string_equal(cJSON_GetObjectItem(log.recs[0], "type")->valuestring, "start");
	assert_string_equal(cJSON_GetObjectItem(log.recs[0], "rollout")->valuestring, "docs-site");
	assert_int_equal(cJSON_GetObjectItem(log.recs[1], "seq")->valueint, 2);
	/* a newline inside a value stays inside the one line */
	assert_string_equal(cJSON_GetObjectItem(log.recs[1], "note")->valuestring, "a\nb");
	assert_true(cJSON_IsString(cJSON_GetObjectItem(log.recs[2], "ts")));
	assert_int_equal(strlen(cJSON_GetObjectItem(log.recs[2], "ts")->valuestring),
	                 strlen("2026-11-27T21:05:03.120Z"));
	journal_log_free(&log);

	/* Reopened, the sequence carries on. */
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	assert_int_equal(journal_records(j), 3);
	append(j, "end", "{\"outcome\":\"promoted\",\"exit_code\":0}");
	journal_close(j);
	assert_int_equal(journal_read(t.dir, &log, err, sizeof(err)), 0);
	assert_int_equal(log.n, 4);
	assert_int_equal(cJSON_GetObjectItem(log.recs[3], "seq")->valueint, 4);
	journal_log_free(&log);
	tmp_remove(&t);
}

static void
test_append_refuses_bad_records(void **state)
{
	struct tmp t;
	struct journal *j;
	char err[CANARY_ERRLEN];
	cJSON *f;
	char *big;

	(void)state;
	tmp_make(&t);
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	assert_int_equal(journal_append(j, "Bad Type", NULL, err, sizeof(err)), CANARY_EINVAL);
	f = obj("{\"type\":\"x\"}");
	assert_int_equal(journal_append(j, "step", f, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "\"type\""));
	cJSON_Delete(f);
	f = obj("[1,2]");
	assert_int_equal(journal_append(j, "step", f, err, sizeof(err)), CANARY_EINVAL);
	cJSON_Delete(f);
	big = malloc(JOURNAL_MAX_LINE + 1);
	assert_non_null(big);
	memset(big, 'x', JOURNAL_MAX_LINE);
	big[JOURNAL_MAX_LINE] = '\0';
	f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "blob", big);
	assert_int_equal(journal_append(j, "step", f, err, sizeof(err)), CANARY_ETOOBIG);
	cJSON_Delete(f);
	free(big);
	/* Nothing was written by any of them. */
	assert_int_equal(journal_records(j), 0);
	assert_string_equal(slurp(t.file, NULL), "");
	journal_close(j);
	journal_close(NULL);
	journal_log_free(NULL);
	tmp_remove(&t);
}

static void
test_each_append_one_write_and_fsync(void **state)
{
	struct tmp t;
	struct journal *j;
	char err[CANARY_ERRLEN];
	int f0, w0;

	(void)state;
	tmp_make(&t);
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	f0 = fsyncs;
	w0 = writes_seen;
	append(j, "start", "{\"rollout\":\"r\"}");
	assert_int_equal(writes_seen - w0, 1);
	assert_int_equal(fsyncs - f0, 1);
	append(j, "step", "{\"step\":\"server-0\"}");
	assert_int_equal(writes_seen - w0, 2);
	assert_int_equal(fsyncs - f0, 2);
	journal_close(j);
	tmp_remove(&t);
}

static void
test_failed_fsync_stops_the_journal(void **state)
{
	struct tmp t;
	struct journal *j;
	char err[CANARY_ERRLEN];

	(void)state;
	tmp_make(&t);
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	append(j, "start", "{\"rollout\":\"r\"}");
	fail_fsync = 1;
	assert_int_equal(journal_append(j, "step", NULL, err, sizeof(err)), CANARY_EIO);
	assert_non_null(strstr(err, "fsync"));
	/* Whether that record is durable is unknown: nothing may follow it. */
	assert_int_equal(journal_append(j, "step", NULL, err, sizeof(err)), CANARY_ESTATE);
	journal_close(j);
	tmp_remove(&t);
}

static void
test_short_write_taken_back(void **state)
{
	struct tmp t;
	struct journal *j;
	struct journal_log log;
	char err[CANARY_ERRLEN];

	(void)state;
	tmp_make(&t);
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	append(j, "start", "{\"rollout\":\"r\"}");
	short_write = 1;
	assert_int_equal(journal_append(j, "step", NULL, err, sizeof(err)), CANARY_EIO);
	assert_int_equal(journal_append(j, "step", NULL, err, sizeof(err)), CANARY_ESTATE);
	journal_close(j);
	/* The half record was cut off again: the file is whole lines. */
	assert_int_equal(journal_read(t.dir, &log, err, sizeof(err)), 0);
	assert_int_equal(log.n, 1);
	assert_int_equal(log.torn, 0);
	journal_log_free(&log);
	tmp_remove(&t);
}

static void
test_torn_last_line(void **state)
{
	struct tmp t;
	struct journal *j;
	struct journal_log log;
	char err[CANARY_ERRLEN], torn[4096];

	(void)state;
	tmp_make(&t);
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	append(j, "start", "{\"rollout\":\"r\"}");
	append(j, "intent", "{\"id\":1,\"op\":\"upload\",\"worker\":\"main-server\"}");
	journal_close(j);
	/* A crash in the middle of the third write. */
	assert_true(snprintf(torn, sizeof(torn), "%s{\"type\":\"res", slurp(t.file, NULL)) <
	            (int)sizeof(torn));
	put(t.file, torn);
	assert_int_equal(journal_read(t.dir, &log, err, sizeof(err)), 0);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.torn, 1);
	journal_log_free(&log);
	/* A torn line that happens to be complete JSON is still torn. */
	put(t.file, "{\"type\":\"start\"}\n{\"type\":\"step\",\"step\":\"x\"}");
	assert_int_equal(journal_read(t.dir, &log, err, sizeof(err)), 0);
	assert_int_equal(log.n, 1);
	assert_int_equal(log.torn, 1);
	journal_log_free(&log);
	/* Opening cuts the torn tail so the next record is a line of its own. */
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	assert_int_equal(journal_records(j), 1);
	append(j, "step", "{\"step\":\"server-0\"}");
	journal_close(j);
	assert_int_equal(journal_read(t.dir, &log, err, sizeof(err)), 0);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.torn, 0);
	assert_string_equal(cJSON_GetObjectItem(log.recs[1], "step")->valuestring, "server-0");
	journal_log_free(&log);
	tmp_remove(&t);
}

static void
test_corruption_in_the_middle(void **state)
{
	struct journal_log log;
	char err[CANARY_ERRLEN];
	const char *bad_json =
	    "{\"type\":\"start\"}\n{\"type\":\"int\n{\"type\":\"end\",\"outcome\":\"x\"}\n";
	const char *no_type = "{\"type\":\"start\"}\n{\"type\":\"step\"}\n[1]\n{\"type\":\"x\"}\n";
	const char *empty = "{\"type\":\"start\"}\n\n{\"type\":\"x\"}\n";
	const char *last_bad = "{\"type\":\"start\"}\n{garbage}\n";
	/* A lost newline glues two records: reading only the first would
	 * silently drop the result of a platform call. */
	const char *glued = "{\"type\":\"start\"}\n{\"type\":\"intent\",\"id\":1}"
	                    "{\"type\":\"result\",\"id\":1,\"ok\":true}\n";
	const char *trailing = "{\"type\":\"start\"} x\n";

	(void)state;
	assert_int_equal(journal_parse(bad_json, strlen(bad_json), "j", &log, err, sizeof(err)),
	                 CANARY_EPARSE);
	assert_non_null(strstr(err, "j:2:"));
	assert_null(log.recs);
	assert_int_equal(journal_parse(no_type, strlen(no_type), "j", &log, err, sizeof(err)),
	                 CANARY_EPARSE);
	assert_non_null(strstr(err, "j:3:"));
	assert_int_equal(journal_parse(empty, strlen(empty), "j", &log, err, sizeof(err)),
	                 CANARY_EPARSE);
	assert_non_null(strstr(err, "j:2:"));
	/* A last line that ends in a newline was written whole: garbage there
	 * is corruption, not a torn write. */
	assert_int_equal(journal_parse(last_bad, strlen(last_bad), "j", &log, err, sizeof(err)),
	                 CANARY_EPARSE);
	assert_non_null(strstr(err, "j:2:"));
	assert_int_equal(journal_parse(glued, strlen(glued), "j", &log, err, sizeof(err)),
	                 CANARY_EPARSE);
	assert_non_null(strstr(err, "j:2:"));
	assert_non_null(strstr(err, "unexpected data after the JSON value"));
	assert_null(log.recs);
	assert_int_equal(journal_parse(trailing, strlen(trailing), "j", &log, err, sizeof(err)),
	                 CANARY_EPARSE);
	assert_non_null(strstr(err, "j:1:"));
	/* An empty journal is fine. */
	assert_int_equal(journal_parse("", 0, "j", &log, err, sizeof(err)), 0);
	assert_int_equal(log.n, 0);
	journal_log_free(&log);
}

static void
test_lock_held_by_another_process(void **state)
{
	struct tmp t;
	struct journal *j;
	char err[CANARY_ERRLEN], want[64], lockpath[256];
	int ready[2], go[2], status;
	char c;
	pid_t child;

	(void)state;
	tmp_make(&t);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct journal *cj;
		char cerr[CANARY_ERRLEN];

		if (journal_open(t.dir, &cj, cerr, sizeof(cerr)) != 0) {
			_exit(2);
		}
		(void)write(ready[1], "r", 1);
		(void)read(go[0], &c, 1);
		journal_close(cj);
		_exit(0);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), CANARY_ELOCKED);
	assert_null(j);
	snprintf(want, sizeof(want), "locked by pid %d", (int)child);
	assert_non_null(strstr(err, want));
	/* The lock file names the holder. */
	snprintf(lockpath, sizeof(lockpath), "%s/%s", t.dir, JOURNAL_LOCK_FILE);
	assert_int_equal(atoi(slurp(lockpath, NULL)), (int)child);
	/* The holder goes away (here: killed, as a crash would): the lock is
	 * free again. */
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	assert_int_equal(atoi(slurp(lockpath, NULL)), (int)getpid());
	journal_close(j);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	tmp_remove(&t);
}

static void
test_lock_same_process(void **state)
{
	struct tmp t;
	struct journal *j, *j2;
	char err[CANARY_ERRLEN], want[64];
	int status;
	pid_t child;

	(void)state;
	tmp_make(&t);
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	/* fcntl would let this process lock again; the journal must not. */
	assert_int_equal(journal_open(t.dir, &j2, err, sizeof(err)), CANARY_ELOCKED);
	assert_null(j2);
	assert_non_null(strstr(err, "this process already has the journal open"));
	/* The refused open did not drop the first one's lock: another
	 * process is still kept out. */
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct journal *cj;
		char cerr[CANARY_ERRLEN];
		int rv = journal_open(t.dir, &cj, cerr, sizeof(cerr));

		snprintf(want, sizeof(want), "locked by pid %d", (int)getppid());
		_exit(rv == CANARY_ELOCKED && strstr(cerr, want) != NULL ? 0 : 1);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	journal_close(j);
	/* Closed: free to open again. */
	assert_int_equal(journal_open(t.dir, &j, err, sizeof(err)), 0);
	journal_close(j);
	tmp_remove(&t);
}

/* replay_of: parses lines (a journal text) and replays them. */
static int
replay_of(const char *text, struct journal_log *log, struct journal_state *st, char *err)
{
	int rv = journal_parse(text, strlen(text), "j", log, err, CANARY_ERRLEN);

	assert_int_equal(rv, 0);
	return journal_replay((const cJSON *const *)log->recs, log->n, st, err, CANARY_ERRLEN);
}

static void
test_replay_after_each_record(void **state)
{
	static const char *lines[] = {
	    "{\"type\":\"start\",\"rollout\":\"docs-site\"}\n",
	    "{\"type\":\"intent\",\"id\":1,\"op\":\"upload\",\"worker\":\"main-server\"}\n",
	    "{\"type\":\"result\",\"id\":1,\"ok\":true,\"version_id\":\"" ID_S1 "\"}\n",
	    "{\"type\":\"intent\",\"id\":2,\"op\":\"deploy\",\"worker\":\"main-server\","
	    "\"deployment\":{\"versions\":[{\"version_id\":\"" ID_S0 "\",\"percentage\":100},"
	    "{\"version_id\":\"" ID_S1 "\",\"percentage\":0}]}}\n",
	    "{\"type\":\"result\",\"id\":2,\"ok\":true,\"deployment\":{\"id\":\"dep-9\","
	    "\"versions\":[{\"version_id\":\"" ID_S0 "\",\"percentage\":100},"
	    "{\"version_id\":\"" ID_S1 "\",\"percentage\":0}]}}\n",
	    "{\"type\":\"step\",\"step\":\"server-0\"}\n",
	    "{\"type\":\"verdict\",\"pass\":false,\"check\":\"error_rate\"}\n",
	    "{\"type\":\"rollback\",\"reason\":\"error_rate\"}\n",
	    "{\"type\":\"intent\",\"id\":3,\"op\":\"deploy\",\"worker\":\"main-server\","
	    "\"deployment\":{\"versions\":[{\"version_id\":\"" ID_S0 "\",\"percentage\":100}]}}\n",
	    "{\"type\":\"result\",\"id\":3,\"ok\":false,\"error\":\"HTTP 500\"}\n",
	    "{\"type\":\"end\",\"outcome\":\"rolled_back\",\"exit_code\":3}\n",
	};
	char text[8192] = "";
	struct journal_log log;
	struct journal_state st;
	char err[CANARY_ERRLEN];
	const struct deployment *dep;

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		strcat(text, lines[i]);
		if (replay_of(text, &log, &st, err) != 0) {
			fail_msg("after record %zu: %s", i + 1, err);
		}
		assert_int_equal(st.n_records, (int)i + 1);
		assert_true(st.started);
		assert_string_equal(st.rollout, "docs-site");
		switch (i + 1) {
		case 1:
			assert_null(st.pending);
			assert_int_equal(st.n_uploaded, 0);
			break;
		case 2: /* upload announced, not answered: resume must look */
			assert_non_null(st.pending);
			assert_int_equal(st.pending_id, 1);
			assert_string_equal(st.pending_op, "upload");
			assert_string_equal(st.pending_worker, "main-server");
			assert_null(journal_uploaded(&st, "main-server"));
			break;
		case 3:
			assert_null(st.pending);
			assert_string_equal(journal_uploaded(&st, "main-server"), ID_S1);
			assert_null(journal_uploaded(&st, "middleware"));
			break;
		case 4:
			assert_int_equal(st.pending_id, 2);
			assert_string_equal(st.pending_op, "deploy");
			assert_null(journal_applied(&st, "main-server"));
			break;
		case 5:
			assert_null(st.pending);
			dep = journal_applied(&st, "main-server");
			assert_non_null(dep);
			assert_string_equal(dep->id, "dep-9");
			assert_int_equal(dep->n_versions, 2);
			assert_int_equal(dep->versions[1].percentage, 0);
			break;
		case 6:
			assert_string_equal(st.last_step, "server-0");
			assert_false(st.rolling_back);
			break;
		case 7:
			assert_false(st.rolling_back);
			assert_false(st.ended);
			break;
		case 8:
			assert_true(st.rolling_back);
			break;
		case 9:
			assert_int_equal(st.pending_id, 3);
			break;
		case 10: /* failed: the last applied is still the one of record 5 */
			assert_null(st.pending);
			dep = journal_applied(&st, "main-server");
			assert_int_equal(dep->n_versions, 2);
			assert_false(st.ended);
			assert_int_equal(st.exit_code, -1);
			break;
		case 11:
			assert_true(st.ended);
			assert_string_equal(st.outcome, "rolled_back");
			assert_int_equal(st.exit_code, 3);
			break;
		}
		journal_log_free(&log);
	}
	/* A new start after the end begins afresh. */
	strcat(text, "{\"type\":\"start\",\"rollout\":\"docs-site\"}\n");
	assert_int_equal(replay_of(text, &log, &st, err), 0);
	assert_false(st.ended);
	assert_int_equal(st.n_applied, 0);
	journal_log_free(&log);
}

static void
test_replay_rejects_broken_schema(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
	    {"{\"type\":\"result\",\"id\":7,\"ok\":true}\n", "record 1: id: result for unknown"},
	    {"{\"type\":\"intent\",\"op\":\"upload\"}\n", "record 1: id"},
	    {"{\"type\":\"intent\",\"id\":1.5,\"op\":\"upload\"}\n", "record 1: id"},
	    {"{\"type\":\"intent\",\"id\":1,\"op\":\"deploy\",\"worker\":\"w\",\"deployment\":"
	     "{\"versions\":[{\"version_id\":\"" ID_S0 "\",\"percentage\":90}]}}\n",
	     "record 1: deployment: percentages total 90"},
	    {"{\"type\":\"intent\",\"id\":1,\"op\":\"upload\",\"worker\":\"w\"}\n"
	     "{\"type\":\"result\",\"id\":1,\"ok\":true,\"version_id\":\"v1\"}\n",
	     "record 2: version_id"},
	    {"{\"type\":\"intent\",\"id\":1,\"op\":\"upload\"}\n"
	     "{\"type\":\"result\",\"id\":1,\"ok\":1}\n",
	     "record 2: ok"},
	    {"{\"type\":\"end\",\"outcome\":\"promoted\"}\n{\"type\":\"step\",\"step\":\"x\"}\n",
	     "record 2: \"step\" after the rollout ended"},
	    {"{\"type\":\"intent\",\"id\":1,\"op\":\"upload\"}\n"
	     "{\"type\":\"intent\",\"id\":1,\"op\":\"upload\"}\n",
	     "record 2: id: intent 1 already seen"},
	};
	struct journal_log log;
	struct journal_state st;
	char err[CANARY_ERRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(replay_of(cases[i].text, &log, &st, err), CANARY_EPARSE);
		if (strstr(err, cases[i].want) == NULL) {
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
		}
		journal_log_free(&log);
	}
}

static void
test_read_missing(void **state)
{
	struct journal_log log;
	char err[CANARY_ERRLEN];

	(void)state;
	assert_int_equal(journal_read("/tmp/canary-no-such-state-dir", &log, err, sizeof(err)),
	                 CANARY_ENOENT);
	assert_non_null(strstr(err, "/tmp/canary-no-such-state-dir/" JOURNAL_FILE));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_one_line_each),
	    cmocka_unit_test(test_append_refuses_bad_records),
	    cmocka_unit_test(test_each_append_one_write_and_fsync),
	    cmocka_unit_test(test_failed_fsync_stops_the_journal),
	    cmocka_unit_test(test_short_write_taken_back),
	    cmocka_unit_test(test_torn_last_line),
	    cmocka_unit_test(test_corruption_in_the_middle),
	    cmocka_unit_test(test_lock_held_by_another_process),
	    cmocka_unit_test(test_lock_same_process),
	    cmocka_unit_test(test_replay_after_each_record),
	    cmocka_unit_test(test_replay_rejects_broken_schema),
	    cmocka_unit_test(test_read_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
