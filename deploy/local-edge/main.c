/*
 * main.c: canary-edge, a local stand-in for Cloudflare Workers.
 *
 * Flags are checked before anything listens; the state is loaded from
 * --state (or seeded on first start), then the API listener and one
 * listener per region start on one libevent loop, which owns all state.
 * Once listening, one line per listener goes to stdout:
 *   canary-edge: api http://127.0.0.1:PORT
 *   canary-edge: region enam http://127.0.0.1:PORT
 *   canary-edge: ready
 * so scripts can use port 0 and read the ports back.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/http.h>

#include "edge_api.h"
#include "edge_const.h"
#include "edge_plane.h"
#include "edge_route.h"
#include "edge_state.h"
#include "err.h"
#include "log.h"

#define MAIN_EXIT_USAGE 1
#define MAIN_EXIT_FAIL  2

static const char main_help[] =
    "usage: canary-edge --api ADDR:PORT [--region NAME=ADDR:PORT]... [--delay NAME=MS]...\n"
    "                   [--token TOKEN] [--state FILE] [--middleware NAME] [--server NAME]\n"
    "                   [--isr PATH]... [--migration-tag TAG] [--revalidate-s N]\n"
    "                   [--account ID] [--seed N]\n"
    "\n"
    "A local stand-in for Cloudflare Workers: the REST API subset that wrangler and\n"
    "canary-controller use, and one data-plane listener per region with versions,\n"
    "splits, overrides, pins, a per-region ISR cache and faults.\n"
    "\n"
    "Flags:\n"
    "  --api ADDR:PORT        API and admin listener (ADDR numeric; [::1]:PORT for IPv6;\n"
    "                         PORT 0 picks a free port). Point wrangler at it with\n"
    "                         CLOUDFLARE_API_BASE_URL=http://ADDR:PORT/client/v4\n"
    "  --region NAME=ADDR:PORT  a region's data-plane listener (repeat; NAME is a-z, 0-9,\n"
    "                         '-'; it ends the cf-ray header: cf-ray: <16 hex>-NAME)\n"
    "  --delay NAME=MS        a deployment change becomes visible in region NAME MS ms\n"
    "                         after the API accepted it (default 0; at most 600000)\n"
    "  --token TOKEN          require `Authorization: Bearer TOKEN` on /client/v4 (401 with\n"
    "                         Cloudflare's error envelope otherwise); without it, none is\n"
    "                         checked\n"
    "  --state FILE           keep workers, versions and deployments in FILE (JSON, written\n"
    "                         atomically after every change, read back at start)\n"
    "  --middleware NAME      the middleware worker (default middleware)\n"
    "  --server NAME          the server worker (default main-server)\n"
    "  --isr PATH             a path the middleware answers from its ISR cache (repeat)\n"
    "  --migration-tag TAG    the Durable Object migration tag the API reports for the\n"
    "                         middleware (GET /services/NAME); wrangler compares it with\n"
    "                         the config's last migration before an upload\n"
    "  --revalidate-s N       age in seconds after which a cached ISR answer is STALE\n"
    "                         (default 30)\n"
    "  --account ID           accept only this account id in API paths (default: any)\n"
    "  --seed N               seed of every random choice (ids, splits, error rates), so a\n"
    "                         test run can be repeated; default from the clock and pid\n"
    "  --help                 this text\n"
    "\n"
    "First start (no --state FILE yet) seeds both workers with one version each at 100%;\n"
    "the middleware's WORKER_VERSION_ID is the server version's id.\n"
    "\n"
    "Data plane, per request in a region: the middleware version is the one named by a\n"
    "client `Cloudflare-Workers-Version-Overrides: <middleware>=\"<id>\"` entry if it is\n"
    "deployed, else the bucket of `Cloudflare-Workers-Version-Key` (sticky: keys on the\n"
    "newer version stay there as its percentage grows), else random by the percentages.\n"
    "On --isr paths the middleware answers from the region's cache keyed by (build id,\n"
    "path) with x-opennext-cache: HIT, or STALE once older than --revalidate-s (then\n"
    "refreshed). Otherwise it forwards to the server with the override\n"
    "<server>=\"<its WORKER_VERSION_ID>\", honoured only if that version is in the server\n"
    "deployment (else the split decides, silently). The server answers 200 with\n"
    "x-nextjs-cache: MISS on ISR paths and the answer is cached. The build id is the\n"
    "server version's NEXT_BUILD_ID binding, or its version id. Headers on every answer:\n"
    "x-canary-middleware-version, x-canary-server-version (when the server answered),\n"
    "cf-ray. A region taken down answers 503 to everything (the listener stays open).\n"
    "\n"
    "Faults: plain-text bindings of an uploaded version (wrangler --var NAME:VALUE); a\n"
    "middleware version's faults act in the middleware, a server version's in the server:\n"
    "  CANARY_EDGE_ERROR_RATE=R     answer 500 to a share R (0..1) of requests\n"
    "  CANARY_EDGE_STATUS=CODE      answer CODE (100..599) to every request\n"
    "  CANARY_EDGE_LATENCY_MS=MS    add MS ms (0..60000) before answering\n"
    "  CANARY_EDGE_IGNORE_PIN=1     middleware: send no override to the server\n"
    "  CANARY_EDGE_OVERRIDE_KEY=K   middleware: key the override with K instead of the\n"
    "                               server's name (OpenNext's guide uses `server`)\n"
    "  CANARY_EDGE_NO_CACHE=1       middleware: never answer from the ISR cache\n"
    "  CANARY_EDGE_REGIONS=a,b      the version's faults act only in these regions\n"
    "A malformed fault value is refused at upload (400, naming the binding).\n"
    "\n"
    "Admin routes on the API listener (no token): GET /__edge/state, GET /__edge/timeline,\n"
    "POST /__edge/regions/NAME/down, POST /__edge/regions/NAME/up, and\n"
    "POST /__edge/api-faults {\"status\":429,\"count\":2,\"retry_after_s\":1}: the next\n"
    "`count` API requests answer `status` (400..599; Retry-After on a 429), to test the\n"
    "retries of API clients.\n"
    "\n"
    "Output: once listening, one line per listener on stdout (`canary-edge: api URL`,\n"
    "`canary-edge: region NAME URL`, then `canary-edge: ready seed=N`); each upload,\n"
    "deployment and region change as one log line on stderr.\n"
    "Exit status: 0 after SIGINT or SIGTERM, 1 for a wrong flag, 2 when the state file\n"
    "cannot be read or written or a listener cannot start.\n";

struct main_opts {
	char api_addr[EDGE_NAME_MAX];
	int api_port;
	int have_api;
	struct edge_region_spec regions[EDGE_MAX_REGIONS];
	int n_regions;
	const char *token;
	const char *state_path;
	const char *middleware;
	const char *server;
	const char *isr[EDGE_MAX_ISR_PATHS];
	int n_isr;
	const char *migration_tag;
	int revalidate_s;
	const char *account;
	uint64_t seed;
	int have_seed;
};

/* main_hostport: "ADDR:PORT" or "[V6]:PORT" into a numeric address and a
 * port 0..65535. */
static int
main_hostport(const char *flag, const char *s, char *addr, size_t addrlen, int *port, char *err,
              size_t errlen)
{
	const char *colon;
	const char *host = s;
	size_t hlen;
	char *end;
	long p;
	unsigned char buf[sizeof(struct in6_addr)];

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':') {
			return canary_errf(err, errlen, CANARY_ECONFIG,
			                   "%s%s: expected [IPV6]:PORT", flag, s);
		}
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			return canary_errf(err, errlen, CANARY_ECONFIG, "%s%s: expected ADDR:PORT",
			                   flag, s);
		}
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= addrlen) {
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "%s%s: expected an address before ':'", flag, s);
	}
	memcpy(addr, host, hlen);
	addr[hlen] = '\0';
	if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1) {
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "%s%s: \"%s\" is not a numeric IPv4 or IPv6 address", flag, s,
		                   addr);
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535) {
		return canary_errf(err, errlen, CANARY_ECONFIG, "%s%s: expected a port 0..65535",
		                   flag, s);
	}
	*port = (int)p;
	return 0;
}

static int
main_region_name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= EDGE_NAME_MAX) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
			return 0;
		}
	}
	return 1;
}

static int
main_long(const char *flag, const char *s, long lo, long hi, long *out, char *err, size_t errlen)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "%s %s: expected a whole number %ld..%ld", flag, s, lo, hi);
	}
	*out = v;
	return 0;
}

static int
main_parse(int argc, char **argv, struct main_opts *o, int *help, char *err, size_t errlen)
{
	enum {
		O_API = 256,
		O_REGION,
		O_DELAY,
		O_TOKEN,
		O_STATE,
		O_MIDDLEWARE,
		O_SERVER,
		O_ISR,
		O_MIGRATION,
		O_REVALIDATE,
		O_ACCOUNT,
		O_SEED,
		O_HELP
	};
	static const struct option longs[] = {
	    {"api", required_argument, NULL, O_API},
	    {"region", required_argument, NULL, O_REGION},
	    {"delay", required_argument, NULL, O_DELAY},
	    {"token", required_argument, NULL, O_TOKEN},
	    {"state", required_argument, NULL, O_STATE},
	    {"middleware", required_argument, NULL, O_MIDDLEWARE},
	    {"server", required_argument, NULL, O_SERVER},
	    {"isr", required_argument, NULL, O_ISR},
	    {"migration-tag", required_argument, NULL, O_MIGRATION},
	    {"revalidate-s", required_argument, NULL, O_REVALIDATE},
	    {"account", required_argument, NULL, O_ACCOUNT},
	    {"seed", required_argument, NULL, O_SEED},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	const char *delays[EDGE_MAX_REGIONS * 4];
	int n_delays = 0;
	int c, rv;
	long v;

	memset(o, 0, sizeof(*o));
	o->middleware = EDGE_DEFAULT_MIDDLEWARE;
	o->server = EDGE_DEFAULT_SERVER;
	o->revalidate_s = EDGE_DEFAULT_REVALIDATE_S;
	*help = 0;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case O_API:
			rv = main_hostport("--api ", optarg, o->api_addr, sizeof(o->api_addr),
			                   &o->api_port, err, errlen);
			if (rv != 0) {
				return rv;
			}
			o->have_api = 1;
			break;
		case O_REGION: {
			const char *eq = strchr(optarg, '=');
			struct edge_region_spec *r;

			if (eq == NULL || !main_region_name_ok(optarg, (size_t)(eq - optarg))) {
				return canary_errf(
				    err, errlen, CANARY_ECONFIG,
				    "--region %s: expected NAME=ADDR:PORT with NAME of "
				    "1..%d of a-z, 0-9, '-'",
				    optarg, EDGE_NAME_MAX - 1);
			}
			if (o->n_regions == EDGE_MAX_REGIONS) {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "--region: more than %d regions",
				                   EDGE_MAX_REGIONS);
			}
			r = &o->regions[o->n_regions];
			memset(r, 0, sizeof(*r));
			memcpy(r->name, optarg, (size_t)(eq - optarg));
			for (int i = 0; i < o->n_regions; i++) {
				if (strcmp(o->regions[i].name, r->name) == 0) {
					return canary_errf(err, errlen, CANARY_ECONFIG,
					                   "--region %s: region %s given twice",
					                   optarg, r->name);
				}
			}
			{
				char flag[EDGE_NAME_MAX + 16];

				snprintf(flag, sizeof(flag), "--region %s=", r->name);
				rv = main_hostport(flag, eq + 1, r->addr, sizeof(r->addr), &r->port,
				                   err, errlen);
			}
			if (rv != 0) {
				return rv;
			}
			o->n_regions++;
			break;
		}
		case O_DELAY:
			if (n_delays == (int)(sizeof(delays) / sizeof(delays[0]))) {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "--delay: too many");
			}
			delays[n_delays++] = optarg;
			break;
		case O_TOKEN:
			if (optarg[0] == '\0' || strlen(optarg) >= EDGE_TOKEN_MAX) {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "--token: expected 1..%d bytes",
				                   EDGE_TOKEN_MAX - 1);
			}
			o->token = optarg;
			break;
		case O_STATE:
			if (optarg[0] == '\0') {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "--state: expected a file name");
			}
			o->state_path = optarg;
			break;
		case O_MIDDLEWARE:
		case O_SERVER:
			if (!edge_state_valid_name(optarg)) {
				return canary_errf(
				    err, errlen, CANARY_ECONFIG,
				    "%s %s: expected a worker name of 1..%d of a-z, 0-9, "
				    "'-', '_'",
				    c == O_SERVER ? "--server" : "--middleware", optarg,
				    EDGE_NAME_MAX - 1);
			}
			*(c == O_SERVER ? &o->server : &o->middleware) = optarg;
			break;
		case O_ISR:
			if (optarg[0] != '/' || strlen(optarg) >= EDGE_PATH_MAX ||
			    strchr(optarg, '?') != NULL) {
				return canary_errf(
				    err, errlen, CANARY_ECONFIG,
				    "--isr %s: expected a path starting with '/', without "
				    "a query, under %d bytes",
				    optarg, EDGE_PATH_MAX);
			}
			if (o->n_isr == EDGE_MAX_ISR_PATHS) {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "--isr: more than %d paths", EDGE_MAX_ISR_PATHS);
			}
			o->isr[o->n_isr++] = optarg;
			break;
		case O_MIGRATION:
			if (optarg[0] == '\0' || strlen(optarg) >= EDGE_TAG_MAX) {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "--migration-tag: expected 1..%d bytes",
				                   EDGE_TAG_MAX - 1);
			}
			o->migration_tag = optarg;
			break;
		case O_REVALIDATE:
			if ((rv = main_long("--revalidate-s", optarg, 0, EDGE_MAX_REVALIDATE_S, &v,
			                    err, errlen)) != 0) {
				return rv;
			}
			o->revalidate_s = (int)v;
			break;
		case O_ACCOUNT:
			if (optarg[0] == '\0' || strlen(optarg) >= EDGE_TAG_MAX) {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "--account: expected 1..%d bytes",
				                   EDGE_TAG_MAX - 1);
			}
			o->account = optarg;
			break;
		case O_SEED: {
			char *end;
			unsigned long long s;

			errno = 0;
			s = strtoull(optarg, &end, 10);
			if (optarg[0] == '\0' || optarg[0] == '-' || *end != '\0' || errno != 0) {
				return canary_errf(err, errlen, CANARY_ECONFIG,
				                   "--seed %s: expected a whole number 0..%llu",
				                   optarg, (unsigned long long)UINT64_MAX);
			}
			o->seed = s;
			o->have_seed = 1;
			break;
		}
		case O_HELP:
		case 'h':
			*help = 1;
			return 0;
		case ':':
			return canary_errf(err, errlen, CANARY_ECONFIG, "%s: expected a value",
			                   argv[optind - 1]);
		default:
			return canary_errf(err, errlen, CANARY_ECONFIG,
			                   "unknown flag %s (see --help)", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "unexpected argument %s (see --help)", argv[optind]);
	}
	if (!o->have_api) {
		return canary_errf(err, errlen, CANARY_ECONFIG, "--api ADDR:PORT is required");
	}
	if (strcmp(o->middleware, o->server) == 0) {
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "--middleware and --server both name worker %s", o->server);
	}
	for (int i = 0; i < n_delays; i++) {
		const char *eq = strchr(delays[i], '=');
		int found = 0;

		if (eq == NULL) {
			return canary_errf(err, errlen, CANARY_ECONFIG,
			                   "--delay %s: expected NAME=MS", delays[i]);
		}
		if ((rv = main_long("--delay", eq + 1, 0, EDGE_MAX_DELAY_MS, &v, err, errlen)) !=
		    0) {
			return rv;
		}
		for (int j = 0; j < o->n_regions; j++) {
			if (strlen(o->regions[j].name) == (size_t)(eq - delays[i]) &&
			    strncmp(o->regions[j].name, delays[i], (size_t)(eq - delays[i])) == 0) {
				o->regions[j].delay_ms = (int)v;
				found = 1;
			}
		}
		if (!found) {
			return canary_errf(err, errlen, CANARY_ECONFIG,
			                   "--delay %s: no --region of that name", delays[i]);
		}
	}
	return 0;
}

static void
main_on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(arg, NULL);
}

/* main_load: the state from --state, or a freshly seeded one. */
static int
main_load(const struct main_opts *o, struct edge_rng *rng, struct edge_state **stp, char *err,
          size_t errlen)
{
	struct edge_state *st = NULL;
	int rv;

	*stp = NULL;
	if (o->state_path != NULL) {
		rv = edge_state_load(o->state_path, &st, err, errlen);
		if (rv != 0 && rv != CANARY_ENOENT) {
			return rv;
		}
	}
	if (st == NULL) {
		if ((rv = edge_state_new(&st)) != 0 ||
		    (rv = edge_state_seed(st, o->middleware, o->server, rng, edge_plane_wall_ms(),
		                          err, errlen)) != 0) {
			edge_state_free(st);
			return rv;
		}
	}
	if (edge_state_worker(st, o->middleware) == NULL ||
	    edge_state_worker(st, o->server) == NULL) {
		edge_state_free(st);
		return canary_errf(err, errlen, CANARY_ECONFIG,
		                   "%s holds no worker %s or %s: it was written with other "
		                   "--middleware/--server names",
		                   o->state_path, o->middleware, o->server);
	}
	if (o->migration_tag != NULL) {
		snprintf(edge_state_worker(st, o->middleware)->migration_tag, EDGE_TAG_MAX, "%s",
		         o->migration_tag);
	}
	if (o->state_path != NULL && (rv = edge_state_save(st, o->state_path, err, errlen)) != 0) {
		edge_state_free(st);
		return rv;
	}
	*stp = st;
	return 0;
}

static void
main_print_url(const char *what, const char *addr, int port)
{
	if (strchr(addr, ':') != NULL) {
		printf("canary-edge: %s http://[%s]:%d\n", what, addr, port);
	} else {
		printf("canary-edge: %s http://%s:%d\n", what, addr, port);
	}
}

int
main(int argc, char **argv)
{
	struct main_opts o;
	char err[CANARY_ERRLEN];
	struct event_base *base = NULL;
	struct evhttp *http = NULL;
	struct edge_state *st = NULL;
	struct edge_plane *plane = NULL;
	struct edge_api *api = NULL;
	struct event *sigint = NULL, *sigterm = NULL;
	struct edge_rng rng;
	int help, rv, code = MAIN_EXIT_FAIL;

	rv = main_parse(argc, argv, &o, &help, err, sizeof(err));
	if (help) {
		fputs(main_help, stdout);
		return 0;
	}
	if (rv != 0) {
		fprintf(stderr, "canary-edge: %s\n", err);
		return MAIN_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!o.have_seed) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		o.seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
		         ((uint64_t)getpid() << 32);
	}
	edge_rng_seed(&rng, o.seed);
	if ((rv = main_load(&o, &rng, &st, err, sizeof(err))) != 0) {
		fprintf(stderr, "canary-edge: %s\n", err);
		goto out;
	}
	base = event_base_new();
	http = base != NULL ? evhttp_new(base) : NULL;
	if (http == NULL) {
		fprintf(stderr, "canary-edge: cannot create the event loop\n");
		goto out;
	}
	{
		struct evhttp_bound_socket *h =
		    evhttp_bind_socket_with_handle(http, o.api_addr, (ev_uint16_t)o.api_port);
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (h == NULL ||
		    getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&ss, &sl) != 0) {
			fprintf(stderr, "canary-edge: --api: cannot listen on %s:%d: %s\n",
			        o.api_addr, o.api_port, strerror(errno));
			goto out;
		}
		o.api_port = ss.ss_family == AF_INET6
		                 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
		                 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	{
		struct edge_plane_config pc = {
		    .middleware = o.middleware,
		    .server = o.server,
		    .isr_paths = o.isr,
		    .n_isr = o.n_isr,
		    .revalidate_s = o.revalidate_s,
		};

		rv = edge_plane_new(base, st, &rng, &pc, o.regions, o.n_regions, &plane, err,
		                    sizeof(err));
		if (rv != 0) {
			fprintf(stderr, "canary-edge: %s\n", err);
			goto out;
		}
	}
	{
		struct edge_api_config ac = {
		    .token = o.token, .account = o.account, .state_path = o.state_path};

		rv = edge_api_new(http, st, plane, &rng, &ac, &api, err, sizeof(err));
		if (rv != 0) {
			fprintf(stderr, "canary-edge: %s\n", err);
			goto out;
		}
	}
	sigint = evsignal_new(base, SIGINT, main_on_signal, base);
	sigterm = evsignal_new(base, SIGTERM, main_on_signal, base);
	if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0 ||
	    evsignal_add(sigterm, NULL) != 0) {
		fprintf(stderr, "canary-edge: cannot handle signals\n");
		goto out;
	}
	main_print_url("api", o.api_addr, o.api_port);
	for (int i = 0; i < edge_plane_n_regions(plane); i++) {
		char what[EDGE_NAME_MAX + 8];

		snprintf(what, sizeof(what), "region %s", edge_plane_region_name(plane, i));
		main_print_url(what, o.regions[i].addr, edge_plane_region_port(plane, i));
	}
	printf("canary-edge: ready seed=%" PRIu64 "\n", o.seed);
	fflush(stdout);
	if (event_base_dispatch(base) != 0) {
		fprintf(stderr, "canary-edge: the event loop failed\n");
		goto out;
	}
	code = 0;
out:
	if (sigint != NULL) {
		event_free(sigint);
	}
	if (sigterm != NULL) {
		event_free(sigterm);
	}
	edge_api_free(api);
	if (http != NULL) {
		evhttp_free(http);
	}
	edge_plane_free(plane);
	if (base != NULL) {
		event_base_free(base);
	}
	edge_state_free(st);
	return code;
}
