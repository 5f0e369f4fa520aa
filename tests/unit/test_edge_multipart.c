/*
 * test_edge_multipart.c: the strict multipart/form-data parser of the
 * edge's upload route.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "edge_multipart.h"
#include "err.h"

#define B "----formdata-undici-068902283364"

static int
parse(const char *body, struct edge_part *parts, int max, int *n, char *err)
{
	return edge_multipart_parse(body, strlen(body), B, parts, max, n, err, CANARY_ERRLEN);
}

static void
test_boundary(void **state)
{
	char b[EDGE_MULTIPART_MAX_BOUNDARY + 1], err[CANARY_ERRLEN];

	(void)state;
	assert_int_equal(edge_multipart_boundary("multipart/form-data; boundary=" B, b, sizeof(b),
	                                         err, sizeof(err)),
	                 0);
	assert_string_equal(b, B);
	assert_int_equal(edge_multipart_boundary("Multipart/Form-Data; charset=x; boundary=\"a b\"",
	                                         b, sizeof(b), err, sizeof(err)),
	                 0);
	assert_string_equal(b, "a b");
	assert_int_equal(
	    edge_multipart_boundary("application/json", b, sizeof(b), err, sizeof(err)),
	    CANARY_EINVAL);
	assert_int_equal(edge_multipart_boundary(NULL, b, sizeof(b), err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_int_equal(
	    edge_multipart_boundary("multipart/form-data", b, sizeof(b), err, sizeof(err)),
	    CANARY_EINVAL);
	assert_int_equal(edge_multipart_boundary("multipart/form-data; boundary=", b, sizeof(b),
	                                         err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_int_equal(
	    edge_multipart_boundary("multipart/form-data; boundary=01234567890123456789012345678901"
	                            "2345678901234567890123456789012345678901",
	                            b, sizeof(b), err, sizeof(err)),
	    CANARY_EINVAL);
}

static void
test_wrangler_shaped_upload(void **state)
{
	struct edge_part parts[4];
	char err[CANARY_ERRLEN];
	int n;
	const char *body =
	    "--" B "\r\n"
	    "Content-Disposition: form-data; name=\"metadata\"\r\n\r\n"
	    "{\"main_module\":\"index.js\"}\r\n"
	    "--" B "\r\n"
	    "Content-Disposition: form-data; name=\"index.js\"; filename=\"index.js\"\r\n"
	    "Content-Type: application/javascript+module\r\n\r\n"
	    "export default {}\r\n--not-the-boundary\r\n"
	    "\r\n"
	    "--" B "--\r\n";
	const struct edge_part *p;

	(void)state;
	assert_int_equal(parse(body, parts, 4, &n, err), 0);
	assert_int_equal(n, 2);
	p = edge_multipart_find(parts, n, "metadata");
	assert_non_null(p);
	assert_int_equal(p->has_filename, 0);
	assert_int_equal(p->len, strlen("{\"main_module\":\"index.js\"}"));
	assert_memory_equal(p->data, "{\"main_module\":\"index.js\"}", p->len);
	p = edge_multipart_find(parts, n, "index.js");
	assert_non_null(p);
	assert_int_equal(p->has_filename, 1);
	assert_string_equal(p->filename, "index.js");
	assert_string_equal(p->content_type, "application/javascript+module");
	/* The body keeps CRLFs and look-alike delimiters that are not the boundary. */
	assert_int_equal(p->len, strlen("export default {}\r\n--not-the-boundary\r\n"));
	assert_null(edge_multipart_find(parts, n, "other"));
}

static void
test_malformed(void **state)
{
	struct edge_part parts[2];
	char err[CANARY_ERRLEN];
	int n;
	static const char *const bad[] = {
	    "",
	    "junk--" B "\r\n",
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\"\r\nno blank line",
	    "--" B "\r\nContent-Type: text/plain\r\n\r\nx\r\n--" B "--",
	    "--" B "\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--" B "--",
	    "--" B "\r\nContent-Disposition: form-data\r\n\r\nx\r\n--" B "--",
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--" B "--",
	    "--" B "\r\nbroken header\r\n\r\nx\r\n--" B "--",
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--" B
	    "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ny\r\n--" B "--",
	    "--" B "xx",
	    "--" B "--",
	    "--" B "\r\n\r\n\r\nx\r\n--" B "--",
	    /* Two Content-Disposition headers in one part: the filename of the
	     * first must not survive beside the name of the second. */
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f.js\"\r\n"
	    "Content-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--" B "--",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rv = parse(bad[i], parts, 2, &n, err);

		if (rv != CANARY_EPARSE) {
			fail_msg("case %zu: expected CANARY_EPARSE, got %d (%s)", i, rv, err);
		}
		assert_non_null(strstr(err, "multipart"));
		assert_int_equal(n, 0);
	}
	/* Too many parts for the caller's array. */
	assert_int_equal(
	    parse("--" B "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--" B
	          "\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n--" B
	          "\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\n3\r\n--" B "--",
	          parts, 2, &n, err),
	    CANARY_ETOOBIG);
	/* A header block over the cap. */
	{
		static char big[EDGE_MULTIPART_MAX_HEADER + 512];
		int k = snprintf(big, sizeof(big),
		                 "--" B "\r\nContent-Disposition: form-data; name=\"a\"\r\nX: ");

		memset(big + k, 'x', EDGE_MULTIPART_MAX_HEADER);
		strcpy(big + k + EDGE_MULTIPART_MAX_HEADER, "\r\n\r\n1\r\n--" B "--");
		assert_int_equal(parse(big, parts, 2, &n, err), CANARY_ETOOBIG);
	}
}

/* A part may end right after its headers: it is empty, and the next part is
 * still a part of its own (it was swallowed into the empty one's data). */
static void
test_part_without_body(void **state)
{
	struct edge_part parts[3];
	char err[CANARY_ERRLEN];
	int n;
	static const char *const forms[] = {
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--" B
	    "\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n--" B "--",
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n--" B
	    "\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n--" B "--",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		assert_int_equal(parse(forms[i], parts, 3, &n, err), 0);
		assert_int_equal(n, 2);
		assert_string_equal(parts[0].name, "a");
		assert_int_equal(parts[0].len, 0);
		assert_string_equal(parts[1].name, "b");
		assert_int_equal(parts[1].len, 1);
		assert_memory_equal(parts[1].data, "2", 1);
	}
	/* The last part empty, then the close delimiter. */
	assert_int_equal(parse("--" B "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--" B
	                       "--",
	                       parts, 3, &n, err),
	                 0);
	assert_int_equal(n, 1);
	assert_int_equal(parts[0].len, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boundary),
	    cmocka_unit_test(test_wrangler_shaped_upload),
	    cmocka_unit_test(test_part_without_body),
	    cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
