/*
 * test_log.c: log lines in both formats, captured in memory: exact text,
 * JSON that parses back to the same values, escaping, the level filter, the
 * line cap, and whole lines under concurrent writers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "jsonc.h"
#include "log.h"

/* 2026-11-27T21:05:03.120Z */
static void
fixed_clock(struct timespec *ts)
{
	ts->tv_sec = 1795813503;
	ts->tv_nsec = 120999999;
}

struct capture {
	FILE *f;
	char *buf;
	size_t len;
};

static void
capture_start(struct capture *c, enum canary_log_format format, enum canary_log_level min)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	canary_log_setup(c->f, format, min);
	canary_log_set_clock(fixed_clock);
}

/* capture_end: the text written, owned by the caller. */
static char *
capture_end(struct capture *c)
{
	canary_log_setup(NULL, CANARY_LOG_TEXT, CANARY_LOG_INFO);
	canary_log_set_clock(NULL);
	assert_int_equal(fclose(c->f), 0);
	return c->buf;
}

/* parse_json_line: the one JSON line in s (which must end in exactly one
 * newline), parsed. The strict reader must accept it too: valid UTF-8, valid
 * escapes, no key twice. */
static cJSON *
parse_json_line(const char *s)
{
	size_t n = strlen(s);
	cJSON *j;

	assert_true(n > 0);
	assert_int_equal(s[n - 1], '\n');
	assert_null(memchr(s, '\n', n - 1));
	j = cJSON_ParseWithLength(s, n);
	if (j == NULL) {
		fail_msg("not JSON: %s", s);
	}
	{
		struct canary_jsonc *doc = NULL;
		char err[CANARY_ERRLEN];

		if (canary_jsonc_parse(s, n, 2, &doc, err, sizeof(err)) != 0) {
			fail_msg("not strict JSON: %s: %s", err, s);
		}
		canary_jsonc_free(doc);
	}
	return j;
}

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsString(v)) {
		fail_msg("no string %s", k);
	}
	return v->valuestring;
}

static double
jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsNumber(v)) {
		fail_msg("no number %s", k);
	}
	return v->valuedouble;
}

static void
log_round(void)
{
	struct canary_log_line *l = canary_log_begin(CANARY_LOG_INFO, "round");

	assert_non_null(l);
	canary_log_str(l, "region", "enam");
	canary_log_u64(l, "sent", 40);
	canary_log_dbl(l, "p95_ms", 12.1);
	canary_log_i64(l, "delta", -3);
	canary_log_u64(l, "big", UINT64_MAX);
	canary_log_i64(l, "min", INT64_MIN);
	canary_log_end(l);
}

static void
test_text_line(void **state)
{
	struct capture c;
	char *out;

	(void)state;
	capture_start(&c, CANARY_LOG_TEXT, CANARY_LOG_DEBUG);
	log_round();
	canary_logf(CANARY_LOG_ERROR, "rollback", "step %s failed after %d rounds", "server-0", 3);
	canary_log_end(canary_log_begin(CANARY_LOG_DEBUG, "tick"));
	canary_log_end(canary_log_begin(CANARY_LOG_WARN, "drift"));
	out = capture_end(&c);
	assert_string_equal(out,
	                    "2026-11-27T21:05:03.120Z INFO  round region=enam sent=40 p95_ms=12.1 "
	                    "delta=-3 big=18446744073709551615 min=-9223372036854775808\n"
	                    "2026-11-27T21:05:03.120Z ERROR rollback msg=\"step server-0 failed "
	                    "after 3 rounds\"\n"
	                    "2026-11-27T21:05:03.120Z DEBUG tick\n"
	                    "2026-11-27T21:05:03.120Z WARN  drift\n");
	free(out);
}

static void
test_json_line(void **state)
{
	struct capture c;
	char *out;
	cJSON *j;

	(void)state;
	capture_start(&c, CANARY_LOG_JSON, CANARY_LOG_INFO);
	log_round();
	out = capture_end(&c);
	assert_string_equal(out,
	                    "{\"ts\":\"2026-11-27T21:05:03.120Z\",\"level\":\"info\",\"event\":"
	                    "\"round\",\"region\":\"enam\",\"sent\":40,\"p95_ms\":12.1,"
	                    "\"delta\":-3,\"big\":18446744073709551615,"
	                    "\"min\":-9223372036854775808}\n");
	j = parse_json_line(out);
	assert_string_equal(jstr(j, "ts"), "2026-11-27T21:05:03.120Z");
	assert_string_equal(jstr(j, "level"), "info");
	assert_string_equal(jstr(j, "event"), "round");
	assert_string_equal(jstr(j, "region"), "enam");
	assert_true(jnum(j, "sent") == 40);
	assert_true(jnum(j, "p95_ms") == 12.1);
	assert_true(jnum(j, "delta") == -3);
	cJSON_Delete(j);
	free(out);
}

/* Values from outside (a child's stderr, a header) with every kind of byte
 * that could break a line or its quoting. */
static const char *const nasty[] = {
    "two words",
    "say \"hi\"",
    "back\\slash",
    "line\nbreak\r\n",
    "tab\there",
    "ctl\x01\x1f\x7f",
    "k=v",
    "",
    "caf\xC3\xA9 \xF0\x9F\x98\x80",
    "bad\xFF\xC0\x80utf8",
    "\xE2\x82",
    "null",
    "{\"json\":1}",
};

static void
test_json_escaping(void **state)
{
	struct capture c;
	struct canary_log_line *l;
	char key[16];
	char *out;
	cJSON *j;
	size_t i;

	(void)state;
	capture_start(&c, CANARY_LOG_JSON, CANARY_LOG_INFO);
	l = canary_log_begin(CANARY_LOG_WARN, "ev\"ent\n");
	for (i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
		snprintf(key, sizeof(key), "v%zu", i);
		canary_log_str(l, key, nasty[i]);
	}
	canary_log_str(l, "k\"ey", "x");
	canary_log_str(l, "event", "shadow");
	canary_log_u64(l, "level", 3);
	canary_log_str(l, "nothing", NULL);
	canary_log_dbl(l, "nan", NAN);
	canary_log_dbl(l, "inf", INFINITY);
	canary_log_end(l);
	out = capture_end(&c);
	j = parse_json_line(out);
	assert_string_equal(jstr(j, "event"), "ev\"ent\n");
	assert_string_equal(jstr(j, "v0"), "two words");
	assert_string_equal(jstr(j, "v1"), "say \"hi\"");
	assert_string_equal(jstr(j, "v2"), "back\\slash");
	assert_string_equal(jstr(j, "v3"), "line\nbreak\r\n");
	assert_string_equal(jstr(j, "v4"), "tab\there");
	assert_string_equal(jstr(j, "v5"), "ctl\x01\x1f\x7f");
	assert_string_equal(jstr(j, "v7"), "");
	assert_string_equal(jstr(j, "v8"), "caf\xC3\xA9 \xF0\x9F\x98\x80");
	/* Bytes that are not UTF-8 become U+FFFD, one per byte. */
	assert_string_equal(jstr(j, "v9"), "bad\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDutf8");
	assert_string_equal(jstr(j, "v10"), "\xEF\xBF\xBD\xEF\xBF\xBD");
	assert_string_equal(jstr(j, "v11"), "null");
	assert_string_equal(jstr(j, "v12"), "{\"json\":1}");
	assert_string_equal(jstr(j, "k\"ey"), "x");
	/* Fields cannot shadow the line's own keys. */
	assert_string_equal(jstr(j, "event_"), "shadow");
	assert_true(jnum(j, "level_") == 3);
	assert_string_equal(jstr(j, "level"), "warn");
	{
		const cJSON *m;
		int events = 0;

		cJSON_ArrayForEach(m, j)
		{
			events += strcmp(m->string, "event") == 0;
		}
		assert_int_equal(events, 1);
	}
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "nothing")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "nan")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "inf")));
	/* The escapes themselves, as a strict parser wants them. */
	assert_non_null(strstr(out, "\"v5\":\"ctl\\u0001\\u001f\x7f\""));
	assert_non_null(strstr(out, "\"v3\":\"line\\nbreak\\r\\n\""));
	cJSON_Delete(j);
	free(out);
}

static void
test_text_escaping(void **state)
{
	struct capture c;
	struct canary_log_line *l;
	char *out;

	(void)state;
	capture_start(&c, CANARY_LOG_TEXT, CANARY_LOG_INFO);
	l = canary_log_begin(CANARY_LOG_INFO, "probe failed");
	canary_log_str(l, "a", nasty[0]);
	canary_log_str(l, "b", nasty[1]);
	canary_log_str(l, "c", nasty[2]);
	canary_log_str(l, "d", nasty[3]);
	canary_log_str(l, "e", nasty[5]);
	canary_log_str(l, "f", nasty[6]);
	canary_log_str(l, "g", nasty[7]);
	canary_log_str(l, "h", nasty[8]);
	canary_log_str(l, "i", nasty[9]);
	canary_log_str(l, "key with space=", "v");
	canary_log_str(l, "ts", "t");
	canary_log_str(l, "n", NULL);
	canary_log_dbl(l, "x", NAN);
	canary_log_dbl(l, "y", -INFINITY);
	canary_log_end(l);
	out = capture_end(&c);
	assert_string_equal(
	    out, "2026-11-27T21:05:03.120Z INFO  \"probe failed\" a=\"two words\" "
	         "b=\"say \\\"hi\\\"\" c=\"back\\\\slash\" d=\"line\\nbreak\\r\\n\" "
	         "e=\"ctl\\x01\\x1f\\x7f\" f=\"k=v\" g=\"\" h=\"caf\xC3\xA9 \xF0\x9F\x98\x80\" "
	         "i=\"bad\\xff\\xc0\\x80utf8\" key_with_space_=v ts_=t n=null x=nan "
	         "y=-inf\n");
	free(out);
}

static void
test_level_filter(void **state)
{
	struct capture c;
	char *out;
	int i;

	(void)state;
	capture_start(&c, CANARY_LOG_TEXT, CANARY_LOG_WARN);
	assert_null(canary_log_begin(CANARY_LOG_DEBUG, "d"));
	assert_null(canary_log_begin(CANARY_LOG_INFO, "i"));
	assert_null(canary_log_begin((enum canary_log_level)99, "bogus"));
	assert_null(canary_log_begin((enum canary_log_level) - 1, "bogus"));
	/* Every call accepts the NULL line of a filtered level. */
	canary_log_str(NULL, "k", "v");
	canary_log_u64(NULL, "k", 1);
	canary_log_i64(NULL, "k", 1);
	canary_log_dbl(NULL, "k", 1.0);
	canary_log_end(NULL);
	canary_logf(CANARY_LOG_INFO, "quiet", "%d", 1);
	canary_logf(CANARY_LOG_WARN, "loud", "%d", 2);
	canary_logf(CANARY_LOG_ERROR, "louder", "%d", 3);
	out = capture_end(&c);
	assert_string_equal(out, "2026-11-27T21:05:03.120Z WARN  loud msg=2\n"
	                         "2026-11-27T21:05:03.120Z ERROR louder msg=3\n");
	free(out);
	for (i = 0; i < 2; i++) {
		enum canary_log_format f = CANARY_LOG_JSON;
		assert_int_equal(canary_log_parse_format(i ? "text" : "json", &f), 0);
		assert_int_equal(f, i ? CANARY_LOG_TEXT : CANARY_LOG_JSON);
	}
	{
		enum canary_log_format f = CANARY_LOG_JSON;
		assert_int_equal(canary_log_parse_format("JSON", &f), CANARY_EINVAL);
		assert_int_equal(canary_log_parse_format("", &f), CANARY_EINVAL);
		assert_int_equal(canary_log_parse_format(NULL, &f), CANARY_EINVAL);
		assert_int_equal(f, CANARY_LOG_JSON);
	}
}

static void
test_doubles(void **state)
{
	struct capture c;
	struct canary_log_line *l;
	double third = 1.0 / 3.0;
	char *out;
	cJSON *j;

	(void)state;
	capture_start(&c, CANARY_LOG_JSON, CANARY_LOG_INFO);
	l = canary_log_begin(CANARY_LOG_INFO, "d");
	canary_log_dbl(l, "ratio", 0.1);
	canary_log_dbl(l, "third", third);
	canary_log_dbl(l, "tiny", 5e-324);
	canary_log_dbl(l, "huge", -1.7976931348623157e308);
	canary_log_dbl(l, "zero", 0.0);
	canary_log_end(l);
	out = capture_end(&c);
	/* Short where short is exact; every value reads back bit for bit. */
	assert_non_null(strstr(out, "\"ratio\":0.1,"));
	assert_non_null(strstr(out, "\"zero\":0}"));
	j = parse_json_line(out);
	assert_true(jnum(j, "third") == third);
	assert_true(jnum(j, "tiny") == 5e-324);
	assert_true(jnum(j, "huge") == -1.7976931348623157e308);
	cJSON_Delete(j);
	free(out);
}

static void
test_line_cap(void **state)
{
	struct capture c;
	struct canary_log_line *l;
	size_t n = 3 * CANARY_LOG_MAX_LINE;
	char *big = malloc(n + 1);
	char *out;
	const char *v;
	cJSON *j;
	int f;

	(void)state;
	assert_non_null(big);
	/* Quotes escape to two bytes each: the cut must not split an escape. */
	memset(big, '"', n);
	big[n] = '\0';
	for (f = 0; f < 2; f++) {
		capture_start(&c, f ? CANARY_LOG_TEXT : CANARY_LOG_JSON, CANARY_LOG_INFO);
		l = canary_log_begin(CANARY_LOG_INFO, "stderr");
		canary_log_str(l, "cmd", "wrangler");
		canary_log_str(l, "text", big);
		canary_log_u64(l, "after", 1); /* no room left: dropped */
		canary_log_end(l);
		canary_logf(CANARY_LOG_INFO, "next", "%s", big);
		out = capture_end(&c);
		/* Two lines, each within the cap. */
		{
			char *nl = strchr(out, '\n');
			assert_non_null(nl);
			assert_true((size_t)(nl - out + 1) <= CANARY_LOG_MAX_LINE);
			assert_true(strlen(nl + 1) <= CANARY_LOG_MAX_LINE);
			assert_non_null(strchr(nl + 1, '\n'));
			if (f == 0) {
				nl[1] = '\0';
				j = parse_json_line(out);
				v = jstr(j, "text");
				assert_true(strlen(v) > CANARY_LOG_MAX_LINE / 3);
				assert_int_equal(strspn(v, "\""), strlen(v));
				assert_true(
				    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated")));
				assert_null(cJSON_GetObjectItemCaseSensitive(j, "after"));
				assert_string_equal(jstr(j, "cmd"), "wrangler");
				cJSON_Delete(j);
			} else {
				assert_int_equal(strncmp(nl - 16, "\" truncated=true", 16), 0);
				assert_null(strstr(out, "after="));
			}
		}
		free(out);
	}
	free(big);
}

/* Near the end of a line a key may fit where its value does not: the
 * field goes whole and the line says truncated, never a dangling "k=". */
static void
test_no_dangling_key(void **state)
{
	struct capture c;
	struct canary_log_line *l;
	char *pad = malloc(CANARY_LOG_MAX_LINE);
	char *out, *k;

	(void)state;
	assert_non_null(pad);
	for (size_t n = CANARY_LOG_MAX_LINE - 160; n < CANARY_LOG_MAX_LINE - 20; n++) {
		memset(pad, 'x', n);
		pad[n] = '\0';
		capture_start(&c, CANARY_LOG_TEXT, CANARY_LOG_INFO);
		l = canary_log_begin(CANARY_LOG_INFO, "e");
		canary_log_str(l, "a", pad);
		canary_log_str(l, "k", "vvvv");
		canary_log_end(l);
		out = capture_end(&c);
		k = strstr(out, " k=");
		if (k != NULL) {
			assert_true(strncmp(k, " k=vvvv", 7) == 0 || strncmp(k, " k=\"", 4) == 0);
		} else {
			assert_non_null(strstr(out, " truncated=true\n"));
		}
		free(out);
	}
	free(pad);
}

static void
test_real_clock(void **state)
{
	struct capture c;
	struct timespec now;
	struct tm tm;
	char want[32];
	char *out;

	(void)state;
	capture_start(&c, CANARY_LOG_TEXT, CANARY_LOG_INFO);
	canary_log_set_clock(NULL);
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &now), 0);
	canary_logf(CANARY_LOG_INFO, "now", "x");
	out = capture_end(&c);
	/* UTC with milliseconds: YYYY-MM-DDTHH:MM:SS.mmmZ, today's date. */
	assert_non_null(gmtime_r(&now.tv_sec, &tm));
	strftime(want, sizeof(want), "%Y-%m-%dT", &tm);
	assert_int_equal(strncmp(out, want, strlen(want)), 0);
	assert_int_equal(out[19], '.');
	assert_true(out[20] >= '0' && out[20] <= '9' && out[22] >= '0' && out[22] <= '9');
	assert_int_equal(out[23], 'Z');
	assert_int_equal(out[24], ' ');
	free(out);
}

#define THREADS 4
#define LINES   500

static void *
writer(void *arg)
{
	int id = *(int *)arg;
	int i;

	for (i = 0; i < LINES; i++) {
		struct canary_log_line *l = canary_log_begin(CANARY_LOG_INFO, "tick");
		canary_log_i64(l, "thread", id);
		canary_log_i64(l, "i", i);
		canary_log_str(l, "pad", "a value long enough to be torn if writes were split");
		canary_log_end(l);
	}
	return NULL;
}

static void
test_threads_whole_lines(void **state)
{
	struct capture c;
	pthread_t t[THREADS];
	int ids[THREADS];
	int next[THREADS] = {0};
	char *out, *line, *save = NULL;
	int i, lines = 0;

	(void)state;
	capture_start(&c, CANARY_LOG_JSON, CANARY_LOG_INFO);
	for (i = 0; i < THREADS; i++) {
		ids[i] = i;
		assert_int_equal(pthread_create(&t[i], NULL, writer, &ids[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
	}
	out = capture_end(&c);
	/* Every line parses, and each thread's lines arrive whole and in order. */
	for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(line);
		int id;

		if (j == NULL) {
			fail_msg("torn line: %s", line);
		}
		id = (int)jnum(j, "thread");
		assert_true(id >= 0 && id < THREADS);
		assert_int_equal((int)jnum(j, "i"), next[id]);
		next[id]++;
		cJSON_Delete(j);
		lines++;
	}
	assert_int_equal(lines, THREADS * LINES);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_line),     cmocka_unit_test(test_json_line),
	    cmocka_unit_test(test_json_escaping), cmocka_unit_test(test_text_escaping),
	    cmocka_unit_test(test_level_filter),  cmocka_unit_test(test_doubles),
	    cmocka_unit_test(test_line_cap),      cmocka_unit_test(test_no_dangling_key),
	    cmocka_unit_test(test_real_clock),    cmocka_unit_test(test_threads_whole_lines),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
