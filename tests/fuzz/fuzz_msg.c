/*
 * fuzz_msg.c: libFuzzer target for the message decoders (proto/msg.c).
 *
 * Every input goes to both decoders. What decodes must encode again, the
 * encoding must decode, and the second encoding must be the same text as
 * the first: decode(encode(x)) loses nothing the wire carries. Decoded
 * reports are also merged and their histograms queried, so merge and
 * quantile run on whatever the decoder lets through. Any broken promise
 * aborts, which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_msg: %s: %s\n", what, err);
	abort();
}

/* The two encodings must match byte for byte. */
static void
fuzz_same(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen || memcmp(a, b, alen) != 0) {
		fprintf(stderr, "fuzz_msg: re-encoding differs:\n%s\n%s\n", a, b);
		abort();
	}
}

static void
fuzz_probe(const char *buf, size_t len)
{
	struct canary_probe p, q;
	char err[CANARY_ERRLEN], *t1 = NULL, *t2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (canary_probe_decode(buf, len, &p, err, sizeof(err)) != 0) {
		if (err[0] == '\0') {
			fuzz_fail("probe rejected", "with no message");
		}
		return;
	}
	if (canary_probe_encode(&p, &t1, &l1, err, sizeof(err)) != 0) {
		fuzz_fail("decoded probe does not encode", err);
	}
	if (canary_probe_decode(t1, l1, &q, err, sizeof(err)) != 0) {
		fuzz_fail("encoded probe does not decode", err);
	}
	if (canary_probe_encode(&q, &t2, &l2, err, sizeof(err)) != 0) {
		fuzz_fail("probe does not encode twice", err);
	}
	fuzz_same(t1, l1, t2, l2);
	if (p.n_targets != q.n_targets ||
	    memcmp(p.targets, q.targets, (size_t)p.n_targets * sizeof(*p.targets)) != 0) {
		fuzz_fail("probe targets differ after a round trip", t1);
	}
	free(t1);
	free(t2);
	canary_probe_free(&p);
	canary_probe_free(&q);
}

static void
fuzz_report(const char *buf, size_t len)
{
	struct canary_report r, s;
	struct canary_target_report *acc;
	char err[CANARY_ERRLEN], *t1 = NULL, *t2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (canary_report_decode(buf, len, &r, err, sizeof(err)) != 0) {
		if (err[0] == '\0') {
			fuzz_fail("report rejected", "with no message");
		}
		return;
	}
	if (canary_report_encode(&r, &t1, &l1, err, sizeof(err)) != 0) {
		fuzz_fail("decoded report does not encode", err);
	}
	if (canary_report_decode(t1, l1, &s, err, sizeof(err)) != 0) {
		fuzz_fail("encoded report does not decode", err);
	}
	if (canary_report_encode(&s, &t2, &l2, err, sizeof(err)) != 0) {
		fuzz_fail("report does not encode twice", err);
	}
	fuzz_same(t1, l1, t2, l2);
	acc = calloc(1, sizeof(*acc));
	if (acc == NULL) {
		abort();
	}
	for (int i = 0; i < r.n_targets; i++) {
		const struct canary_hist *h = &r.targets[i].latency;
		uint64_t p50 = canary_hist_quantile(h, 0.5), p99 = canary_hist_quantile(h, 0.99);

		if (h->count > 0 && (p50 > p99 || p50 < h->min_us || p99 > h->max_us)) {
			fuzz_fail("quantiles out of order", t1);
		}
		canary_target_report_merge(acc, &r.targets[i]);
		canary_target_report_merge(acc, &s.targets[i]);
	}
	free(acc);
	free(t1);
	free(t2);
	canary_report_free(&r);
	canary_report_free(&s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_probe((const char *)data, size);
	fuzz_report((const char *)data, size);
	return 0;
}
