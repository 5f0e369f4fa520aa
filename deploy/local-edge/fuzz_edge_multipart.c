/*
 * fuzz_edge_multipart.c: libFuzzer target for canary-edge's multipart
 * parser (the body of every version upload is outside input).
 *
 * The first input byte picks how many parts the caller accepts; the rest is
 * the body, parsed with a fixed boundary. Every part found must lie inside
 * the body, and parts must not overlap or run backwards.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edge_multipart.h"
#include "err.h"

#define FUZZ_BOUNDARY "fuzz-b"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct edge_part parts[EDGE_MULTIPART_MAX_PARTS];
	char err[CANARY_ERRLEN];
	const char *body;
	int max, n = 0;

	if (size == 0) {
		return 0;
	}
	max = 1 + data[0] % EDGE_MULTIPART_MAX_PARTS;
	body = (const char *)data + 1;
	if (edge_multipart_parse(body, size - 1, FUZZ_BOUNDARY, parts, max, &n, err, sizeof(err)) ==
	    0) {
		const char *prev_end = body;

		if (n < 1 || n > max) {
			abort();
		}
		for (int i = 0; i < n; i++) {
			if (parts[i].data < prev_end ||
			    parts[i].data + parts[i].len > body + size - 1 ||
			    parts[i].name[0] == '\0') {
				abort();
			}
			prev_end = parts[i].data + parts[i].len;
		}
	} else if (n != 0 || memchr(err, '\0', sizeof(err)) == NULL) {
		abort();
	}
	return 0;
}
