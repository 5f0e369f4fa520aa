/*
 * cli.h: parsing and validation of canary-agent's command line, as pure
 * functions (no I/O beyond what the caller prints), so every rule is unit
 * tested.
 *
 *   canary-agent run --region NAME --id ID (--dial URL | --listen URL)...
 *                    (--cert F --key F --ca F | --insecure) --allow-host HOST...
 *                    [--connect-to HOST:PORT:ADDR:PORT]... [--concurrency C]
 *                    [--max-requests N] [--log-format text|json]
 *   canary-agent probe URL [-n N] [-c CONCURRENCY] [--expect-status CODE]... [--isr]
 *                    [--expect-middleware ID] [--expect-server ID]
 *                    [--connect-to HOST:PORT:ADDR:PORT]... [--json] [--timeout MS]
 *                    [--method GET|HEAD] [--body-match TEXT] [--follow-redirects]
 *                    [--duration SECONDS] [--middleware-header NAME]
 *                    [--server-header NAME] [--cache-header NAME]
 *
 * Strings in the parsed structs point into argv.
 */
#ifndef AGENT_CLI_H
#define AGENT_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "allow.h"
#include "defaults.h"
#include "link.h"
#include "log.h"
#include "msg.h"

enum agent_cli_mode { AGENT_CLI_HELP = 0, AGENT_CLI_RUN, AGENT_CLI_PROBE };

struct agent_cli_run {
	const char *region;
	const char *id;
	const char *listen[AGENT_MAX_LINK_URLS];
	int n_listen;
	const char *dial[AGENT_MAX_LINK_URLS];
	int n_dial;
	int insecure;
	struct canary_tls_files tls; /* all NULL when not given */
	struct agent_allow allow;
	int concurrency;
	uint32_t max_requests;
	/* No follow flag: a redirect could lead a run-mode agent off its
	 * allowlist, so run mode never follows one. */
	enum canary_log_format log_format;
};

struct agent_cli_probe {
	const char *url;
	uint32_t n;
	int concurrency;
	int expect_status[CANARY_MAX_STATUSES];
	int n_expect_status; /* 0: 200 */
	int isr;
	const char *expect_middleware; /* NULL: not checked */
	const char *expect_server;
	int json;
	uint32_t timeout_ms;
	const char *method;
	const char *body_match;
	const char *middleware_header; /* NULL: x-canary-middleware-version */
	const char *server_header;     /* NULL: x-canary-server-version */
	const char *cache_header;      /* NULL: x-opennext-cache */
	int follow;          /* --follow-redirects: probe mode only (no allowlist there) */
	uint32_t duration_s; /* > 0: stop after this long (n defaults to no limit) */
};

struct agent_cli {
	enum agent_cli_mode mode;
	const char *connect_to[AGENT_MAX_CONNECT_TO];
	int n_connect_to;
	struct agent_cli_run run;
	struct agent_cli_probe probe;
};

/* agent_cli_parse: parses argv (argv[0] is the program). Returns 0 with *c
 * filled, or CANARY_EINVAL / CANARY_EDENIED (tcp:// without --insecure) /
 * CANARY_ETOOBIG with the flag and the reason in err. */
int agent_cli_parse(int argc, char **argv, struct agent_cli *c, char *err, size_t errlen);

/* agent_cli_check_connect_to: "HOST:PORT:ADDR:PORT" as curl reads it (HOST
 * and the ports may be empty; ADDR not; IPv6 addresses in brackets). */
int agent_cli_check_connect_to(const char *s, char *err, size_t errlen);

/* The usage text. */
extern const char agent_cli_usage[];

#endif /* AGENT_CLI_H */
