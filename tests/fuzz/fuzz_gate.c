/*
 * fuzz_gate.c: libFuzzer target for the controller's fan-in of agent
 * reports (controller/gate.h): reports as they come off the wire (decoded
 * with canary_report_decode), merged per region by gate_round_add, judged
 * by gate_judge, checked for convergence and counted per step. Agents are
 * outside input: a broken or hostile agent must not crash the controller,
 * corrupt a region's figures, or turn a round with a critical finding into
 * anything but a failure.
 *
 * The input is one report per line ("\n"), judged against a fixed probe
 * (the dark step of DESIGN.md: two middleware versions, an override,
 * version keys, an isr target) and three required regions.
 *
 * Promises checked, beyond "no crash, no leak, no undefined behaviour":
 *   - a refused report leaves every region's merged figures as they were
 *     (compared as encoded reports);
 *   - a merged report adds its sent counts to its region (no overflow);
 *   - the verdict: one entry per region; figures finite; error rates are
 *     failed/sent; FAIL exactly when a region is critical or more regions
 *     failed than tolerated, else INCONCLUSIVE when one is; a region whose
 *     merged figures hold affinity, unknown version, override or version
 *     key violations on a target that sent requests is critical (and the
 *     verdict with it, even past GATE_MAX_FINDINGS findings); a critical
 *     verdict makes gate_step_record roll back; judging against itself as
 *     the baseline never turns a FAIL into a PASS;
 *   - the round as a journaled baseline (gate_baseline_encode, printed,
 *     parsed, gate_baseline_decode) judges exactly as the round itself.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gate.h"
#include "hist.h"
#include "msg.h"

#define FUZZ_MAX_REPORTS 64 /* reports read from one input */
#define FUZZ_N_REGIONS   3
#define FUZZ_WHY_LEN     256
#define FUZZ_LINE_LEN    512

/* The probe the round answers (the dark step, round 3). */
static const char fuzz_probe_text[] =
    "{\"v\":1,\"type\":\"probe\",\"rollout_id\":\"docs-site\",\"round\":3,\"phase\":\"bake\","
    "\"deadline_ms\":5000,\"targets\":[{\"id\":\"home\",\"url\":\"https://docs.example.com/\","
    "\"method\":\"GET\",\"requests\":20,\"timeout_ms\":10000,\"expect_status\":[200,304],"
    "\"cache\":\"isr\",\"body_match\":\"<title>\"},{\"id\":\"api\",\"url\":"
    "\"http://docs.example.com/api/health\",\"method\":\"HEAD\",\"requests\":5,\"timeout_ms\":"
    "2000,\"expect_status\":[204],\"cache\":\"none\",\"body_match\":\"\"}],\"headers\":{"
    "\"middleware_version\":\"x-canary-middleware-version\",\"server_version\":"
    "\"x-canary-server-version\",\"cache\":\"x-opennext-cache\"},\"expect\":{\"middleware\":[{"
    "\"id\":\"0a5c1f3e-1111-4b2a-9c3d-aaaaaaaaaaaa\",\"share\":90},{\"id\":"
    "\"0a5c1f3e-2222-4b2a-9c3d-bbbbbbbbbbbb\",\"share\":10}],\"server\":[{\"id\":"
    "\"5e7d9f10-3333-4c4d-8e5f-cccccccccccc\",\"share\":90},{\"id\":"
    "\"5e7d9f10-4444-4c4d-8e5f-dddddddddddd\",\"share\":10}],\"pins\":["
    "\"5e7d9f10-3333-4c4d-8e5f-cccccccccccc\",\"5e7d9f10-4444-4c4d-8e5f-dddddddddddd\"]},"
    "\"override\":{\"share\":50,\"worker\":\"middleware\",\"version_id\":"
    "\"0a5c1f3e-2222-4b2a-9c3d-bbbbbbbbbbbb\",\"pin\":\"5e7d9f10-4444-4c4d-8e5f-dddddddddddd\"},"
    "\"version_keys\":4}";

static const struct gate_region fuzz_regions[FUZZ_N_REGIONS] = {
    {"enam", 1}, {"weur", 2}, {"apac", 1}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_gate: %s: %s\n", what, detail);
	abort();
}

/* fuzz_regions_text: every region's merged figures, encoded, one after the
 * other. Caller frees. */
static char *
fuzz_regions_text(const struct gate_round *r)
{
	char *all = NULL;
	size_t used = 0;

	for (int i = 0; i < gate_round_n_regions(r); i++) {
		struct canary_report copy;
		char err[CANARY_ERRLEN], *t = NULL, *grown;
		size_t len = 0;
		int agents = 0, partial = 0;
		const struct canary_report *rep = gate_round_region(r, i, &agents, &partial);

		if (rep == NULL) {
			fuzz_die("gate_round_region", "no report for a region index in range");
		}
		/* The region's figures are an agent-less report: give it the
		 * fields an encoding requires. */
		copy = *rep;
		copy.proto_version = CANARY_PROTO_VERSION;
		snprintf(copy.agent_id, sizeof(copy.agent_id), "region-%d-%d-%d", i, agents,
		         partial);
		if (canary_report_encode(&copy, &t, &len, err, sizeof(err)) != 0) {
			fuzz_die("a region's merged figures do not encode", err);
		}
		grown = realloc(all, used + len + 1);
		if (grown == NULL) {
			fuzz_die("realloc", "regions text");
		}
		all = grown;
		memcpy(all + used, t, len + 1);
		used += len;
		free(t);
	}
	return all;
}

/* fuzz_region_sent: the sent count of region name over all targets. */
static uint64_t
fuzz_region_sent(const struct gate_round *r, const char *name, int *found)
{
	uint64_t sent = 0;

	*found = 0;
	for (int i = 0; i < gate_round_n_regions(r); i++) {
		const struct canary_report *rep = gate_round_region(r, i, NULL, NULL);

		if (strcmp(rep->region, name) != 0) {
			continue;
		}
		*found = 1;
		for (int t = 0; t < rep->n_targets; t++) {
			sent += rep->targets[t].sent;
		}
	}
	return sent;
}

static void
fuzz_add(struct gate_round *round, const char *line, size_t len)
{
	struct canary_report rep;
	char err[CANARY_ERRLEN], *before, *after;
	uint64_t sent_before, sent_after, added = 0;
	int rv, found;

	if (canary_report_decode(line, len, &rep, err, sizeof(err)) != 0) {
		return;
	}
	before = fuzz_regions_text(round);
	sent_before = fuzz_region_sent(round, rep.region, &found);
	rv = gate_round_add(round, &rep, err, sizeof(err));
	after = fuzz_regions_text(round);
	if (rv != 0) {
		if (rv == CANARY_ENOMEM || err[0] == '\0' || strcmp(before, after) != 0) {
			fprintf(stderr, "%s\n", err);
			fuzz_die("a refused report", "changed the figures or left no reason");
		}
	} else {
		if (!found) {
			fuzz_die("a merged report", "of a region the round does not hold");
		}
		for (int t = 0; t < rep.n_targets; t++) {
			added += rep.targets[t].sent;
		}
		sent_after = fuzz_region_sent(round, rep.region, &found);
		/* Counts saturate at CANARY_HIST_INT_MAX: check below it. */
		if (added < CANARY_HIST_INT_MAX && sent_before + added < CANARY_HIST_INT_MAX &&
		    sent_after - sent_before != added) {
			fuzz_die("a merged report", "did not add its sent counts to its region");
		}
	}
	free(before);
	free(after);
	canary_report_free(&rep);
}

/* fuzz_region_critical: region i holds a critical count on a target that
 * sent requests. */
static int
fuzz_region_critical(const struct gate_round *r, int i)
{
	const struct canary_report *rep = gate_round_region(r, i, NULL, NULL);

	for (int t = 0; t < rep->n_targets; t++) {
		const struct canary_target_report *tr = &rep->targets[t];

		if (tr->sent > 0 && (tr->affinity_violations > 0 || tr->unknown_versions > 0 ||
		                     tr->override_violations > 0 || tr->key_violations > 0)) {
			return 1;
		}
	}
	return 0;
}

static void
fuzz_check_verdict(const struct gate_round *r, const struct gate_policy *p,
                   const struct gate_verdict *v)
{
	int fail = 0, inconclusive = 0, critical = 0, any_violation = 0;

	if (v->n_regions != FUZZ_N_REGIONS || v->n_findings < 0 ||
	    v->n_findings > GATE_MAX_FINDINGS) {
		fuzz_die("verdict", "region or finding count out of range");
	}
	if (!isfinite(v->error_rate) || !isfinite(v->p95_ms) || !isfinite(v->p99_ms) ||
	    v->error_rate != (v->sent > 0 ? (double)v->failed / (double)v->sent : 0)) {
		fuzz_die("verdict", "overall figures not finite or error rate not failed/sent");
	}
	for (int i = 0; i < v->n_regions; i++) {
		const struct gate_region_verdict *rv = &v->regions[i];

		if (!isfinite(rv->error_rate) || !isfinite(rv->p95_ms) || !isfinite(rv->p99_ms) ||
		    !isfinite(rv->isr_hit_ratio) || !isfinite(rv->m1_share) ||
		    rv->error_rate != (rv->sent > 0 ? (double)rv->failed / (double)rv->sent : 0)) {
			fuzz_die("verdict",
			         "region figures not finite or error rate not failed/sent");
		}
		if (rv->critical && rv->result != GATE_FAIL) {
			fuzz_die("verdict", "a critical region that did not fail");
		}
		/* Even past GATE_MAX_FINDINGS: a dropped critical finding still
		 * makes its region critical (gate.h). */
		if (fuzz_region_critical(r, i) && !rv->critical) {
			fuzz_die("verdict",
			         "violations in a region's figures, region not critical");
		}
		any_violation |= fuzz_region_critical(r, i);
		fail += rv->result == GATE_FAIL;
		inconclusive += rv->result == GATE_INCONCLUSIVE;
		critical |= rv->critical;
	}
	if (fail != v->failed_regions || inconclusive != v->inconclusive_regions ||
	    critical != v->critical) {
		fuzz_die("verdict", "region counts do not match the regions");
	}
	if (any_violation && (!v->critical || v->result != GATE_FAIL)) {
		fuzz_die("verdict", "violations in the figures, and no critical failure");
	}
	if ((v->result == GATE_FAIL) != (critical || fail > p->max_failed_regions) ||
	    (v->result == GATE_INCONCLUSIVE) !=
	        (!(critical || fail > p->max_failed_regions) && inconclusive > 0)) {
		fuzz_die("verdict", "the overall result does not follow from the regions");
	}
}

/* The round through the journal as a baseline judges as the round did. */
static void
fuzz_check_baseline(const struct gate_round *round, const struct gate_policy *policy,
                    const struct gate_verdict *want, struct gate_verdict *got)
{
	struct gate_round *back = NULL;
	char err[CANARY_ERRLEN];
	cJSON *j = gate_baseline_encode(round);
	char *text = j != NULL ? cJSON_PrintUnformatted(j) : NULL;

	cJSON_Delete(j);
	if (text == NULL) {
		fuzz_die("gate_baseline_encode", "no JSON");
	}
	j = cJSON_Parse(text);
	free(text);
	if (j == NULL || gate_baseline_decode(j, "baseline", &back, err, sizeof(err)) != 0) {
		fuzz_die("gate_baseline_decode", j == NULL ? "unparsable JSON" : err);
	}
	cJSON_Delete(j);
	gate_judge(round, back, policy, got);
	gate_round_free(back);
	if (got->result != want->result || got->n_findings != want->n_findings) {
		fuzz_die("baseline", "a decoded baseline judges differently");
	}
	for (int i = 0; i < got->n_findings; i++) {
		if (strcmp(got->findings[i].text, want->findings[i].text) != 0) {
			fuzz_die("baseline", got->findings[i].text);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct canary_probe probe;
	struct gate_round *round = NULL;
	struct gate_policy policy;
	struct gate_verdict *v, *vb;
	struct gate_step step;
	char err[CANARY_ERRLEN], why[FUZZ_WHY_LEN], line[FUZZ_LINE_LEN];
	int region_ok[FUZZ_N_REGIONS];
	const char *p = (const char *)data, *end = p + size;
	int n = 0, conv;

	if (canary_probe_decode(fuzz_probe_text, strlen(fuzz_probe_text), &probe, err,
	                        sizeof(err)) != 0 ||
	    gate_round_new(&probe, fuzz_regions, FUZZ_N_REGIONS, &round, err, sizeof(err)) != 0) {
		fuzz_die("the fixed probe or round", err);
	}
	while (p < end && n < FUZZ_MAX_REPORTS) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		fuzz_add(round, p, len);
		p += len + (nl != NULL);
		n++;
	}

	v = calloc(3, sizeof(*v));
	if (v == NULL) {
		fuzz_die("calloc", "verdicts");
	}
	vb = v + 1;
	gate_policy_default(&policy);
	policy.max_p95_ms = 800;
	policy.max_latency_ratio = 1.5;
	policy.min_isr_hit_ratio = 0.9;
	gate_judge(round, NULL, &policy, v);
	fuzz_check_verdict(round, &policy, v);
	gate_judge(round, round, &policy, vb);
	fuzz_check_verdict(round, &policy, vb);
	if (v->result == GATE_FAIL && vb->result == GATE_PASS) {
		fuzz_die("baseline", "a failing round passes against a baseline");
	}
	fuzz_check_baseline(round, &policy, vb, v + 2);
	memset(&step, 0, sizeof(step));
	why[0] = '\0';
	if (gate_step_record(&step, &policy, v, why, sizeof(why)) != GATE_ROLLBACK && v->critical) {
		fuzz_die("gate_step_record", "a critical verdict does not roll back");
	}
	gate_verdict_format(v, line, sizeof(line));
	if (memchr(line, '\0', sizeof(line)) == NULL) {
		fuzz_die("gate_verdict_format", "unterminated");
	}
	why[0] = '\0';
	conv = gate_converged(round, region_ok, why, sizeof(why));
	if (conv != 0 && conv != 1) {
		fuzz_die("gate_converged", "neither 0 nor 1");
	}
	for (int i = 0; i < FUZZ_N_REGIONS; i++) {
		if (conv && !region_ok[i]) {
			fuzz_die("gate_converged", "converged with a region not converged");
		}
	}
	if (!conv && why[0] == '\0') {
		fuzz_die("gate_converged", "not converged, and no reason");
	}
	free(v);
	gate_round_free(round);
	canary_probe_free(&probe);
	return 0;
}
