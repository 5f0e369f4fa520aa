/*
 * test_err.c: the error enum's words and canary_errf's formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "err.h"

static void
test_every_code_has_distinct_words(void **state)
{
	int i, j;

	(void)state;
	assert_string_equal(canary_strerror(CANARY_OK), "success");
	for (i = 0; i < CANARY_ERR_COUNT; i++) {
		const char *a = canary_strerror(i);

		assert_non_null(a);
		if (a[0] == '\0' || strcmp(a, "unknown error") == 0) {
			fail_msg("code %d has no words of its own: \"%s\"", i, a);
		}
		for (j = 0; j < i; j++) {
			if (strcmp(a, canary_strerror(j)) == 0) {
				fail_msg("codes %d and %d share \"%s\"", j, i, a);
			}
		}
	}
	/* A few spot checks that the table is not shifted by one. */
	assert_string_equal(canary_strerror(CANARY_ENOMEM), "out of memory");
	assert_string_equal(canary_strerror(CANARY_ETOOBIG), "input too large");
	assert_string_equal(canary_strerror(CANARY_EINTERNAL), "internal error");
}

static void
test_unknown_codes(void **state)
{
	const int unknown[] = {-1,   -CANARY_ENOMEM, CANARY_ERR_COUNT, CANARY_ERR_COUNT + 1,
	                       1000, INT_MAX,        INT_MIN};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_string_equal(canary_strerror(unknown[i]), "unknown error");
	}
}

static void
test_errf_formats_and_returns_code(void **state)
{
	char buf[CANARY_ERRLEN];

	(void)state;
	assert_int_equal(canary_errf(buf, sizeof(buf), CANARY_ECONFIG, "%s:%d:%d: %s", "r.jsonc",
	                             12, 18, "expected a number"),
	                 CANARY_ECONFIG);
	assert_string_equal(buf, "r.jsonc:12:18: expected a number");
	assert_int_equal(canary_errf(buf, sizeof(buf), CANARY_OK, "fine"), CANARY_OK);
	assert_string_equal(buf, "fine");
}

static void
test_errf_truncates(void **state)
{
	char buf[8];
	char big[CANARY_ERRLEN * 2];

	(void)state;
	/* Cut to n-1 bytes and NUL-terminated; nothing past n is touched. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(canary_errf(buf, 5, CANARY_EINVAL, "%s", "abcdefgh"), CANARY_EINVAL);
	assert_string_equal(buf, "abcd");
	assert_int_equal(buf[5], 'x');
	assert_int_equal(buf[7], 'x');

	/* n == 1 leaves just the terminator; n == 0 and a NULL buffer write nothing. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(canary_errf(buf, 1, CANARY_EIO, "%d", 12345), CANARY_EIO);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(buf[1], 'x');
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(canary_errf(buf, 0, CANARY_EIO, "%d", 12345), CANARY_EIO);
	assert_int_equal(buf[0], 'x');
	assert_int_equal(canary_errf(NULL, 0, CANARY_ENOENT, "%s", "x"), CANARY_ENOENT);
	assert_int_equal(canary_errf(NULL, 64, CANARY_ENOENT, "%s", "x"), CANARY_ENOENT);

	/* A message longer than CANARY_ERRLEN fills the buffer exactly. */
	{
		char msg[CANARY_ERRLEN];

		memset(big, 'y', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(canary_errf(msg, sizeof(msg), CANARY_ETOOBIG, "%s", big),
		                 CANARY_ETOOBIG);
		assert_int_equal(strlen(msg), CANARY_ERRLEN - 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_code_has_distinct_words),
	    cmocka_unit_test(test_unknown_codes),
	    cmocka_unit_test(test_errf_formats_and_returns_code),
	    cmocka_unit_test(test_errf_truncates),
	};

	return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}
