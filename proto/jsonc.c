/*
 * jsonc.c: a recursive-descent JSONC reader that builds cJSON trees.
 *
 * Why not cJSON_Parse after cJSON_Minify: the minifier mistakes the end of
 * `"C:\\"` for an escaped quote and eats the rest of the line, it cannot
 * report where an error is, and cJSON accepts what JSON does not (leading
 * zeros, duplicate keys, lone surrogates). This reader walks the bytes once,
 * tracks line and column, and records where every value starts in a side
 * table keyed by node pointer (open addressing), so later semantic checks can
 * name a file position.
 */
#include "jsonc.h"

#include "err.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Numbers longer than this are rejected: no config value needs it, and the
 * copy handed to strtod lives on the stack. */
#define JSONC_MAX_NUMBER_LEN 256
/* Initial slot count of the position table; it doubles at half load. */
#define JSONC_POS_INITIAL 64
/* Keys of an object checked by linear search before a hash table is built. */
#define JSONC_KEYS_LINEAR 8
/* Initial slot count of an object's duplicate-key table. */
#define JSONC_KEYS_INITIAL 32
/* How much of an offending token an error message quotes. */
#define JSONC_TOKEN_QUOTE 24
/* How much of a key an error message quotes. */
#define JSONC_KEY_QUOTE 64
/* Bytes read per chunk by canary_jsonc_read_file. */
#define JSONC_READ_CHUNK 65536

/* One entry of the position table: a node and where its text starts. */
struct jsonc_pos {
	const cJSON *node;
	int line;
	int column;
};

struct canary_jsonc {
	cJSON *root;             /* owned */
	struct jsonc_pos *slots; /* owned; open addressing, node NULL = empty */
	size_t cap;              /* power of two */
	size_t count;
};

/* A place in the text (1-based line, 1-based byte column). */
struct jsonc_mark {
	size_t line;
	size_t column;
};

/* One key of the object being read, for duplicate detection. */
struct jsonc_key {
	const char *key; /* borrowed from the cJSON member; NULL = empty slot */
	struct jsonc_mark at;
};

/* The keys of one object: the first JSONC_KEYS_LINEAR in a small array
 * searched in order (most objects are small, and this costs no allocation),
 * then all of them in a hash table. */
struct jsonc_keys {
	struct jsonc_key small[JSONC_KEYS_LINEAR];
	struct jsonc_key *slots; /* owned; NULL while the object is small */
	size_t cap;              /* power of two */
	size_t count;
};

struct jsonc_parser {
	const unsigned char *s; /* borrowed input */
	size_t len;
	size_t pos;
	size_t line;       /* line of pos, from 1 */
	size_t line_start; /* offset of the first byte of that line */
	int max_depth;
	struct canary_jsonc *doc; /* borrowed */
	char *scratch;            /* owned; decoded string, len + 1 bytes */
	char *err;                /* borrowed caller buffer */
	size_t errlen;
};

static pthread_once_t jsonc_locale_once = PTHREAD_ONCE_INIT;
static locale_t jsonc_c_locale = (locale_t)0;

static void
jsonc_locale_init(void)
{
	/* Kept for the life of the process: numbers must parse the same way
	 * whatever LC_NUMERIC the program set. */
	jsonc_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

static int
jsonc_sat_int(size_t v)
{
	return v > (size_t)INT_MAX ? INT_MAX : (int)v;
}

static struct jsonc_mark
jsonc_here(const struct jsonc_parser *p)
{
	struct jsonc_mark m = {p->line, p->pos - p->line_start + 1};
	return m;
}

/* jsonc_describe: words for what is at offset at, for "found ..." in errors.
 * A run of word characters is quoted whole ('NaN', '01'), so the message
 * shows the token a person typed, not just its first byte. */
static void
jsonc_describe(const struct jsonc_parser *p, size_t at, char *buf, size_t n)
{
	unsigned char c;
	size_t end;

	if (at >= p->len) {
		snprintf(buf, n, "end of input");
		return;
	}
	c = p->s[at];
	if (c == '\0') {
		snprintf(buf, n, "a NUL byte");
	} else if (c == '\n') {
		snprintf(buf, n, "a line break");
	} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	           c == '-' || c == '+' || c == '.') {
		end = at;
		while (end < p->len && end - at < JSONC_TOKEN_QUOTE) {
			c = p->s[end];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
			      c == '_')) {
				break;
			}
			end++;
		}
		snprintf(buf, n, "'%.*s'", (int)(end - at), (const char *)p->s + at);
	} else if (c > 0x20 && c < 0x7f) {
		snprintf(buf, n, "'%c'", c);
	} else {
		snprintf(buf, n, "byte 0x%02X", c);
	}
}

/* jsonc_fail: writes "LINE:COLUMN: <message>" and returns code. */
static int jsonc_fail(struct jsonc_parser *p, struct jsonc_mark at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
jsonc_fail(struct jsonc_parser *p, struct jsonc_mark at, int code, const char *fmt, ...)
{
	char msg[CANARY_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return canary_errf(p->err, p->errlen, code, "%zu:%zu: %s", at.line, at.column, msg);
}

/* jsonc_expected: "LINE:COLUMN: expected <what>, found <what is here>" at pos. */
static int
jsonc_expected(struct jsonc_parser *p, const char *what)
{
	char found[64];

	jsonc_describe(p, p->pos, found, sizeof(found));
	return jsonc_fail(p, jsonc_here(p), CANARY_EPARSE, "expected %s, found %s", what, found);
}

/* jsonc_show_key: key as a person should read it in a message: quoted, with
 * control characters, quotes and backslashes escaped as JSON would, and cut
 * after JSONC_KEY_QUOTE bytes. */
static const char *
jsonc_show_key(const char *key, char *buf, size_t n)
{
	const unsigned char *s = (const unsigned char *)key;
	size_t o = 0;
	char unit[8];
	size_t u;

	if (n < 8) {
		return "";
	}
	buf[o++] = '"';
	for (; *s != '\0'; s++) {
		if ((size_t)(s - (const unsigned char *)key) >= JSONC_KEY_QUOTE) {
			snprintf(unit, sizeof(unit), "...");
		} else if (*s == '"' || *s == '\\') {
			snprintf(unit, sizeof(unit), "\\%c", *s);
		} else if (*s < 0x20) {
			snprintf(unit, sizeof(unit), "\\u%04x", *s);
		} else {
			unit[0] = (char)*s;
			unit[1] = '\0';
		}
		u = strlen(unit);
		if (o + u + 2 > n) {
			break;
		}
		memcpy(buf + o, unit, u);
		o += u;
		if (unit[0] == '.' && u == 3) {
			break;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static uint64_t
jsonc_hash_ptr(const void *ptr)
{
	uint64_t h = (uint64_t)(uintptr_t)ptr;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static uint64_t
jsonc_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void
jsonc_pos_put(struct jsonc_pos *slots, size_t cap, struct jsonc_pos e)
{
	size_t i = (size_t)jsonc_hash_ptr(e.node) & (cap - 1);

	while (slots[i].node != NULL) {
		i = (i + 1) & (cap - 1);
	}
	slots[i] = e;
}

/* jsonc_record: remembers that node starts at m. 0 or CANARY_ENOMEM. */
static int
jsonc_record(struct jsonc_parser *p, const cJSON *node, struct jsonc_mark m)
{
	struct canary_jsonc *d = p->doc;
	struct jsonc_pos e = {node, jsonc_sat_int(m.line), jsonc_sat_int(m.column)};
	struct jsonc_pos *grown;
	size_t ncap;
	size_t i;

	if ((d->count + 1) * 2 > d->cap) {
		ncap = d->cap == 0 ? JSONC_POS_INITIAL : d->cap * 2;
		if (ncap > SIZE_MAX / sizeof(*grown)) {
			return jsonc_fail(p, m, CANARY_ENOMEM, "too many values");
		}
		grown = calloc(ncap, sizeof(*grown));
		if (grown == NULL) {
			return jsonc_fail(p, m, CANARY_ENOMEM, "out of memory");
		}
		for (i = 0; i < d->cap; i++) {
			if (d->slots[i].node != NULL) {
				jsonc_pos_put(grown, ncap, d->slots[i]);
			}
		}
		free(d->slots);
		d->slots = grown;
		d->cap = ncap;
	}
	jsonc_pos_put(d->slots, d->cap, e);
	d->count++;
	return 0;
}

static void
jsonc_newline(struct jsonc_parser *p)
{
	p->line++;
	p->line_start = p->pos;
}

/* jsonc_skip: skips whitespace and comments. Fails on an unterminated block
 * comment (reported where it started), a lone '/', or a NUL byte. */
static int
jsonc_skip(struct jsonc_parser *p)
{
	struct jsonc_mark start;
	unsigned char c;

	while (p->pos < p->len) {
		c = p->s[p->pos];
		if (c == ' ' || c == '\t' || c == '\r') {
			p->pos++;
		} else if (c == '\n') {
			p->pos++;
			jsonc_newline(p);
		} else if (c == '/') {
			start = jsonc_here(p);
			if (p->pos + 1 < p->len && p->s[p->pos + 1] == '/') {
				p->pos += 2;
				while (p->pos < p->len && p->s[p->pos] != '\n') {
					if (p->s[p->pos] == '\0') {
						return jsonc_expected(p, "comment text");
					}
					p->pos++;
				}
			} else if (p->pos + 1 < p->len && p->s[p->pos + 1] == '*') {
				p->pos += 2;
				for (;;) {
					if (p->pos >= p->len) {
						return jsonc_fail(
						    p, start, CANARY_EPARSE,
						    "expected '*/' to close the comment "
						    "started here, found end of input");
					}
					c = p->s[p->pos];
					if (c == '*' && p->pos + 1 < p->len &&
					    p->s[p->pos + 1] == '/') {
						p->pos += 2;
						break;
					}
					if (c == '\0') {
						return jsonc_expected(p, "comment text");
					}
					p->pos++;
					if (c == '\n') {
						jsonc_newline(p);
					}
				}
			} else {
				p->pos++;
				return jsonc_fail(
				    p, start, CANARY_EPARSE,
				    "expected '//' or '/*' to start a comment, found a "
				    "lone '/'");
			}
		} else {
			break;
		}
	}
	return 0;
}

static int
jsonc_hex4(const unsigned char *s, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		v <<= 4;
		if (s[i] >= '0' && s[i] <= '9') {
			v |= (unsigned)(s[i] - '0');
		} else if (s[i] >= 'a' && s[i] <= 'f') {
			v |= (unsigned)(s[i] - 'a' + 10);
		} else if (s[i] >= 'A' && s[i] <= 'F') {
			v |= (unsigned)(s[i] - 'A' + 10);
		} else {
			return -1;
		}
	}
	*out = v;
	return 0;
}

static size_t
jsonc_put_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

size_t
canary_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n, i;

	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0) {
			lo = 0xA0;
		} else if (c == 0xED) {
			hi = 0x9F;
		}
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0) {
			lo = 0x90;
		} else if (c == 0xF4) {
			hi = 0x8F;
		}
	} else {
		return 0;
	}
	if (avail < n || s[1] < lo || s[1] > hi) {
		return 0;
	}
	for (i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF) {
			return 0;
		}
	}
	return n;
}

/* jsonc_string: reads the string at pos (which is '"') into p->scratch as a
 * NUL-terminated UTF-8 string. */
static int
jsonc_string(struct jsonc_parser *p)
{
	struct jsonc_mark start = jsonc_here(p);
	struct jsonc_mark esc;
	size_t o = 0;
	size_t n;
	unsigned cp, lo;
	unsigned char c;

	if (p->scratch == NULL) {
		/* Escapes never expand, so the decoded text of any string fits
		 * in the input's length. */
		p->scratch = malloc(p->len + 1);
		if (p->scratch == NULL) {
			return jsonc_fail(p, start, CANARY_ENOMEM, "out of memory");
		}
	}
	p->pos++;
	for (;;) {
		if (p->pos >= p->len) {
			return jsonc_fail(p, start, CANARY_EPARSE,
			                  "expected '\"' to close the string started here, found "
			                  "end of input");
		}
		c = p->s[p->pos];
		if (c == '"') {
			p->pos++;
			break;
		}
		if (c == '\n') {
			return jsonc_fail(p, start, CANARY_EPARSE,
			                  "expected '\"' to close the string started here, found "
			                  "a line break at %zu:%zu",
			                  jsonc_here(p).line, jsonc_here(p).column);
		}
		if (c < 0x20) {
			return jsonc_expected(p, "a character or escape in the string (control "
			                         "characters must be escaped)");
		}
		if (c >= 0x80) {
			n = canary_utf8_len(p->s + p->pos, p->len - p->pos);
			if (n == 0) {
				return jsonc_expected(p, "UTF-8 text in the string");
			}
			memcpy(p->scratch + o, p->s + p->pos, n);
			o += n;
			p->pos += n;
			continue;
		}
		if (c != '\\') {
			p->scratch[o++] = (char)c;
			p->pos++;
			continue;
		}
		esc = jsonc_here(p);
		if (p->pos + 1 >= p->len) {
			return jsonc_fail(p, start, CANARY_EPARSE,
			                  "expected '\"' to close the string started here, found "
			                  "end of input");
		}
		c = p->s[p->pos + 1];
		switch (c) {
		case '"':
		case '\\':
		case '/':
			p->scratch[o++] = (char)c;
			break;
		case 'b':
			p->scratch[o++] = '\b';
			break;
		case 'f':
			p->scratch[o++] = '\f';
			break;
		case 'n':
			p->scratch[o++] = '\n';
			break;
		case 'r':
			p->scratch[o++] = '\r';
			break;
		case 't':
			p->scratch[o++] = '\t';
			break;
		case 'u':
			if (p->pos + 6 > p->len || jsonc_hex4(p->s + p->pos + 2, &cp) != 0) {
				return jsonc_fail(p, esc, CANARY_EPARSE,
				                  "expected four hex digits after '\\u'");
			}
			if (cp == 0) {
				return jsonc_fail(p, esc, CANARY_EPARSE,
				                  "expected a character other than \\u0000, found "
				                  "\\u0000 (NUL cannot be held in a string)");
			}
			if (cp >= 0xDC00 && cp <= 0xDFFF) {
				return jsonc_fail(p, esc, CANARY_EPARSE,
				                  "expected a high surrogate before low surrogate "
				                  "\\u%04X, found it alone",
				                  cp);
			}
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (p->pos + 12 > p->len || p->s[p->pos + 6] != '\\' ||
				    p->s[p->pos + 7] != 'u' ||
				    jsonc_hex4(p->s + p->pos + 8, &lo) != 0 || lo < 0xDC00 ||
				    lo > 0xDFFF) {
					return jsonc_fail(
					    p, esc, CANARY_EPARSE,
					    "expected a low surrogate \\uDC00..\\uDFFF "
					    "after high surrogate \\u%04X, found none",
					    cp);
				}
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p->pos += 6;
			}
			o += jsonc_put_utf8(p->scratch + o, cp);
			p->pos += 4;
			break;
		default:
			p->pos++;
			return jsonc_expected(p, "an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t "
			                         "\\uXXXX) after '\\'");
		}
		p->pos += 2;
	}
	p->scratch[o] = '\0';
	return 0;
}

static int
jsonc_is_digit(const struct jsonc_parser *p, size_t at)
{
	return at < p->len && p->s[at] >= '0' && p->s[at] <= '9';
}

/* jsonc_number: reads a number per RFC 8259's grammar at pos. */
static int
jsonc_number(struct jsonc_parser *p, double *out)
{
	struct jsonc_mark start = jsonc_here(p);
	size_t from = p->pos;
	char token[JSONC_MAX_NUMBER_LEN + 1];
	char found[64];
	locale_t old;
	double v;
	char *end = NULL;
	size_t n;

	if (p->pos < p->len && p->s[p->pos] == '-') {
		p->pos++;
		if (!jsonc_is_digit(p, p->pos)) {
			return jsonc_expected(p, "a digit after '-'");
		}
	}
	if (p->s[p->pos] == '0') {
		p->pos++;
		if (jsonc_is_digit(p, p->pos)) {
			jsonc_describe(p, from, found, sizeof(found));
			return jsonc_fail(p, start, CANARY_EPARSE,
			                  "expected a number without leading zeros, found %s",
			                  found);
		}
	} else {
		while (jsonc_is_digit(p, p->pos)) {
			p->pos++;
		}
	}
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (!jsonc_is_digit(p, p->pos)) {
			return jsonc_expected(p, "a digit after the decimal point");
		}
		while (jsonc_is_digit(p, p->pos)) {
			p->pos++;
		}
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) {
			p->pos++;
		}
		if (!jsonc_is_digit(p, p->pos)) {
			return jsonc_expected(p, "a digit in the exponent");
		}
		while (jsonc_is_digit(p, p->pos)) {
			p->pos++;
		}
	}
	n = p->pos - from;
	if (n > JSONC_MAX_NUMBER_LEN) {
		return jsonc_fail(p, start, CANARY_EPARSE,
		                  "expected a number of at most %d characters, found %zu",
		                  JSONC_MAX_NUMBER_LEN, n);
	}
	memcpy(token, p->s + from, n);
	token[n] = '\0';
	(void)pthread_once(&jsonc_locale_once, jsonc_locale_init);
	if (jsonc_c_locale == (locale_t)0) {
		return jsonc_fail(p, start, CANARY_ENOMEM, "out of memory (C locale)");
	}
	old = uselocale(jsonc_c_locale);
	errno = 0;
	v = strtod(token, &end);
	(void)uselocale(old);
	if (end != token + n) {
		return jsonc_fail(p, start, CANARY_EINTERNAL,
		                  "number '%s' passed the grammar but not strtod", token);
	}
	if (isinf(v)) {
		return jsonc_fail(p, start, CANARY_EPARSE,
		                  "expected a number within double range, found '%s'", token);
	}
	*out = v;
	return 0;
}

/* jsonc_word: matches the literal w at pos as a whole word. */
static int
jsonc_word(const struct jsonc_parser *p, const char *w)
{
	size_t n = strlen(w);
	unsigned char c;

	if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0) {
		return 0;
	}
	if (p->pos + n < p->len) {
		c = p->s[p->pos + n];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_') {
			return 0;
		}
	}
	return 1;
}

static void
jsonc_keys_free(struct jsonc_keys *k)
{
	free(k->slots);
	k->slots = NULL;
	k->cap = 0;
	k->count = 0;
}

static void
jsonc_keys_put(struct jsonc_key *slots, size_t cap, struct jsonc_key e)
{
	size_t j = (size_t)jsonc_hash_str(e.key) & (cap - 1);

	while (slots[j].key != NULL) {
		j = (j + 1) & (cap - 1);
	}
	slots[j] = e;
}

static int
jsonc_keys_dup(struct jsonc_parser *p, const char *key, struct jsonc_mark m,
               const struct jsonc_key *first)
{
	char shown[JSONC_KEY_QUOTE + 16];

	return jsonc_fail(p, m, CANARY_EPARSE,
	                  "expected each key once in an object, found %s again (first at %zu:%zu)",
	                  jsonc_show_key(key, shown, sizeof(shown)), first->at.line,
	                  first->at.column);
}

/* jsonc_keys_add: adds key (seen at m); fails naming both places when the
 * object already has it. */
static int
jsonc_keys_add(struct jsonc_parser *p, struct jsonc_keys *k, const char *key, struct jsonc_mark m)
{
	struct jsonc_key e = {key, m};
	struct jsonc_key *grown;
	size_t ncap, i, j;

	if (k->slots == NULL && k->count < JSONC_KEYS_LINEAR) {
		for (i = 0; i < k->count; i++) {
			if (strcmp(k->small[i].key, key) == 0) {
				return jsonc_keys_dup(p, key, m, &k->small[i]);
			}
		}
		k->small[k->count++] = e;
		return 0;
	}
	if ((k->count + 1) * 2 > k->cap) {
		ncap = k->cap == 0 ? JSONC_KEYS_INITIAL : k->cap * 2;
		grown = calloc(ncap, sizeof(*grown));
		if (grown == NULL) {
			return jsonc_fail(p, m, CANARY_ENOMEM, "out of memory");
		}
		if (k->slots == NULL) {
			for (i = 0; i < k->count; i++) {
				jsonc_keys_put(grown, ncap, k->small[i]);
			}
		}
		for (i = 0; i < k->cap; i++) {
			if (k->slots[i].key != NULL) {
				jsonc_keys_put(grown, ncap, k->slots[i]);
			}
		}
		free(k->slots);
		k->slots = grown;
		k->cap = ncap;
	}
	j = (size_t)jsonc_hash_str(key) & (k->cap - 1);
	while (k->slots[j].key != NULL) {
		if (strcmp(k->slots[j].key, key) == 0) {
			return jsonc_keys_dup(p, key, m, &k->slots[j]);
		}
		j = (j + 1) & (k->cap - 1);
	}
	k->slots[j] = e;
	k->count++;
	return 0;
}

/* jsonc_expected_key: "expected <what> "key", found ...". Kept out of
 * jsonc_object so its buffers are not on the stack of every nesting level. */
static int
jsonc_expected_key(struct jsonc_parser *p, const char *what, const char *key)
{
	char msg[CANARY_ERRLEN / 2];
	char shown[JSONC_KEY_QUOTE + 16];

	snprintf(msg, sizeof(msg), "%s %s", what, jsonc_show_key(key, shown, sizeof(shown)));
	return jsonc_expected(p, msg);
}

static int jsonc_value(struct jsonc_parser *p, int depth, cJSON **out);

/* jsonc_attach: adds item to container (under key for objects). On failure
 * frees item. */
static int
jsonc_attach(struct jsonc_parser *p, cJSON *container, const char *key, cJSON *item,
             struct jsonc_mark m)
{
	cJSON_bool ok;

	ok = key != NULL ? cJSON_AddItemToObject(container, key, item)
	                 : cJSON_AddItemToArray(container, item);
	if (!ok) {
		cJSON_Delete(item);
		return jsonc_fail(p, m, CANARY_ENOMEM, "out of memory");
	}
	return 0;
}

/* jsonc_object: reads members into obj; pos is just past '{'. */
static int
jsonc_object(struct jsonc_parser *p, cJSON *obj, struct jsonc_mark open, int depth)
{
	struct jsonc_keys keys;
	struct jsonc_mark km;
	cJSON *item = NULL;
	cJSON *member;
	char *key = NULL;
	int rv;

	keys.slots = NULL;
	keys.cap = 0;
	keys.count = 0;
	for (;;) {
		if ((rv = jsonc_skip(p)) != 0) {
			goto out;
		}
		if (p->pos >= p->len) {
			rv =
			    jsonc_fail(p, open, CANARY_EPARSE,
			               "expected '}' to close the object opened here, found end of "
			               "input at %zu:%zu",
			               jsonc_here(p).line, jsonc_here(p).column);
			goto out;
		}
		if (p->s[p->pos] == '}') {
			p->pos++;
			break;
		}
		if (p->s[p->pos] != '"') {
			rv = jsonc_expected(p, "a string key or '}'");
			goto out;
		}
		km = jsonc_here(p);
		if ((rv = jsonc_string(p)) != 0) {
			goto out;
		}
		key = strdup(p->scratch);
		if (key == NULL) {
			rv = jsonc_fail(p, km, CANARY_ENOMEM, "out of memory");
			goto out;
		}
		if ((rv = jsonc_skip(p)) != 0) {
			goto out;
		}
		if (p->pos >= p->len || p->s[p->pos] != ':') {
			rv = jsonc_expected_key(p, "':' after key", key);
			goto out;
		}
		p->pos++;
		if ((rv = jsonc_skip(p)) != 0) {
			goto out;
		}
		if ((rv = jsonc_value(p, depth, &item)) != 0) {
			goto out;
		}
		member = item;
		item = NULL;
		if ((rv = jsonc_attach(p, obj, key, member, km)) != 0) {
			goto out;
		}
		free(key);
		key = NULL;
		/* The member's key (a copy cJSON made) lives as long as the tree;
		 * the duplicate table borrows it. */
		if ((rv = jsonc_keys_add(p, &keys, member->string, km)) != 0) {
			goto out;
		}
		if ((rv = jsonc_skip(p)) != 0) {
			goto out;
		}
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == '}') {
			p->pos++;
			break;
		}
		if (p->pos >= p->len) {
			rv =
			    jsonc_fail(p, open, CANARY_EPARSE,
			               "expected '}' to close the object opened here, found end of "
			               "input at %zu:%zu",
			               jsonc_here(p).line, jsonc_here(p).column);
			goto out;
		}
		rv = jsonc_expected_key(p, "',' or '}' after member", member->string);
		goto out;
	}
	rv = 0;
out:
	cJSON_Delete(item);
	free(key);
	jsonc_keys_free(&keys);
	return rv;
}

/* jsonc_array: reads elements into arr; pos is just past '['. */
static int
jsonc_array(struct jsonc_parser *p, cJSON *arr, struct jsonc_mark open, int depth)
{
	struct jsonc_mark m;
	cJSON *item = NULL;
	int rv;

	for (;;) {
		if ((rv = jsonc_skip(p)) != 0) {
			return rv;
		}
		if (p->pos >= p->len) {
			return jsonc_fail(p, open, CANARY_EPARSE,
			                  "expected ']' to close the array opened here, found end "
			                  "of input at %zu:%zu",
			                  jsonc_here(p).line, jsonc_here(p).column);
		}
		if (p->s[p->pos] == ']') {
			p->pos++;
			return 0;
		}
		m = jsonc_here(p);
		if ((rv = jsonc_value(p, depth, &item)) != 0) {
			cJSON_Delete(item);
			return rv;
		}
		if ((rv = jsonc_attach(p, arr, NULL, item, m)) != 0) {
			return rv;
		}
		if ((rv = jsonc_skip(p)) != 0) {
			return rv;
		}
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == ']') {
			p->pos++;
			return 0;
		}
		if (p->pos >= p->len) {
			return jsonc_fail(p, open, CANARY_EPARSE,
			                  "expected ']' to close the array opened here, found end "
			                  "of input at %zu:%zu",
			                  jsonc_here(p).line, jsonc_here(p).column);
		}
		return jsonc_expected(p, "',' or ']' after an array element");
	}
}

/* jsonc_value: reads one value at pos (whitespace already skipped) into a new
 * node *out, which the caller owns even on failure (partial containers are
 * returned so the caller can free them in one place). depth counts the
 * containers around this value. */
static int
jsonc_value(struct jsonc_parser *p, int depth, cJSON **out)
{
	struct jsonc_mark m = jsonc_here(p);
	cJSON *node = NULL;
	double num;
	unsigned char c;
	int rv;

	*out = NULL;
	if (p->pos >= p->len) {
		return jsonc_expected(p, "a value");
	}
	c = p->s[p->pos];
	if (c == '{' || c == '[') {
		if (depth >= p->max_depth) {
			return jsonc_fail(
			    p, m, CANARY_ETOODEEP,
			    "expected at most %d levels of nesting, found a deeper '%c'",
			    p->max_depth, c);
		}
		node = c == '{' ? cJSON_CreateObject() : cJSON_CreateArray();
	} else if (c == '"') {
		if ((rv = jsonc_string(p)) != 0) {
			return rv;
		}
		node = cJSON_CreateString(p->scratch);
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		if ((rv = jsonc_number(p, &num)) != 0) {
			return rv;
		}
		node = cJSON_CreateNumber(num);
	} else if (jsonc_word(p, "true")) {
		p->pos += 4;
		node = cJSON_CreateTrue();
	} else if (jsonc_word(p, "false")) {
		p->pos += 5;
		node = cJSON_CreateFalse();
	} else if (jsonc_word(p, "null")) {
		p->pos += 4;
		node = cJSON_CreateNull();
	} else {
		return jsonc_expected(p, "a value");
	}
	if (node == NULL) {
		return jsonc_fail(p, m, CANARY_ENOMEM, "out of memory");
	}
	*out = node;
	if ((rv = jsonc_record(p, node, m)) != 0) {
		return rv;
	}
	if (c == '{') {
		p->pos++;
		return jsonc_object(p, node, m, depth + 1);
	}
	if (c == '[') {
		p->pos++;
		return jsonc_array(p, node, m, depth + 1);
	}
	return 0;
}

int
canary_jsonc_parse(const char *text, size_t len, int max_depth, struct canary_jsonc **docp,
                   char *err, size_t errlen)
{
	struct jsonc_parser p;
	struct canary_jsonc *doc = NULL;
	int rv;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if (docp == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "jsonc: no place for the result");
	}
	*docp = NULL;
	if (text == NULL && len > 0) {
		return canary_errf(err, errlen, CANARY_EINVAL, "jsonc: NULL text of %zu bytes",
		                   len);
	}
	if (max_depth < 0 || max_depth > CANARY_JSONC_DEPTH_CEILING) {
		return canary_errf(err, errlen, CANARY_EINVAL, "jsonc: max_depth %d outside 0..%d",
		                   max_depth, CANARY_JSONC_DEPTH_CEILING);
	}
	memset(&p, 0, sizeof(p));
	p.s = (const unsigned char *)text;
	p.len = len;
	p.line = 1;
	p.max_depth = max_depth;
	p.err = err;
	p.errlen = errlen;
	doc = calloc(1, sizeof(*doc));
	if (doc == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "1:1: out of memory");
	}
	p.doc = doc;
	/* A UTF-8 byte order mark, as some editors write, is not content. */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
		p.pos = 3;
	}
	if ((rv = jsonc_skip(&p)) != 0) {
		goto out;
	}
	rv = jsonc_value(&p, 0, &doc->root);
	if (rv != 0) {
		goto out;
	}
	if ((rv = jsonc_skip(&p)) != 0) {
		goto out;
	}
	if (p.pos < p.len) {
		rv = jsonc_expected(&p, "end of input after the root value");
		goto out;
	}
	*docp = doc;
	doc = NULL;
out:
	canary_jsonc_free(doc);
	free(p.scratch);
	return rv;
}

const cJSON *
canary_jsonc_root(const struct canary_jsonc *doc)
{
	return doc != NULL ? doc->root : NULL;
}

int
canary_jsonc_where(const struct canary_jsonc *doc, const cJSON *node, int *line, int *column)
{
	size_t i;

	if (doc == NULL || node == NULL || doc->cap == 0) {
		return CANARY_ENOENT;
	}
	i = (size_t)jsonc_hash_ptr(node) & (doc->cap - 1);
	while (doc->slots[i].node != NULL) {
		if (doc->slots[i].node == node) {
			if (line != NULL) {
				*line = doc->slots[i].line;
			}
			if (column != NULL) {
				*column = doc->slots[i].column;
			}
			return 0;
		}
		i = (i + 1) & (doc->cap - 1);
	}
	return CANARY_ENOENT;
}

void
canary_jsonc_free(struct canary_jsonc *doc)
{
	if (doc == NULL) {
		return;
	}
	cJSON_Delete(doc->root);
	free(doc->slots);
	free(doc);
}

/* jsonc_strerror: strerror_r into buf (the XSI form under _POSIX_C_SOURCE). */
static const char *
jsonc_strerror(int e, char *buf, size_t n)
{
	if (strerror_r(e, buf, n) != 0) {
		snprintf(buf, n, "error %d", e);
	}
	return buf;
}

int
canary_jsonc_read_file(const char *path, size_t max_bytes, struct canary_jsonc **docp, char *err,
                       size_t errlen)
{
	char why[CANARY_ERRLEN];
	char ebuf[128];
	FILE *f = NULL;
	char *buf = NULL;
	char *grown;
	size_t len = 0, cap = 0, want, got;
	int rv;

	if (docp == NULL || path == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "jsonc: no path or no place for "
		                   "the result");
	}
	*docp = NULL;
	if (max_bytes == SIZE_MAX) {
		max_bytes = SIZE_MAX - 1; /* room for the one byte past the cap */
	}
	f = fopen(path, "rb");
	if (f == NULL) {
		rv = errno == ENOENT ? CANARY_ENOENT : CANARY_EIO;
		canary_errf(err, errlen, rv, "%s: %s", path,
		            jsonc_strerror(errno, ebuf, sizeof(ebuf)));
		goto out;
	}
	for (;;) {
		/* Read one byte past the cap so an oversize file is told apart
		 * from one of exactly max_bytes. */
		if (len == cap) {
			if (cap > max_bytes) {
				break;
			}
			want = cap + JSONC_READ_CHUNK;
			if (want > max_bytes + 1 || want < cap) {
				want = max_bytes + 1;
			}
			grown = realloc(buf, want);
			if (grown == NULL) {
				rv = canary_errf(err, errlen, CANARY_ENOMEM, "%s: out of memory",
				                 path);
				goto out;
			}
			buf = grown;
			cap = want;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f)) {
				rv = canary_errf(err, errlen, CANARY_EIO, "%s: %s", path,
				                 jsonc_strerror(errno, ebuf, sizeof(ebuf)));
				goto out;
			}
			break;
		}
	}
	if (len > max_bytes) {
		rv = canary_errf(err, errlen, CANARY_ETOOBIG,
		                 "%s: larger than the %zu-byte cap for this file", path, max_bytes);
		goto out;
	}
	rv = canary_jsonc_parse(buf, len, CANARY_JSONC_MAX_DEPTH, docp, why, sizeof(why));
	if (rv != 0) {
		canary_errf(err, errlen, rv, "%s:%s", path, why);
	}
out:
	if (f != NULL) {
		fclose(f);
	}
	free(buf);
	return rv;
}

int
canary_json_parse_exact(const char *text, size_t len, cJSON **rootp, char *err, size_t errlen)
{
	const char *end = NULL;
	cJSON *root;
	size_t pos;

	*rootp = NULL;
	if (text == NULL || len == 0) {
		return canary_errf(err, errlen, CANARY_EPARSE, "byte 0: not valid JSON");
	}
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (root == NULL) {
		pos = end != NULL && end >= text ? (size_t)(end - text) : 0;
		return canary_errf(err, errlen, CANARY_EPARSE, "byte %zu: not valid JSON", pos);
	}
	pos = (size_t)(end - text);
	while (pos < len &&
	       (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r')) {
		pos++;
	}
	if (pos < len) {
		cJSON_Delete(root);
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "byte %zu: unexpected data after the JSON value", pos);
	}
	*rootp = root;
	return 0;
}

void
canary_json_number(double d, char *buf, size_t n)
{
	if (!isfinite(d)) {
		snprintf(buf, n, "null");
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, d);
		if (strtod(buf, NULL) == d) {
			return;
		}
	}
}

void
canary_json_brief(const cJSON *v, size_t max, char *buf, size_t n)
{
	char *text;
	size_t cut;

	if (cJSON_IsNumber(v)) {
		/* cJSON reads 1e999 as infinity: say so rather than "null". */
		if (isfinite(v->valuedouble)) {
			canary_json_number(v->valuedouble, buf, n);
		} else {
			snprintf(buf, n, "%g", v->valuedouble);
		}
		return;
	}
	text = cJSON_PrintUnformatted(v);
	if (text == NULL) {
		snprintf(buf, n, "(a value)");
		return;
	}
	if (strlen(text) > max) {
		cut = max;
		while (cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80) {
			cut--;
		}
		snprintf(buf, n, "%.*s...", (int)cut, text);
	} else {
		snprintf(buf, n, "%s", text);
	}
	cJSON_free(text);
}
