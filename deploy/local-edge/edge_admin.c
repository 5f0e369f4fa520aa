/*
 * edge_admin.c: state, timeline, region down/up.
 */
#include "edge_admin.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "err.h"
#include "jsonc.h"
#include "log.h"

static void
admin_send(struct evhttp_request *req, int status, cJSON *json)
{
	char *text = json != NULL ? cJSON_PrintUnformatted(json) : NULL;
	struct evbuffer *out = evhttp_request_get_output_buffer(req);

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	if (text == NULL) {
		evbuffer_add_printf(out, "{\"error\":\"out of memory\"}\n");
		evhttp_send_reply(req, HTTP_INTERNAL, NULL, NULL);
	} else {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
		evhttp_send_reply(req, status, NULL, NULL);
	}
	free(text);
	cJSON_Delete(json);
}

static void
admin_error(struct evhttp_request *req, int status, const char *msg)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "error", msg);
	admin_send(req, status, o);
}

static cJSON *
admin_state_json(struct edge_state *st, struct edge_plane *plane)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *ws = cJSON_AddArrayToObject(o, "workers");

	for (int i = 0; ws != NULL && i < st->n_workers; i++) {
		struct edge_worker *w = &st->workers[i];
		cJSON *x = cJSON_CreateObject();
		cJSON *vs, *ds;
		const struct edge_deployment *cur = edge_state_current(w);

		if (x == NULL) {
			break;
		}
		cJSON_AddItemToArray(ws, x);
		cJSON_AddStringToObject(x, "name", w->name);
		cJSON_AddStringToObject(x, "migration_tag", w->migration_tag);
		vs = cJSON_AddArrayToObject(x, "versions");
		for (int j = w->n_versions - 1; vs != NULL && j >= 0; j--) {
			const struct edge_version *v = &w->versions[j];
			cJSON *y = cJSON_CreateObject();
			char when[40];

			if (y == NULL) {
				break;
			}
			edge_state_iso(v->created_ms, when, sizeof(when));
			cJSON_AddStringToObject(y, "id", v->id);
			cJSON_AddNumberToObject(y, "number", v->number);
			cJSON_AddStringToObject(y, "created_on", when);
			cJSON_AddItemToObject(
			    y, "annotations",
			    cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(v->rec, "annotations"),
			                    1));
			cJSON_AddItemToObject(y, "bindings", cJSON_Duplicate(v->bindings, 1));
			cJSON_AddItemToObject(
			    y, "modules",
			    cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(v->rec, "modules"),
			                    1));
			cJSON_AddItemToArray(vs, y);
		}
		if (cur != NULL) {
			cJSON_AddItemToObject(x, "deployment", edge_state_deployment_json(cur));
		} else {
			cJSON_AddNullToObject(x, "deployment");
		}
		ds = cJSON_AddArrayToObject(x, "deployments");
		for (int j = w->n_deps - 1; ds != NULL && j >= 0; j--) {
			cJSON_AddItemToArray(ds, edge_state_deployment_json(&w->deps[j]));
		}
	}
	cJSON_AddItemToObject(o, "regions", edge_plane_regions_json(plane));
	return o;
}

static cJSON *
admin_faults_json(const struct edge_api_faults *f)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "status", f->status);
	cJSON_AddNumberToObject(o, "count", f->remaining);
	cJSON_AddNumberToObject(o, "retry_after_s", f->retry_after_s);
	return o;
}

/* admin_int: an optional whole-number field of o within lo..hi. */
static int
admin_int(const cJSON *o, const char *field, int lo, int hi, int *out, char *err, size_t errlen)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, field);

	if (x == NULL) {
		return 0;
	}
	if (!cJSON_IsNumber(x) || x->valuedouble != (double)x->valueint || x->valueint < lo ||
	    x->valueint > hi) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected a whole number %d..%d",
		                   field, lo, hi);
	}
	*out = x->valueint;
	return 0;
}

static void
admin_api_faults(struct evhttp_request *req, struct edge_api_faults *faults)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct edge_api_faults f = {.status = 0, .remaining = 0, .retry_after_s = 1};
	char err[CANARY_ERRLEN];
	size_t len = evbuffer_get_length(in);
	cJSON *body = NULL;

	if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
		admin_send(req, HTTP_OK, admin_faults_json(faults));
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, POST");
		admin_error(req, 405, "method not allowed: use GET or POST");
		return;
	}
	if (len == 0 ||
	    canary_json_parse_exact((const char *)evbuffer_pullup(in, -1), len, &body, err,
	                            sizeof(err)) != 0 ||
	    !cJSON_IsObject(body)) {
		admin_error(req, HTTP_BADREQUEST,
		            "body: expected {\"status\":N,\"count\":N,\"retry_after_s\":N}");
		goto out;
	}
	if (admin_int(body, "status", 400, 599, &f.status, err, sizeof(err)) != 0 ||
	    admin_int(body, "count", 0, EDGE_API_FAULT_MAX_COUNT, &f.remaining, err, sizeof(err)) !=
	        0 ||
	    admin_int(body, "retry_after_s", 0, EDGE_API_FAULT_MAX_RETRY_S, &f.retry_after_s, err,
	              sizeof(err)) != 0) {
		admin_error(req, HTTP_BADREQUEST, err);
		goto out;
	}
	if (f.remaining > 0 && f.status == 0) {
		admin_error(req, HTTP_BADREQUEST,
		            "status: expected 400..599 when count is above 0");
		goto out;
	}
	*faults = f;
	admin_send(req, HTTP_OK, admin_faults_json(faults));
out:
	cJSON_Delete(body);
}

void
edge_admin_handle(struct evhttp_request *req, const char *path, struct edge_state *st,
                  struct edge_plane *plane, struct edge_api_faults *faults)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const char *rest = path + strlen(EDGE_ADMIN_PREFIX);

	if (strcmp(rest, "state") == 0 || strcmp(rest, "timeline") == 0) {
		if (m != EVHTTP_REQ_GET) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
			admin_error(req, 405, "method not allowed: use GET");
			return;
		}
		admin_send(req, HTTP_OK,
		           rest[0] == 's' ? admin_state_json(st, plane)
		                          : edge_plane_timeline_json(plane));
		return;
	}
	if (strcmp(rest, "api-faults") == 0) {
		admin_api_faults(req, faults);
		return;
	}
	if (strncmp(rest, "regions/", 8) == 0) {
		const char *name = rest + 8;
		const char *slash = strchr(name, '/');
		char region[EDGE_NAME_MAX];
		int down;

		if (slash == NULL || slash == name || (size_t)(slash - name) >= sizeof(region) ||
		    (strcmp(slash, "/down") != 0 && strcmp(slash, "/up") != 0)) {
			admin_error(req, HTTP_NOTFOUND,
			            "no route: expected /__edge/regions/NAME/down or /up");
			return;
		}
		if (m != EVHTTP_REQ_POST) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
			admin_error(req, 405, "method not allowed: use POST");
			return;
		}
		memcpy(region, name, (size_t)(slash - name));
		region[slash - name] = '\0';
		down = strcmp(slash, "/down") == 0;
		if (edge_plane_set_down(plane, region, down) != 0) {
			admin_error(req, HTTP_NOTFOUND, "unknown region");
			return;
		}
		canary_logf(CANARY_LOG_INFO, down ? "region_down" : "region_up", "region %s",
		            region);
		{
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "region", region);
			cJSON_AddBoolToObject(o, "down", down);
			admin_send(req, HTTP_OK, o);
		}
		return;
	}
	admin_error(
	    req, HTTP_NOTFOUND,
	    "no route: expected /__edge/state, /__edge/timeline or /__edge/regions/NAME/down|up");
}
