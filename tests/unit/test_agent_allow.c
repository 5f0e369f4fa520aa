/*
 * test_agent_allow.c: the host allowlist.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "allow.h"
#include "err.h"

static void
test_exact_and_suffix(void **state)
{
	struct agent_allow a;
	char err[CANARY_ERRLEN];

	(void)state;
	agent_allow_init(&a);
	assert_int_equal(agent_allow_add(&a, "docs.example.com", err, sizeof(err)), 0);
	assert_int_equal(agent_allow_add(&a, "*.Example.ORG.", err, sizeof(err)), 0);
	assert_int_equal(agent_allow_add(&a, "127.0.0.1", err, sizeof(err)), 0);
	assert_int_equal(agent_allow_add(&a, "::1", err, sizeof(err)), 0);

	assert_true(agent_allow_match(&a, "docs.example.com"));
	assert_true(agent_allow_match(&a, "DOCS.example.com."));
	assert_false(agent_allow_match(&a, "www.docs.example.com")); /* exact means exact */
	assert_false(agent_allow_match(&a, "example.com"));
	assert_false(agent_allow_match(&a, "docs.example.com.evil.net"));

	assert_true(agent_allow_match(&a, "a.example.org"));
	assert_true(agent_allow_match(&a, "a.b.example.org"));
	assert_false(agent_allow_match(&a, "example.org")); /* the suffix itself is not included */
	assert_false(agent_allow_match(&a, "badexample.org"));
	assert_false(agent_allow_match(&a, "example.org.evil.net"));

	assert_true(agent_allow_match(&a, "127.0.0.1"));
	assert_false(agent_allow_match(&a, "127.0.0.2"));
	assert_true(agent_allow_match(&a, "::1"));
	assert_false(agent_allow_match(&a, ""));
	assert_false(agent_allow_match(&a, NULL));
}

static void
test_empty_list_allows_nothing(void **state)
{
	struct agent_allow a;
	(void)state;
	agent_allow_init(&a);
	assert_false(agent_allow_match(&a, "docs.example.com"));
}

static void
test_bad_patterns(void **state)
{
	struct agent_allow a;
	char err[CANARY_ERRLEN];
	char longname[AGENT_HOST_LEN + 8];

	(void)state;
	agent_allow_init(&a);
	assert_int_equal(agent_allow_add(&a, "", err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(agent_allow_add(&a, "*", err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(agent_allow_add(&a, "*.", err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(agent_allow_add(&a, "*example.com", err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "*.suffix"));
	assert_int_equal(agent_allow_add(&a, "a.*.example.com", err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(agent_allow_add(&a, "exa mple.com", err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "exa mple.com"));
	assert_int_equal(agent_allow_add(&a, "example.com/path", err, sizeof(err)), CANARY_EINVAL);
	memset(longname, 'a', sizeof(longname));
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(agent_allow_add(&a, longname, err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(a.n, 0);
	/* "*.*" would allow the world: refused as a bad character. */
	assert_int_equal(agent_allow_add(&a, "*.*", err, sizeof(err)), CANARY_EINVAL);
}

static void
test_cap(void **state)
{
	struct agent_allow a;
	char err[CANARY_ERRLEN];
	char name[32];

	(void)state;
	agent_allow_init(&a);
	for (int i = 0; i < AGENT_MAX_ALLOW_HOSTS; i++) {
		snprintf(name, sizeof(name), "h%d.example.com", i);
		assert_int_equal(agent_allow_add(&a, name, err, sizeof(err)), 0);
	}
	assert_int_equal(agent_allow_add(&a, "one-more.example.com", err, sizeof(err)),
	                 CANARY_ETOOBIG);
	assert_true(agent_allow_match(&a, "h63.example.com"));
}

/* Ports are not part of an entry, IPv6 literals match in any spelling,
 * and a name with an empty label never matches a wildcard. */
static void
test_ports_ipv6_and_empty_labels(void **state)
{
	struct agent_allow a;
	char err[256];
	(void)state;
	agent_allow_init(&a);
	assert_int_equal(agent_allow_add(&a, "docs.example.com:8443", err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_non_null(strstr(err, "port"));
	assert_int_equal(agent_allow_add(&a, "127.0.0.1:80", err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(agent_allow_add(&a, "*.example.com:443", err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(agent_allow_add(&a, "[::1]", err, sizeof(err)), 0);
	assert_int_equal(agent_allow_add(&a, "2001:DB8:0:0::7", err, sizeof(err)), 0);
	assert_int_equal(agent_allow_add(&a, "::FFFF:7f00:1", err, sizeof(err)), 0);
	assert_int_equal(agent_allow_add(&a, "*.example.com", err, sizeof(err)), 0);
	assert_int_equal(a.n, 4);
	assert_true(agent_allow_match(&a, "::1"));
	assert_true(agent_allow_match(&a, "0:0::1"));
	assert_true(agent_allow_match(&a, "[::1]"));
	assert_true(agent_allow_match(&a, "2001:db8::7"));
	assert_true(agent_allow_match(&a, "::ffff:127.0.0.1"));
	assert_false(agent_allow_match(&a, "::2"));
	assert_false(agent_allow_match(&a, "::1:80"));
	assert_true(agent_allow_match(&a, "a.example.com"));
	assert_false(agent_allow_match(&a, "a..example.com"));
	assert_false(agent_allow_match(&a, "..example.com"));
	assert_false(agent_allow_match(&a, "a.example.com:443"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ports_ipv6_and_empty_labels),
	    cmocka_unit_test(test_exact_and_suffix),
	    cmocka_unit_test(test_empty_list_allows_nothing),
	    cmocka_unit_test(test_bad_patterns),
	    cmocka_unit_test(test_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
