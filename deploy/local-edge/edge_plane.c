/*
 * edge_plane.c: region listeners, propagation, ISR cache, faults.
 */
#include "edge_plane.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "err.h"

#define PLANE_BODY_MAX       512
#define PLANE_PREVIEW_COOKIE "__prerender_bypass" /* Next's draft-mode cookie */
#define PLANE_N_WORKERS      2                    /* index 0: middleware, 1: server */
#define PLANE_MW             0
#define PLANE_SRV            1

/* What a region sees of one worker: a copy of a deployment, with each
 * version's index into the worker's (append-only) version array and the
 * facts the plane needs from its bindings, read once when it arrives. */
struct plane_dep {
	char id[EDGE_UUID_LEN];
	int n;
	struct {
		char version_id[EDGE_UUID_LEN];
		int percentage;
		int number;
		struct edge_faults faults; /* for this region */
		char pin[EDGE_UUID_LEN];   /* middleware: WORKER_VERSION_ID ("" none) */
		char build[EDGE_TAG_MAX];  /* the ISR cache's build id: a server version's
		                            * NEXT_BUILD_ID or id; a middleware version's
		                            * pinned server version's */
	} v[EDGE_DEPLOY_MAX_VERSIONS];
};

struct plane_pending {
	int64_t due_ms; /* monotonic */
	int worker;
	struct plane_dep dep;
};

struct plane_cache_entry {
	char build[EDGE_TAG_MAX];
	char path[EDGE_PATH_MAX];
	char body[PLANE_BODY_MAX];
	int64_t stored_ms; /* monotonic */
};

struct plane_region {
	struct edge_plane *plane;
	struct edge_region_spec spec;
	struct evhttp *http;
	int port;
	int down;
	struct plane_dep seen[PLANE_N_WORKERS];
	struct plane_pending *pending; /* a ring of EDGE_PENDING_MAX */
	int p_head, p_len;
	struct event *timer;
	struct plane_cache_entry *cache; /* a ring of EDGE_ISR_CACHE_MAX */
	int c_next, c_len;
};

struct plane_event {
	int64_t t_ms; /* wall clock */
	int region;
	int worker;
	struct plane_dep dep;
};

struct edge_plane {
	struct event_base *base;
	struct edge_state *st;
	struct edge_rng *rng;
	struct edge_plane_config cfg;
	struct plane_region *regions;
	int n_regions;
	struct plane_event *events;
	int n_events, cap_events;
	uint64_t dropped_events;
};

/* A reply waiting for injected latency. */
struct plane_delayed {
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	struct event *timer;
	int status;
};

static int64_t
plane_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
edge_plane_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
plane_worker_name(const struct edge_plane *p, int w)
{
	return w == PLANE_MW ? p->cfg.middleware : p->cfg.server;
}

/* plane_build_of: the build id of server version v (NULL: fallback). */
static void
plane_build_of(const struct edge_version *v, const char *fallback, char *out, size_t n)
{
	const char *b = v != NULL ? edge_binding_text(v->bindings, EDGE_BUILD_ID_VAR) : NULL;

	if (b == NULL || strlen(b) >= n) {
		b = v != NULL ? v->id : fallback;
	}
	snprintf(out, n, "%s", b);
}

/* plane_snapshot: the current deployment of worker w as region r will see
 * it (faults are read for r). */
static void
plane_snapshot(struct edge_plane *p, int w, const char *region, struct plane_dep *out)
{
	struct edge_worker *wk = edge_state_worker(p->st, plane_worker_name(p, w));
	const struct edge_deployment *d = wk != NULL ? edge_state_current(wk) : NULL;
	char err[CANARY_ERRLEN];

	memset(out, 0, sizeof(*out));
	if (d == NULL) {
		return;
	}
	snprintf(out->id, sizeof(out->id), "%s", d->id);
	out->n = d->n;
	for (int i = 0; i < d->n; i++) {
		struct edge_version *v = edge_state_find_version(wk, d->v[i].version_id);
		const char *s;

		snprintf(out->v[i].version_id, sizeof(out->v[i].version_id), "%s",
		         d->v[i].version_id);
		out->v[i].percentage = d->v[i].percentage;
		if (v == NULL) {
			continue;
		}
		out->v[i].number = v->number;
		/* Bindings were checked at upload; a failure here leaves no faults. */
		if (edge_faults_parse(v->bindings, region, &out->v[i].faults, err, sizeof(err)) !=
		    0) {
			memset(&out->v[i].faults, 0, sizeof(out->v[i].faults));
		}
		s = edge_binding_text(v->bindings, EDGE_PIN_VAR);
		snprintf(out->v[i].pin, sizeof(out->v[i].pin), "%s",
		         s != NULL && strlen(s) < sizeof(out->v[i].pin) ? s : "");
		if (w == PLANE_MW) {
			/* The build the middleware was made with: its pinned server
			 * version's (the pin itself when no such version exists). */
			struct edge_worker *sw = edge_state_worker(p->st, p->cfg.server);
			struct edge_version *sv = sw != NULL && out->v[i].pin[0] != '\0'
			                              ? edge_state_find_version(sw, out->v[i].pin)
			                              : NULL;

			plane_build_of(sv, out->v[i].pin[0] != '\0' ? out->v[i].pin : "none",
			               out->v[i].build, sizeof(out->v[i].build));
		} else {
			plane_build_of(v, v->id, out->v[i].build, sizeof(out->v[i].build));
		}
	}
}

static void
plane_record(struct edge_plane *p, int region, int worker, const struct plane_dep *dep)
{
	struct plane_event *e;

	if (p->n_events >= EDGE_TIMELINE_MAX) {
		p->dropped_events++;
		return;
	}
	if (p->n_events == p->cap_events) {
		int cap = p->cap_events == 0 ? 64 : p->cap_events * 2;
		struct plane_event *ne;

		if (cap > EDGE_TIMELINE_MAX) {
			cap = EDGE_TIMELINE_MAX;
		}
		ne = realloc(p->events, (size_t)cap * sizeof(*ne));
		if (ne == NULL) {
			p->dropped_events++;
			return;
		}
		p->events = ne;
		p->cap_events = cap;
	}
	e = &p->events[p->n_events++];
	e->t_ms = edge_plane_wall_ms();
	e->region = region;
	e->worker = worker;
	e->dep = *dep;
}

static void
plane_apply(struct plane_region *r, int worker, const struct plane_dep *dep)
{
	r->seen[worker] = *dep;
	plane_record(r->plane, (int)(r - r->plane->regions), worker, dep);
}

static void
plane_arm(struct plane_region *r)
{
	int64_t wait;
	struct timeval tv;

	if (r->p_len == 0) {
		return;
	}
	wait = r->pending[r->p_head].due_ms - plane_mono_ms();
	if (wait < 0) {
		wait = 0;
	}
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)((wait % 1000) * 1000);
	evtimer_add(r->timer, &tv);
}

/* plane_due: applies every pending change whose time has come, in order. */
static void
plane_due(evutil_socket_t fd, short what, void *arg)
{
	struct plane_region *r = arg;
	int64_t now = plane_mono_ms();

	(void)fd;
	(void)what;
	while (r->p_len > 0 && r->pending[r->p_head].due_ms <= now) {
		struct plane_pending *x = &r->pending[r->p_head];

		plane_apply(r, x->worker, &x->dep);
		r->p_head = (r->p_head + 1) % EDGE_PENDING_MAX;
		r->p_len--;
	}
	plane_arm(r);
}

void
edge_plane_publish(struct edge_plane *p, const char *worker)
{
	int w;

	if (strcmp(worker, p->cfg.middleware) == 0) {
		w = PLANE_MW;
	} else if (strcmp(worker, p->cfg.server) == 0) {
		w = PLANE_SRV;
	} else {
		return;
	}
	for (int i = 0; i < p->n_regions; i++) {
		struct plane_region *r = &p->regions[i];
		struct plane_pending *x;

		if (r->spec.delay_ms == 0 && r->p_len == 0) {
			struct plane_dep dep;

			plane_snapshot(p, w, r->spec.name, &dep);
			plane_apply(r, w, &dep);
			continue;
		}
		if (r->p_len == EDGE_PENDING_MAX) {
			/* Full: the oldest waiting change is applied early rather than lost,
			 * so the region still ends on the newest deployment in order. */
			plane_apply(r, r->pending[r->p_head].worker, &r->pending[r->p_head].dep);
			r->p_head = (r->p_head + 1) % EDGE_PENDING_MAX;
			r->p_len--;
		}
		x = &r->pending[(r->p_head + r->p_len) % EDGE_PENDING_MAX];
		x->due_ms = plane_mono_ms() + r->spec.delay_ms;
		x->worker = w;
		plane_snapshot(p, w, r->spec.name, &x->dep);
		r->p_len++;
		if (!evtimer_pending(r->timer, NULL)) {
			plane_arm(r);
		}
	}
}

/* ---- the ISR cache ------------------------------------------------------- */

static struct plane_cache_entry *
plane_cache_find(struct plane_region *r, const char *build, const char *path)
{
	for (int i = 0; i < r->c_len; i++) {
		struct plane_cache_entry *e = &r->cache[i];

		if (strcmp(e->path, path) == 0 && strcmp(e->build, build) == 0) {
			return e;
		}
	}
	return NULL;
}

static void
plane_cache_store(struct plane_region *r, const char *build, const char *path, const char *body)
{
	struct plane_cache_entry *e = plane_cache_find(r, build, path);

	if (e == NULL) {
		e = &r->cache[r->c_next];
		r->c_next = (r->c_next + 1) % EDGE_ISR_CACHE_MAX;
		if (r->c_len < EDGE_ISR_CACHE_MAX) {
			r->c_len++;
		}
	}
	snprintf(e->build, sizeof(e->build), "%s", build);
	snprintf(e->path, sizeof(e->path), "%s", path);
	snprintf(e->body, sizeof(e->body), "%s", body);
	e->stored_ms = plane_mono_ms();
}

/* ---- requests ------------------------------------------------------------ */

static void
plane_delayed_free(struct plane_delayed *d)
{
	if (d == NULL) {
		return;
	}
	if (d->timer != NULL) {
		event_free(d->timer);
	}
	free(d);
}

/* The client went away while its answer waited: drop the answer. */
static void
plane_delayed_closed(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	plane_delayed_free(arg);
}

static void
plane_delayed_fire(evutil_socket_t fd, short what, void *arg)
{
	struct plane_delayed *d = arg;

	(void)fd;
	(void)what;
	evhttp_connection_set_closecb(d->conn, NULL, NULL);
	evhttp_send_reply(d->req, d->status, NULL, NULL);
	plane_delayed_free(d);
}

/* plane_send: answers now, or after latency_ms (headers and body are
 * already on req). */
static void
plane_send(struct edge_plane *p, struct evhttp_request *req, int status, int latency_ms)
{
	struct plane_delayed *d;
	struct timeval tv;

	if (latency_ms <= 0) {
		evhttp_send_reply(req, status, NULL, NULL);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (d != NULL) {
		d->timer = evtimer_new(p->base, plane_delayed_fire, d);
	}
	if (d == NULL || d->timer == NULL) {
		plane_delayed_free(d);
		evhttp_send_reply(req, status, NULL, NULL); /* no memory: answer without delay */
		return;
	}
	d->req = req;
	d->conn = evhttp_request_get_connection(req);
	d->status = status;
	evhttp_connection_set_closecb(d->conn, plane_delayed_closed, d);
	tv.tv_sec = latency_ms / 1000;
	tv.tv_usec = (latency_ms % 1000) * 1000;
	evtimer_add(d->timer, &tv);
}

static int
plane_is_isr(const struct edge_plane *p, const char *path)
{
	for (int i = 0; i < p->cfg.n_isr; i++) {
		if (strcmp(p->cfg.isr_paths[i], path) == 0) {
			return 1;
		}
	}
	return 0;
}

static void
plane_split(const struct plane_dep *d, struct edge_split *s)
{
	memset(s, 0, sizeof(*s));
	s->n = d->n;
	for (int i = 0; i < d->n; i++) {
		s->v[i].id = d->v[i].version_id;
		s->v[i].percentage = d->v[i].percentage;
		s->v[i].number = d->v[i].number;
	}
}

/* plane_fault_status: the status a version's faults force on this answer,
 * or 0 for none. */
static int
plane_fault_status(struct edge_plane *p, const struct edge_faults *f)
{
	if (f->status != 0) {
		return f->status;
	}
	if (f->error_rate > 0 && edge_rng_unit(p->rng) < f->error_rate) {
		return HTTP_INTERNAL;
	}
	return 0;
}

/* plane_from_cache: the middleware's cache interception. Answers req from
 * region r's cache and returns 1 on a hit (HIT, or STALE past the revalidate
 * time, which refreshes the entry as the queued revalidation would); 0 on a
 * miss, with nothing written. */
static int
plane_from_cache(struct plane_region *r, struct evhttp_request *req, const char *build,
                 const char *path, int latency_ms)
{
	struct edge_plane *p = r->plane;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct plane_cache_entry *e = plane_cache_find(r, build, path);
	int64_t age, ttl = (int64_t)p->cfg.revalidate_s * 1000;
	char cc[96];

	if (e == NULL) {
		return 0;
	}
	age = plane_mono_ms() - e->stored_ms;
	if (age >= ttl) {
		evhttp_add_header(out, EDGE_H_CACHE, "STALE");
		snprintf(cc, sizeof(cc), "s-maxage=1, stale-while-revalidate=%d", EDGE_SWR_S);
		e->stored_ms = plane_mono_ms();
	} else {
		evhttp_add_header(out, EDGE_H_CACHE, "HIT");
		snprintf(cc, sizeof(cc), "s-maxage=%lld, stale-while-revalidate=%d",
		         (long long)((ttl - age) / 1000), EDGE_SWR_S);
	}
	evhttp_add_header(out, "Cache-Control", cc);
	evbuffer_add(evhttp_request_get_output_buffer(req), e->body, strlen(e->body));
	plane_send(p, req, HTTP_OK, latency_ms);
	return 1;
}

/* plane_pick_server: the server version the middleware version m reaches.
 * The middleware sends `<server>="<pin>"` (or, with its faults, no override,
 * which passes the client's header on, or one under the wrong key); the
 * platform applies it only when the key is the server's name and the
 * version is deployed, else the split decides, silently. */
static int
plane_pick_server(struct edge_plane *p, const struct plane_dep *srv, const struct plane_dep *mw,
                  int m, const char *client_ovr, const char *key)
{
	const struct edge_faults *mf = &mw->v[m].faults;
	const char *sent = client_ovr;
	char built[EDGE_NAME_MAX + EDGE_UUID_LEN + 8];
	char ovr[EDGE_UUID_LEN];
	struct edge_split split;

	if (!mf->ignore_pin && mw->v[m].pin[0] != '\0') {
		snprintf(built, sizeof(built), "%s=\"%s\"",
		         mf->override_key[0] != '\0' ? mf->override_key : p->cfg.server,
		         mw->v[m].pin);
		sent = built;
	}
	plane_split(srv, &split);
	return edge_route_pick(
	    &split, edge_route_override(sent, p->cfg.server, ovr, sizeof(ovr)) ? ovr : NULL, key,
	    edge_rng_next(p->rng));
}

/* plane_intercepts: whether OpenNext's cache interception may answer a
 * request with these headers: not a server action (next-action), not an
 * on-demand revalidation (x-prerender-revalidate), not in draft mode (the
 * preview cookie). Those go to the server, which does not cache them. */
static int
plane_intercepts(struct evkeyvalq *in)
{
	const char *cookie = evhttp_find_header(in, "Cookie");

	return evhttp_find_header(in, "next-action") == NULL &&
	       evhttp_find_header(in, "x-prerender-revalidate") == NULL &&
	       (cookie == NULL || strstr(cookie, PLANE_PREVIEW_COOKIE "=") == NULL);
}

/* plane_overrides: the Cloudflare-Workers-Version-Overrides field of in,
 * its lines joined with ", " into buf (one dictionary, RFC 9110 5.3); NULL
 * when absent, or longer than the edge reads (then it is ignored whole, like
 * any dictionary the platform cannot parse). */
static const char *
plane_overrides(struct evkeyvalq *in, char *buf, size_t len)
{
	struct evkeyval *h;
	size_t n = 0;

	TAILQ_FOREACH(h, in, next)
	{
		size_t vlen;

		if (strcasecmp(h->key, EDGE_H_OVERRIDES) != 0) {
			continue;
		}
		vlen = strlen(h->value);
		if (n + (n > 0 ? 2 : 0) + vlen >= len) {
			return NULL;
		}
		if (n > 0) {
			memcpy(buf + n, ", ", 2);
			n += 2;
		}
		memcpy(buf + n, h->value, vlen + 1);
		n += vlen;
	}
	return n > 0 ? buf : NULL;
}

/* plane_request: one request in a region: middleware pick and faults, the
 * cache, the server pick and faults, the answer (see edge_plane.h). */
static void
plane_request(struct evhttp_request *req, void *arg)
{
	struct plane_region *r = arg;
	struct edge_plane *p = r->plane;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *body = evhttp_request_get_output_buffer(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *key = evhttp_find_header(in, EDGE_H_VERSION_KEY);
	char ovr_field[EDGE_OVERRIDE_HEADER_MAX];
	const char *client_ovr = plane_overrides(in, ovr_field, sizeof(ovr_field));
	const struct plane_dep *mw = &r->seen[PLANE_MW];
	const struct plane_dep *srv = &r->seen[PLANE_SRV];
	char ray[EDGE_RAY_LEN + EDGE_NAME_MAX + 2];
	char ovr[EDGE_UUID_LEN];
	char text[PLANE_BODY_MAX];
	struct edge_split split;
	int latency = 0, status, mi, si, isr;

	if (path == NULL || path[0] == '\0') {
		path = "/";
	}
	snprintf(ray, sizeof(ray), "%016llx-%s", (unsigned long long)edge_rng_next(p->rng),
	         r->spec.name);
	evhttp_add_header(out, EDGE_H_RAY, ray);
	evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
	if (r->down) {
		evbuffer_add_printf(body, "region %s is down\n", r->spec.name);
		evhttp_send_reply(req, HTTP_SERVUNAVAIL, "Service Unavailable", NULL);
		return;
	}
	if (mw->n == 0 || srv->n == 0) {
		evbuffer_add_printf(body, "worker %s has no deployment in region %s\n",
		                    mw->n == 0 ? p->cfg.middleware : p->cfg.server, r->spec.name);
		evhttp_send_reply(req, HTTP_SERVUNAVAIL, "Service Unavailable", NULL);
		return;
	}

	/* 1. The middleware version: a client override for it, the key, the split;
	 * then its faults. */
	plane_split(mw, &split);
	mi = edge_route_pick(
	    &split,
	    edge_route_override(client_ovr, p->cfg.middleware, ovr, sizeof(ovr)) ? ovr : NULL, key,
	    edge_rng_next(p->rng));
	evhttp_add_header(out, EDGE_H_MIDDLEWARE, mw->v[mi].version_id);
	latency += mw->v[mi].faults.latency_ms;
	status = plane_fault_status(p, &mw->v[mi].faults);
	if (status != 0) {
		evbuffer_add_printf(body, "fault in middleware %s: status %d\n",
		                    mw->v[mi].version_id, status);
		plane_send(p, req, status, latency);
		return;
	}

	/* 2. The cache, keyed by the build the middleware is pinned to. */
	isr = plane_is_isr(p, path) && plane_intercepts(in);
	if (isr && !mw->v[mi].faults.no_cache &&
	    plane_from_cache(r, req, mw->v[mi].build, path, latency)) {
		return;
	}

	/* 3. The server, then its faults. */
	si = plane_pick_server(p, srv, mw, mi, client_ovr, key);
	evhttp_add_header(out, EDGE_H_SERVER, srv->v[si].version_id);
	latency += srv->v[si].faults.latency_ms;
	status = plane_fault_status(p, &srv->v[si].faults);
	if (status != 0) {
		evbuffer_add_printf(body, "fault in server %s: status %d\n", srv->v[si].version_id,
		                    status);
		plane_send(p, req, status, latency);
		return;
	}
	snprintf(text, sizeof(text), "ok middleware=%s server=%s region=%s path=%.200s\n",
	         mw->v[mi].version_id, srv->v[si].version_id, r->spec.name, path);
	if (isr) {
		/* The server renders and writes the incremental cache under its own
		 * build: the pinned one when the pin was honoured. */
		evhttp_add_header(out, EDGE_H_NEXT_CACHE, "MISS");
		plane_cache_store(r, srv->v[si].build, path, text);
	}
	evbuffer_add(body, text, strlen(text));
	plane_send(p, req, HTTP_OK, latency);
}

/* ---- set-up and admin ---------------------------------------------------- */

int
edge_plane_new(struct event_base *base, struct edge_state *st, struct edge_rng *rng,
               const struct edge_plane_config *cfg, const struct edge_region_spec *regions,
               int n_regions, struct edge_plane **pp, char *err, size_t errlen)
{
	struct edge_plane *p = calloc(1, sizeof(*p));
	int rv = 0;

	*pp = NULL;
	if (p == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	p->base = base;
	p->st = st;
	p->rng = rng;
	p->cfg = *cfg;
	p->regions = calloc((size_t)(n_regions > 0 ? n_regions : 1), sizeof(*p->regions));
	if (p->regions == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < n_regions; i++) {
		struct plane_region *r = &p->regions[i];
		struct evhttp_bound_socket *h;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		p->n_regions = i + 1;
		r->plane = p;
		r->spec = regions[i];
		r->http = evhttp_new(base);
		r->timer = evtimer_new(base, plane_due, r);
		r->pending = calloc(EDGE_PENDING_MAX, sizeof(*r->pending));
		r->cache = calloc(EDGE_ISR_CACHE_MAX, sizeof(*r->cache));
		if (r->http == NULL || r->timer == NULL || r->pending == NULL || r->cache == NULL) {
			rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
			goto out;
		}
		evhttp_set_max_body_size(r->http, EDGE_PLANE_MAX_BODY);
		evhttp_set_max_headers_size(r->http, EDGE_PLANE_MAX_HEADERS);
		evhttp_set_allowed_methods(
		    r->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
		                 EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
		evhttp_set_gencb(r->http, plane_request, r);
		h = evhttp_bind_socket_with_handle(r->http, r->spec.addr,
		                                   (ev_uint16_t)r->spec.port);
		if (h == NULL) {
			rv = canary_errf(err, errlen, CANARY_EIO,
			                 "--region %s: cannot listen on %s:%d", r->spec.name,
			                 r->spec.addr, r->spec.port);
			goto out;
		}
		if (getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&ss, &sl) != 0) {
			rv = canary_errf(err, errlen, CANARY_EIO, "--region %s: getsockname failed",
			                 r->spec.name);
			goto out;
		}
		r->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
		                                   : ntohs(((struct sockaddr_in *)&ss)->sin_port);
		for (int w = 0; w < PLANE_N_WORKERS; w++) {
			struct plane_dep dep;

			plane_snapshot(p, w, r->spec.name, &dep);
			plane_apply(r, w, &dep);
		}
	}
	*pp = p;
	p = NULL;
out:
	edge_plane_free(p);
	return rv;
}

void
edge_plane_free(struct edge_plane *p)
{
	if (p == NULL) {
		return;
	}
	for (int i = 0; i < p->n_regions; i++) {
		struct plane_region *r = &p->regions[i];

		if (r->http != NULL) {
			evhttp_free(r->http);
		}
		if (r->timer != NULL) {
			event_free(r->timer);
		}
		free(r->pending);
		free(r->cache);
	}
	free(p->regions);
	free(p->events);
	free(p);
}

int
edge_plane_n_regions(const struct edge_plane *p)
{
	return p->n_regions;
}

const char *
edge_plane_region_name(const struct edge_plane *p, int i)
{
	return p->regions[i].spec.name;
}

int
edge_plane_region_port(const struct edge_plane *p, int i)
{
	return p->regions[i].port;
}

int
edge_plane_set_down(struct edge_plane *p, const char *name, int down)
{
	for (int i = 0; i < p->n_regions; i++) {
		if (strcmp(p->regions[i].spec.name, name) == 0) {
			p->regions[i].down = down;
			return 0;
		}
	}
	return CANARY_ENOENT;
}

static cJSON *
plane_dep_json(const struct plane_dep *d)
{
	cJSON *o = cJSON_CreateObject();
	struct edge_split split;

	if (o == NULL) {
		return NULL;
	}
	if (d->n == 0) {
		cJSON_AddNullToObject(o, "deployment_id");
	} else {
		cJSON_AddStringToObject(o, "deployment_id", d->id);
	}
	plane_split(d, &split);
	cJSON_AddItemToObject(o, "versions", edge_route_versions_json(&split));
	return o;
}

cJSON *
edge_plane_regions_json(const struct edge_plane *p)
{
	cJSON *a = cJSON_CreateArray();

	for (int i = 0; a != NULL && i < p->n_regions; i++) {
		const struct plane_region *r = &p->regions[i];
		cJSON *o = cJSON_CreateObject();
		cJSON *deps;

		if (o == NULL) {
			break;
		}
		cJSON_AddItemToArray(a, o);
		cJSON_AddStringToObject(o, "name", r->spec.name);
		cJSON_AddNumberToObject(o, "port", r->port);
		cJSON_AddBoolToObject(o, "down", r->down);
		cJSON_AddNumberToObject(o, "delay_ms", r->spec.delay_ms);
		cJSON_AddNumberToObject(o, "pending", r->p_len);
		cJSON_AddNumberToObject(o, "cache_entries", r->c_len);
		deps = cJSON_AddObjectToObject(o, "deployments");
		for (int w = 0; deps != NULL && w < PLANE_N_WORKERS; w++) {
			cJSON_AddItemToObject(deps, plane_worker_name(p, w),
			                      plane_dep_json(&r->seen[w]));
		}
	}
	return a;
}

cJSON *
edge_plane_timeline_json(const struct edge_plane *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *a;

	if (o == NULL || (a = cJSON_AddArrayToObject(o, "events")) == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	for (int i = 0; i < p->n_events; i++) {
		const struct plane_event *e = &p->events[i];
		cJSON *x = plane_dep_json(&e->dep);

		if (x == NULL) {
			cJSON_Delete(o);
			return NULL;
		}
		cJSON_AddNumberToObject(x, "t_ms", (double)e->t_ms);
		cJSON_AddStringToObject(x, "region", p->regions[e->region].spec.name);
		cJSON_AddStringToObject(x, "worker", plane_worker_name(p, e->worker));
		cJSON_AddItemToArray(a, x);
	}
	cJSON_AddNumberToObject(o, "dropped", (double)p->dropped_events);
	return o;
}
