/*
 * edge_multipart.h: a strict multipart/form-data parser (RFC 7578) for the
 * version uploads of the edge's API.
 *
 * Strict: the body must start with the first delimiter, every part needs a
 * `Content-Disposition: form-data; name="..."` header, header blocks and part
 * counts are capped, part names are unique, and the closing delimiter must
 * be there. Parts point into the caller's body (nothing is copied), so the
 * body must outlive them. Pure: no I/O.
 */
#ifndef CANARY_EDGE_MULTIPART_H
#define CANARY_EDGE_MULTIPART_H

#include <stddef.h>

#include "edge_const.h"

#define EDGE_MULTIPART_CTYPE_MAX 128

struct edge_part {
	char name[EDGE_PATH_MAX];
	char filename[EDGE_PATH_MAX]; /* "" when has_filename is 0 */
	int has_filename;
	char content_type[EDGE_MULTIPART_CTYPE_MAX]; /* "" when the part has none */
	const char *data;                            /* into the body */
	size_t len;
};

/* edge_multipart_boundary: the boundary parameter of a Content-Type header
 * value that must be multipart/form-data. Returns 0, or CANARY_EINVAL with
 * the reason in err. out holds EDGE_MULTIPART_MAX_BOUNDARY + 1 bytes. */
int edge_multipart_boundary(const char *content_type, char *out, size_t outlen, char *err,
                            size_t errlen);

/* edge_multipart_parse: splits body (len bytes) into at most max_parts
 * parts. Returns 0 with *n_parts set, or CANARY_EPARSE (err says what was
 * expected, and at which byte offset) or CANARY_ETOOBIG (more parts than
 * max_parts, or a header block over EDGE_MULTIPART_MAX_HEADER). */
int edge_multipart_parse(const char *body, size_t len, const char *boundary,
                         struct edge_part *parts, int max_parts, int *n_parts, char *err,
                         size_t errlen);

/* edge_multipart_find: the part called name, or NULL. */
const struct edge_part *edge_multipart_find(const struct edge_part *parts, int n, const char *name);

#endif /* CANARY_EDGE_MULTIPART_H */
