/*
 * test_jsonc.c: the JSONC reader: the dialect (comments, trailing commas),
 * strict JSON where it matters (strings, numbers, duplicate keys, depth),
 * error positions, value positions, and reading files under a size cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "jsonc.h"

/* parse_ok: parses a NUL-terminated text that must be accepted. */
static struct canary_jsonc *
parse_ok(const char *text)
{
	struct canary_jsonc *doc = NULL;
	char err[CANARY_ERRLEN] = "";
	int rv;

	rv = canary_jsonc_parse(text, strlen(text), CANARY_JSONC_MAX_DEPTH, &doc, err, sizeof(err));
	if (rv != 0) {
		fail_msg("rejected %s: %s", text, err);
	}
	assert_non_null(doc);
	assert_non_null(canary_jsonc_root(doc));
	return doc;
}

/* parse_err_n: parses len bytes that must be rejected with code and an error
 * that starts with want (a "LINE:COLUMN: ..." prefix or the whole text). */
static void
parse_err_n(const char *text, size_t len, int code, const char *want)
{
	struct canary_jsonc *doc = (struct canary_jsonc *)&doc; /* must be reset */
	char err[CANARY_ERRLEN] = "";
	int rv;

	rv = canary_jsonc_parse(text, len, CANARY_JSONC_MAX_DEPTH, &doc, err, sizeof(err));
	if (rv != code) {
		fail_msg("input %.*s: got code %d (%s), want %d", (int)len, text, rv, err, code);
	}
	assert_null(doc);
	if (strncmp(err, want, strlen(want)) != 0) {
		fail_msg("input %.*s:\n got  \"%s\"\n want \"%s...\"", (int)len, text, err, want);
	}
}

static void
parse_err(const char *text, int code, const char *want)
{
	parse_err_n(text, strlen(text), code, want);
}

static const cJSON *
get(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (v == NULL) {
		fail_msg("no key %s", key);
	}
	return v;
}

static void
assert_where(const struct canary_jsonc *doc, const cJSON *node, int line, int column)
{
	int l = -1, c = -1;

	assert_int_equal(canary_jsonc_where(doc, node, &l, &c), 0);
	if (l != line || c != column) {
		fail_msg("value at %d:%d, want %d:%d", l, c, line, column);
	}
}

static void
test_comments_everywhere(void **state)
{
	const char *text = "// leading line comment\n"
	                   "/* leading block */ { // after brace\n"
	                   "  \"a\" /* before colon */ : /* before value */ 1 /* after value */,\n"
	                   "  // between members\n"
	                   "  \"b\": [ /* in array */ 2, // after element\n"
	                   "         3 /* before bracket */ ],\n"
	                   "  \"c\": { /* only a comment */ },\n"
	                   "  /* multi\n"
	                   "     line */ \"d\": true\n"
	                   "} // trailing\n"
	                   "/* trailing block */";
	struct canary_jsonc *doc = parse_ok(text);
	const cJSON *root = canary_jsonc_root(doc);

	(void)state;
	assert_int_equal(cJSON_GetArraySize(root), 4);
	assert_int_equal(get(root, "a")->valuedouble, 1);
	assert_int_equal(cJSON_GetArraySize(get(root, "b")), 2);
	assert_int_equal(cJSON_GetArrayItem(get(root, "b"), 1)->valuedouble, 3);
	assert_true(cJSON_IsObject(get(root, "c")));
	assert_int_equal(cJSON_GetArraySize(get(root, "c")), 0);
	assert_true(cJSON_IsTrue(get(root, "d")));
	/* Lines are counted through both kinds of comment. */
	assert_where(doc, root, 2, 21);
	assert_where(doc, get(root, "d"), 9, 19);
	assert_where(doc, cJSON_GetArrayItem(get(root, "b"), 1), 6, 10);
	canary_jsonc_free(doc);

	/* A line comment may end the input without a newline. */
	doc = parse_ok("[1] // no newline");
	canary_jsonc_free(doc);
	/* A lone slash is not a comment. */
	parse_err("[1, / 2]", CANARY_EPARSE, "1:5: expected '//' or '/*'");
	parse_err("{\"a\": 1} /", CANARY_EPARSE, "1:10: expected '//' or '/*'");
}

static void
test_trailing_commas(void **state)
{
	struct canary_jsonc *doc;
	const cJSON *root;

	(void)state;
	doc = parse_ok("{\"a\": [1, 2, ], \"b\": {\"c\": 1, }, }");
	root = canary_jsonc_root(doc);
	assert_int_equal(cJSON_GetArraySize(root), 2);
	assert_int_equal(cJSON_GetArraySize(get(root, "a")), 2);
	assert_int_equal(cJSON_GetArraySize(get(root, "b")), 1);
	canary_jsonc_free(doc);
	doc = parse_ok("[1, // comment after the trailing comma\n]");
	assert_int_equal(cJSON_GetArraySize(canary_jsonc_root(doc)), 1);
	canary_jsonc_free(doc);

	/* One trailing comma, not an empty element or member. */
	parse_err("[,]", CANARY_EPARSE, "1:2: expected a value, found ','");
	parse_err("[1,,2]", CANARY_EPARSE, "1:4: expected a value, found ','");
	parse_err("[1,,]", CANARY_EPARSE, "1:4: expected a value, found ','");
	parse_err("{,}", CANARY_EPARSE, "1:2: expected a string key or '}', found ','");
	parse_err("{\"a\":1,,}", CANARY_EPARSE, "1:8: expected a string key or '}', found ','");
}

static void
test_comment_markers_in_strings(void **state)
{
	struct canary_jsonc *doc;
	const cJSON *root;

	(void)state;
	doc = parse_ok("{\"url\": \"https://example.com/a\", // real comment\n"
	               " \"glob\": \"/*.js\", /* real */ \"end\": \"*/\", \"x\": \"a//b/*c*/\"}");
	root = canary_jsonc_root(doc);
	assert_string_equal(get(root, "url")->valuestring, "https://example.com/a");
	assert_string_equal(get(root, "glob")->valuestring, "/*.js");
	assert_string_equal(get(root, "end")->valuestring, "*/");
	assert_string_equal(get(root, "x")->valuestring, "a//b/*c*/");
	canary_jsonc_free(doc);
}

static void
test_escaped_backslash_before_comment(void **state)
{
	struct canary_jsonc *doc;
	const cJSON *root;

	(void)state;
	/* The string is C:\ ; what follows is a real comment. */
	doc = parse_ok("{\"path\": \"C:\\\\\" // x\n, \"next\": \"y\" /* \"z\" */}");
	root = canary_jsonc_root(doc);
	assert_string_equal(get(root, "path")->valuestring, "C:\\");
	assert_string_equal(get(root, "next")->valuestring, "y");
	assert_int_equal(cJSON_GetArraySize(root), 2);
	canary_jsonc_free(doc);

	/* An escaped quote does not end the string; the // after it is content. */
	doc = parse_ok("[\"say \\\"hi\\\" // not a comment\", \"\\\\\\\"\"]");
	root = canary_jsonc_root(doc);
	assert_string_equal(cJSON_GetArrayItem(root, 0)->valuestring,
	                    "say \"hi\" // not a comment");
	assert_string_equal(cJSON_GetArrayItem(root, 1)->valuestring, "\\\"");
	canary_jsonc_free(doc);
}

static void
test_string_escapes(void **state)
{
	struct canary_jsonc *doc;
	const cJSON *root;

	(void)state;
	doc = parse_ok("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\", \"\\uD83D\\uDE00\","
	               " \"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\", \"\\u007f\\u0001\"]");
	root = canary_jsonc_root(doc);
	assert_string_equal(cJSON_GetArrayItem(root, 0)->valuestring, "\"\\/\b\f\n\r\t");
	assert_string_equal(cJSON_GetArrayItem(root, 1)->valuestring, "\xC3\xA9\xE2\x82\xAC");
	assert_string_equal(cJSON_GetArrayItem(root, 2)->valuestring, "\xF0\x9F\x98\x80");
	assert_string_equal(cJSON_GetArrayItem(root, 3)->valuestring,
	                    "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
	assert_string_equal(cJSON_GetArrayItem(root, 4)->valuestring, "\x7f\x01");
	canary_jsonc_free(doc);

	parse_err("[\"ab\\uD800\"]", CANARY_EPARSE, "1:5: expected a low surrogate");
	parse_err("[\"\\uD800\\u0041\"]", CANARY_EPARSE, "1:3: expected a low surrogate");
	parse_err("[\"\\uDC00\"]", CANARY_EPARSE, "1:3: expected a high surrogate");
	parse_err("[\"\\uD83D\\uD83D\"]", CANARY_EPARSE, "1:3: expected a low surrogate");
	parse_err("[\"\\u12\"]", CANARY_EPARSE, "1:3: expected four hex digits");
	parse_err("[\"\\u12G4\"]", CANARY_EPARSE, "1:3: expected four hex digits");
	parse_err("[\"\\x41\"]", CANARY_EPARSE, "1:4: expected an escape");
	parse_err("[\"\\'\"]", CANARY_EPARSE, "1:4: expected an escape");
	parse_err("[\"\\u0000\"]", CANARY_EPARSE, "1:3: expected a character other than \\u0000");
	parse_err("[\"a\tb\"]", CANARY_EPARSE, "1:4: expected a character or escape");
	parse_err("[\"a\x01\"]", CANARY_EPARSE, "1:4: expected a character or escape");
	/* Invalid UTF-8: overlong, an encoded surrogate, a truncated sequence,
	 * a stray continuation byte. */
	parse_err("[\"\xC0\x80\"]", CANARY_EPARSE, "1:3: expected UTF-8 text");
	parse_err("[\"\xED\xA0\x80\"]", CANARY_EPARSE, "1:3: expected UTF-8 text");
	parse_err("[\"x\xE2\x82\"]", CANARY_EPARSE, "1:4: expected UTF-8 text");
	parse_err("[\"\x80\"]", CANARY_EPARSE, "1:3: expected UTF-8 text");
	parse_err("[\"\xF4\x90\x80\x80\"]", CANARY_EPARSE, "1:3: expected UTF-8 text");
}

static void
test_unterminated(void **state)
{
	(void)state;
	/* Each is reported where it began, not at the end of the input. */
	parse_err("{\"a\": \"abc", CANARY_EPARSE,
	          "1:7: expected '\"' to close the string started here, found end of input");
	parse_err("{\n  \"a\": \"abc\n}", CANARY_EPARSE,
	          "2:8: expected '\"' to close the string started here, found a line break at "
	          "2:12");
	parse_err("{\"a\": \"abc\\", CANARY_EPARSE, "1:7: expected '\"' to close the string");
	parse_err("{\n  \"a\": 1 /* comment\n\n  \"b\": 2 }", CANARY_EPARSE,
	          "2:10: expected '*/' to close the comment started here, found end of input");
	parse_err("/*/", CANARY_EPARSE, "1:1: expected '*/'");
	parse_err("\n  {\"a\": 1,\n   \"b\": 2\n", CANARY_EPARSE,
	          "2:3: expected '}' to close the object opened here, found end of input at 4:1");
	parse_err("{\"a\": 1,", CANARY_EPARSE, "1:1: expected '}' to close the object");
	parse_err("{", CANARY_EPARSE, "1:1: expected '}' to close the object");
	parse_err("[1, [2, 3]", CANARY_EPARSE,
	          "1:1: expected ']' to close the array opened here, found end of input at 1:11");
	parse_err("[1,\n [2, 3", CANARY_EPARSE, "2:2: expected ']' to close the array");
	parse_err("{\"a\": ", CANARY_EPARSE, "1:7: expected a value, found end of input");
	parse_err("{\"a\"", CANARY_EPARSE, "1:5: expected ':' after key \"a\", found end of input");
}

static void
test_bad_numbers(void **state)
{
	struct canary_jsonc *doc;
	const cJSON *root;

	(void)state;
	doc = parse_ok(
	    "[0, -0, 1.5e-3, 1E+2, 2e2, 123456789012, -0.25, 1e-400, 1.7976931348623157e308]");
	root = canary_jsonc_root(doc);
	assert_true(cJSON_GetArrayItem(root, 0)->valuedouble == 0.0);
	assert_true(cJSON_GetArrayItem(root, 2)->valuedouble == 1.5e-3);
	assert_true(cJSON_GetArrayItem(root, 3)->valuedouble == 100.0);
	assert_true(cJSON_GetArrayItem(root, 4)->valuedouble == 200.0);
	assert_true(cJSON_GetArrayItem(root, 5)->valuedouble == 123456789012.0);
	assert_true(cJSON_GetArrayItem(root, 6)->valuedouble == -0.25);
	assert_true(cJSON_GetArrayItem(root, 7)->valuedouble < 1e-300);
	canary_jsonc_free(doc);

	parse_err("[01]", CANARY_EPARSE,
	          "1:2: expected a number without leading zeros, found '01'");
	parse_err("[-01]", CANARY_EPARSE, "1:2: expected a number without leading zeros");
	parse_err("[+1]", CANARY_EPARSE, "1:2: expected a value, found '+1'");
	parse_err("[.5]", CANARY_EPARSE, "1:2: expected a value, found '.5'");
	parse_err("[1.]", CANARY_EPARSE,
	          "1:4: expected a digit after the decimal point, found ']'");
	parse_err("[1.e5]", CANARY_EPARSE, "1:4: expected a digit after the decimal point");
	parse_err("[1e]", CANARY_EPARSE, "1:4: expected a digit in the exponent, found ']'");
	parse_err("[1e+]", CANARY_EPARSE, "1:5: expected a digit in the exponent");
	parse_err("[-]", CANARY_EPARSE, "1:3: expected a digit after '-', found ']'");
	parse_err("[NaN]", CANARY_EPARSE, "1:2: expected a value, found 'NaN'");
	parse_err("[Infinity]", CANARY_EPARSE, "1:2: expected a value, found 'Infinity'");
	parse_err("[-Infinity]", CANARY_EPARSE,
	          "1:3: expected a digit after '-', found 'Infinity'");
	parse_err("[0x10]", CANARY_EPARSE,
	          "1:3: expected ',' or ']' after an array element, found 'x10'");
	parse_err("[1e999]", CANARY_EPARSE,
	          "1:2: expected a number within double range, found '1e999'");
	parse_err("[-1e999]", CANARY_EPARSE, "1:2: expected a number within double range");
	parse_err("{\"n\": 1.5.3}", CANARY_EPARSE, "1:10: expected ',' or '}' after member \"n\"");
}

static void
test_literals(void **state)
{
	struct canary_jsonc *doc;
	const cJSON *root;

	(void)state;
	doc = parse_ok("[true, false, null]");
	root = canary_jsonc_root(doc);
	assert_true(cJSON_IsTrue(cJSON_GetArrayItem(root, 0)));
	assert_true(cJSON_IsFalse(cJSON_GetArrayItem(root, 1)));
	assert_true(cJSON_IsNull(cJSON_GetArrayItem(root, 2)));
	canary_jsonc_free(doc);
	parse_err("[tru]", CANARY_EPARSE, "1:2: expected a value, found 'tru'");
	parse_err("[truex]", CANARY_EPARSE, "1:2: expected a value, found 'truex'");
	parse_err("[True]", CANARY_EPARSE, "1:2: expected a value, found 'True'");
	parse_err("{a: 1}", CANARY_EPARSE, "1:2: expected a string key or '}', found 'a'");
	parse_err("{'a': 1}", CANARY_EPARSE, "1:2: expected a string key or '}', found '''");
	parse_err("{\"a\" 1}", CANARY_EPARSE, "1:6: expected ':' after key \"a\", found '1'");
	parse_err("{\"a\": 1 \"b\": 2}", CANARY_EPARSE,
	          "1:9: expected ',' or '}' after member \"a\", found '\"'");
}

static char *
nested(int levels, char open, char close)
{
	char *s = malloc((size_t)levels * 2 + 2);
	int i;

	assert_non_null(s);
	for (i = 0; i < levels; i++) {
		s[i] = open;
	}
	s[levels] = '1';
	for (i = 0; i < levels; i++) {
		s[levels + 1 + i] = close;
	}
	s[levels * 2 + 1] = '\0';
	return s;
}

static void
test_depth_limit(void **state)
{
	struct canary_jsonc *doc = NULL;
	char err[CANARY_ERRLEN];
	char *s;

	(void)state;
	s = nested(3, '[', ']');
	assert_int_equal(canary_jsonc_parse(s, strlen(s), 3, &doc, err, sizeof(err)), 0);
	canary_jsonc_free(doc);
	doc = NULL;
	assert_int_equal(canary_jsonc_parse(s, strlen(s), 2, &doc, err, sizeof(err)),
	                 CANARY_ETOODEEP);
	assert_null(doc);
	assert_string_equal(err, "1:3: expected at most 2 levels of nesting, found a deeper '['");
	free(s);

	assert_int_equal(canary_jsonc_parse("{\"a\": {\"b\": {}}}", 16, 2, &doc, err, sizeof(err)),
	                 CANARY_ETOODEEP);
	assert_string_equal(err, "1:13: expected at most 2 levels of nesting, found a deeper '{'");
	/* Depth 0 allows only a scalar root. */
	assert_int_equal(canary_jsonc_parse("7", 1, 0, &doc, err, sizeof(err)), 0);
	canary_jsonc_free(doc);
	doc = NULL;
	assert_int_equal(canary_jsonc_parse("[]", 2, 0, &doc, err, sizeof(err)), CANARY_ETOODEEP);

	s = nested(CANARY_JSONC_MAX_DEPTH, '[', ']');
	doc = parse_ok(s);
	canary_jsonc_free(doc);
	free(s);
	s = nested(CANARY_JSONC_MAX_DEPTH + 1, '[', ']');
	parse_err(s, CANARY_ETOODEEP, "1:65: expected at most 64 levels");
	free(s);
	/* Far deeper than any limit: an error, not a stack overflow. */
	s = nested(200000, '[', ']');
	parse_err(s, CANARY_ETOODEEP, "1:65: expected at most 64 levels");
	free(s);

	assert_int_equal(canary_jsonc_parse("1", 1, -1, &doc, err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(
	    canary_jsonc_parse("1", 1, CANARY_JSONC_DEPTH_CEILING + 1, &doc, err, sizeof(err)),
	    CANARY_EINVAL);
	assert_null(doc);
}

static void
test_duplicate_keys(void **state)
{
	struct canary_jsonc *doc;
	char *big;
	size_t off = 0;
	int i;

	(void)state;
	parse_err("{\n  \"a\": 1,\n  \"b\": {\"a\": 2},\n  \"a\": 3\n}", CANARY_EPARSE,
	          "4:3: expected each key once in an object, found \"a\" again (first at 2:3)");
	parse_err("[{\"x\": {\"k\": 1, \"k\": 2}}]", CANARY_EPARSE,
	          "1:17: expected each key once in an object, found \"k\" again (first at 1:9)");
	/* Escapes decode before comparing: "\u0061" is "a". */
	parse_err("{\"a\": 1, \"\\u0061\": 2}", CANARY_EPARSE, "1:10: expected each key once");
	/* The same key in sibling objects is fine; so are keys that differ by case. */
	doc = parse_ok("[{\"a\": 1}, {\"a\": 2}, {\"A\": 1, \"a\": 2}]");
	canary_jsonc_free(doc);

	/* Past the first few keys the check moves to a hash table; keys seen
	 * before the move keep their positions. */
	parse_err("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,"
	          "\"k8\":8,\"k9\":9,\"k0\":0}",
	          CANARY_EPARSE,
	          "1:72: expected each key once in an object, found \"k0\" again (first at 1:2)");
	parse_err("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,"
	          "\"k8\":8,\"k9\":9,\"k9\":0}",
	          CANARY_EPARSE,
	          "1:72: expected each key once in an object, found \"k9\" again (first at 1:65)");

	/* Many keys (the table grows), then one repeated from the start. */
	big = malloc(20000 * 16);
	assert_non_null(big);
	big[off++] = '{';
	for (i = 0; i < 20000; i++) {
		off += (size_t)sprintf(big + off, "\"k%d\":%d,", i, i);
	}
	big[off] = '}';
	big[off + 1] = '\0';
	doc = parse_ok(big);
	assert_int_equal(cJSON_GetArraySize(canary_jsonc_root(doc)), 20000);
	canary_jsonc_free(doc);
	off += (size_t)sprintf(big + off, "\"k7\":0}");
	parse_err(big, CANARY_EPARSE, "1:");
	assert_non_null(strstr(big, "\"k7\":0}"));
	{
		char err[CANARY_ERRLEN];
		struct canary_jsonc *d = NULL;

		assert_int_equal(canary_jsonc_parse(big, strlen(big), 8, &d, err, sizeof(err)),
		                 CANARY_EPARSE);
		assert_non_null(strstr(err, "found \"k7\" again (first at 1:"));
	}
	free(big);
}

static void
test_where_nested(void **state)
{
	const char *text = "{\n"
	                   "  \"probes\": {\n"
	                   "    \"interval_s\": 1,\n"
	                   "    \"targets\": [\n"
	                   "      { \"id\": \"home\", \"expect_status\": [200, 304] },\n"
	                   "      { \"id\": \"api\" }\n"
	                   "    ]\n"
	                   "  }\n"
	                   "}\n";
	struct canary_jsonc *doc = parse_ok(text);
	struct canary_jsonc *other = parse_ok("{\"probes\": 1}");
	const cJSON *root = canary_jsonc_root(doc);
	const cJSON *probes = get(root, "probes");
	const cJSON *targets = get(probes, "targets");
	const cJSON *t0 = cJSON_GetArrayItem(targets, 0);
	const cJSON *t1 = cJSON_GetArrayItem(targets, 1);
	int line = 0, col = 0;

	(void)state;
	assert_where(doc, root, 1, 1);
	assert_where(doc, probes, 2, 13);
	assert_where(doc, get(probes, "interval_s"), 3, 19);
	assert_where(doc, targets, 4, 16);
	assert_where(doc, t0, 5, 7);
	assert_where(doc, get(t0, "id"), 5, 15);
	assert_where(doc, cJSON_GetArrayItem(get(t0, "expect_status"), 1), 5, 46);
	assert_where(doc, get(t1, "id"), 6, 15);
	/* A node of another document, and no node, are not found. */
	assert_int_equal(canary_jsonc_where(doc, canary_jsonc_root(other), &line, &col),
	                 CANARY_ENOENT);
	assert_int_equal(canary_jsonc_where(doc, NULL, &line, &col), CANARY_ENOENT);
	assert_int_equal(canary_jsonc_where(NULL, root, &line, &col), CANARY_ENOENT);
	canary_jsonc_free(other);
	canary_jsonc_free(doc);
	canary_jsonc_free(NULL);
}

static void
test_many_positions(void **state)
{
	/* 100,000 values: every one keeps its own position as the table grows. */
	size_t n = 100000, i, off = 0;
	char *s = malloc(n * 8 + 4);
	struct canary_jsonc *doc;
	const cJSON *item;
	int line, col;

	(void)state;
	assert_non_null(s);
	s[off++] = '[';
	for (i = 0; i < n; i++) {
		off += (size_t)sprintf(s + off, "%zu,\n", i % 10);
	}
	s[off++] = ']';
	s[off] = '\0';
	doc = parse_ok(s);
	i = 0;
	for (item = canary_jsonc_root(doc)->child; item != NULL; item = item->next, i++) {
		assert_int_equal(canary_jsonc_where(doc, item, &line, &col), 0);
		assert_int_equal(line, (int)i + 1);
		assert_int_equal(col, i == 0 ? 2 : 1);
	}
	assert_int_equal(i, n);
	canary_jsonc_free(doc);
	free(s);
}

static void
test_empty_and_trailing(void **state)
{
	struct canary_jsonc *doc = NULL;
	char err[CANARY_ERRLEN];

	(void)state;
	parse_err("", CANARY_EPARSE, "1:1: expected a value, found end of input");
	parse_err("  \n\t", CANARY_EPARSE, "2:2: expected a value, found end of input");
	parse_err("// nothing but a comment\n", CANARY_EPARSE, "2:1: expected a value");
	assert_int_equal(canary_jsonc_parse(NULL, 0, 4, &doc, err, sizeof(err)), CANARY_EPARSE);
	assert_int_equal(canary_jsonc_parse(NULL, 3, 4, &doc, err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(canary_jsonc_parse("1", 1, 4, NULL, err, sizeof(err)), CANARY_EINVAL);

	parse_err("{} x", CANARY_EPARSE,
	          "1:4: expected end of input after the root value, found 'x'");
	parse_err("1 2", CANARY_EPARSE,
	          "1:3: expected end of input after the root value, found '2'");
	parse_err("{}}", CANARY_EPARSE,
	          "1:3: expected end of input after the root value, found '}'");
	parse_err("[1]\n// ok\n,", CANARY_EPARSE, "3:1: expected end of input");

	/* Scalars are values too. */
	doc = parse_ok(" \"s\" ");
	assert_string_equal(canary_jsonc_root(doc)->valuestring, "s");
	canary_jsonc_free(doc);
}

static void
test_nul_bytes_and_length(void **state)
{
	struct canary_jsonc *doc = NULL;
	char err[CANARY_ERRLEN];

	(void)state;
	parse_err_n("{\"a\":\0}", 7, CANARY_EPARSE, "1:6: expected a value, found a NUL byte");
	parse_err_n("[\"a\0b\"]", 7, CANARY_EPARSE, "1:4: expected a character or escape");
	parse_err_n("[1] // x\0y", 10, CANARY_EPARSE, "1:9: expected comment text, found a NUL");
	parse_err_n("[1] /* \0 */", 11, CANARY_EPARSE, "1:8: expected comment text, found a NUL");
	parse_err_n("[1]\0", 4, CANARY_EPARSE,
	            "1:4: expected end of input after the root value, "
	            "found a NUL byte");

	/* Only len bytes are read: what follows them does not count. */
	assert_int_equal(canary_jsonc_parse("[1,2]garbage", 5, 4, &doc, err, sizeof(err)), 0);
	assert_int_equal(cJSON_GetArraySize(canary_jsonc_root(doc)), 2);
	canary_jsonc_free(doc);
	doc = NULL;
	parse_err_n("[\"abc\"]", 4, CANARY_EPARSE, "1:2: expected '\"' to close the string");
	parse_err_n("[12345]", 3, CANARY_EPARSE, "1:1: expected ']' to close the array");
	parse_err_n("true", 3, CANARY_EPARSE, "1:1: expected a value, found 'tru'");
	parse_err_n("[\"\\u00e9\"]", 6, CANARY_EPARSE, "1:3: expected four hex digits");

	/* A byte order mark is skipped; CRLF line ends count as one line. */
	doc = parse_ok("\xEF\xBB\xBF{\r\n\"a\": 1\r\n}");
	assert_where(doc, get(canary_jsonc_root(doc), "a"), 2, 6);
	canary_jsonc_free(doc);
}

static void
test_error_buffer(void **state)
{
	struct canary_jsonc *doc = NULL;
	char err[8];

	(void)state;
	/* A short buffer is cut, NUL-terminated; no buffer at all is fine. */
	memset(err, 'x', sizeof(err));
	assert_int_equal(canary_jsonc_parse("[01]", 4, 4, &doc, err, sizeof(err)), CANARY_EPARSE);
	assert_string_equal(err, "1:2: ex");
	assert_int_equal(canary_jsonc_parse("[01]", 4, 4, &doc, NULL, 0), CANARY_EPARSE);
	assert_null(doc);
}

/* A middleware config like the one in the wrangler transcript, as people
 * write it: comments, trailing commas, a URL with // in a string. */
static const char wrangler_middleware[] =
    "/**\n"
    " * Middleware worker: OpenNext routing, ISR cache, static assets.\n"
    " * https://developers.cloudflare.com/workers/wrangler/configuration/\n"
    " */\n"
    "{\n"
    "  \"$schema\": \"node_modules/wrangler/config-schema.json\",\n"
    "  \"name\": \"middleware\",\n"
    "  \"main\": \".open-next/middleware/handler.mjs\", // built by opennextjs-cloudflare\n"
    "  \"compatibility_date\": \"2025-04-14\",\n"
    "  \"compatibility_flags\": [\"nodejs_compat\", /* for the Next server code */],\n"
    "  \"assets\": { \"directory\": \".open-next/assets\", \"binding\": \"ASSETS\" },\n"
    "  // The server this middleware talks to, pinned through version affinity.\n"
    "  \"services\": [\n"
    "    { \"binding\": \"DEFAULT_WORKER\", \"service\": \"main-server\" },\n"
    "  ],\n"
    "  \"durable_objects\": {\n"
    "    \"bindings\": [\n"
    "      { \"name\": \"COUNTER\", \"class_name\": \"Counter\" },\n"
    "      { \"name\": \"REMOTE_DO\", \"class_name\": \"RemoteThing\", \"script_name\": "
    "\"main-server\" },\n"
    "    ],\n"
    "  },\n"
    "  \"vars\": {\n"
    "    /* Replaced at upload with --var WORKER_VERSION_ID:<server version>. */\n"
    "    \"WORKER_VERSION_ID\": \"TO_REPLACE\",\n"
    "    \"DOCS_URL\": \"https://docs.example.com/*\", // a glob, not a comment\n"
    "  },\n"
    "  \"version_metadata\": { \"binding\": \"CF_VERSION_METADATA\" },\n"
    "  \"observability\": { \"enabled\": true, \"head_sampling_rate\": 0.1 },\n"
    "}\n";

static void
test_wrangler_config(void **state)
{
	struct canary_jsonc *doc = parse_ok(wrangler_middleware);
	const cJSON *root = canary_jsonc_root(doc);
	const cJSON *svc, *vars, *dos;

	(void)state;
	assert_string_equal(get(root, "name")->valuestring, "middleware");
	assert_string_equal(get(root, "main")->valuestring, ".open-next/middleware/handler.mjs");
	assert_int_equal(cJSON_GetArraySize(get(root, "compatibility_flags")), 1);
	svc = cJSON_GetArrayItem(get(root, "services"), 0);
	assert_int_equal(cJSON_GetArraySize(get(root, "services")), 1);
	assert_string_equal(get(svc, "binding")->valuestring, "DEFAULT_WORKER");
	assert_string_equal(get(svc, "service")->valuestring, "main-server");
	dos = get(get(root, "durable_objects"), "bindings");
	assert_int_equal(cJSON_GetArraySize(dos), 2);
	assert_string_equal(get(cJSON_GetArrayItem(dos, 1), "script_name")->valuestring,
	                    "main-server");
	vars = get(root, "vars");
	assert_int_equal(cJSON_GetArraySize(vars), 2);
	assert_string_equal(get(vars, "WORKER_VERSION_ID")->valuestring, "TO_REPLACE");
	assert_string_equal(get(vars, "DOCS_URL")->valuestring, "https://docs.example.com/*");
	assert_string_equal(get(get(root, "version_metadata"), "binding")->valuestring,
	                    "CF_VERSION_METADATA");
	assert_true(get(get(root, "observability"), "head_sampling_rate")->valuedouble == 0.1);
	/* A lint of this file can point at the var it objects to. */
	assert_where(doc, get(vars, "WORKER_VERSION_ID"), 24, 26);
	assert_where(doc, svc, 14, 5);
	canary_jsonc_free(doc);
}

static void
write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* canary_json_parse_exact: one value and whitespace, nothing else. */
static void
test_json_parse_exact(void **state)
{
	static const struct {
		const char *text;
		int rv;
		const char *msg;
	} cases[] = {
	    {"{\"a\":1}", 0, NULL},
	    {" \t\r\n[1,2] \n", 0, NULL},
	    {"7", 0, NULL},
	    {"{\"a\":1}{\"b\":2}", CANARY_EPARSE, "byte 7: unexpected data after the JSON value"},
	    {"{\"a\":1} x", CANARY_EPARSE, "byte 8: unexpected data after the JSON value"},
	    {"[1,2", CANARY_EPARSE, "not valid JSON"},
	    {"", CANARY_EPARSE, "byte 0: not valid JSON"},
	    {"   ", CANARY_EPARSE, "not valid JSON"},
	};
	char err[CANARY_ERRLEN];
	cJSON *root;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		root = (cJSON *)1;
		assert_int_equal(canary_json_parse_exact(cases[i].text, strlen(cases[i].text),
		                                         &root, err, sizeof(err)),
		                 cases[i].rv);
		if (cases[i].rv == 0) {
			assert_non_null(root);
			cJSON_Delete(root);
		} else {
			assert_null(root);
			assert_non_null(strstr(err, cases[i].msg));
		}
	}
	/* The length bounds the text: what lies beyond it is not read. */
	assert_int_equal(canary_json_parse_exact("{\"a\":1}garbage", 7, &root, err, sizeof(err)),
	                 0);
	assert_true(cJSON_IsObject(root));
	cJSON_Delete(root);
	/* No message buffer is fine. */
	assert_int_equal(canary_json_parse_exact("1 2", 3, &root, NULL, 0), CANARY_EPARSE);
}

/* canary_utf8_len, shared by the reader and the logger. */
static void
test_utf8_len(void **state)
{
	static const struct {
		const char *s;
		size_t avail, want;
	} cases[] = {
	    {"\xc3\xa9", 2, 2},         /* e-acute */
	    {"\xe2\x82\xac", 3, 3},     /* euro sign */
	    {"\xf0\x9f\x90\xa6", 4, 4}, /* U+1F426 */
	    {"a", 4, 0},                /* ASCII is no sequence */
	    {"\xc0\x80", 2, 0},         /* overlong NUL */
	    {"\xe0\x80\xaf", 3, 0},     /* overlong '/' */
	    {"\xed\xa0\x80", 3, 0},     /* a surrogate */
	    {"\xf4\x90\x80\x80", 4, 0}, /* above U+10FFFF */
	    {"\xe2\x82\xac", 2, 0},     /* cut by avail */
	    {"\xe2\x82", 4, 0},         /* cut by the NUL */
	    {"\x80", 4, 0},             /* a lone continuation byte */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(canary_utf8_len((const unsigned char *)cases[i].s, cases[i].avail),
		                 cases[i].want);
	}
}

/* canary_json_number and canary_json_brief: exact numbers, cut text. */
static void
test_json_number_and_brief(void **state)
{
	char buf[128], long_text[64];
	cJSON *v;

	(void)state;
	canary_json_number(0.1, buf, sizeof(buf));
	assert_string_equal(buf, "0.1");
	canary_json_number(4503599627370495.0, buf, sizeof(buf));
	assert_string_equal(buf, "4503599627370495");
	canary_json_number(1.0 / 3.0, buf, sizeof(buf));
	assert_true(strtod(buf, NULL) == 1.0 / 3.0);
	canary_json_number(HUGE_VAL, buf, sizeof(buf));
	assert_string_equal(buf, "null");

	v = cJSON_CreateNumber(1e300);
	canary_json_brief(v, 10, buf, sizeof(buf));
	assert_string_equal(buf, "1e+300");
	cJSON_Delete(v);
	v = cJSON_CreateNumber(-HUGE_VAL);
	canary_json_brief(v, 10, buf, sizeof(buf));
	assert_string_equal(buf, "-inf");
	cJSON_Delete(v);
	v = cJSON_CreateString("short");
	canary_json_brief(v, 10, buf, sizeof(buf));
	assert_string_equal(buf, "\"short\"");
	cJSON_Delete(v);
	/* "\"aaaaaaaa" is 9 bytes, then a 2-byte e-acute: a cut at 10 would
	 * split it, so the cut moves back before it. */
	snprintf(long_text, sizeof(long_text), "aaaaaaaa\xc3\xa9zzzz");
	v = cJSON_CreateString(long_text);
	canary_json_brief(v, 10, buf, sizeof(buf));
	assert_string_equal(buf, "\"aaaaaaaa...");
	cJSON_Delete(v);
}

static void
test_read_file(void **state)
{
	char dir[] = "/tmp/canary-jsonc-XXXXXX";
	char path[256], want[512], err[CANARY_ERRLEN];
	struct canary_jsonc *doc = NULL;
	size_t n = strlen(wrangler_middleware);

	(void)state;
	assert_non_null(mkdtemp(dir));

	/* Missing file: ENOENT, naming the file. */
	snprintf(path, sizeof(path), "%s/missing.jsonc", dir);
	assert_int_equal(canary_jsonc_read_file(path, 4096, &doc, err, sizeof(err)), CANARY_ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	assert_null(doc);

	/* Exactly at the cap: read; one byte under the file's size: too big. */
	snprintf(path, sizeof(path), "%s/wrangler.jsonc", dir);
	write_file(path, wrangler_middleware, n);
	assert_int_equal(canary_jsonc_read_file(path, n, &doc, err, sizeof(err)), 0);
	assert_string_equal(get(canary_jsonc_root(doc), "name")->valuestring, "middleware");
	canary_jsonc_free(doc);
	doc = NULL;
	assert_int_equal(canary_jsonc_read_file(path, n - 1, &doc, err, sizeof(err)),
	                 CANARY_ETOOBIG);
	snprintf(want, sizeof(want), "%s: larger than the %zu-byte cap", path, n - 1);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);
	assert_null(doc);

	/* A file bigger than one read chunk, over its cap. */
	{
		size_t big = 200000;
		char *data = malloc(big);

		assert_non_null(data);
		memset(data, ' ', big);
		data[0] = '[';
		data[big - 1] = ']';
		write_file(path, data, big);
		free(data);
		assert_int_equal(canary_jsonc_read_file(path, big, &doc, err, sizeof(err)), 0);
		canary_jsonc_free(doc);
		doc = NULL;
		assert_int_equal(canary_jsonc_read_file(path, 100000, &doc, err, sizeof(err)),
		                 CANARY_ETOOBIG);
	}

	/* A syntax error carries the path and the position. */
	write_file(path, "{\n  \"a\": 01\n}\n", 14);
	assert_int_equal(canary_jsonc_read_file(path, 4096, &doc, err, sizeof(err)), CANARY_EPARSE);
	snprintf(want, sizeof(want), "%s:2:8: expected a number without leading zeros, found '01'",
	         path);
	assert_string_equal(err, want);
	assert_null(doc);

	/* An empty file is an error too; a directory cannot be read. */
	write_file(path, "", 0);
	assert_int_equal(canary_jsonc_read_file(path, 4096, &doc, err, sizeof(err)), CANARY_EPARSE);
	snprintf(want, sizeof(want), "%s:1:1: expected a value, found end of input", path);
	assert_string_equal(err, want);
	assert_int_equal(canary_jsonc_read_file(dir, 4096, &doc, err, sizeof(err)), CANARY_EIO);
	assert_non_null(strstr(err, dir));

	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_comments_everywhere),
	    cmocka_unit_test(test_trailing_commas),
	    cmocka_unit_test(test_comment_markers_in_strings),
	    cmocka_unit_test(test_escaped_backslash_before_comment),
	    cmocka_unit_test(test_string_escapes),
	    cmocka_unit_test(test_unterminated),
	    cmocka_unit_test(test_bad_numbers),
	    cmocka_unit_test(test_literals),
	    cmocka_unit_test(test_depth_limit),
	    cmocka_unit_test(test_duplicate_keys),
	    cmocka_unit_test(test_where_nested),
	    cmocka_unit_test(test_many_positions),
	    cmocka_unit_test(test_empty_and_trailing),
	    cmocka_unit_test(test_nul_bytes_and_length),
	    cmocka_unit_test(test_error_buffer),
	    cmocka_unit_test(test_wrangler_config),
	    cmocka_unit_test(test_json_parse_exact),
	    cmocka_unit_test(test_json_number_and_brief),
	    cmocka_unit_test(test_utf8_len),
	    cmocka_unit_test(test_read_file),
	};

	return cmocka_run_group_tests_name("jsonc", tests, NULL, NULL);
}
