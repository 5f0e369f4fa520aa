/*
 * fuzz_multipart.c: libFuzzer target for canary-edge's version upload
 * parsing (deploy/local-edge/edge_multipart.h): the Content-Type header
 * (edge_multipart_boundary) and the multipart/form-data body
 * (edge_multipart_parse), both sent by whoever calls the edge's API.
 *
 * The input is the Content-Type value, a "\n", then the body, so the
 * boundary the body is cut with comes from the header as in canary-edge.
 *
 * Promises checked, beyond "no crash, no leak, no undefined behaviour":
 *   - a boundary read from the header is 1..EDGE_MULTIPART_MAX_BOUNDARY
 *     RFC 2046 characters;
 *   - a rejected body gives no parts and a message;
 *   - an accepted body has 1..max parts, each with a non-empty name unique
 *     among them, lying inside the body, in order, without overlap, and
 *     found by edge_multipart_find;
 *   - writing the parts out again as a canonical body (quoted names, the
 *     same boundary) and parsing that gives the same names, filenames,
 *     content types and data: what the parser returns is what was sent.
 *   - filename is "" whenever has_filename is 0 (a part with two
 *     Content-Disposition headers is refused: seed two_dispositions.txt).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_multipart.h"
#include "err.h"

#define FUZZ_CTYPE_MAX 512 /* bytes of the Content-Type line */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parts of the input and of the rewritten body: too big for the stack. */
static struct edge_part fuzz_parts[EDGE_MULTIPART_MAX_PARTS];
static struct edge_part fuzz_again[EDGE_MULTIPART_MAX_PARTS];

/* A growing output buffer for the rewritten body. */
struct fuzz_buf {
	char *p; /* owned */
	size_t len, cap;
};

static void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_multipart: %s: %s\n", what, detail);
	abort();
}

static void
fuzz_put(struct fuzz_buf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = (b->len + n) * 2 + 64;
		char *p = realloc(b->p, cap);

		if (p == NULL) {
			fuzz_die("realloc", "rewritten body");
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
fuzz_puts(struct fuzz_buf *b, const char *s)
{
	fuzz_put(b, s, strlen(s));
}

/* fuzz_put_quoted: s as a quoted-string, '"' and '\' escaped. */
static void
fuzz_put_quoted(struct fuzz_buf *b, const char *s)
{
	fuzz_puts(b, "\"");
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\') {
			fuzz_puts(b, "\\");
		}
		fuzz_put(b, s, 1);
	}
	fuzz_puts(b, "\"");
}

/* fuzz_rewrite: parts[0..n) as a canonical multipart body. */
static void
fuzz_rewrite(struct fuzz_buf *b, const char *boundary, const struct edge_part *parts, int n)
{
	for (int i = 0; i < n; i++) {
		fuzz_puts(b, "--");
		fuzz_puts(b, boundary);
		fuzz_puts(b, "\r\nContent-Disposition: form-data; name=");
		fuzz_put_quoted(b, parts[i].name);
		if (parts[i].has_filename) {
			fuzz_puts(b, "; filename=");
			fuzz_put_quoted(b, parts[i].filename);
		}
		if (parts[i].content_type[0] != '\0') {
			fuzz_puts(b, "\r\nContent-Type: ");
			fuzz_puts(b, parts[i].content_type);
		}
		fuzz_puts(b, "\r\n\r\n");
		fuzz_put(b, parts[i].data, parts[i].len);
		fuzz_puts(b, "\r\n");
	}
	fuzz_puts(b, "--");
	fuzz_puts(b, boundary);
	fuzz_puts(b, "--\r\n");
}

static void
fuzz_check_parts(const char *body, size_t len, const struct edge_part *parts, int n, int max)
{
	const char *prev_end = body;

	if (n < 1 || n > max) {
		fuzz_die("accepted body", "part count out of range");
	}
	for (int i = 0; i < n; i++) {
		const struct edge_part *p = &parts[i];

		if (p->data < prev_end || p->len > len || p->data > body + len - p->len) {
			fuzz_die("accepted body", "a part outside the body or overlapping another");
		}
		if (p->name[0] == '\0' || edge_multipart_find(parts, n, p->name) != p) {
			fuzz_die("accepted body", "a part name empty or not unique");
		}
		prev_end = p->data + p->len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char ctype[FUZZ_CTYPE_MAX + 1], boundary[EDGE_MULTIPART_MAX_BOUNDARY + 1];
	char err[CANARY_ERRLEN];
	const uint8_t *nl = memchr(data, '\n', size);
	const char *body;
	struct fuzz_buf out = {NULL, 0, 0};
	size_t clen, blen, len;
	int n = -1, n2 = -1, max, rv;

	if (nl == NULL || (size_t)(nl - data) > FUZZ_CTYPE_MAX) {
		return 0;
	}
	clen = (size_t)(nl - data);
	memcpy(ctype, data, clen);
	ctype[clen] = '\0';
	body = (const char *)nl + 1;
	len = size - clen - 1;

	if (edge_multipart_boundary(ctype, boundary, sizeof(boundary), err, sizeof(err)) != 0) {
		if (err[0] == '\0') {
			fuzz_die("boundary rejected", "with no message");
		}
		return 0;
	}
	blen = strlen(boundary);
	if (blen < 1 || blen > EDGE_MULTIPART_MAX_BOUNDARY ||
	    strspn(boundary, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                     "'()+_,-./:=? ") != blen) {
		fuzz_die("boundary out of RFC 2046", boundary);
	}
	/* A body's length picks the part limit, so the cap is reached too. */
	max = 1 + (int)(len % EDGE_MULTIPART_MAX_PARTS);
	rv = edge_multipart_parse(body, len, boundary, fuzz_parts, max, &n, err, sizeof(err));
	if (rv != 0) {
		if (n != 0 || err[0] == '\0' || (rv != CANARY_EPARSE && rv != CANARY_ETOOBIG)) {
			fuzz_die("rejected body", "parts or no message or an unexpected code");
		}
		return 0;
	}
	fuzz_check_parts(body, len, fuzz_parts, n, max);

	fuzz_rewrite(&out, boundary, fuzz_parts, n);
	rv = edge_multipart_parse(out.p, out.len, boundary, fuzz_again, EDGE_MULTIPART_MAX_PARTS,
	                          &n2, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "%.*s\n", (int)out.len, out.p);
		fuzz_die("the rewritten body does not parse", err);
	}
	if (n2 != n) {
		fuzz_die("rewritten body", "another number of parts");
	}
	for (int i = 0; i < n; i++) {
		const struct edge_part *a = &fuzz_parts[i], *b = &fuzz_again[i];

		if (strcmp(a->name, b->name) != 0 || a->has_filename != b->has_filename ||
		    strcmp(a->filename, b->filename) != 0 ||
		    strcmp(a->content_type, b->content_type) != 0 || a->len != b->len ||
		    memcmp(a->data, b->data, a->len) != 0) {
			fprintf(stderr, "part %d \"%s\" vs \"%s\"\n", i, a->name, b->name);
			fuzz_die("rewritten body", "a part reads back different");
		}
	}
	free(out.p);
	return 0;
}
