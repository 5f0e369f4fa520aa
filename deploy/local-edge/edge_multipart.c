/*
 * edge_multipart.c: strict multipart/form-data.
 */
#include "edge_multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"

static const char *
mp_find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	if (nlen == 0 || hlen < nlen) {
		return NULL;
	}
	for (size_t i = 0; i + nlen <= hlen; i++) {
		const char *p = memchr(hay + i, needle[0], hlen - nlen + 1 - i);

		if (p == NULL) {
			return NULL;
		}
		if (memcmp(p, needle, nlen) == 0) {
			return p;
		}
		i = (size_t)(p - hay);
	}
	return NULL;
}

static int
mp_is_bchar(char c)
{
	/* RFC 2046 bcharsnospace plus space (not last). */
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("'()+_,-./:=? ", c) != NULL);
}

int
edge_multipart_boundary(const char *content_type, char *out, size_t outlen, char *err,
                        size_t errlen)
{
	static const char type[] = "multipart/form-data";
	const char *p;
	size_t n = 0;
	int quoted;

	if (content_type == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "Content-Type: expected multipart/form-data, found none");
	}
	if (strncasecmp(content_type, type, sizeof(type) - 1) != 0 ||
	    (content_type[sizeof(type) - 1] != ';' && content_type[sizeof(type) - 1] != ' ')) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "Content-Type: expected multipart/form-data with a boundary, "
		                   "found \"%.60s\"",
		                   content_type);
	}
	p = content_type + sizeof(type) - 1;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ';') {
			p++;
		}
		if (*p == '\0') {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "Content-Type: multipart/form-data without a boundary");
		}
		if (strncasecmp(p, "boundary=", 9) == 0) {
			p += 9;
			break;
		}
		while (*p != '\0' && *p != ';') {
			p++;
		}
	}
	/* Quoted, the boundary ends at the closing quote; bare, at ';' or blank. */
	quoted = *p == '"';
	p += quoted;
	while (quoted ? *p != '"' : (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t')) {
		if (*p == '\0' || !mp_is_bchar(*p) || n + 1 >= outlen ||
		    n >= EDGE_MULTIPART_MAX_BOUNDARY) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "Content-Type: boundary: expected 1..%d characters "
			                   "allowed by RFC 2046",
			                   EDGE_MULTIPART_MAX_BOUNDARY);
		}
		out[n++] = *p++;
	}
	if (n == 0) {
		return canary_errf(err, errlen, CANARY_EINVAL, "Content-Type: empty boundary");
	}
	out[n] = '\0';
	return 0;
}

/* mp_param: finds `key=value` (quoted or not) in a header value; copies the
 * value into out. Returns 1 found, 0 absent, -1 malformed or too long. */
static int
mp_param(const char *v, size_t vlen, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key);
	size_t i = 0;

	while (i < vlen) {
		/* Skip to the start of a parameter: after ';' and spaces. */
		while (i < vlen && v[i] != ';') {
			if (v[i] == '"') {
				i++;
				while (i < vlen && v[i] != '"') {
					i += v[i] == '\\' ? 2 : 1;
				}
			}
			i++;
		}
		i++;
		while (i < vlen && (v[i] == ' ' || v[i] == '\t')) {
			i++;
		}
		if (i + klen + 1 <= vlen && strncasecmp(v + i, key, klen) == 0 &&
		    v[i + klen] == '=') {
			size_t n = 0;

			i += klen + 1;
			if (i < vlen && v[i] == '"') {
				i++;
				while (i < vlen && v[i] != '"') {
					char c = v[i];

					if (c == '\\' && i + 1 < vlen) {
						c = v[++i];
					}
					if (n + 1 >= outlen) {
						return -1;
					}
					out[n++] = c;
					i++;
				}
				if (i >= vlen) {
					return -1;
				}
			} else {
				while (i < vlen && v[i] != ';' && v[i] != ' ') {
					if (n + 1 >= outlen) {
						return -1;
					}
					out[n++] = v[i++];
				}
			}
			out[n] = '\0';
			return 1;
		}
	}
	return 0;
}

/* mp_headers: parses one part's header block [h, h+hlen) into part. */
static int
mp_headers(const char *h, size_t hlen, size_t at, struct edge_part *part, char *err, size_t errlen)
{
	size_t i = 0;
	int have_cd = 0;

	while (i < hlen) {
		const char *eol = mp_find(h + i, hlen - i, "\r\n", 2);
		size_t llen = eol != NULL ? (size_t)(eol - (h + i)) : hlen - i;
		const char *line = h + i;
		const char *colon = memchr(line, ':', llen);
		const char *v;
		size_t nlen, vlen;

		if (colon == NULL || colon == line) {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "multipart: byte %zu: expected a \"Name: value\" header",
			                   at + i);
		}
		nlen = (size_t)(colon - line);
		v = colon + 1;
		vlen = llen - nlen - 1;
		while (vlen > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		for (size_t k = 0; k < llen; k++) {
			if ((unsigned char)line[k] < 0x20 && line[k] != '\t') {
				return canary_errf(
				    err, errlen, CANARY_EPARSE,
				    "multipart: byte %zu: control character in a part "
				    "header",
				    at + i + k);
			}
		}
		if (nlen == 19 && strncasecmp(line, "Content-Disposition", nlen) == 0) {
			int r;

			/* RFC 7578 4.2: one per part. A second one would leave
			 * name and filename from two different headers. */
			if (have_cd) {
				return canary_errf(err, errlen, CANARY_EPARSE,
				                   "multipart: byte %zu: a second "
				                   "Content-Disposition in one part",
				                   at + i);
			}
			if (vlen < 9 || strncasecmp(v, "form-data", 9) != 0 ||
			    (vlen > 9 && v[9] != ';' && v[9] != ' ')) {
				return canary_errf(
				    err, errlen, CANARY_EPARSE,
				    "multipart: byte %zu: expected Content-Disposition: "
				    "form-data",
				    at + i);
			}
			r = mp_param(v, vlen, "name", part->name, sizeof(part->name));
			if (r != 1 || part->name[0] == '\0') {
				return canary_errf(
				    err, errlen, CANARY_EPARSE,
				    "multipart: byte %zu: expected a name=\"...\" of 1..%d "
				    "bytes in Content-Disposition",
				    at + i, EDGE_PATH_MAX - 1);
			}
			r = mp_param(v, vlen, "filename", part->filename, sizeof(part->filename));
			if (r < 0) {
				return canary_errf(
				    err, errlen, CANARY_EPARSE,
				    "multipart: byte %zu: filename: expected a quoted "
				    "string of at most %d bytes",
				    at + i, EDGE_PATH_MAX - 1);
			}
			part->has_filename = r == 1;
			have_cd = 1;
		} else if (nlen == 12 && strncasecmp(line, "Content-Type", nlen) == 0) {
			if (vlen >= sizeof(part->content_type)) {
				return canary_errf(
				    err, errlen, CANARY_EPARSE,
				    "multipart: byte %zu: Content-Type longer than %d "
				    "bytes",
				    at + i, (int)sizeof(part->content_type) - 1);
			}
			memcpy(part->content_type, v, vlen);
			part->content_type[vlen] = '\0';
		}
		i += llen + 2;
	}
	if (!have_cd) {
		return canary_errf(
		    err, errlen, CANARY_EPARSE,
		    "multipart: byte %zu: part without Content-Disposition: form-data", at);
	}
	return 0;
}

int
edge_multipart_parse(const char *body, size_t len, const char *boundary, struct edge_part *parts,
                     int max_parts, int *n_parts, char *err, size_t errlen)
{
	char delim[EDGE_MULTIPART_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
	size_t dlen, blen = strlen(boundary);
	size_t pos;
	int n = 0;

	*n_parts = 0;
	if (blen == 0 || blen > EDGE_MULTIPART_MAX_BOUNDARY) {
		return canary_errf(err, errlen, CANARY_EPARSE, "multipart: bad boundary length %zu",
		                   blen);
	}
	dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	/* The first delimiter has no CRLF in front of it. */
	if (len < dlen - 2 || memcmp(body, delim + 2, dlen - 2) != 0) {
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "multipart: byte 0: expected the delimiter --%s", boundary);
	}
	pos = dlen - 2;
	for (;;) {
		const char *hend, *next;
		struct edge_part *part;
		size_t hstart;

		if (pos + 2 <= len && memcmp(body + pos, "--", 2) == 0) {
			break; /* the close delimiter; an epilogue may follow */
		}
		if (pos + 2 > len || memcmp(body + pos, "\r\n", 2) != 0) {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "multipart: byte %zu: expected CRLF or \"--\" after the "
			                   "delimiter",
			                   pos);
		}
		pos += 2;
		if (n >= max_parts) {
			return canary_errf(err, errlen, CANARY_ETOOBIG,
			                   "multipart: more than %d parts", max_parts);
		}
		hstart = pos;
		if (pos + 2 <= len && memcmp(body + pos, "\r\n", 2) == 0) {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "multipart: byte %zu: part without headers", pos);
		}
		hend = mp_find(body + pos, len - pos, "\r\n\r\n", 4);
		if (hend == NULL) {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "multipart: byte %zu: part headers never end", pos);
		}
		if ((size_t)(hend - (body + pos)) > EDGE_MULTIPART_MAX_HEADER) {
			return canary_errf(err, errlen, CANARY_ETOOBIG,
			                   "multipart: byte %zu: part headers longer than %d bytes",
			                   pos, EDGE_MULTIPART_MAX_HEADER);
		}
		part = &parts[n];
		memset(part, 0, sizeof(*part));
		{
			int rv = mp_headers(body + pos, (size_t)(hend - (body + pos)), hstart, part,
			                    err, errlen);

			if (rv != 0) {
				return rv;
			}
		}
		if (edge_multipart_find(parts, n, part->name) != NULL) {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "multipart: byte %zu: part \"%s\" appears twice", hstart,
			                   part->name);
		}
		pos = (size_t)(hend - body) + 4;
		/* A part may end right after its headers (RFC 2046: the body-part's
		 * CRLF and octets are optional): then the blank line's CRLF is the
		 * delimiter's, and the part is empty. */
		if ((size_t)(hend - body) + 2 + dlen <= len && memcmp(hend + 2, delim, dlen) == 0) {
			pos -= 2;
			next = body + pos;
		} else {
			next = mp_find(body + pos, len - pos, delim, dlen);
		}
		if (next == NULL) {
			return canary_errf(
			    err, errlen, CANARY_EPARSE,
			    "multipart: byte %zu: part \"%s\" has no closing delimiter", pos,
			    part->name);
		}
		part->data = body + pos;
		part->len = (size_t)(next - (body + pos));
		pos = (size_t)(next - body) + dlen;
		n++;
	}
	if (n == 0) {
		return canary_errf(err, errlen, CANARY_EPARSE, "multipart: no parts");
	}
	*n_parts = n;
	return 0;
}

const struct edge_part *
edge_multipart_find(const struct edge_part *parts, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(parts[i].name, name) == 0) {
			return &parts[i];
		}
	}
	return NULL;
}
