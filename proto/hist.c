/*
 * hist.c: the log-linear latency histogram of hist.h.
 *
 * Bucket i lies in octave k = i / CANARY_HIST_SUB, which spans
 * [base, 2 * base) with base = CANARY_HIST_MIN_US << k, cut into
 * CANARY_HIST_SUB equal parts. A part is base / 64 wide, so the middle of a
 * bucket is within 1/128 of every value in it; on whole microseconds
 * (rounding the middle down) the worst case is 0.99%, at 101 us. The
 * bound is checked exhaustively over 100 us..60 s by tests/unit/test_hist.c.
 */
#include "hist.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "jsonc.h"

/* How much of an offending JSON value an error message shows. */
#define HIST_ERR_VALUE_LEN 40
/* Longest field path an error names ("targets[15].latency.b[2451]"). */
#define HIST_PATH_LEN 160
/* q * n is lowered by this relative amount before ceil() (see hist.h). */
#define HIST_RANK_SLACK 1e-12

static uint64_t
hist_add_sat(uint64_t a, uint64_t b, uint64_t cap)
{
	if (a > cap || b > cap - a) {
		return cap;
	}
	return a + b;
}

void
canary_hist_init(struct canary_hist *h)
{
	memset(h, 0, sizeof(*h));
}

int
canary_hist_bucket(uint64_t usec)
{
	uint64_t v = usec;
	uint64_t base;
	int k;

	if (v < CANARY_HIST_MIN_US) {
		v = CANARY_HIST_MIN_US;
	}
	if (v > CANARY_HIST_MAX_US) {
		v = CANARY_HIST_MAX_US;
	}
	/* floor(v / 100) >= 2^k exactly when v >= 100 * 2^k. */
	k = 63 - __builtin_clzll(v / CANARY_HIST_MIN_US);
	base = CANARY_HIST_MIN_US << k;
	return k * CANARY_HIST_SUB + (int)((v - base) * CANARY_HIST_SUB / base);
}

uint64_t
canary_hist_bucket_value(int i)
{
	uint64_t base, s, lo, hi;

	if (i < 0 || i >= CANARY_HIST_NBUCKETS) {
		return 0;
	}
	base = CANARY_HIST_MIN_US << (i / CANARY_HIST_SUB);
	s = (uint64_t)(i % CANARY_HIST_SUB);
	/* The whole values v with floor((v - base) * SUB / base) == s. */
	lo = base + (s * base + CANARY_HIST_SUB - 1) / CANARY_HIST_SUB;
	hi = base + ((s + 1) * base + CANARY_HIST_SUB - 1) / CANARY_HIST_SUB - 1;
	return (lo + hi) / 2;
}

void
canary_hist_record(struct canary_hist *h, uint64_t usec)
{
	int i = canary_hist_bucket(usec);

	/* min and max travel as JSON numbers too: past CANARY_HIST_INT_MAX
	 * (a clock gone wrong) they saturate, so the histogram still decodes. */
	if (usec > CANARY_HIST_INT_MAX) {
		usec = CANARY_HIST_INT_MAX;
	}
	if (h->count == 0 || usec < h->min_us) {
		h->min_us = usec;
	}
	if (h->count == 0 || usec > h->max_us) {
		h->max_us = usec;
	}
	h->count = hist_add_sat(h->count, 1, CANARY_HIST_INT_MAX);
	h->sum_us = hist_add_sat(h->sum_us, usec, CANARY_HIST_INT_MAX);
	if (h->buckets[i] < UINT32_MAX) {
		h->buckets[i]++;
	}
}

void
canary_hist_merge(struct canary_hist *dst, const struct canary_hist *src)
{
	if (src->count == 0) {
		return;
	}
	if (dst->count == 0 || src->min_us < dst->min_us) {
		dst->min_us = src->min_us;
	}
	if (dst->count == 0 || src->max_us > dst->max_us) {
		dst->max_us = src->max_us;
	}
	dst->count = hist_add_sat(dst->count, src->count, CANARY_HIST_INT_MAX);
	dst->sum_us = hist_add_sat(dst->sum_us, src->sum_us, CANARY_HIST_INT_MAX);
	for (int i = 0; i < CANARY_HIST_NBUCKETS; i++) {
		dst->buckets[i] =
		    (uint32_t)hist_add_sat(dst->buckets[i], src->buckets[i], UINT32_MAX);
	}
}

uint64_t
canary_hist_quantile(const struct canary_hist *h, double q)
{
	uint64_t rank, cum = 0, v;
	double x;

	if (h->count == 0) {
		return 0;
	}
	if (!(q > 0.0)) { /* also NaN */
		return h->min_us;
	}
	if (q >= 1.0) {
		return h->max_us;
	}
	x = ceil(q * (double)h->count * (1.0 - HIST_RANK_SLACK));
	rank = x < 1.0 ? 1 : (uint64_t)x;
	if (rank > h->count) {
		rank = h->count;
	}
	for (int i = 0; i < CANARY_HIST_NBUCKETS; i++) {
		cum += h->buckets[i];
		if (cum >= rank) {
			v = canary_hist_bucket_value(i);
			if (v < h->min_us) {
				v = h->min_us;
			}
			if (v > h->max_us) {
				v = h->max_us;
			}
			return v;
		}
	}
	/* Only reachable when saturated buckets hold fewer than count. */
	return h->max_us;
}

/* A number node. Values stay below 2^52 (CANARY_HIST_INT_MAX), where
 * cJSON's printer is exact; above that it accepts a 15-digit form within a
 * tolerance of one or two units. */
static cJSON *
hist_uint(uint64_t v)
{
	return cJSON_CreateNumber((double)v);
}

static int
hist_put(cJSON *o, const char *k, uint64_t v)
{
	cJSON *n = hist_uint(v);

	if (n == NULL || !cJSON_AddItemToObject(o, k, n)) {
		cJSON_Delete(n);
		return -1;
	}
	return 0;
}

cJSON *
canary_hist_encode(const struct canary_hist *h)
{
	cJSON *o = NULL, *b = NULL, *ret = NULL;

	o = cJSON_CreateObject();
	if (o == NULL) {
		goto out;
	}
	if (hist_put(o, "n", h->count) != 0 || hist_put(o, "min", h->min_us) != 0 ||
	    hist_put(o, "max", h->max_us) != 0 || hist_put(o, "sum", h->sum_us) != 0) {
		goto out;
	}
	b = cJSON_AddArrayToObject(o, "b");
	if (b == NULL) {
		goto out;
	}
	for (int i = 0; i < CANARY_HIST_NBUCKETS; i++) {
		cJSON *ix, *n;

		if (h->buckets[i] == 0) {
			continue;
		}
		ix = hist_uint((uint64_t)i);
		if (ix == NULL) {
			goto out;
		}
		cJSON_AddItemToArray(b, ix);
		n = hist_uint(h->buckets[i]);
		if (n == NULL) {
			goto out;
		}
		cJSON_AddItemToArray(b, n);
	}
	ret = o;
	o = NULL;
out:
	cJSON_Delete(o);
	return ret;
}

/* hist_int: reads v as an integer lo..hi into *out, or writes
 * "PATH.FIELD: expected an integer lo..hi, got V" (PATH.FIELD[IDX] when
 * idx >= 0) and returns CANARY_EINVAL. The path is only formatted for a
 * message: doing it for each bucket was most of a decode's time. */
static int
hist_int(const cJSON *v, const char *path, const char *field, long idx, uint64_t lo, uint64_t hi,
         uint64_t *out, char *err, size_t errlen)
{
	char got[HIST_ERR_VALUE_LEN + 8], p[HIST_PATH_LEN];
	double d;

	if (cJSON_IsNumber(v)) {
		d = v->valuedouble;
		if (d == floor(d) && d >= (double)lo && d <= (double)hi) {
			*out = (uint64_t)d;
			return 0;
		}
	}
	if (idx >= 0) {
		snprintf(p, sizeof(p), "%s.%s[%ld]", path, field, idx);
	} else {
		snprintf(p, sizeof(p), "%s.%s", path, field);
	}
	canary_json_brief(v, HIST_ERR_VALUE_LEN, got, sizeof(got));
	return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected an integer %llu..%llu, got %s",
	                   p, (unsigned long long)lo, (unsigned long long)hi, got);
}

/* hist_field: the one member of o named name, or NULL with an error for a
 * missing or repeated one. */
static int
hist_field(const cJSON *o, const char *path, const char *name, const cJSON **out, char *err,
           size_t errlen)
{
	const cJSON *found = NULL;

	for (const cJSON *c = o->child; c != NULL; c = c->next) {
		if (c->string == NULL || strcmp(c->string, name) != 0) {
			continue;
		}
		if (found != NULL) {
			return canary_errf(err, errlen, CANARY_EINVAL, "%s.%s: field appears twice",
			                   path, name);
		}
		found = c;
	}
	if (found == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s.%s: required field is missing",
		                   path, name);
	}
	*out = found;
	return 0;
}

int
canary_hist_decode(const cJSON *j, const char *path, struct canary_hist *h, char *err,
                   size_t errlen)
{
	static const char *const names[4] = {"n", "min", "max", "sum"};
	uint64_t vals[4];
	uint64_t total = 0, ix = 0, cnt = 0;
	const cJSON *f = NULL, *b = NULL, *e = NULL;
	char got[HIST_ERR_VALUE_LEN + 8];
	int rv, prev = -1, saturated = 0, first = -1, last = -1;
	int maxix = canary_hist_bucket(CANARY_HIST_MAX_US);
	size_t k = 0;
	struct canary_hist *tmp = NULL;

	if (!cJSON_IsObject(j)) {
		canary_json_brief(j, HIST_ERR_VALUE_LEN, got, sizeof(got));
		return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected an object, got %s",
		                   path, got);
	}
	for (int i = 0; i < 4; i++) {
		if ((rv = hist_field(j, path, names[i], &f, err, errlen)) != 0) {
			return rv;
		}
		rv = hist_int(f, path, names[i], -1, 0, CANARY_HIST_INT_MAX, &vals[i], err, errlen);
		if (rv != 0) {
			return rv;
		}
	}
	if (vals[1] > vals[2]) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s.min: %llu is above max %llu",
		                   path, (unsigned long long)vals[1], (unsigned long long)vals[2]);
	}
	if (vals[0] == 0 && (vals[1] != 0 || vals[2] != 0 || vals[3] != 0)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s: an empty histogram (n 0) must have min, max and sum 0",
		                   path);
	}
	if ((rv = hist_field(j, path, "b", &b, err, errlen)) != 0) {
		return rv;
	}
	if (!cJSON_IsArray(b)) {
		canary_json_brief(b, HIST_ERR_VALUE_LEN, got, sizeof(got));
		return canary_errf(err, errlen, CANARY_EINVAL, "%s.b: expected an array, got %s",
		                   path, got);
	}
	/* The struct is 5 KiB: build it off the stack, and write h only on success. */
	tmp = calloc(1, sizeof(*tmp));
	if (tmp == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "%s: out of memory", path);
	}
	for (e = b->child; e != NULL; e = e->next, k++) {
		if (k % 2 == 0) {
			/* Strictly increasing bounds the array at 2 * NBUCKETS entries. */
			rv = hist_int(e, path, "b", (long)k, (uint64_t)(prev + 1), (uint64_t)maxix,
			              &ix, err, errlen);
			if (rv != 0) {
				goto out;
			}
			prev = (int)ix;
			continue;
		}
		if ((rv = hist_int(e, path, "b", (long)k, 1, UINT32_MAX, &cnt, err, errlen)) != 0) {
			goto out;
		}
		tmp->buckets[ix] = (uint32_t)cnt;
		saturated |= cnt == UINT32_MAX;
		total += cnt;
		if (first < 0) {
			first = (int)ix;
		}
		last = (int)ix;
	}
	if (k % 2 != 0) {
		rv =
		    canary_errf(err, errlen, CANARY_EINVAL,
		                "%s.b: expected index,count pairs, got an odd length %zu", path, k);
		goto out;
	}
	/* A saturated bucket holds fewer than it was given. */
	if (saturated ? total > vals[0] : total != vals[0]) {
		rv = canary_errf(err, errlen, CANARY_EINVAL,
		                 "%s.b: bucket counts total %llu, but n is %llu", path,
		                 (unsigned long long)total, (unsigned long long)vals[0]);
		goto out;
	}
	if (vals[0] > 0 && first != canary_hist_bucket(vals[1])) {
		rv = canary_errf(err, errlen, CANARY_EINVAL,
		                 "%s.min: %llu lies in bucket %d, but the first bucket is %d", path,
		                 (unsigned long long)vals[1], canary_hist_bucket(vals[1]), first);
		goto out;
	}
	if (vals[0] > 0 && last != canary_hist_bucket(vals[2])) {
		rv = canary_errf(err, errlen, CANARY_EINVAL,
		                 "%s.max: %llu lies in bucket %d, but the last bucket is %d", path,
		                 (unsigned long long)vals[2], canary_hist_bucket(vals[2]), last);
		goto out;
	}
	tmp->count = vals[0];
	tmp->min_us = vals[1];
	tmp->max_us = vals[2];
	tmp->sum_us = vals[3];
	*h = *tmp;
	rv = 0;
out:
	free(tmp);
	return rv;
}
