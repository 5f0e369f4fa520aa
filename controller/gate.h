/*
 * gate.h: one probe round's reports, merged per region, judged by the gate
 * policy of DESIGN.md; convergence; the per-step failure bookkeeping.
 *
 * Pure: takes decoded reports (proto/msg.h) and returns values. A round is
 * built from the probe that was sent (targets, expectation, override) and
 * the regions the rollout requires; each report is merged into its region
 * exactly (canary_target_report_merge: histograms are merged, percentiles
 * are never averaged), so N agents in a region judge like one big agent.
 *
 * Ownership: a struct gate_round is allocated by gate_round_new and freed
 * with gate_round_free (accepts NULL); it copies what it needs from the
 * probe and the reports, so they may be freed after the calls. Verdicts are
 * plain data. Thread-safety: a round belongs to one thread.
 */
#ifndef CANARY_GATE_H
#define CANARY_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "limits.h"
#include "msg.h"

/* The gate policy (rollout file "gates"). A limit of 0 for the latency
 * limits, the ratio and min_isr_hit_ratio turns that check off. */
struct gate_policy {
	double max_error_rate;    /* 0..1: failed requests / sent, per region */
	double max_p95_ms;        /* absolute, per region and target */
	double max_p99_ms;        /* absolute, per region and target */
	double max_latency_ratio; /* p95 and p99 vs the baseline's, per region and target */
	double min_isr_hit_ratio; /* (hit+stale)/(hit+stale+miss) on isr targets, warmup excluded */
	int failure_limit;        /* failed rounds tolerated per step */
	int inconclusive_limit;   /* inconclusive rounds tolerated per step */
	int max_failed_regions;   /* failing regions tolerated in one round (critical never) */
	double share_z;           /* share tolerance: z * sqrt(P(1-P)/n) + share_floor */
	double share_floor;       /* fraction, e.g. 0.02 */
};

/* A region the rollout requires, with its minimum number of agents. */
struct gate_region {
	char name[CANARY_ID_LEN];
	int min_agents; /* >= 1 */
};

/* gate_policy_default: the defaults of limits.h. */
void gate_policy_default(struct gate_policy *p);

enum gate_result {
	GATE_PASS = 0,
	GATE_FAIL,
	GATE_INCONCLUSIVE,
};

/* "PASS", "FAIL", "INCONCLUSIVE". */
const char *gate_result_name(enum gate_result r);

struct gate_round;

/* gate_round_new: an empty round for probe (its round number, rollout id,
 * targets, expectation, override and version_keys are copied) and the
 * required regions. 0, CANARY_EINVAL (no regions, too many, duplicate
 * names) or CANARY_ENOMEM. */
int gate_round_new(const struct canary_probe *probe, const struct gate_region *regions,
                   int n_regions, struct gate_round **rp, char *err, size_t errlen);

void gate_round_free(struct gate_round *r);

/* gate_baseline_encode: what gate_judge reads of a baseline round, as JSON
 * for the journal: {"regions": [{"name": R, "targets": [{"id": T,
 * "p95_ms": X, "p99_ms": Y}]}]}, targets with no latency samples left out.
 * About 70 bytes a target, so the largest rollout (GATE_MAX_REGIONS regions
 * of CANARY_MAX_TARGETS targets) stays far under a journal line's limit.
 * NULL on allocation failure. */
cJSON *gate_baseline_encode(const struct gate_round *r);

/* gate_baseline_decode: the strict inverse of gate_baseline_encode, a round
 * fit only to be gate_judge's baseline argument. path names j in errors.
 * Returns 0, CANARY_EINVAL (err names the field: "baseline.regions[1].name:
 * expected ...") or CANARY_ENOMEM; *rp is set only on success. */
int gate_baseline_decode(const cJSON *j, const char *path, struct gate_round **rp, char *err,
                         size_t errlen);

/* gate_round_add: merges one decoded report. Rejected (counted and named in
 * the round, not merged), with the reason in err: a report carrying an
 * agent error, or for another round or rollout id (CANARY_ESTATE); from a
 * region the rollout does not require (CANARY_ENOENT); with an empty agent
 * id, an agent id already merged this round, a target id not in the probe
 * or twice in one report (CANARY_EINVAL); beyond GATE_MAX_AGENTS agents
 * (CANARY_ETOOBIG). Returns 0 when merged, CANARY_ENOMEM on no memory. A
 * rejected report leaves the round's figures untouched. Partial reports
 * are merged (their counts are real) and counted per region. */
int gate_round_add(struct gate_round *r, const struct canary_report *rep, char *err, size_t errlen);

/* Counts of what gate_round_add refused, and the first few reasons. */
struct gate_rejects {
	int error_reports;   /* the agent could not run the survey */
	int wrong_round;     /* other round or rollout id */
	int unknown_region;  /* region not required by the rollout */
	int duplicate_agent; /* agent id seen before in this round */
	int bad_target;      /* target not in the probe, or repeated */
	int bad_agent;       /* empty agent id */
	int too_many;        /* over GATE_MAX_AGENTS */
	int n_notes;
	char notes[GATE_MAX_REJECT_NOTES][GATE_FINDING_LEN];
};

void gate_round_rejects(const struct gate_round *r, struct gate_rejects *out);

/* gate_round_region: the merged figures of region i (0..n_regions-1) as a
 * report: agent_id "", region name, targets in probe order (owned by the
 * round, valid until it is freed), n_targets. *agents and *partial (may be
 * NULL) get how many reports were merged and how many of them were partial.
 * Returns NULL for a bad index. */
const struct canary_report *gate_round_region(const struct gate_round *r, int i, int *agents,
                                              int *partial);
int gate_round_n_regions(const struct gate_round *r);

/* One thing a check found. text is a log line's worth:
 * "error_rate region=enam target=home 0.0500 > 0.0100 (2/40)". */
struct gate_finding {
	char check[24]; /* "error_rate", "p95", "p99", "p95_ratio", "p99_ratio",
	                 * "affinity", "unknown_version", "override", "version_key",
	                 * "unexpected_pair", "share", "isr_hit_ratio", "agents",
	                 * "no_responses", "body" */
	char region[CANARY_ID_LEN];
	char target[CANARY_ID_LEN]; /* "" when about the whole region */
	enum gate_result result;    /* GATE_FAIL or GATE_INCONCLUSIVE */
	int critical;               /* one such round rolls back at once */
	char text[GATE_FINDING_LEN];
};

/* Per-region figures (over all targets of the region unless said). */
struct gate_region_verdict {
	char name[CANARY_ID_LEN];
	enum gate_result result;
	int critical;
	int agents;
	uint64_t sent;
	uint64_t failed;   /* sent - expected-status responses */
	double error_rate; /* failed / sent; 0 when nothing sent */
	double p95_ms;     /* of the merged histogram of all targets */
	double p99_ms;
	double isr_hit_ratio; /* over isr targets; -1 when none or no cache answers */
	double m1_share;      /* observed share of the second expected middleware
	                       * version, percent; -1 when one is expected */
};

struct gate_verdict {
	enum gate_result result;
	int critical;
	int failed_regions;
	int inconclusive_regions;
	struct gate_region_verdict regions[GATE_MAX_REGIONS];
	int n_regions;
	/* all regions merged */
	uint64_t sent, failed;
	double error_rate, p95_ms, p99_ms;
	struct gate_finding findings[GATE_MAX_FINDINGS];
	int n_findings;
	int findings_dropped; /* findings beyond GATE_MAX_FINDINGS */
	/* Of those, the critical ones: a dropped finding still decides its
	 * region's result and criticality. */
	int findings_dropped_critical;
};

/* gate_judge: judges round r with policy p. baseline (may be NULL: no ratio
 * checks) is an earlier round that was judged healthy, e.g. the preflight
 * round on m0+s0; its region/target histograms are the reference for the
 * ratio checks (a region or target absent from it is not ratio-checked).
 * Per region: error rate, p95/p99 absolute and vs baseline, affinity
 * violations, unknown versions, override violations, version key
 * violations, pairs the expectation does not allow (critical), the
 * middleware share within tolerance of the expected one (over all targets'
 * version pairs of the region, the dark step's honoured overrides taken
 * out; with version keys n is capped at version_keys x agents, since one
 * key is one draw of the split), ISR hit ratio;
 * fewer agents than min_agents, or a target no reporting agent sent a
 * request to: inconclusive. Overall: FAIL
 * when any region has a critical finding or more than max_failed_regions
 * regions failed; else INCONCLUSIVE when any region is inconclusive; else
 * PASS. Fills *v completely. */
void gate_judge(const struct gate_round *r, const struct gate_round *baseline,
                const struct gate_policy *p, struct gate_verdict *v);

/* gate_converged: whether every required region sees what the round's
 * expectation allows: at least min_agents reports; every observed pair is
 * allowed ((middleware[i], pins[i]) or (middleware[i], "") for a cache hit,
 * plus (override version, override pin) when an override is set); no unknown
 * versions; and every expected version whose expected count in the region
 * is at least GATE_CONVERGE_MIN_EXPECTED was seen. region_ok (may be NULL,
 * else gate_round_n_regions entries) gets each region's answer. Returns 1
 * or 0; when 0, why names the first region and reason. */
int gate_converged(const struct gate_round *r, int *region_ok, char *why, size_t whylen);

/* Per-step bookkeeping of verdicts. Zero it at the start of each step. */
struct gate_step {
	int rounds;
	int failures;
	int inconclusives;
};

enum gate_action {
	GATE_CONTINUE = 0,
	GATE_ROLLBACK,
};

/* gate_step_record: counts v into s and says what to do: GATE_ROLLBACK on a
 * critical verdict, when failures exceed failure_limit, or when
 * inconclusives exceed inconclusive_limit; else GATE_CONTINUE. why gets one
 * line ("2 failed rounds > failure_limit 1"). */
enum gate_action gate_step_record(struct gate_step *s, const struct gate_policy *p,
                                  const struct gate_verdict *v, char *why, size_t whylen);

/* gate_verdict_format: one line for people: "FAIL regions=3 failed=1
 * error_rate=... p95_ms=... findings=2" followed by nothing; findings are
 * logged one per line by the caller from v->findings[i].text. */
const char *gate_verdict_format(const struct gate_verdict *v, char *buf, size_t len);

#endif /* CANARY_GATE_H */
