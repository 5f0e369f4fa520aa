/*
 * gate.c: merging a round's reports per region and judging them.
 */
#include "gate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define GATE_MS_PER_US         1000.0
#define GATE_AGENT_SET_INITIAL 64 /* slots; doubled when half full */

/* One required region and what its reports added up to. */
struct gate_region_state {
	struct gate_region req;
	struct canary_report merged; /* targets owned, in probe order */
	int agents;
	int partial;
	/* Only in a round from gate_baseline_decode: p95 and p99 in ms of each
	 * merged target, in place of its (empty) latency histogram. */
	double (*base_ms)[2];
};

struct gate_round {
	uint64_t round;
	char rollout_id[CANARY_ID_LEN];
	struct canary_target targets[CANARY_MAX_TARGETS];
	int n_targets;
	struct canary_expect expect;
	struct canary_override override;
	uint32_t version_keys;
	struct gate_region_state *regions; /* n_regions */
	int n_regions;
	/* The agent ids merged this round: an open-addressing set of fixed-size
	 * slots ("" empty), so a thousand agents cost no quadratic search. */
	char (*agents)[CANARY_ID_LEN];
	size_t agents_cap, n_agents;
	struct gate_rejects rejects;
};

void
gate_policy_default(struct gate_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->max_error_rate = GATE_DEFAULT_MAX_ERROR_RATE;
	p->max_p95_ms = GATE_DEFAULT_MAX_P95_MS;
	p->max_p99_ms = GATE_DEFAULT_MAX_P99_MS;
	p->max_latency_ratio = GATE_DEFAULT_MAX_LATENCY_RATIO;
	p->min_isr_hit_ratio = GATE_DEFAULT_MIN_ISR_HIT_RATIO;
	p->failure_limit = GATE_DEFAULT_FAILURE_LIMIT;
	p->inconclusive_limit = GATE_DEFAULT_INCONCLUSIVE_LIMIT;
	p->max_failed_regions = GATE_DEFAULT_MAX_FAILED_REGIONS;
	p->share_z = GATE_DEFAULT_SHARE_Z;
	p->share_floor = GATE_DEFAULT_SHARE_FLOOR;
}

const char *
gate_result_name(enum gate_result r)
{
	switch (r) {
	case GATE_PASS:
		return "PASS";
	case GATE_FAIL:
		return "FAIL";
	case GATE_INCONCLUSIVE:
		return "INCONCLUSIVE";
	}
	return "UNKNOWN";
}

int
gate_round_new(const struct canary_probe *probe, const struct gate_region *regions, int n_regions,
               struct gate_round **rp, char *err, size_t errlen)
{
	struct gate_round *r = NULL;
	int rv = 0;

	*rp = NULL;
	if (n_regions < 1 || n_regions > GATE_MAX_REGIONS) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "regions: expected 1..%d required regions, got %d",
		                   GATE_MAX_REGIONS, n_regions);
	}
	if (probe->n_targets < 1 || probe->n_targets > CANARY_MAX_TARGETS) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "probe: expected 1..%d targets, got %d", CANARY_MAX_TARGETS,
		                   probe->n_targets);
	}
	for (int i = 0; i < n_regions; i++) {
		if (regions[i].name[0] == '\0' || regions[i].min_agents < 1) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "regions[%d]: expected a name and min_agents >= 1, got "
			                   "\"%s\" with %d",
			                   i, regions[i].name, regions[i].min_agents);
		}
		for (int j = 0; j < i; j++) {
			if (strcmp(regions[i].name, regions[j].name) == 0) {
				return canary_errf(err, errlen, CANARY_EINVAL,
				                   "regions[%d]: \"%s\" is also regions[%d]", i,
				                   regions[i].name, j);
			}
		}
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		rv = CANARY_ENOMEM;
		goto out;
	}
	r->round = probe->round;
	snprintf(r->rollout_id, sizeof(r->rollout_id), "%s", probe->rollout_id);
	memcpy(r->targets, probe->targets, (size_t)probe->n_targets * sizeof(r->targets[0]));
	r->n_targets = probe->n_targets;
	r->expect = probe->expect;
	r->override = probe->override;
	r->version_keys = probe->version_keys;
	if ((r->regions = calloc((size_t)n_regions, sizeof(r->regions[0]))) == NULL) {
		rv = CANARY_ENOMEM;
		goto out;
	}
	r->n_regions = n_regions;
	for (int i = 0; i < n_regions; i++) {
		struct gate_region_state *g = &r->regions[i];
		g->req = regions[i];
		g->merged.proto_version = CANARY_PROTO_VERSION;
		g->merged.round = probe->round;
		snprintf(g->merged.region, sizeof(g->merged.region), "%s", regions[i].name);
		snprintf(g->merged.rollout_id, sizeof(g->merged.rollout_id), "%s",
		         probe->rollout_id);
		g->merged.targets = calloc((size_t)probe->n_targets, sizeof(g->merged.targets[0]));
		if (g->merged.targets == NULL) {
			rv = CANARY_ENOMEM;
			goto out;
		}
		g->merged.n_targets = probe->n_targets;
		for (int t = 0; t < probe->n_targets; t++) {
			snprintf(g->merged.targets[t].id, sizeof(g->merged.targets[t].id), "%s",
			         probe->targets[t].id);
			canary_hist_init(&g->merged.targets[t].latency);
		}
	}
	r->agents_cap = GATE_AGENT_SET_INITIAL;
	if ((r->agents = calloc(r->agents_cap, sizeof(r->agents[0]))) == NULL) {
		rv = CANARY_ENOMEM;
		goto out;
	}
	*rp = r;
	r = NULL;
out:
	gate_round_free(r);
	if (rv != 0) {
		canary_errf(err, errlen, rv, "round: %s", canary_strerror(rv));
	}
	return rv;
}

void
gate_round_free(struct gate_round *r)
{
	if (r == NULL) {
		return;
	}
	for (int i = 0; i < r->n_regions && r->regions != NULL; i++) {
		free(r->regions[i].merged.targets);
		free(r->regions[i].base_ms);
	}
	free(r->regions);
	free(r->agents);
	free(r);
}

/* ---- the baseline in the journal ---- */

static double
gate_ms(uint64_t us)
{
	return (double)us / GATE_MS_PER_US;
}

/* The p95 and p99 (ms) of target t of region g into ms[2]: from its
 * histogram, or as a decoded baseline holds them. NULL when it has no
 * samples. */
static const double *
gate_target_ms(const struct gate_region_state *g, int t, double ms[2])
{
	const struct canary_target_report *tr = &g->merged.targets[t];

	if (g->base_ms != NULL) {
		ms[0] = g->base_ms[t][0];
		ms[1] = g->base_ms[t][1];
		return ms;
	}
	if (tr->latency.count == 0) {
		return NULL;
	}
	ms[0] = gate_ms(canary_hist_quantile(&tr->latency, 0.95));
	ms[1] = gate_ms(canary_hist_quantile(&tr->latency, 0.99));
	return ms;
}

/* The baseline's p95 and p99 (ms) of a region's target into ms[2]; NULL
 * when the baseline has no such target or no samples of it. */
static const double *
gate_baseline_ms(const struct gate_round *b, const char *region, const char *target, double ms[2])
{
	if (b == NULL) {
		return NULL;
	}
	for (int i = 0; i < b->n_regions; i++) {
		const struct gate_region_state *g = &b->regions[i];

		if (strcmp(g->req.name, region) != 0) {
			continue;
		}
		for (int t = 0; t < g->merged.n_targets; t++) {
			if (strcmp(g->merged.targets[t].id, target) == 0) {
				return gate_target_ms(g, t, ms);
			}
		}
	}
	return NULL;
}

cJSON *
gate_baseline_encode(const struct gate_round *r)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *regions = cJSON_AddArrayToObject(o, "regions");

	if (regions == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	for (int i = 0; i < r->n_regions; i++) {
		const struct gate_region_state *g = &r->regions[i];
		cJSON *reg = cJSON_CreateObject();
		cJSON *targets;

		if (reg == NULL || !cJSON_AddItemToArray(regions, reg) ||
		    cJSON_AddStringToObject(reg, "name", g->req.name) == NULL ||
		    (targets = cJSON_AddArrayToObject(reg, "targets")) == NULL) {
			cJSON_Delete(o);
			return NULL;
		}
		for (int t = 0; t < g->merged.n_targets; t++) {
			const struct canary_target_report *tr = &g->merged.targets[t];
			cJSON *to;

			double ms[2];

			if (gate_target_ms(g, t, ms) == NULL) {
				continue; /* no samples */
			}
			to = cJSON_CreateObject();
			if (to == NULL || !cJSON_AddItemToArray(targets, to) ||
			    cJSON_AddStringToObject(to, "id", tr->id) == NULL ||
			    cJSON_AddNumberToObject(to, "p95_ms", ms[0]) == NULL ||
			    cJSON_AddNumberToObject(to, "p99_ms", ms[1]) == NULL) {
				cJSON_Delete(o);
				return NULL;
			}
		}
	}
	return o;
}

/* The array member name of o, of at most max items. */
static int
gate_json_array(const cJSON *o, const char *path, const char *name, int max, const cJSON **out,
                char *err, size_t errlen)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
	int n;

	if (!cJSON_IsArray(a)) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s.%s: expected an array", path,
		                   name);
	}
	n = cJSON_GetArraySize(a);
	if (n > max) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s.%s: expected at most %d items, got %d", path, name, max, n);
	}
	*out = a;
	return 0;
}

/* The string member name of o, 1..size-1 bytes, copied to out. */
static int
gate_json_id(const cJSON *o, const char *path, const char *name, char *out, size_t size, char *err,
             size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) >= size) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s.%s: expected a string of 1..%zu bytes", path, name,
		                   size - 1);
	}
	snprintf(out, size, "%s", v->valuestring);
	return 0;
}

/* The number member name of o: milliseconds, 0..CANARY_HIST_MAX_US. */
static int
gate_json_ms(const cJSON *o, const char *path, const char *name, double *out, char *err,
             size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
	    v->valuedouble > gate_ms(CANARY_HIST_MAX_US)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s.%s: expected milliseconds 0..%.0f", path, name,
		                   gate_ms(CANARY_HIST_MAX_US));
	}
	*out = v->valuedouble;
	return 0;
}

/* One region of a baseline into g (its targets allocated here). */
static int
gate_baseline_region(const cJSON *reg, const char *path, struct gate_region_state *g, char *err,
                     size_t errlen)
{
	const cJSON *targets, *to;
	char p[160];
	int rv, t = 0;

	if (!cJSON_IsObject(reg)) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected an object", path);
	}
	if ((rv = gate_json_id(reg, path, "name", g->req.name, sizeof(g->req.name), err, errlen)) !=
	        0 ||
	    (rv = gate_json_array(reg, path, "targets", CANARY_MAX_TARGETS, &targets, err,
	                          errlen)) != 0) {
		return rv;
	}
	g->req.min_agents = 1;
	snprintf(g->merged.region, sizeof(g->merged.region), "%s", g->req.name);
	g->merged.n_targets = cJSON_GetArraySize(targets);
	if (g->merged.n_targets > 0 &&
	    ((g->merged.targets =
	          calloc((size_t)g->merged.n_targets, sizeof(g->merged.targets[0]))) == NULL ||
	     (g->base_ms = calloc((size_t)g->merged.n_targets, sizeof(g->base_ms[0]))) == NULL)) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "%s: out of memory", path);
	}
	cJSON_ArrayForEach(to, targets)
	{
		struct canary_target_report *tr = &g->merged.targets[t];

		snprintf(p, sizeof(p), "%s.targets[%d]", path, t);
		if (!cJSON_IsObject(to)) {
			return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected an object", p);
		}
		if ((rv = gate_json_id(to, p, "id", tr->id, sizeof(tr->id), err, errlen)) != 0) {
			return rv;
		}
		for (int k = 0; k < t; k++) {
			if (strcmp(g->merged.targets[k].id, tr->id) == 0) {
				return canary_errf(err, errlen, CANARY_EINVAL,
				                   "%s.id: \"%s\" is also target %d", p, tr->id, k);
			}
		}
		if ((rv = gate_json_ms(to, p, "p95_ms", &g->base_ms[t][0], err, errlen)) != 0 ||
		    (rv = gate_json_ms(to, p, "p99_ms", &g->base_ms[t][1], err, errlen)) != 0) {
			return rv;
		}
		if (g->base_ms[t][1] < g->base_ms[t][0]) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "%s.p99_ms: %g is below p95_ms %g", p, g->base_ms[t][1],
			                   g->base_ms[t][0]);
		}
		t++;
	}
	return 0;
}

int
gate_baseline_decode(const cJSON *j, const char *path, struct gate_round **rp, char *err,
                     size_t errlen)
{
	struct gate_round *r = NULL;
	const cJSON *regions, *reg;
	char p[128];
	int rv, i = 0;

	*rp = NULL;
	if (!cJSON_IsObject(j)) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected an object", path);
	}
	if ((rv = gate_json_array(j, path, "regions", GATE_MAX_REGIONS, &regions, err, errlen)) !=
	    0) {
		return rv;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (cJSON_GetArraySize(regions) > 0 &&
	     (r->regions = calloc((size_t)cJSON_GetArraySize(regions), sizeof(r->regions[0]))) ==
	         NULL)) {
		gate_round_free(r);
		return canary_errf(err, errlen, CANARY_ENOMEM, "%s: out of memory", path);
	}
	cJSON_ArrayForEach(reg, regions)
	{
		snprintf(p, sizeof(p), "%s.regions[%d]", path, i);
		r->n_regions = i + 1; /* so gate_round_free sees what was allocated */
		if ((rv = gate_baseline_region(reg, p, &r->regions[i], err, errlen)) != 0) {
			gate_round_free(r);
			return rv;
		}
		for (int k = 0; k < i; k++) {
			if (strcmp(r->regions[k].req.name, r->regions[i].req.name) == 0) {
				rv = canary_errf(err, errlen, CANARY_EINVAL,
				                 "%s.name: \"%s\" is also region %d", p,
				                 r->regions[i].req.name, k);
				gate_round_free(r);
				return rv;
			}
		}
		i++;
	}
	*rp = r;
	return 0;
}

/* ---- the agent id set ---- */

static size_t
gate_hash(const char *s)
{
	size_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* The slot holding id, or the empty slot where it would go. */
static char *
gate_agent_slot(char (*set)[CANARY_ID_LEN], size_t cap, const char *id)
{
	size_t i = gate_hash(id) & (cap - 1);
	while (set[i][0] != '\0' && strcmp(set[i], id) != 0) {
		i = (i + 1) & (cap - 1);
	}
	return set[i];
}

static int
gate_agent_insert(struct gate_round *r, const char *id)
{
	if (2 * (r->n_agents + 1) > r->agents_cap) {
		size_t ncap = r->agents_cap * 2;
		char(*ns)[CANARY_ID_LEN] = calloc(ncap, sizeof(ns[0]));
		if (ns == NULL) {
			return CANARY_ENOMEM;
		}
		for (size_t i = 0; i < r->agents_cap; i++) {
			if (r->agents[i][0] != '\0') {
				memcpy(gate_agent_slot(ns, ncap, r->agents[i]), r->agents[i],
				       CANARY_ID_LEN);
			}
		}
		free(r->agents);
		r->agents = ns;
		r->agents_cap = ncap;
	}
	snprintf(gate_agent_slot(r->agents, r->agents_cap, id), CANARY_ID_LEN, "%s", id);
	r->n_agents++;
	return 0;
}

static void __attribute__((format(printf, 3, 4)))
gate_reject_note(struct gate_rejects *rj, char *err, const char *fmt, ...)
{
	char buf[GATE_FINDING_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (err != NULL) {
		memcpy(err, buf, sizeof(buf));
	}
	if (rj->n_notes < GATE_MAX_REJECT_NOTES) {
		memcpy(rj->notes[rj->n_notes++], buf, sizeof(buf));
	}
}

int
gate_round_add(struct gate_round *r, const struct canary_report *rep, char *err, size_t errlen)
{
	char note[GATE_FINDING_LEN];
	struct gate_region_state *g = NULL;
	int idx[CANARY_MAX_TARGETS];
	int rv;

	if (rep->error[0] != '\0') {
		r->rejects.error_reports++;
		gate_reject_note(&r->rejects, note,
		                 "agent %.63s (%.63s): could not run the round: %.100s",
		                 rep->agent_id, rep->region, rep->error);
		return canary_errf(err, errlen, CANARY_ESTATE, "%s", note);
	}
	if (rep->round != r->round || strcmp(rep->rollout_id, r->rollout_id) != 0) {
		r->rejects.wrong_round++;
		gate_reject_note(&r->rejects, note,
		                 "agent %.63s: report for round %llu of rollout %.63s, expected "
		                 "round %llu of %.63s",
		                 rep->agent_id, (unsigned long long)rep->round, rep->rollout_id,
		                 (unsigned long long)r->round, r->rollout_id);
		return canary_errf(err, errlen, CANARY_ESTATE, "%s", note);
	}
	for (int i = 0; i < r->n_regions; i++) {
		if (strcmp(r->regions[i].req.name, rep->region) == 0) {
			g = &r->regions[i];
			break;
		}
	}
	if (g == NULL) {
		r->rejects.unknown_region++;
		gate_reject_note(&r->rejects, note,
		                 "agent %.63s: region \"%.63s\" is not required "
		                 "by the rollout",
		                 rep->agent_id, rep->region);
		return canary_errf(err, errlen, CANARY_ENOENT, "%s", note);
	}
	if (rep->agent_id[0] == '\0') {
		r->rejects.bad_agent++;
		gate_reject_note(&r->rejects, note, "region %.63s: report with an empty agent id",
		                 rep->region);
		return canary_errf(err, errlen, CANARY_EINVAL, "%s", note);
	}
	if (gate_agent_slot(r->agents, r->agents_cap, rep->agent_id)[0] != '\0') {
		r->rejects.duplicate_agent++;
		gate_reject_note(&r->rejects, note,
		                 "agent %.63s (%.63s): a second report in round %llu",
		                 rep->agent_id, rep->region, (unsigned long long)r->round);
		return canary_errf(err, errlen, CANARY_EINVAL, "%s", note);
	}
	if (r->n_agents >= GATE_MAX_AGENTS) {
		r->rejects.too_many++;
		gate_reject_note(&r->rejects, note, "agent %.63s: over %d agents in one round",
		                 rep->agent_id, GATE_MAX_AGENTS);
		return canary_errf(err, errlen, CANARY_ETOOBIG, "%s", note);
	}
	if (rep->n_targets < 0 || rep->n_targets > CANARY_MAX_TARGETS ||
	    (rep->n_targets > 0 && rep->targets == NULL)) {
		r->rejects.bad_target++;
		gate_reject_note(&r->rejects, note, "agent %.63s: %d targets", rep->agent_id,
		                 rep->n_targets);
		return canary_errf(err, errlen, CANARY_EINVAL, "%s", note);
	}
	/* Validate every target before merging any, so a bad report changes nothing. */
	for (int t = 0; t < rep->n_targets; t++) {
		idx[t] = -1;
		for (int k = 0; k < r->n_targets; k++) {
			if (strcmp(rep->targets[t].id, r->targets[k].id) == 0) {
				idx[t] = k;
			}
		}
		for (int u = 0; u < t && idx[t] >= 0; u++) {
			if (idx[u] == idx[t]) {
				idx[t] = -2;
			}
		}
		if (idx[t] < 0) {
			r->rejects.bad_target++;
			gate_reject_note(&r->rejects, note, "agent %.63s: target \"%.63s\" %s",
			                 rep->agent_id, rep->targets[t].id,
			                 idx[t] == -1 ? "is not in the probe" : "appears twice");
			return canary_errf(err, errlen, CANARY_EINVAL, "%s", note);
		}
	}
	if ((rv = gate_agent_insert(r, rep->agent_id)) != 0) {
		return canary_errf(err, errlen, rv, "agent set: %s", canary_strerror(rv));
	}
	for (int t = 0; t < rep->n_targets; t++) {
		canary_target_report_merge(&g->merged.targets[idx[t]], &rep->targets[t]);
	}
	g->agents++;
	g->partial += rep->partial != 0;
	return 0;
}

void
gate_round_rejects(const struct gate_round *r, struct gate_rejects *out)
{
	*out = r->rejects;
}

int
gate_round_n_regions(const struct gate_round *r)
{
	return r->n_regions;
}

const struct canary_report *
gate_round_region(const struct gate_round *r, int i, int *agents, int *partial)
{
	if (i < 0 || i >= r->n_regions) {
		return NULL;
	}
	if (agents != NULL) {
		*agents = r->regions[i].agents;
	}
	if (partial != NULL) {
		*partial = r->regions[i].partial;
	}
	return &r->regions[i].merged;
}

/* ---- judging ---- */

/* Appends s to buf (size n, *off used so far), truncating. */
static void
gate_append(char *buf, size_t n, size_t *off, const char *s)
{
	size_t len = strlen(s);

	if (*off >= n) {
		return;
	}
	if (len > n - 1 - *off) {
		len = n - 1 - *off;
	}
	memcpy(buf + *off, s, len);
	*off += len;
	buf[*off] = '\0';
}

static void __attribute__((format(printf, 7, 8)))
gate_find(struct gate_verdict *v, const char *check, const char *region, const char *target,
          enum gate_result result, int critical, const char *fmt, ...)
{
	struct gate_finding *f;
	char body[GATE_FINDING_LEN];
	va_list ap;

	if (v->n_findings >= GATE_MAX_FINDINGS) {
		v->findings_dropped++;
		v->findings_dropped_critical += critical != 0;
		return;
	}
	f = &v->findings[v->n_findings++];
	memset(f, 0, sizeof(*f));
	snprintf(f->check, sizeof(f->check), "%s", check);
	snprintf(f->region, sizeof(f->region), "%s", region);
	snprintf(f->target, sizeof(f->target), "%s", target != NULL ? target : "");
	f->result = result;
	f->critical = critical;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	/* Prefix, then as much of the body as fits (truncation is fine for a
	 * log line; the figures come first in every body). */
	size_t off;
	if (target != NULL && target[0] != '\0') {
		off = (size_t)snprintf(f->text, sizeof(f->text), "%s region=%.63s target=%.63s ",
		                       check, region, target);
	} else {
		off = (size_t)snprintf(f->text, sizeof(f->text), "%s region=%.63s ", check, region);
	}
	gate_append(f->text, sizeof(f->text), &off, body);
	if (critical) {
		gate_append(f->text, sizeof(f->text), &off, " (critical)");
	}
}

/* Responses with an expected status. */
static uint64_t
gate_ok_responses(const struct canary_target *t, const struct canary_target_report *tr)
{
	uint64_t ok = 0;

	for (int i = 0; i < tr->n_statuses && i < CANARY_MAX_SEEN_STATUS; i++) {
		for (int k = 0; k < t->n_expect_status && k < CANARY_MAX_STATUSES; k++) {
			if (tr->statuses[i].status == t->expect_status[k]) {
				ok += tr->statuses[i].count;
				break;
			}
		}
	}
	return ok;
}

/* Failed requests: no response, an unexpected status, or a body mismatch. */
static uint64_t
gate_failed(const struct canary_target *t, const struct canary_target_report *tr)
{
	uint64_t ok = gate_ok_responses(t, tr);
	uint64_t failed = tr->sent > ok ? tr->sent - ok : 0;

	failed += tr->body_mismatches;
	return failed > tr->sent ? tr->sent : failed;
}

/* Whether (m, s) is a pair the expectation allows. */
static int
gate_pair_allowed(const struct gate_round *r, const char *m, const char *s)
{
	for (int i = 0; i < r->expect.n_middleware && i < CANARY_MAX_VERSIONS; i++) {
		if (strcmp(r->expect.middleware[i].id, m) == 0 &&
		    (s[0] == '\0' || strcmp(r->expect.pins[i], s) == 0)) {
			return 1;
		}
	}
	if (r->override.enabled && strcmp(r->override.version_id, m) == 0 &&
	    (s[0] == '\0' || strcmp(r->override.pin, s) == 0)) {
		return 1;
	}
	return 0;
}

/* Counts of a region's responses by middleware version, over all targets:
 * per expected middleware version, and the total with a version pair. The
 * dark step's overridden responses that went where the override sent them
 * are taken out of both, so the split is judged on live traffic only. */
struct gate_split {
	uint64_t per[CANARY_MAX_VERSIONS];
	uint64_t total;
};

static void
gate_region_split(const struct gate_round *r, const struct canary_report *m, struct gate_split *sp)
{
	uint64_t over_ok = 0;

	memset(sp, 0, sizeof(*sp));
	for (int t = 0; t < m->n_targets; t++) {
		const struct canary_target_report *tr = &m->targets[t];
		for (int p = 0; p < tr->n_pairs && p < CANARY_MAX_PAIRS; p++) {
			sp->total += tr->pairs[p].count;
			for (int i = 0; i < r->expect.n_middleware && i < CANARY_MAX_VERSIONS;
			     i++) {
				if (strcmp(r->expect.middleware[i].id, tr->pairs[p].middleware) ==
				    0) {
					sp->per[i] += tr->pairs[p].count;
				}
			}
		}
		sp->total += tr->pairs_other;
		if (tr->override_sent > tr->override_violations) {
			over_ok += tr->override_sent - tr->override_violations;
		}
	}
	if (r->override.enabled && over_ok > 0) {
		for (int i = 0; i < r->expect.n_middleware && i < CANARY_MAX_VERSIONS; i++) {
			if (strcmp(r->expect.middleware[i].id, r->override.version_id) == 0) {
				uint64_t take = over_ok < sp->per[i] ? over_ok : sp->per[i];
				sp->per[i] -= take;
				sp->total -= take < sp->total ? take : sp->total;
			}
		}
	}
}

/* Latency checks of one target: absolute and vs the baseline's p95 and p99
 * (base_ms, NULL when there is none). */
static void
gate_judge_latency(const struct canary_target_report *tr, const double *base_ms,
                   const struct gate_policy *p, const char *region, struct gate_verdict *v)
{
	static const struct {
		const char *name, *ratio_name;
		double q;
	} qs[] = {{"p95", "p95_ratio", 0.95}, {"p99", "p99_ratio", 0.99}};

	if (tr->latency.count == 0) {
		return;
	}
	for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		double ms = gate_ms(canary_hist_quantile(&tr->latency, qs[k].q));
		double limit = k == 0 ? p->max_p95_ms : p->max_p99_ms;

		if (limit > 0 && ms > limit) {
			gate_find(v, qs[k].name, region, tr->id, GATE_FAIL, 0,
			          "%.1f ms > %.1f ms (%llu samples)", ms, limit,
			          (unsigned long long)tr->latency.count);
		}
		if (p->max_latency_ratio > 0 && base_ms != NULL) {
			double base = base_ms[k];
			/* The slack keeps millisecond jitter on a fast baseline
			 * from reading as a regression. */
			if (ms > base * p->max_latency_ratio &&
			    ms - base > GATE_RATIO_MIN_DELTA_MS) {
				gate_find(v, qs[k].ratio_name, region, tr->id, GATE_FAIL, 0,
				          "%.1f ms > %.2f x baseline %.1f ms", ms,
				          p->max_latency_ratio, base);
			}
		}
	}
}

/* The critical checks of one target: what the agent flagged and the pairs. */
static void
gate_judge_critical(const struct gate_round *r, const struct canary_target_report *tr,
                    const char *region, struct gate_verdict *v)
{
	if (tr->affinity_violations > 0) {
		gate_find(v, "affinity", region, tr->id, GATE_FAIL, 1,
		          "%llu responses from a middleware not paired with its pinned server",
		          (unsigned long long)tr->affinity_violations);
	}
	if (tr->unknown_versions > 0) {
		gate_find(v, "unknown_version", region, tr->id, GATE_FAIL, 1,
		          "%llu responses with a missing or unknown version",
		          (unsigned long long)tr->unknown_versions);
	}
	if (tr->override_violations > 0) {
		gate_find(v, "override", region, tr->id, GATE_FAIL, 1,
		          "%llu of %llu overridden responses not from %s+%s",
		          (unsigned long long)tr->override_violations,
		          (unsigned long long)tr->override_sent, r->override.version_id,
		          r->override.pin);
	}
	if (tr->key_violations > 0) {
		gate_find(v, "version_key", region, tr->id, GATE_FAIL, 1,
		          "%llu version keys saw more than one version",
		          (unsigned long long)tr->key_violations);
	}
	for (int p = 0; p < tr->n_pairs && p < CANARY_MAX_PAIRS; p++) {
		const struct canary_pair_count *pc = &tr->pairs[p];
		if (pc->count > 0 && !gate_pair_allowed(r, pc->middleware, pc->server)) {
			gate_find(v, "unexpected_pair", region, tr->id, GATE_FAIL, 1,
			          "%llu responses from middleware %s + server %s",
			          (unsigned long long)pc->count, pc->middleware,
			          pc->server[0] != '\0' ? pc->server : "(cache)");
		}
	}
	if (tr->pairs_other > 0) {
		gate_find(v, "unexpected_pair", region, tr->id, GATE_FAIL, 1,
		          "%llu responses from pairs beyond the %d the report holds",
		          (unsigned long long)tr->pairs_other, CANARY_MAX_PAIRS);
	}
}

static void
gate_judge_region(const struct gate_round *r, const struct gate_region_state *g,
                  const struct gate_round *baseline, const struct gate_policy *p,
                  struct gate_verdict *v, struct gate_region_verdict *rv, struct canary_hist *all)
{
	const char *region = g->req.name;
	struct canary_hist merged;
	uint64_t isr_hits = 0, isr_total = 0;
	int first = v->n_findings, dropped = v->findings_dropped;
	int dropped_critical = v->findings_dropped_critical;
	int fail = 0, critical = 0, inconclusive = 0;

	memset(rv, 0, sizeof(*rv));
	snprintf(rv->name, sizeof(rv->name), "%s", region);
	rv->agents = g->agents;
	rv->isr_hit_ratio = -1;
	rv->m1_share = -1;
	canary_hist_init(&merged);

	if (g->agents < g->req.min_agents) {
		gate_find(v, "agents", region, NULL, GATE_INCONCLUSIVE, 0,
		          "%d agents reported, %d required", g->agents, g->req.min_agents);
	}
	for (int t = 0; t < g->merged.n_targets; t++) {
		const struct canary_target_report *tr = &g->merged.targets[t];
		const struct canary_target *tg = &r->targets[t];
		uint64_t failed = gate_failed(tg, tr);

		rv->sent += tr->sent;
		rv->failed += failed;
		canary_hist_merge(&merged, &tr->latency);
		if (tr->sent == 0) {
			/* Nobody probed this target here (a report without it,
			 * a partial one): no figure can pass it. */
			if (g->agents > 0) {
				gate_find(v, "no_responses", region, tr->id, GATE_INCONCLUSIVE, 0,
				          "no request sent by the %d agents that reported",
				          g->agents);
			}
			continue;
		}
		double rate = (double)failed / (double)tr->sent;
		if (rate > p->max_error_rate) {
			gate_find(v, "error_rate", region, tr->id, GATE_FAIL, 0,
			          "%.4f > %.4f (%llu/%llu failed; body mismatches %llu)", rate,
			          p->max_error_rate, (unsigned long long)failed,
			          (unsigned long long)tr->sent,
			          (unsigned long long)tr->body_mismatches);
		}
		double base_ms[2];

		gate_judge_latency(tr, gate_baseline_ms(baseline, region, tr->id, base_ms), p,
		                   region, v);
		gate_judge_critical(r, tr, region, v);
		if (tg->cache == CANARY_CACHE_ISR) {
			uint64_t hits = tr->cache_hit + tr->cache_stale;
			uint64_t total = hits + tr->cache_miss;
			isr_hits += hits;
			isr_total += total;
			if (p->min_isr_hit_ratio > 0 && total > 0 &&
			    (double)hits / (double)total < p->min_isr_hit_ratio) {
				gate_find(v, "isr_hit_ratio", region, tr->id, GATE_FAIL, 0,
				          "%.3f < %.3f (%llu hit, %llu stale, %llu miss)",
				          (double)hits / (double)total, p->min_isr_hit_ratio,
				          (unsigned long long)tr->cache_hit,
				          (unsigned long long)tr->cache_stale,
				          (unsigned long long)tr->cache_miss);
			}
		}
	}
	rv->error_rate = rv->sent > 0 ? (double)rv->failed / (double)rv->sent : 0;
	rv->p95_ms = gate_ms(canary_hist_quantile(&merged, 0.95));
	rv->p99_ms = gate_ms(canary_hist_quantile(&merged, 0.99));
	rv->isr_hit_ratio = isr_total > 0 ? (double)isr_hits / (double)isr_total : -1;
	canary_hist_merge(all, &merged);

	/* The split: the second expected middleware version's share vs the step's. */
	if (r->expect.n_middleware == 2) {
		struct gate_split sp;
		gate_region_split(r, &g->merged, &sp);
		if (sp.total > 0) {
			double want = r->expect.middleware[1].share / 100.0;
			double got = (double)sp.per[1] / (double)sp.total;
			double n = (double)sp.total;
			/* Version keys make requests of one key one draw. */
			if (r->version_keys > 0 && g->agents > 0) {
				double draws = (double)r->version_keys * (double)g->agents;
				n = draws < n ? draws : n;
			}
			double tol = p->share_z * sqrt(want * (1 - want) / n) + p->share_floor;
			rv->m1_share = got * 100.0;
			if (fabs(got - want) > tol) {
				gate_find(v, "share", region, NULL, GATE_FAIL, 0,
				          "%s at %.1f%%, expected %.1f%% +- %.1f (%llu of %llu)",
				          r->expect.middleware[1].id, got * 100.0, want * 100.0,
				          tol * 100.0, (unsigned long long)sp.per[1],
				          (unsigned long long)sp.total);
			}
		}
	}

	for (int i = first; i < v->n_findings; i++) {
		fail |= v->findings[i].result == GATE_FAIL;
		inconclusive |= v->findings[i].result == GATE_INCONCLUSIVE;
		critical |= v->findings[i].critical;
	}
	/* Findings that did not fit still decide: treat them as failures, and
	 * a critical one keeps the region critical (one such round rolls back
	 * at once, whatever max_failed_regions allows). */
	fail |= v->findings_dropped > dropped;
	critical |= v->findings_dropped_critical > dropped_critical;
	rv->critical = critical;
	rv->result = fail ? GATE_FAIL : inconclusive ? GATE_INCONCLUSIVE : GATE_PASS;
}

void
gate_judge(const struct gate_round *r, const struct gate_round *baseline,
           const struct gate_policy *p, struct gate_verdict *v)
{
	struct canary_hist all;

	memset(v, 0, sizeof(*v));
	canary_hist_init(&all);
	for (int i = 0; i < r->n_regions && i < GATE_MAX_REGIONS; i++) {
		struct gate_region_verdict *rv = &v->regions[i];
		gate_judge_region(r, &r->regions[i], baseline, p, v, rv, &all);
		v->n_regions++;
		v->sent += rv->sent;
		v->failed += rv->failed;
		v->critical |= rv->critical;
		v->failed_regions += rv->result == GATE_FAIL;
		v->inconclusive_regions += rv->result == GATE_INCONCLUSIVE;
	}
	v->error_rate = v->sent > 0 ? (double)v->failed / (double)v->sent : 0;
	v->p95_ms = gate_ms(canary_hist_quantile(&all, 0.95));
	v->p99_ms = gate_ms(canary_hist_quantile(&all, 0.99));
	if (v->critical || v->failed_regions > p->max_failed_regions) {
		v->result = GATE_FAIL;
	} else if (v->inconclusive_regions > 0) {
		v->result = GATE_INCONCLUSIVE;
	} else {
		v->result = GATE_PASS;
	}
}

int
gate_converged(const struct gate_round *r, int *region_ok, char *why, size_t whylen)
{
	int all = 1;

	if (why != NULL && whylen > 0) {
		why[0] = '\0';
	}
	for (int i = 0; i < r->n_regions; i++) {
		const struct gate_region_state *g = &r->regions[i];
		const char *region = g->req.name;
		char reason[GATE_FINDING_LEN] = "";
		struct gate_split sp;
		uint64_t over_sent = 0, over_bad = 0;

		if (g->agents < g->req.min_agents) {
			snprintf(reason, sizeof(reason), "%d agents reported, %d required",
			         g->agents, g->req.min_agents);
		}
		for (int t = 0; t < g->merged.n_targets && reason[0] == '\0'; t++) {
			const struct canary_target_report *tr = &g->merged.targets[t];
			over_sent += tr->override_sent;
			over_bad += tr->override_violations;
			if (tr->unknown_versions > 0) {
				snprintf(reason, sizeof(reason),
				         "target %.63s: %llu responses with unknown versions",
				         tr->id, (unsigned long long)tr->unknown_versions);
			}
			if (tr->pairs_other > 0) {
				snprintf(reason, sizeof(reason),
				         "target %.63s: %llu responses from unlisted pairs", tr->id,
				         (unsigned long long)tr->pairs_other);
			}
			for (int p = 0; p < tr->n_pairs && reason[0] == '\0'; p++) {
				const struct canary_pair_count *pc = &tr->pairs[p];
				if (pc->count > 0 &&
				    !gate_pair_allowed(r, pc->middleware, pc->server)) {
					snprintf(
					    reason, sizeof(reason),
					    "target %.63s: still sees middleware %s + server %s "
					    "(%llu)",
					    tr->id, pc->middleware,
					    pc->server[0] != '\0' ? pc->server : "(cache)",
					    (unsigned long long)pc->count);
				}
			}
		}
		if (reason[0] == '\0' && r->override.enabled) {
			if (over_sent == 0) {
				snprintf(reason, sizeof(reason),
				         "no overridden request was answered");
			} else if (over_bad > 0) {
				snprintf(reason, sizeof(reason),
				         "%llu of %llu overridden requests did not reach %s+%s",
				         (unsigned long long)over_bad,
				         (unsigned long long)over_sent, r->override.version_id,
				         r->override.pin);
			}
		}
		if (reason[0] == '\0') {
			gate_region_split(r, &g->merged, &sp);
			for (int k = 0; k < r->expect.n_middleware && k < CANARY_MAX_VERSIONS;
			     k++) {
				double want =
				    (double)sp.total * r->expect.middleware[k].share / 100.0;
				if (want >= GATE_CONVERGE_MIN_EXPECTED && sp.per[k] == 0) {
					snprintf(
					    reason, sizeof(reason),
					    "middleware %s not seen yet (%.0f of %llu responses "
					    "expected)",
					    r->expect.middleware[k].id, want,
					    (unsigned long long)sp.total);
					break;
				}
			}
		}
		if (region_ok != NULL) {
			region_ok[i] = reason[0] == '\0';
		}
		if (reason[0] != '\0') {
			if (all && why != NULL) {
				snprintf(why, whylen, "region %s: %s", region, reason);
			}
			all = 0;
		}
	}
	return all;
}

enum gate_action
gate_step_record(struct gate_step *s, const struct gate_policy *p, const struct gate_verdict *v,
                 char *why, size_t whylen)
{
	s->rounds++;
	if (v->result == GATE_FAIL) {
		s->failures++;
	} else if (v->result == GATE_INCONCLUSIVE) {
		s->inconclusives++;
	}
	if (v->critical) {
		snprintf(why, whylen, "a critical check failed (round %d of the step)", s->rounds);
		return GATE_ROLLBACK;
	}
	if (s->failures > p->failure_limit) {
		snprintf(why, whylen, "%d failed rounds > failure_limit %d", s->failures,
		         p->failure_limit);
		return GATE_ROLLBACK;
	}
	if (s->inconclusives > p->inconclusive_limit) {
		snprintf(why, whylen, "%d inconclusive rounds > inconclusive_limit %d",
		         s->inconclusives, p->inconclusive_limit);
		return GATE_ROLLBACK;
	}
	snprintf(why, whylen, "%d failed (limit %d), %d inconclusive (limit %d) in %d rounds",
	         s->failures, p->failure_limit, s->inconclusives, p->inconclusive_limit, s->rounds);
	return GATE_CONTINUE;
}

const char *
gate_verdict_format(const struct gate_verdict *v, char *buf, size_t len)
{
	snprintf(buf, len,
	         "%s%s regions=%d failed=%d inconclusive=%d sent=%llu error_rate=%.4f "
	         "p95_ms=%.1f p99_ms=%.1f findings=%d",
	         gate_result_name(v->result), v->critical ? " critical" : "", v->n_regions,
	         v->failed_regions, v->inconclusive_regions, (unsigned long long)v->sent,
	         v->error_rate, v->p95_ms, v->p99_ms, v->n_findings + v->findings_dropped);
	return buf;
}
