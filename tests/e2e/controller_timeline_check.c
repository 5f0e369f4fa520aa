/*
 * controller_timeline_check.c: replays canary-edge's /__edge/timeline region
 * by region and proves the skew invariant held at every moment.
 *
 *   controller_timeline_check STATE.json TIMELINE.json MIDDLEWARE SERVER
 *       [--final initial|new]
 *
 * STATE.json is GET /__edge/state (each worker's versions with their
 * bindings: the middleware's WORKER_VERSION_ID binding is its pin);
 * TIMELINE.json is GET /__edge/timeline ({"events":[{"t_ms","region",
 * "worker","versions":[{"version_id","percentage"}]}]} in the order the
 * changes became visible). For every region, after every event, every
 * middleware version deployed there (0% ones too) must have its pin in the
 * server deployment of that region. With --final initial, every region
 * must end on the deployments it started with (a verified rollback); with
 * --final new, on one version at 100% of each worker, both other than the
 * ones it started with (a promotion; the pin then holds by the above).
 *
 * Exit 0 when everything holds; 1 with the first violation on stderr; 2 on
 * unreadable input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define CHECK_MAX_FILE    (64 * 1024 * 1024)
#define CHECK_MAX_REGIONS 64
#define CHECK_MAX_PINS    4096
#define CHECK_ID_LEN      64
#define CHECK_MAX_DEP     2
#define CHECK_PIN_VAR     "WORKER_VERSION_ID"

struct check_dep {
	char id[CHECK_MAX_DEP][CHECK_ID_LEN];
	int pct[CHECK_MAX_DEP];
	int n; /* 0: nothing seen yet */
};

struct check_region {
	char name[CHECK_ID_LEN];
	struct check_dep server, middleware;
	struct check_dep server0, middleware0; /* the first deployment seen of each */
	int events;
};

struct check_pin {
	char version[CHECK_ID_LEN];
	char pin[CHECK_ID_LEN];
};

static struct check_pin pins[CHECK_MAX_PINS];
static int n_pins;
static struct check_region regions[CHECK_MAX_REGIONS];
static int n_regions;

static cJSON *
read_json(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;
	cJSON *j = NULL;

	if (f == NULL) {
		perror(path);
		return NULL;
	}
	buf = malloc(CHECK_MAX_FILE + 1);
	if (buf != NULL) {
		n = fread(buf, 1, CHECK_MAX_FILE, f);
		buf[n] = '\0';
		j = cJSON_ParseWithLength(buf, n);
	}
	if (j == NULL) {
		fprintf(stderr, "%s: not JSON (or over %d bytes)\n", path, CHECK_MAX_FILE);
	}
	free(buf);
	fclose(f);
	return j;
}

static const char *
str_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Collects pins from every object in the tree that has an id and a
 * bindings array holding the pin var: the state's exact nesting is the
 * edge's business, the version records are Cloudflare's shape. */
static void
collect_pins(const cJSON *node)
{
	const cJSON *c;
	const cJSON *bindings =
	    cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, "bindings") : NULL;
	const char *id = cJSON_IsObject(node) ? str_of(node, "id") : NULL;

	if (id == NULL && cJSON_IsObject(node)) {
		id = str_of(node, "version_id");
	}
	if (id != NULL && cJSON_IsArray(bindings)) {
		cJSON_ArrayForEach(c, bindings)
		{
			const char *name = str_of(c, "name");
			const char *text = str_of(c, "text");

			if (name != NULL && text != NULL && strcmp(name, CHECK_PIN_VAR) == 0 &&
			    n_pins < CHECK_MAX_PINS) {
				snprintf(pins[n_pins].version, CHECK_ID_LEN, "%s", id);
				snprintf(pins[n_pins].pin, CHECK_ID_LEN, "%s", text);
				n_pins++;
			}
		}
	}
	if (cJSON_IsObject(node) || cJSON_IsArray(node)) {
		cJSON_ArrayForEach(c, node)
		{
			collect_pins(c);
		}
	}
}

static const char *
pin_of(const char *version)
{
	for (int i = 0; i < n_pins; i++) {
		if (strcmp(pins[i].version, version) == 0) {
			return pins[i].pin;
		}
	}
	return NULL;
}

static struct check_region *
region_of(const char *name)
{
	for (int i = 0; i < n_regions; i++) {
		if (strcmp(regions[i].name, name) == 0) {
			return &regions[i];
		}
	}
	if (n_regions == CHECK_MAX_REGIONS) {
		return NULL;
	}
	memset(&regions[n_regions], 0, sizeof(regions[n_regions]));
	snprintf(regions[n_regions].name, CHECK_ID_LEN, "%s", name);
	return &regions[n_regions++];
}

static int
dep_has(const struct check_dep *d, const char *id)
{
	for (int i = 0; i < d->n; i++) {
		if (strcmp(d->id[i], id) == 0) {
			return 1;
		}
	}
	return 0;
}

static void
dep_print(const struct check_dep *d, FILE *f)
{
	fputc('{', f);
	for (int i = 0; i < d->n; i++) {
		fprintf(f, "%s%s:%d", i ? ", " : "", d->id[i], d->pct[i]);
	}
	fputc('}', f);
}

static int
parse_dep(const cJSON *versions, struct check_dep *d)
{
	const cJSON *v;

	memset(d, 0, sizeof(*d));
	cJSON_ArrayForEach(v, versions)
	{
		const char *id = str_of(v, "version_id");
		const cJSON *pct = cJSON_GetObjectItemCaseSensitive(v, "percentage");

		if (id == NULL || !cJSON_IsNumber(pct) || d->n == CHECK_MAX_DEP) {
			return -1;
		}
		snprintf(d->id[d->n], CHECK_ID_LEN, "%s", id);
		d->pct[d->n] = (int)pct->valuedouble;
		d->n++;
	}
	return d->n > 0 ? 0 : -1;
}

static int
dep_equal(const struct check_dep *a, const struct check_dep *b)
{
	if (a->n != b->n) {
		return 0;
	}
	for (int i = 0; i < a->n; i++) {
		int found = 0;

		for (int k = 0; k < b->n; k++) {
			found |= strcmp(a->id[i], b->id[k]) == 0 && a->pct[i] == b->pct[k];
		}
		if (!found) {
			return 0;
		}
	}
	return 1;
}

/* final_ok: d (what region r ends with) against d0 (what it started with). */
static int
final_ok(const struct check_region *r, const struct check_dep *d, const struct check_dep *d0,
         const char *what, int want_new)
{
	int ok =
	    want_new ? d->n == 1 && d->pct[0] == 100 && !dep_has(d0, d->id[0]) : dep_equal(d, d0);

	if (!ok) {
		fprintf(stderr, "region %s ends with %s ", r->name, what);
		dep_print(d, stderr);
		fprintf(stderr, ", started with ");
		dep_print(d0, stderr);
		fprintf(stderr, ", expected %s\n",
		        want_new ? "one new version at 100%" : "the same deployment");
	}
	return ok;
}

int
main(int argc, char **argv)
{
	cJSON *state = NULL, *tl = NULL;
	const cJSON *events, *e;
	const char *mw, *sv, *final = NULL;
	int rc = 2, n_events = 0, checked = 0;

	if (argc < 5) {
		fprintf(stderr,
		        "usage: %s STATE.json TIMELINE.json MIDDLEWARE SERVER [--final "
		        "initial|new]\n",
		        argv[0]);
		return 2;
	}
	mw = argv[3];
	sv = argv[4];
	for (int i = 5; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--final") == 0 &&
		    (strcmp(argv[i + 1], "initial") == 0 || strcmp(argv[i + 1], "new") == 0)) {
			final = argv[i + 1];
		} else {
			fprintf(stderr, "unknown option %s\n", argv[i]);
			return 2;
		}
	}
	state = read_json(argv[1]);
	tl = read_json(argv[2]);
	if (state == NULL || tl == NULL) {
		goto out;
	}
	collect_pins(state);
	events = cJSON_GetObjectItemCaseSensitive(tl, "events");
	if (!cJSON_IsArray(events)) {
		fprintf(stderr, "%s: no events array\n", argv[2]);
		goto out;
	}
	rc = 1;
	cJSON_ArrayForEach(e, events)
	{
		const char *region = str_of(e, "region");
		const char *worker = str_of(e, "worker");
		struct check_region *r;
		struct check_dep d;

		n_events++;
		if (region == NULL || worker == NULL ||
		    parse_dep(cJSON_GetObjectItemCaseSensitive(e, "versions"), &d) != 0 ||
		    (r = region_of(region)) == NULL) {
			fprintf(stderr, "timeline event %d: malformed\n", n_events);
			rc = 2;
			goto out;
		}
		if (strcmp(worker, sv) == 0) {
			r->server = d;
			if (r->server0.n == 0) {
				r->server0 = d;
			}
		} else if (strcmp(worker, mw) == 0) {
			r->middleware = d;
			if (r->middleware0.n == 0) {
				r->middleware0 = d;
			}
		} else {
			continue;
		}
		r->events++;
		if (r->server.n == 0 || r->middleware.n == 0) {
			continue;
		}
		for (int i = 0; i < r->middleware.n; i++) {
			const char *pin = pin_of(r->middleware.id[i]);

			if (pin == NULL) {
				fprintf(stderr,
				        "event %d, region %s: middleware version %s has no %s "
				        "binding in "
				        "the state\n",
				        n_events, r->name, r->middleware.id[i], CHECK_PIN_VAR);
				goto out;
			}
			if (!dep_has(&r->server, pin)) {
				fprintf(stderr, "SKEW at event %d, region %s: middleware ",
				        n_events, r->name);
				dep_print(&r->middleware, stderr);
				fprintf(stderr, " has %s pinned to %s, server ",
				        r->middleware.id[i], pin);
				dep_print(&r->server, stderr);
				fprintf(stderr, "\n");
				goto out;
			}
		}
		checked++;
	}
	if (n_regions == 0) {
		fprintf(stderr, "timeline: no region events\n");
		goto out;
	}
	for (int i = 0; final != NULL && i < n_regions; i++) {
		int want_new = strcmp(final, "new") == 0;

		if (!final_ok(&regions[i], &regions[i].middleware, &regions[i].middleware0,
		              "middleware", want_new) ||
		    !final_ok(&regions[i], &regions[i].server, &regions[i].server0, "server",
		              want_new)) {
			goto out;
		}
	}
	printf("skew invariant held: %d events, %d states checked, %d regions\n", n_events, checked,
	       n_regions);
	rc = 0;
out:
	cJSON_Delete(state);
	cJSON_Delete(tl);
	return rc;
}
