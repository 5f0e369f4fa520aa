/*
 * cli.c: canary-agent's command line (see cli.h).
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

const char agent_cli_usage[] =
    "usage:\n"
    "  canary-agent run --region NAME --id ID (--dial URL | --listen URL)...\n"
    "                   (--cert FILE --key FILE --ca FILE | --insecure) --allow-host HOST...\n"
    "                   [--connect-to HOST:PORT:ADDR:PORT]... [--concurrency N]\n"
    "                   [--max-requests N] [--log-format text|json]\n"
    "  canary-agent probe URL [-n N] [-c CONCURRENCY] [--expect-status CODE]... [--isr]\n"
    "                   [--expect-middleware ID] [--expect-server ID]\n"
    "                   [--connect-to HOST:PORT:ADDR:PORT]... [--json] [--timeout MS]\n"
    "                   [--method GET|HEAD] [--body-match TEXT] [--follow-redirects]\n"
    "                   [--duration SECONDS] [--middleware-header NAME]\n"
    "                   [--server-header NAME] [--cache-header NAME]\n"
    "\n"
    "run: a long-running probe in one region; answers the controller's surveys over nng.\n"
    "  URLs are tls+tcp://HOST:PORT (mutual TLS with --cert, --key and --ca); tcp:// and\n"
    "  ipc:// need --insecure. Only hosts matching an --allow-host (exact or *.suffix) are\n"
    "  probed. --concurrency (default 16) and --max-requests per round (default 5000) are\n"
    "  caps no survey can exceed. Redirects are never followed in run mode (a Location\n"
    "  could lead off the allowlist): a 3xx is an answer like any other.\n"
    "probe: one-shot checks of URL; prints a table (or JSON with --json). -n requests\n"
    "  (default 100) at -c in flight (default 8); --duration stops after SECONDS (and\n"
    "  lifts the default -n), which makes probe a load generator for benchmarks.\n"
    "  exit status: 0 every check passed, 1 a check failed, 2 usage error.\n";

/* A value of a flag: "--flag VALUE" or "--flag=VALUE". Returns the value and
 * advances *i, or NULL when flag does not match argv[*i]. *missing is set
 * when the flag matched but had no value. */
static const char *
cli_value(int argc, char **argv, int *i, const char *flag, int *missing)
{
	const char *a = argv[*i];
	size_t n = strlen(flag);

	if (strncmp(a, flag, n) != 0) {
		return NULL;
	}
	if (a[n] == '=') {
		return a + n + 1;
	}
	if (a[n] != '\0') {
		return NULL;
	}
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	(*i)++;
	return argv[*i];
}

static int
cli_uint(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out, char *err,
         size_t errlen)
{
	char *end = NULL;
	unsigned long long v = 0;
	int ok = s[0] >= '0' && s[0] <= '9'; /* strtoull would take "-1" and " 1" */

	if (ok) {
		errno = 0;
		v = strtoull(s, &end, 10);
		ok = errno == 0 && end != s && *end == '\0' && v >= lo && v <= hi;
	}
	if (!ok) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s: expected an integer %llu..%llu, got \"%.64s\"", flag,
		                   (unsigned long long)lo, (unsigned long long)hi, s);
	}
	*out = v;
	return 0;
}

/* Names and ids: 1..CANARY_ID_LEN-1 characters of [A-Za-z0-9._-]. */
static int
cli_name(const char *flag, const char *s, char *err, size_t errlen)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CANARY_ID_LEN) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected 1..%d characters",
		                   flag, CANARY_ID_LEN - 1);
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-')) {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "%s \"%.64s\": only letters, digits, '.', '_' and '-' are allowed",
			    flag, s);
		}
	}
	return 0;
}

/* One host or address part of --connect-to, up to the next ':' (or the
 * closing bracket of an IPv6 literal). Advances *p past the part and its
 * ':' separator. */
static int
cli_ct_part(const char **p, int last, int port, const char *whole, char *err, size_t errlen)
{
	const char *s = *p;
	const char *end;

	if (!port && *s == '[') {
		end = strchr(s, ']');
		if (end == NULL) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "--connect-to \"%.128s\": unclosed '['", whole);
		}
		end++;
	} else {
		end = last ? s + strlen(s) : strchr(s, ':');
		if (end == NULL) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "--connect-to \"%.128s\": expected HOST:PORT:ADDR:PORT",
			                   whole);
		}
	}
	if (port && end > s) {
		uint64_t v = 0;
		char num[8];
		if ((size_t)(end - s) >= sizeof(num)) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "--connect-to \"%.128s\": bad port", whole);
		}
		memcpy(num, s, (size_t)(end - s));
		num[end - s] = '\0';
		if (cli_uint("--connect-to port", num, 1, 65535, &v, err, errlen) != 0) {
			return CANARY_EINVAL;
		}
	}
	if (!port) {
		for (const char *c = s; c < end; c++) {
			if (*c == ' ' || *c == '/' || *c == '@' || (unsigned char)*c < 0x21) {
				return canary_errf(err, errlen, CANARY_EINVAL,
				                   "--connect-to \"%.128s\": bad host", whole);
			}
		}
	}
	if (!last) {
		if (*end != ':') {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "--connect-to \"%.128s\": expected HOST:PORT:ADDR:PORT",
			                   whole);
		}
		end++;
	} else if (*end != '\0') {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "--connect-to \"%.128s\": expected HOST:PORT:ADDR:PORT", whole);
	}
	*p = end;
	return 0;
}

int
agent_cli_check_connect_to(const char *s, char *err, size_t errlen)
{
	const char *p = s;
	const char *addr;

	if (strlen(s) > AGENT_HOST_LEN * 2) {
		return canary_errf(err, errlen, CANARY_EINVAL, "--connect-to: too long");
	}
	if (cli_ct_part(&p, 0, 0, s, err, errlen) != 0 ||
	    cli_ct_part(&p, 0, 1, s, err, errlen) != 0) {
		return CANARY_EINVAL;
	}
	addr = p;
	if (cli_ct_part(&p, 0, 0, s, err, errlen) != 0) {
		return CANARY_EINVAL;
	}
	if (p - addr <= 1) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "--connect-to \"%.128s\": ADDR must not be empty", s);
	}
	return cli_ct_part(&p, 1, 1, s, err, errlen);
}

/* Both modes: one more --connect-to entry, checked, within the cap. */
static int
cli_add_connect_to(struct agent_cli *c, const char *v, char *err, size_t errlen)
{
	int rv;

	if (c->n_connect_to >= AGENT_MAX_CONNECT_TO) {
		return canary_errf(err, errlen, CANARY_ETOOBIG, "--connect-to: at most %d entries",
		                   AGENT_MAX_CONNECT_TO);
	}
	if ((rv = agent_cli_check_connect_to(v, err, errlen)) != 0) {
		return rv;
	}
	c->connect_to[c->n_connect_to++] = v;
	return 0;
}

static int
cli_add_url(struct agent_cli_run *r, const char **list, int *n, const char *url, char *err,
            size_t errlen)
{
	if (r->n_dial + r->n_listen >= AGENT_MAX_LINK_URLS) {
		return canary_errf(err, errlen, CANARY_ETOOBIG, "--dial/--listen: at most %d URLs",
		                   AGENT_MAX_LINK_URLS);
	}
	list[(*n)++] = url;
	return 0;
}

static int
cli_uuid(const char *flag, const char *v, char *err, size_t errlen)
{
	if (!canary_is_uuid(v)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s: expected a version id (UUID), got \"%.64s\"", flag, v);
	}
	return 0;
}

/* An HTTP header name: 1..CANARY_HEADER_NAME_LEN-1 token characters. */
static int
cli_header_name(const char *flag, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n == 0 || n >= CANARY_HEADER_NAME_LEN) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected 1..%d characters",
		                   flag, CANARY_HEADER_NAME_LEN - 1);
	}
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", c) != NULL)) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "%s \"%.64s\": not an HTTP header name", flag, v);
		}
	}
	return 0;
}

static int
cli_parse_run(int argc, char **argv, int i, struct agent_cli *c, char *err, size_t errlen)
{
	struct agent_cli_run *r = &c->run;
	int any_tls = 0;
	int rv;

	r->concurrency = AGENT_DEFAULT_CONCURRENCY;
	r->max_requests = AGENT_DEFAULT_MAX_REQUESTS;
	agent_allow_init(&r->allow);
	for (; i < argc; i++) {
		int missing = 0;
		const char *v;
		uint64_t u = 0;

		if ((v = cli_value(argc, argv, &i, "--region", &missing)) != NULL) {
			if ((rv = cli_name("--region", v, err, errlen)) != 0) {
				return rv;
			}
			r->region = v;
		} else if ((v = cli_value(argc, argv, &i, "--id", &missing)) != NULL) {
			if ((rv = cli_name("--id", v, err, errlen)) != 0) {
				return rv;
			}
			r->id = v;
		} else if ((v = cli_value(argc, argv, &i, "--dial", &missing)) != NULL) {
			if ((rv = cli_add_url(r, r->dial, &r->n_dial, v, err, errlen)) != 0) {
				return rv;
			}
		} else if ((v = cli_value(argc, argv, &i, "--listen", &missing)) != NULL) {
			if ((rv = cli_add_url(r, r->listen, &r->n_listen, v, err, errlen)) != 0) {
				return rv;
			}
		} else if (strcmp(argv[i], "--insecure") == 0) {
			r->insecure = 1;
		} else if ((v = cli_value(argc, argv, &i, "--cert", &missing)) != NULL) {
			r->tls.cert = v;
		} else if ((v = cli_value(argc, argv, &i, "--key", &missing)) != NULL) {
			r->tls.key = v;
		} else if ((v = cli_value(argc, argv, &i, "--ca", &missing)) != NULL) {
			r->tls.ca = v;
		} else if ((v = cli_value(argc, argv, &i, "--allow-host", &missing)) != NULL) {
			if ((rv = agent_allow_add(&r->allow, v, err, errlen)) != 0) {
				return rv;
			}
		} else if ((v = cli_value(argc, argv, &i, "--connect-to", &missing)) != NULL) {
			if ((rv = cli_add_connect_to(c, v, err, errlen)) != 0) {
				return rv;
			}
		} else if ((v = cli_value(argc, argv, &i, "--concurrency", &missing)) != NULL) {
			if ((rv = cli_uint("--concurrency", v, 1, AGENT_MAX_CONCURRENCY, &u, err,
			                   errlen)) != 0) {
				return rv;
			}
			r->concurrency = (int)u;
		} else if ((v = cli_value(argc, argv, &i, "--max-requests", &missing)) != NULL) {
			if ((rv = cli_uint("--max-requests", v, 1, AGENT_MAX_MAX_REQUESTS, &u, err,
			                   errlen)) != 0) {
				return rv;
			}
			r->max_requests = (uint32_t)u;
		} else if ((v = cli_value(argc, argv, &i, "--log-format", &missing)) != NULL) {
			if (canary_log_parse_format(v, &r->log_format) != 0) {
				return canary_errf(
				    err, errlen, CANARY_EINVAL,
				    "--log-format: expected text or json, got \"%.32s\"", v);
			}
		} else if (missing) {
			return canary_errf(err, errlen, CANARY_EINVAL, "%s: needs a value",
			                   argv[i]);
		} else {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "run: unknown argument \"%.64s\"", argv[i]);
		}
	}
	if (r->region == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "run: --region NAME is required");
	}
	if (r->id == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "run: --id ID is required");
	}
	if (r->n_dial + r->n_listen == 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "run: at least one --dial URL or --listen URL is required");
	}
	if (r->allow.n == 0) {
		return canary_errf(
		    err, errlen, CANARY_EINVAL,
		    "run: at least one --allow-host HOST is required (the agent probes "
		    "only allowed hosts)");
	}
	for (int k = 0; k < r->n_dial + r->n_listen; k++) {
		const char *url = k < r->n_dial ? r->dial[k] : r->listen[k - r->n_dial];
		char why[CANARY_ERRLEN];
		rv = canary_link_check_url(url, r->insecure, why, sizeof(why));
		if (rv != 0) {
			return canary_errf(err, errlen, rv, "%s %s",
			                   k < r->n_dial ? "--dial" : "--listen", why);
		}
		if (strncmp(url, "tls+", 4) == 0) {
			any_tls = 1;
		}
	}
	if (any_tls && (r->tls.cert == NULL || r->tls.key == NULL || r->tls.ca == NULL)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "run: tls+tcp URLs need --cert FILE, --key FILE and --ca FILE");
	}
	if (!any_tls && (r->tls.cert != NULL || r->tls.key != NULL || r->tls.ca != NULL)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "run: --cert/--key/--ca given but no tls+tcp:// URL uses them");
	}
	return 0;
}

static int
cli_parse_probe(int argc, char **argv, int i, struct agent_cli *c, char *err, size_t errlen)
{
	struct agent_cli_probe *p = &c->probe;
	int n_given = 0;
	int rv;

	p->n = AGENT_PROBE_DEFAULT_N;
	p->concurrency = AGENT_PROBE_CONCURRENCY;
	p->timeout_ms = AGENT_PROBE_DEFAULT_TIMEOUT;
	p->method = "GET";
	for (; i < argc; i++) {
		int missing = 0;
		const char *v;
		uint64_t u = 0;

		if ((v = cli_value(argc, argv, &i, "-n", &missing)) != NULL) {
			if ((rv = cli_uint("-n", v, 1, AGENT_PROBE_MAX_N, &u, err, errlen)) != 0) {
				return rv;
			}
			p->n = (uint32_t)u;
			n_given = 1;
		} else if ((v = cli_value(argc, argv, &i, "-c", &missing)) != NULL) {
			if ((rv = cli_uint("-c", v, 1, AGENT_MAX_CONCURRENCY, &u, err, errlen)) !=
			    0) {
				return rv;
			}
			p->concurrency = (int)u;
		} else if ((v = cli_value(argc, argv, &i, "--expect-status", &missing)) != NULL) {
			if (p->n_expect_status >= CANARY_MAX_STATUSES) {
				return canary_errf(err, errlen, CANARY_ETOOBIG,
				                   "--expect-status: at most %d codes",
				                   CANARY_MAX_STATUSES);
			}
			if ((rv = cli_uint("--expect-status", v, 100, 599, &u, err, errlen)) != 0) {
				return rv;
			}
			p->expect_status[p->n_expect_status++] = (int)u;
		} else if (strcmp(argv[i], "--isr") == 0) {
			p->isr = 1;
		} else if (strcmp(argv[i], "--json") == 0) {
			p->json = 1;
		} else if (strcmp(argv[i], "--follow-redirects") == 0) {
			p->follow = 1;
		} else if ((v = cli_value(argc, argv, &i, "--expect-middleware", &missing)) !=
		           NULL) {
			if ((rv = cli_uuid("--expect-middleware", v, err, errlen)) != 0) {
				return rv;
			}
			p->expect_middleware = v;
		} else if ((v = cli_value(argc, argv, &i, "--expect-server", &missing)) != NULL) {
			if ((rv = cli_uuid("--expect-server", v, err, errlen)) != 0) {
				return rv;
			}
			p->expect_server = v;
		} else if ((v = cli_value(argc, argv, &i, "--connect-to", &missing)) != NULL) {
			if ((rv = cli_add_connect_to(c, v, err, errlen)) != 0) {
				return rv;
			}
		} else if ((v = cli_value(argc, argv, &i, "--timeout", &missing)) != NULL) {
			if ((rv = cli_uint("--timeout", v, 1, CANARY_MAX_TIMEOUT_MS, &u, err,
			                   errlen)) != 0) {
				return rv;
			}
			p->timeout_ms = (uint32_t)u;
		} else if ((v = cli_value(argc, argv, &i, "--duration", &missing)) != NULL) {
			if ((rv = cli_uint("--duration", v, 1, AGENT_PROBE_MAX_DURATION_S, &u, err,
			                   errlen)) != 0) {
				return rv;
			}
			p->duration_s = (uint32_t)u;
		} else if ((v = cli_value(argc, argv, &i, "--middleware-header", &missing)) !=
		           NULL) {
			if ((rv = cli_header_name("--middleware-header", v, err, errlen)) != 0) {
				return rv;
			}
			p->middleware_header = v;
		} else if ((v = cli_value(argc, argv, &i, "--server-header", &missing)) != NULL) {
			if ((rv = cli_header_name("--server-header", v, err, errlen)) != 0) {
				return rv;
			}
			p->server_header = v;
		} else if ((v = cli_value(argc, argv, &i, "--cache-header", &missing)) != NULL) {
			if ((rv = cli_header_name("--cache-header", v, err, errlen)) != 0) {
				return rv;
			}
			p->cache_header = v;
		} else if ((v = cli_value(argc, argv, &i, "--method", &missing)) != NULL) {
			if (strcmp(v, "GET") != 0 && strcmp(v, "HEAD") != 0) {
				return canary_errf(err, errlen, CANARY_EINVAL,
				                   "--method: expected GET or HEAD, got \"%.16s\"",
				                   v);
			}
			p->method = v;
		} else if ((v = cli_value(argc, argv, &i, "--body-match", &missing)) != NULL) {
			if (v[0] == '\0' || strlen(v) >= CANARY_BODY_MATCH_LEN) {
				return canary_errf(err, errlen, CANARY_EINVAL,
				                   "--body-match: expected 1..%d characters",
				                   CANARY_BODY_MATCH_LEN - 1);
			}
			p->body_match = v;
		} else if (missing) {
			return canary_errf(err, errlen, CANARY_EINVAL, "%s: needs a value",
			                   argv[i]);
		} else if (argv[i][0] == '-') {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "probe: unknown option \"%.64s\"", argv[i]);
		} else if (p->url == NULL) {
			p->url = argv[i];
		} else {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "probe: one URL only, got a second: \"%.64s\"", argv[i]);
		}
	}
	if (p->url == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "probe: URL is required");
	}
	if (p->duration_s > 0 && !n_given) {
		p->n = AGENT_PROBE_MAX_N;
	}
	if (strncmp(p->url, "http://", 7) != 0 && strncmp(p->url, "https://", 8) != 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "probe: expected an http:// or https:// URL, got \"%.64s\"",
		                   p->url);
	}
	if (strlen(p->url) >= CANARY_URL_LEN) {
		return canary_errf(err, errlen, CANARY_EINVAL, "probe: URL longer than %d bytes",
		                   CANARY_URL_LEN - 1);
	}
	if (p->body_match != NULL && strcmp(p->method, "HEAD") == 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "--body-match: a HEAD request has no body to match");
	}
	return 0;
}

int
agent_cli_parse(int argc, char **argv, struct agent_cli *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		c->mode = AGENT_CLI_HELP;
		return argc < 2 ? canary_errf(err, errlen, CANARY_EINVAL, "a command is required")
		                : 0;
	}
	if (strcmp(argv[1], "run") == 0) {
		c->mode = AGENT_CLI_RUN;
		return cli_parse_run(argc, argv, 2, c, err, errlen);
	}
	if (strcmp(argv[1], "probe") == 0) {
		c->mode = AGENT_CLI_PROBE;
		return cli_parse_probe(argc, argv, 2, c, err, errlen);
	}
	return canary_errf(err, errlen, CANARY_EINVAL,
	                   "unknown command \"%.32s\": expected run or probe", argv[1]);
}
