/*
 * hist.h: a mergeable log-linear latency histogram.
 *
 * Values are microseconds. Buckets are log-linear (a power-of-two range split
 * into equal linear sub-buckets), giving at most 1% relative error for any
 * quantile of values between CANARY_HIST_MIN_US (100 us) and
 * CANARY_HIST_MAX_US (60 s). Values outside that range are clamped into the
 * first or last bucket; min and max are kept exactly. Two histograms merge by
 * adding bucket counts, so a merged histogram equals the one built from the
 * union of the samples: quantiles of many agents are computed from merged
 * histograms, never by averaging percentiles.
 *
 * The struct is plain data (no pointers): copy it, zero it, embed it.
 */
#ifndef CANARY_HIST_H
#define CANARY_HIST_H

#include <stdint.h>

#include <cjson/cJSON.h>

#define CANARY_HIST_MIN_US   100ULL
#define CANARY_HIST_MAX_US   60000000ULL
#define CANARY_HIST_SUB_BITS 6 /* 64 linear sub-buckets per power of two */
#define CANARY_HIST_SUB      (1 << CANARY_HIST_SUB_BITS)
#define CANARY_HIST_OCTAVES  20 /* 100 us * 2^20 > 60 s */
#define CANARY_HIST_NBUCKETS (CANARY_HIST_OCTAVES * CANARY_HIST_SUB)
/* Largest integer that travels exactly as a JSON number through cJSON
 * (2^52 - 1: above it cJSON's printer may change the last digit). count and
 * sum_us saturate there (142 years of microseconds), so every histogram
 * encodes and decodes exactly. */
#define CANARY_HIST_INT_MAX 4503599627370495ULL

struct canary_hist {
	uint64_t count;  /* samples recorded */
	uint64_t min_us; /* exact smallest sample; 0 when count == 0 */
	uint64_t max_us; /* exact largest sample */
	uint64_t sum_us; /* saturating sum, for the mean */
	uint32_t buckets[CANARY_HIST_NBUCKETS];
};

/* canary_hist_init: empties h. */
void canary_hist_init(struct canary_hist *h);

/* canary_hist_record: adds one sample of usec microseconds. A sample above
 * CANARY_HIST_INT_MAX is recorded as CANARY_HIST_INT_MAX (min and max
 * saturate there like count and sum), so every histogram still encodes and
 * decodes exactly. */
void canary_hist_record(struct canary_hist *h, uint64_t usec);

/* canary_hist_merge: adds src's samples to dst. Bucket counts saturate. */
void canary_hist_merge(struct canary_hist *dst, const struct canary_hist *src);

/* canary_hist_quantile: the q-quantile (0 <= q <= 1) in microseconds, within
 * 1% of the exact sample quantile for samples in range; 0 for an empty
 * histogram. q == 1 returns max_us exactly, q == 0 min_us.
 * Definition: with n samples sorted ascending, the q-quantile is the sample
 * of rank r = ceil(q * n) (1-based, at least 1; q * n is taken 1e-12 low
 * first so that 0.95 * 100 counts as 95, not 95.00000000000001). The
 * histogram walks its cumulative bucket counts to the bucket holding rank r
 * and returns canary_hist_bucket_value of it, clamped to [min_us, max_us].
 * q outside 0..1 (or NaN) is clamped into it. */
uint64_t canary_hist_quantile(const struct canary_hist *h, double q);

/* canary_hist_bucket: the bucket index of a sample of usec microseconds
 * (clamped into [CANARY_HIST_MIN_US, CANARY_HIST_MAX_US] first). Bucket i
 * covers octave k = i / CANARY_HIST_SUB, i.e. [100 us * 2^k, 100 us * 2^(k+1)),
 * split into CANARY_HIST_SUB equal parts; s = i % CANARY_HIST_SUB is the part.
 * The largest index in use is canary_hist_bucket(CANARY_HIST_MAX_US). */
int canary_hist_bucket(uint64_t usec);

/* canary_hist_bucket_value: the value quantiles report for bucket i: the
 * middle of the whole microsecond values the bucket holds (rounded down),
 * within 1% of each of them. 0 for an index out of range. */
uint64_t canary_hist_bucket_value(int i);

/* canary_hist_encode: a compact JSON form:
 * {"n":count,"min":us,"max":us,"sum":us,"b":[index,count,index,count,...]}
 * listing only non-empty buckets in increasing index. NULL on ENOMEM.
 * The caller owns the returned tree. */
cJSON *canary_hist_encode(const struct canary_hist *h);

/* canary_hist_decode: strict inverse of canary_hist_encode. path names j in
 * errors ("targets[0].latency"). Rejects bad types, out-of-range or
 * non-increasing indexes, counts that do not add up to n, min > max.
 * Returns 0, CANARY_EINVAL (err says "PATH.FIELD: expected ..., got ...") or
 * CANARY_ENOMEM. h is only written on success. */
int canary_hist_decode(const cJSON *j, const char *path, struct canary_hist *h, char *err,
                       size_t errlen);

#endif /* CANARY_HIST_H */
