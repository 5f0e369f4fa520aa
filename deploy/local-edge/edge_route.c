/*
 * edge_route.c: version picks, override parsing, random ids, faults.
 */
#include "edge_route.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define EDGE_BUCKETS 100

/* RFC 8941 number limits (section 3.3.1 and 3.3.2). */
#define SF_INTEGER_DIGITS  15
#define SF_DECIMAL_DIGITS  12
#define SF_FRACTION_DIGITS 3

void
edge_rng_seed(struct edge_rng *r, uint64_t seed)
{
	r->s = seed;
}

uint64_t
edge_rng_next(struct edge_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

double
edge_rng_unit(struct edge_rng *r)
{
	/* 53 random bits: every double in [0,1) on the grid 2^-53. */
	return (double)(edge_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

void
edge_rng_uuid(struct edge_rng *r, char out[EDGE_UUID_LEN])
{
	unsigned char b[16];
	uint64_t a = edge_rng_next(r);
	uint64_t c = edge_rng_next(r);

	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(a >> (8 * i));
		b[8 + i] = (unsigned char)(c >> (8 * i));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, EDGE_UUID_LEN,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
	         b[15]);
}

/* ---- RFC 8941 dictionary, just enough to find one member ---------------- */

static int
sf_is_lcalpha(char c)
{
	return c >= 'a' && c <= 'z';
}

static int
sf_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
sf_is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || sf_is_digit(c) ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~:/", c) != NULL);
}

static const char *
sf_skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	return p;
}

/* sf_skip_sp: where inner lists, parameters and the field's start allow
 * spaces, RFC 8941 allows SP only; OWS (SP and HTAB) is for around the
 * commas of a dictionary. */
static const char *
sf_skip_sp(const char *p)
{
	while (*p == ' ') {
		p++;
	}
	return p;
}

/* sf_key: parses a key at p; its length into *len. NULL when invalid. */
static const char *
sf_key(const char *p, size_t *len)
{
	const char *s = p;

	if (!sf_is_lcalpha(*p) && *p != '*') {
		return NULL;
	}
	p++;
	while (sf_is_lcalpha(*p) || sf_is_digit(*p) || *p == '_' || *p == '-' || *p == '.' ||
	       *p == '*') {
		p++;
	}
	*len = (size_t)(p - s);
	return p;
}

/* sf_number: an RFC 8941 integer (at most 15 digits) or decimal (at most 12
 * digits, '.', 1 to 3 digits) at p. The position after it, or NULL. */
static const char *
sf_number(const char *p)
{
	int n = 0;

	if (*p == '-') {
		p++;
	}
	while (sf_is_digit(*p)) {
		p++;
		n++;
	}
	if (n == 0 || n > SF_INTEGER_DIGITS) {
		return NULL;
	}
	if (*p == '.') {
		int f = 0;

		if (n > SF_DECIMAL_DIGITS) {
			return NULL;
		}
		for (p++; sf_is_digit(*p); p++) {
			f++;
		}
		if (f == 0 || f > SF_FRACTION_DIGITS) {
			return NULL;
		}
	}
	return p;
}

/* sf_bare_item: parses a bare item at p. A string's unescaped value goes to
 * out (when out is not NULL and it fits, else *is_string stays 0). Returns
 * the position after the item, or NULL when invalid. */
static const char *
sf_bare_item(const char *p, char *out, size_t outlen, int *is_string)
{
	*is_string = 0;
	if (*p == '"') {
		size_t n = 0;
		int fits = 1;

		p++;
		for (;;) {
			char c = *p;

			if (c == '\0') {
				return NULL;
			}
			if (c == '"') {
				p++;
				break;
			}
			if (c == '\\') {
				p++;
				if (*p != '"' && *p != '\\') {
					return NULL;
				}
				c = *p;
			} else if ((unsigned char)c < 0x20 || (unsigned char)c > 0x7e) {
				return NULL;
			}
			if (out != NULL && n + 1 < outlen) {
				out[n++] = c;
			} else {
				fits = 0;
			}
			p++;
		}
		if (out != NULL && fits) {
			out[n] = '\0';
			*is_string = 1;
		}
		return p;
	}
	if (*p == '-' || sf_is_digit(*p)) {
		return sf_number(p);
	}
	if (*p == '?') {
		return (p[1] == '0' || p[1] == '1') ? p + 2 : NULL;
	}
	if (*p == ':') {
		/* A byte sequence: base64 between colons. */
		p++;
		while (*p != ':') {
			if (!(sf_is_lcalpha(*p) || (*p >= 'A' && *p <= 'Z') || sf_is_digit(*p) ||
			      *p == '+' || *p == '/' || *p == '=')) {
				return NULL;
			}
			p++;
		}
		return p + 1;
	}
	if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '*') {
		while (sf_is_tchar(*p)) {
			p++;
		}
		return p;
	}
	return NULL;
}

/* sf_params: skips `;key[=item]` parameters. NULL when invalid. */
static const char *
sf_params(const char *p)
{
	while (*p == ';') {
		size_t klen;
		int is_string;

		p = sf_key(sf_skip_sp(p + 1), &klen);
		if (p == NULL) {
			return NULL;
		}
		if (*p == '=') {
			p = sf_bare_item(p + 1, NULL, 0, &is_string);
			if (p == NULL) {
				return NULL;
			}
		}
	}
	return p;
}

int
edge_route_override(const char *header, const char *worker, char *out, size_t outlen)
{
	char value[EDGE_UUID_LEN + 64];
	int found = 0;
	size_t wlen;
	const char *p;

	if (header == NULL || worker == NULL || outlen == 0) {
		return 0;
	}
	wlen = strlen(worker);
	p = sf_skip_sp(header);
	if (*p == '\0') {
		return 0;
	}
	for (;;) {
		const char *key = p;
		size_t klen;
		int is_string = 0;

		p = sf_key(p, &klen);
		if (p == NULL) {
			return 0;
		}
		if (*p == '=') {
			p++;
			if (*p == '(') {
				/* An inner list: skip it whole, items and parameters. */
				p++;
				for (;;) {
					p = sf_skip_sp(p);
					if (*p == ')') {
						p++;
						break;
					}
					p = sf_bare_item(p, NULL, 0, &is_string);
					if (p == NULL || (p = sf_params(p)) == NULL) {
						return 0;
					}
					if (*p != ' ' && *p != ')') {
						return 0;
					}
				}
				is_string = 0;
			} else {
				p = sf_bare_item(p, value, sizeof(value), &is_string);
				if (p == NULL) {
					return 0;
				}
			}
		}
		p = sf_params(p);
		if (p == NULL) {
			return 0;
		}
		if (klen == wlen && memcmp(key, worker, wlen) == 0) {
			/* The last duplicate wins (RFC 8941 3.2). */
			found = is_string && value[0] != '\0' && strlen(value) < outlen;
			if (found) {
				memcpy(out, value, strlen(value) + 1);
			}
		}
		p = sf_skip_ows(p);
		if (*p == '\0') {
			break;
		}
		if (*p != ',') {
			return 0;
		}
		p = sf_skip_ows(p + 1);
		if (*p == '\0') {
			return 0; /* a trailing comma is invalid */
		}
	}
	return found;
}

cJSON *
edge_route_versions_json(const struct edge_split *split)
{
	cJSON *vs = cJSON_CreateArray();

	for (int i = 0; vs != NULL && i < split->n; i++) {
		cJSON *x = cJSON_CreateObject();

		if (x == NULL || cJSON_AddStringToObject(x, "version_id", split->v[i].id) == NULL ||
		    cJSON_AddNumberToObject(x, "percentage", split->v[i].percentage) == NULL) {
			cJSON_Delete(x);
			cJSON_Delete(vs);
			return NULL;
		}
		cJSON_AddItemToArray(vs, x);
	}
	return vs;
}

int
edge_route_key_bucket(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then a finaliser for the low bits */

	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (int)(h % EDGE_BUCKETS);
}

/* route_bucket_pick: buckets are laid out newest upload first. */
static int
route_bucket_pick(const struct edge_split *split, int bucket)
{
	int order[EDGE_DEPLOY_MAX_VERSIONS] = {0, 1};
	int acc = 0;

	if (split->n == 2 && split->v[1].number > split->v[0].number) {
		order[0] = 1;
		order[1] = 0;
	}
	for (int i = 0; i < split->n; i++) {
		acc += split->v[order[i]].percentage;
		if (bucket < acc) {
			return order[i];
		}
	}
	/* Percentages that do not reach 100 never come from the state; fall back
	 * to the largest share rather than crash. */
	if (split->n == 2 && split->v[1].percentage > split->v[0].percentage) {
		return 1;
	}
	return 0;
}

int
edge_route_pick(const struct edge_split *split, const char *override_id, const char *key,
                uint64_t random)
{
	if (split->n <= 0) {
		return -1;
	}
	if (override_id != NULL) {
		for (int i = 0; i < split->n; i++) {
			if (split->v[i].id != NULL && strcmp(split->v[i].id, override_id) == 0) {
				return i;
			}
		}
	}
	if (key != NULL && key[0] != '\0') {
		return route_bucket_pick(split, edge_route_key_bucket(key));
	}
	return route_bucket_pick(split, (int)(random % EDGE_BUCKETS));
}

const char *
edge_binding_text(const cJSON *bindings, const char *name)
{
	const cJSON *b;

	if (!cJSON_IsArray(bindings)) {
		return NULL;
	}
	cJSON_ArrayForEach(b, bindings)
	{
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(b, "name");
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "type");
		const cJSON *x = cJSON_GetObjectItemCaseSensitive(b, "text");

		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0 && cJSON_IsString(t) &&
		    strcmp(t->valuestring, "plain_text") == 0 && cJSON_IsString(x)) {
			return x->valuestring;
		}
	}
	return NULL;
}

static int
faults_flag(const char *s, int *out)
{
	if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0) {
		*out = 1;
		return 0;
	}
	if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0 || s[0] == '\0') {
		*out = 0;
		return 0;
	}
	return -1;
}

static int
faults_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
		return -1;
	}
	*out = v;
	return 0;
}

/* faults_region_listed: whether name is an entry of a comma list. */
static int
faults_region_listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (*p != '\0') {
		const char *e = strchr(p, ',');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ') {
			len--;
		}
		if (len == n && memcmp(p, name, n) == 0) {
			return 1;
		}
		if (e == NULL) {
			break;
		}
		p = e + 1;
	}
	return 0;
}

int
edge_faults_parse(const cJSON *bindings, const char *region, struct edge_faults *f, char *err,
                  size_t errlen)
{
	const char *s;
	long v;

	memset(f, 0, sizeof(*f));
	if ((s = edge_binding_text(bindings, EDGE_F_ERROR_RATE)) != NULL) {
		char *end;
		double d;

		errno = 0;
		d = strtod(s, &end);
		if (s[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(d) || d < 0 || d > 1) {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "bindings.%s: expected a number from 0 to 1, found \"%s\"",
			    EDGE_F_ERROR_RATE, s);
		}
		f->error_rate = d;
	}
	if ((s = edge_binding_text(bindings, EDGE_F_STATUS)) != NULL) {
		if (faults_long(s, 100, 599, &v) != 0) {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "bindings.%s: expected an HTTP status 100..599, found \"%s\"",
			    EDGE_F_STATUS, s);
		}
		f->status = (int)v;
	}
	if ((s = edge_binding_text(bindings, EDGE_F_LATENCY)) != NULL) {
		if (faults_long(s, 0, EDGE_MAX_LATENCY_MS, &v) != 0) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "bindings.%s: expected milliseconds 0..%d, found \"%s\"",
			                   EDGE_F_LATENCY, EDGE_MAX_LATENCY_MS, s);
		}
		f->latency_ms = (int)v;
	}
	if ((s = edge_binding_text(bindings, EDGE_F_IGNORE_PIN)) != NULL &&
	    faults_flag(s, &f->ignore_pin) != 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "bindings.%s: expected 1, 0, true or false, found \"%s\"",
		                   EDGE_F_IGNORE_PIN, s);
	}
	if ((s = edge_binding_text(bindings, EDGE_F_NO_CACHE)) != NULL &&
	    faults_flag(s, &f->no_cache) != 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "bindings.%s: expected 1, 0, true or false, found \"%s\"",
		                   EDGE_F_NO_CACHE, s);
	}
	if ((s = edge_binding_text(bindings, EDGE_F_OVERRIDE)) != NULL) {
		if (s[0] == '\0' || strlen(s) >= sizeof(f->override_key)) {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "bindings.%s: expected a worker name of 1..%d bytes, found "
			    "%zu bytes",
			    EDGE_F_OVERRIDE, (int)sizeof(f->override_key) - 1, strlen(s));
		}
		memcpy(f->override_key, s, strlen(s) + 1);
	}
	if ((s = edge_binding_text(bindings, EDGE_F_REGIONS)) != NULL && region != NULL &&
	    !faults_region_listed(s, region)) {
		memset(f, 0, sizeof(*f));
	}
	return 0;
}
