/*
 * test_agent_cli.c: canary-agent's command line, parsed and validated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "cli.h"
#include "err.h"

#define M0 "00000000-0000-4000-8000-0000000000a0"

static struct agent_cli cli;
static char err[CANARY_ERRLEN];

static int
parse(const char *const *args)
{
	char *argv[64];
	int argc = 0;
	argv[argc++] = "canary-agent";
	for (; args[argc - 1] != NULL; argc++) {
		argv[argc] = (char *)args[argc - 1];
	}
	argv[argc] = NULL;
	err[0] = '\0';
	return agent_cli_parse(argc, argv, &cli, err, sizeof(err));
}

static void
test_run_full(void **state)
{
	(void)state;
	const char *a[] = {"run",
	                   "--region",
	                   "enam",
	                   "--id=agent-1",
	                   "--dial",
	                   "tls+tcp://ctl.example.com:7400",
	                   "--listen",
	                   "tls+tcp://0.0.0.0:7401",
	                   "--cert",
	                   "a.pem",
	                   "--key",
	                   "a.key",
	                   "--ca",
	                   "ca.pem",
	                   "--allow-host",
	                   "docs.example.com",
	                   "--allow-host",
	                   "*.example.net",
	                   "--connect-to",
	                   "docs.example.com:443:10.0.0.1:8443",
	                   "--concurrency",
	                   "64",
	                   "--max-requests",
	                   "1000",
	                   "--log-format",
	                   "json",
	                   NULL};
	assert_int_equal(parse(a), 0);
	assert_int_equal(cli.mode, AGENT_CLI_RUN);
	assert_string_equal(cli.run.region, "enam");
	assert_string_equal(cli.run.id, "agent-1");
	assert_int_equal(cli.run.n_dial, 1);
	assert_int_equal(cli.run.n_listen, 1);
	assert_string_equal(cli.run.tls.ca, "ca.pem");
	assert_int_equal(cli.run.allow.n, 2);
	assert_int_equal(cli.n_connect_to, 1);
	assert_int_equal(cli.run.concurrency, 64);
	assert_int_equal(cli.run.max_requests, 1000);
	assert_int_equal(cli.run.log_format, CANARY_LOG_JSON);
	assert_int_equal(cli.run.insecure, 0);
}

static void
test_run_defaults_and_insecure(void **state)
{
	(void)state;
	const char *a[] = {"run",
	                   "--region",
	                   "enam",
	                   "--id",
	                   "a",
	                   "--insecure",
	                   "--dial",
	                   "tcp://127.0.0.1:7400",
	                   "--allow-host",
	                   "x.example",
	                   NULL};
	assert_int_equal(parse(a), 0);
	assert_int_equal(cli.run.concurrency, AGENT_DEFAULT_CONCURRENCY);
	assert_int_equal(cli.run.max_requests, AGENT_DEFAULT_MAX_REQUESTS);
	assert_int_equal(cli.run.log_format, CANARY_LOG_TEXT);
}

static void
test_run_refusals(void **state)
{
	(void)state;
	const char *tcp[] = {
	    "run",          "--region",  "enam", "--id", "a", "--dial", "tcp://127.0.0.1:7400",
	    "--allow-host", "x.example", NULL};
	assert_int_equal(parse(tcp), CANARY_EDENIED);
	assert_non_null(strstr(err, "--dial"));
	assert_non_null(strstr(err, "--insecure"));

	const char *nocert[] = {"run",
	                        "--region",
	                        "enam",
	                        "--id",
	                        "a",
	                        "--dial",
	                        "tls+tcp://127.0.0.1:7400",
	                        "--cert",
	                        "a.pem",
	                        "--allow-host",
	                        "x.example",
	                        NULL};
	assert_int_equal(parse(nocert), CANARY_EINVAL);
	assert_non_null(strstr(err, "--key"));

	const char *unused[] = {"run",  "--region",   "enam",         "--id",
	                        "a",    "--insecure", "--dial",       "tcp://127.0.0.1:7400",
	                        "--ca", "ca.pem",     "--allow-host", "x.example",
	                        NULL};
	assert_int_equal(parse(unused), CANARY_EINVAL);
	assert_non_null(strstr(err, "no tls+tcp"));

	const char *nourl[] = {"run", "--region",     "enam",      "--id",
	                       "a",   "--allow-host", "x.example", NULL};
	assert_int_equal(parse(nourl), CANARY_EINVAL);
	assert_non_null(strstr(err, "--dial"));

	const char *badregion[] = {"run", "--region", "en am", "--id", "a", NULL};
	assert_int_equal(parse(badregion), CANARY_EINVAL);
	assert_non_null(strstr(err, "--region"));

	const char *badconc[] = {"run", "--concurrency", "0", NULL};
	assert_int_equal(parse(badconc), CANARY_EINVAL);
	assert_non_null(strstr(err, "--concurrency"));

	const char *bigreq[] = {"run", "--max-requests", "100001", NULL};
	assert_int_equal(parse(bigreq), CANARY_EINVAL);

	const char *junk[] = {"run", "--max-requests", "12abc", NULL};
	assert_int_equal(parse(junk), CANARY_EINVAL);
	assert_non_null(strstr(err, "12abc"));

	const char *neg[] = {"run", "--concurrency", "-5", NULL};
	assert_int_equal(parse(neg), CANARY_EINVAL);

	const char *novalue[] = {"run", "--region", NULL};
	assert_int_equal(parse(novalue), CANARY_EINVAL);
	assert_non_null(strstr(err, "needs a value"));

	const char *unknown[] = {"run", "--frobnicate", NULL};
	assert_int_equal(parse(unknown), CANARY_EINVAL);
	assert_non_null(strstr(err, "--frobnicate"));

	const char *follow[] = {"run", "--follow-redirects", NULL}; /* probe mode only */
	assert_int_equal(parse(follow), CANARY_EINVAL);

	const char *logfmt[] = {"run", "--log-format", "xml", NULL};
	assert_int_equal(parse(logfmt), CANARY_EINVAL);
	assert_non_null(strstr(err, "xml"));
}

static void
test_probe_parse(void **state)
{
	(void)state;
	const char *a[] = {"probe",
	                   "https://docs.example.com/",
	                   "-n",
	                   "500",
	                   "-c",
	                   "32",
	                   "--expect-status",
	                   "200",
	                   "--expect-status=304",
	                   "--isr",
	                   "--expect-middleware",
	                   M0,
	                   "--connect-to",
	                   "docs.example.com:443:127.0.0.1:8443",
	                   "--json",
	                   NULL};
	assert_int_equal(parse(a), 0);
	assert_int_equal(cli.mode, AGENT_CLI_PROBE);
	assert_string_equal(cli.probe.url, "https://docs.example.com/");
	assert_int_equal(cli.probe.n, 500);
	assert_int_equal(cli.probe.concurrency, 32);
	assert_int_equal(cli.probe.n_expect_status, 2);
	assert_int_equal(cli.probe.expect_status[1], 304);
	assert_true(cli.probe.isr);
	assert_true(cli.probe.json);
	assert_string_equal(cli.probe.expect_middleware, M0);
	assert_null(cli.probe.expect_server);

	const char *hdr[] = {"probe",
	                     "http://x.example/",
	                     "--middleware-header",
	                     "x-mw",
	                     "--server-header=x-srv",
	                     "--cache-header",
	                     "cf-cache-status",
	                     NULL};
	assert_int_equal(parse(hdr), 0);
	assert_string_equal(cli.probe.middleware_header, "x-mw");
	assert_string_equal(cli.probe.server_header, "x-srv");
	assert_string_equal(cli.probe.cache_header, "cf-cache-status");
	const char *badhdr[] = {"probe", "http://x.example/", "--cache-header", "x cache", NULL};
	assert_int_equal(parse(badhdr), CANARY_EINVAL);
	assert_non_null(strstr(err, "header name"));
	const char *badhdr2[] = {"probe", "http://x.example/", "--server-header", "x:y", NULL};
	assert_int_equal(parse(badhdr2), CANARY_EINVAL);

	const char *d[] = {"probe", "http://x.example/", "--duration", "5", NULL};
	assert_int_equal(parse(d), 0);
	assert_int_equal(cli.probe.duration_s, 5);
	assert_int_equal(cli.probe.n, AGENT_PROBE_MAX_N); /* lifted by --duration */
	const char *dn[] = {"probe", "http://x.example/", "--duration", "5", "-n", "7", NULL};
	assert_int_equal(parse(dn), 0);
	assert_int_equal(cli.probe.n, 7);
}

static void
test_probe_refusals(void **state)
{
	(void)state;
	const char *nourl[] = {"probe", "-n", "5", NULL};
	assert_int_equal(parse(nourl), CANARY_EINVAL);
	const char *ftp[] = {"probe", "ftp://x/", NULL};
	assert_int_equal(parse(ftp), CANARY_EINVAL);
	const char *two[] = {"probe", "http://a/", "http://b/", NULL};
	assert_int_equal(parse(two), CANARY_EINVAL);
	const char *status[] = {"probe", "http://a/", "--expect-status", "99", NULL};
	assert_int_equal(parse(status), CANARY_EINVAL);
	assert_non_null(strstr(err, "100..599"));
	const char *uuid[] = {"probe", "http://a/", "--expect-server", "v1", NULL};
	assert_int_equal(parse(uuid), CANARY_EINVAL);
	assert_non_null(strstr(err, "--expect-server"));
	const char *head[] = {"probe", "http://a/", "--method", "HEAD", "--body-match", "x", NULL};
	assert_int_equal(parse(head), CANARY_EINVAL);
	const char *method[] = {"probe", "http://a/", "--method", "POST", NULL};
	assert_int_equal(parse(method), CANARY_EINVAL);
	const char *cmd[] = {"serve", NULL};
	assert_int_equal(parse(cmd), CANARY_EINVAL);
	assert_non_null(strstr(err, "serve"));
}

static void
test_connect_to_forms(void **state)
{
	(void)state;
	assert_int_equal(
	    agent_cli_check_connect_to("docs.example.com:443:127.0.0.1:8443", err, sizeof(err)), 0);
	assert_int_equal(agent_cli_check_connect_to("::127.0.0.1:", err, sizeof(err)), 0);
	assert_int_equal(
	    agent_cli_check_connect_to("docs.example.com:443:[::1]:8443", err, sizeof(err)), 0);
	assert_int_equal(agent_cli_check_connect_to("[::1]:80:127.0.0.1:80", err, sizeof(err)), 0);
	assert_int_equal(agent_cli_check_connect_to("nonsense", err, sizeof(err)), CANARY_EINVAL);
	assert_int_equal(agent_cli_check_connect_to("a:443:127.0.0.1", err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_int_equal(agent_cli_check_connect_to("a:443::8443", err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_non_null(strstr(err, "ADDR"));
	assert_int_equal(agent_cli_check_connect_to("a:99999:127.0.0.1:80", err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_int_equal(agent_cli_check_connect_to("a:443:127.0.0.1:80:9", err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_int_equal(agent_cli_check_connect_to("a:x:127.0.0.1:80", err, sizeof(err)),
	                 CANARY_EINVAL);
	assert_int_equal(agent_cli_check_connect_to("a:443:[::1:80", err, sizeof(err)),
	                 CANARY_EINVAL);
}

/* Both modes keep at most AGENT_MAX_CONNECT_TO entries and check each. */
static void
test_connect_to_cap_in_both_modes(void **state)
{
	const char *run[8 + 2 * (AGENT_MAX_CONNECT_TO + 1) + 1] = {
	    "run", "--region", "enam", "--id", "a", "--insecure", "--dial", "tcp://127.0.0.1:9"};
	const char *probe[2 + 2 * (AGENT_MAX_CONNECT_TO + 1) + 1] = {"probe",
	                                                             "http://docs.example.com/"};
	int nr = 8, np = 2;
	(void)state;
	for (int i = 0; i <= AGENT_MAX_CONNECT_TO; i++) {
		run[nr++] = probe[np++] = "--connect-to";
		run[nr++] = probe[np++] = "docs.example.com:80:127.0.0.1:8080";
	}
	run[nr] = probe[np] = NULL;
	assert_int_equal(parse(run), CANARY_ETOOBIG);
	assert_non_null(strstr(err, "--connect-to"));
	assert_int_equal(parse(probe), CANARY_ETOOBIG);
	assert_non_null(strstr(err, "--connect-to"));
	const char *bad[] = {"probe", "http://a/", "--connect-to", "a:80:127.0.0.1", NULL};
	assert_int_equal(parse(bad), CANARY_EINVAL);
	const char *badrun[] = {"run",
	                        "--region",
	                        "enam",
	                        "--id",
	                        "a",
	                        "--insecure",
	                        "--dial",
	                        "tcp://127.0.0.1:9",
	                        "--allow-host",
	                        "a",
	                        "--connect-to",
	                        ":::80",
	                        NULL};
	assert_int_equal(parse(badrun), CANARY_EINVAL);
	assert_non_null(strstr(err, "ADDR"));
}

static void
test_help(void **state)
{
	(void)state;
	const char *h[] = {"--help", NULL};
	assert_int_equal(parse(h), 0);
	assert_int_equal(cli.mode, AGENT_CLI_HELP);
	const char *none[] = {NULL};
	assert_int_equal(parse(none), CANARY_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_run_full),
	    cmocka_unit_test(test_run_defaults_and_insecure),
	    cmocka_unit_test(test_run_refusals),
	    cmocka_unit_test(test_probe_parse),
	    cmocka_unit_test(test_probe_refusals),
	    cmocka_unit_test(test_connect_to_forms),
	    cmocka_unit_test(test_connect_to_cap_in_both_modes),
	    cmocka_unit_test(test_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
