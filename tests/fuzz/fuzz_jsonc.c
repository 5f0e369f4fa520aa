/*
 * fuzz_jsonc.c: libFuzzer target for the JSONC reader.
 *
 * Any input: no crash, no leak, no undefined behaviour; a rejection has a
 * "LINE:COLUMN: " message. An accepted input: every node has a position, and
 * that position holds the first byte of a value of the node's type; printing
 * the tree with cJSON and reading it back gives an equal tree.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "jsonc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Offsets of the first byte of each line of the input. */
struct fuzz_lines {
	size_t *start; /* owned */
	size_t count;
};

static void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_jsonc: %s: %s\n", what, detail);
	abort();
}

static void
fuzz_lines_init(struct fuzz_lines *ls, const uint8_t *d, size_t n)
{
	size_t i;

	ls->count = 1;
	for (i = 0; i < n; i++) {
		ls->count += d[i] == '\n';
	}
	ls->start = malloc(ls->count * sizeof(*ls->start));
	if (ls->start == NULL) {
		fuzz_die("malloc", "line table");
	}
	ls->start[0] = 0;
	ls->count = 1;
	for (i = 0; i < n; i++) {
		if (d[i] == '\n') {
			ls->start[ls->count++] = i + 1;
		}
	}
}

/* fuzz_first_byte_ok: whether c can start a value of node's type. */
static int
fuzz_first_byte_ok(const cJSON *node, uint8_t c)
{
	if (cJSON_IsObject(node)) {
		return c == '{';
	}
	if (cJSON_IsArray(node)) {
		return c == '[';
	}
	if (cJSON_IsString(node)) {
		return c == '"';
	}
	if (cJSON_IsNumber(node)) {
		return c == '-' || (c >= '0' && c <= '9');
	}
	if (cJSON_IsTrue(node)) {
		return c == 't';
	}
	if (cJSON_IsFalse(node)) {
		return c == 'f';
	}
	if (cJSON_IsNull(node)) {
		return c == 'n';
	}
	return 0;
}

static void
fuzz_check_positions(const struct canary_jsonc *doc, const cJSON *node, const uint8_t *d, size_t n,
                     const struct fuzz_lines *ls)
{
	const cJSON *child;
	int line = 0, col = 0;
	size_t off;

	for (; node != NULL; node = node->next) {
		if (canary_jsonc_where(doc, node, &line, &col) != 0) {
			fuzz_die("position", "a node has none");
		}
		if (line < 1 || (size_t)line > ls->count || col < 1) {
			fuzz_die("position", "line or column out of range");
		}
		off = ls->start[line - 1] + (size_t)col - 1;
		if (off >= n || !fuzz_first_byte_ok(node, d[off])) {
			fuzz_die("position", "does not point at the start of the value");
		}
		child = node->child;
		if (child != NULL) {
			fuzz_check_positions(doc, child, d, n, ls);
		}
	}
}

/* fuzz_check_error: an error message starts with "LINE:COLUMN: ". */
static void
fuzz_check_error(const char *err)
{
	const char *p = err;
	int part;

	for (part = 0; part < 2; part++) {
		if (*p < '1' || *p > '9') {
			fuzz_die("error without a position", err);
		}
		while (*p >= '0' && *p <= '9') {
			p++;
		}
		if (*p++ != ':') {
			fuzz_die("error without a position", err);
		}
	}
	if (*p != ' ' || p[1] == '\0') {
		fuzz_die("error without words", err);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct canary_jsonc *doc = NULL, *again = NULL;
	struct fuzz_lines ls = {NULL, 0};
	char err[CANARY_ERRLEN];
	char *printed = NULL;
	int rv;

	rv = canary_jsonc_parse((const char *)data, size, CANARY_JSONC_MAX_DEPTH, &doc, err,
	                        sizeof(err));
	if (rv != 0) {
		if (doc != NULL) {
			fuzz_die("rejected input", "left a document behind");
		}
		if (rv != CANARY_EPARSE && rv != CANARY_ETOODEEP) {
			fuzz_die("unexpected code", canary_strerror(rv));
		}
		fuzz_check_error(err);
		return 0;
	}
	fuzz_lines_init(&ls, data, size);
	fuzz_check_positions(doc, canary_jsonc_root(doc), data, size, &ls);

	printed = cJSON_PrintUnformatted(canary_jsonc_root(doc));
	if (printed == NULL) {
		fuzz_die("cJSON_PrintUnformatted", "failed");
	}
	rv = canary_jsonc_parse(printed, strlen(printed), CANARY_JSONC_MAX_DEPTH, &again, err,
	                        sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "printed: %s\n", printed);
		fuzz_die("re-reading the printed tree", err);
	}
	if (!cJSON_Compare(canary_jsonc_root(doc), canary_jsonc_root(again), 1)) {
		fprintf(stderr, "printed: %s\n", printed);
		fuzz_die("round trip", "the tree read back differs");
	}
	cJSON_free(printed);
	canary_jsonc_free(again);
	canary_jsonc_free(doc);
	free(ls.start);
	return 0;
}
