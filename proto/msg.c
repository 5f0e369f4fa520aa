/*
 * msg.c: the probe and report messages of msg.h: strict decoding, encoding
 * and the exact merge of target reports.
 *
 * Decoding goes in three stages: the size cap, a pre-scan that bounds the
 * nesting depth (and rejects bytes JSON forbids but cJSON lets through)
 * without building anything, then cJSON and a walk over the tree that
 * checks every field as it copies it, naming the field path on failure.
 *
 * Encoding builds the tree from the struct, prints it, and runs the decoder
 * over the text before handing it out: one set of rules, so an encoder and
 * a decoder can never disagree on what is valid. Before building, it checks
 * what could make reading the struct itself unsafe (unterminated strings,
 * counts beyond the arrays, enums out of range).
 */
#include "msg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsonc.h"

#define MSG_PATH_LEN      160 /* longest path: "targets[15].statuses[15].status" */
#define MSG_ERR_VALUE_LEN 40  /* bytes of an offending value an error shows */
#define MSG_EXPECT_LEN    160 /* "one of ..." lists in errors */

static const char *const msg_phase_names[CANARY_PHASE_COUNT] = {
    [CANARY_PHASE_BASELINE] = "baseline", [CANARY_PHASE_CONVERGE] = "converge",
    [CANARY_PHASE_BAKE] = "bake",         [CANARY_PHASE_ROLLBACK_VERIFY] = "rollback-verify",
    [CANARY_PHASE_CHECK] = "check",
};
static const char *const msg_cache_names[] = {
    [CANARY_CACHE_NONE] = "none",
    [CANARY_CACHE_ISR] = "isr",
};
#define MSG_CACHE_COUNT ((int)(sizeof(msg_cache_names) / sizeof(msg_cache_names[0])))
static const char *const msg_errclass_names[CANARY_ERRCLASS_COUNT] = {
    [CANARY_ERRCLASS_DNS] = "dns",   [CANARY_ERRCLASS_CONNECT] = "connect",
    [CANARY_ERRCLASS_TLS] = "tls",   [CANARY_ERRCLASS_TIMEOUT] = "timeout",
    [CANARY_ERRCLASS_HTTP] = "http",
};
static const char *const msg_method_names[] = {"GET", "HEAD"};
#define MSG_METHOD_COUNT 2

/* ---- names ------------------------------------------------------------- */

const char *
canary_phase_name(enum canary_phase p)
{
	if ((int)p < 0 || p >= CANARY_PHASE_COUNT) {
		return "unknown";
	}
	return msg_phase_names[p];
}

const char *
canary_errclass_name(enum canary_errclass c)
{
	if ((int)c < 0 || c >= CANARY_ERRCLASS_COUNT) {
		return "unknown";
	}
	return msg_errclass_names[c];
}

const char *
canary_cache_kind_name(enum canary_cache_kind k)
{
	if ((int)k < 0 || (int)k >= MSG_CACHE_COUNT) {
		return "unknown";
	}
	return msg_cache_names[k];
}

static int
msg_lookup(const char *s, const char *const *names, int n)
{
	if (s == NULL) {
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			return i;
		}
	}
	return -1;
}

int
canary_phase_from_name(const char *s, enum canary_phase *out)
{
	int i = msg_lookup(s, msg_phase_names, CANARY_PHASE_COUNT);

	if (i < 0) {
		return CANARY_EINVAL;
	}
	*out = (enum canary_phase)i;
	return 0;
}

int
canary_errclass_from_name(const char *s, enum canary_errclass *out)
{
	int i = msg_lookup(s, msg_errclass_names, CANARY_ERRCLASS_COUNT);

	if (i < 0) {
		return CANARY_EINVAL;
	}
	*out = (enum canary_errclass)i;
	return 0;
}

int
canary_cache_kind_from_name(const char *s, enum canary_cache_kind *out)
{
	int i = msg_lookup(s, msg_cache_names, MSG_CACHE_COUNT);

	if (i < 0) {
		return CANARY_EINVAL;
	}
	*out = (enum canary_cache_kind)i;
	return 0;
}

static int
msg_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int
canary_is_uuid(const char *s)
{
	if (s == NULL) {
		return 0;
	}
	for (int i = 0; i < CANARY_UUID_LEN - 1; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-') {
				return 0;
			}
		} else if (!msg_is_hex(s[i])) {
			return 0;
		}
	}
	return s[CANARY_UUID_LEN - 1] == '\0';
}

/* ---- decoding: paths and messages ------------------------------------- */

/* Where a decode writes its message. */
struct msg_dec {
	char *err;
	size_t errlen;
};

/* A path cut short by its buffer ends in "..." rather than mid-name, so a
 * message never names a different field. The schema's longest path is far
 * shorter than MSG_PATH_LEN; this only guards against surprises. */
static void
msg_path_done(char *dst, int n)
{
	if (n < 0 || n >= MSG_PATH_LEN) {
		memcpy(dst + MSG_PATH_LEN - 4, "...", 4);
	}
}

/* dst = "path.name", or "name" at the root (path ""). */
static void
msg_join(char *dst, const char *path, const char *name)
{
	int n;

	if (path[0] == '\0') {
		n = snprintf(dst, MSG_PATH_LEN, "%s", name);
	} else {
		n = snprintf(dst, MSG_PATH_LEN, "%s.%s", path, name);
	}
	msg_path_done(dst, n);
}

static void
msg_index(char *dst, const char *path, size_t i)
{
	msg_path_done(dst, snprintf(dst, MSG_PATH_LEN, "%s[%zu]", path, i));
}

/* "PATH: expected WHAT, got VALUE"; returns code. */
static int
msg_bad(struct msg_dec *d, int code, const char *path, const char *what, const cJSON *v)
{
	char got[MSG_ERR_VALUE_LEN + 8];

	canary_json_brief(v, MSG_ERR_VALUE_LEN, got, sizeof(got));
	return canary_errf(d->err, d->errlen, code, "%s: expected %s, got %s", path, what, got);
}

/* msg_field: the one member of o called name. Absent: an error when
 * required, else *out = NULL. Repeated: always an error. */
static int
msg_field(struct msg_dec *d, const cJSON *o, const char *path, const char *name, int required,
          const cJSON **out)
{
	const cJSON *found = NULL;
	char p[MSG_PATH_LEN];

	for (const cJSON *c = o->child; c != NULL; c = c->next) {
		if (c->string == NULL || strcmp(c->string, name) != 0) {
			continue;
		}
		if (found != NULL) {
			msg_join(p, path, name);
			return canary_errf(d->err, d->errlen, CANARY_EINVAL,
			                   "%s: field appears twice", p);
		}
		found = c;
	}
	if (found == NULL && required) {
		msg_join(p, path, name);
		return canary_errf(d->err, d->errlen, CANARY_EINVAL,
		                   "%s: required field is missing", p);
	}
	*out = found;
	return 0;
}

/* ---- decoding: values -------------------------------------------------- */

/* The msg_*_ok checks read a value without a word of error, so that the
 * paths for messages are only built when a message is due (formatting
 * them for every field doubled the cost of a decode). */

static int
msg_u64_ok(const cJSON *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	double x;

	if (cJSON_IsNumber(v)) {
		x = v->valuedouble;
		if (x == floor(x) && x >= (double)lo && x <= (double)hi) {
			*out = (uint64_t)x;
			return 1;
		}
	}
	return 0;
}

static int
msg_val_u64(struct msg_dec *d, const cJSON *v, const char *path, uint64_t lo, uint64_t hi,
            uint64_t *out)
{
	char what[64];

	if (msg_u64_ok(v, lo, hi, out)) {
		return 0;
	}
	snprintf(what, sizeof(what), "an integer %llu..%llu", (unsigned long long)lo,
	         (unsigned long long)hi);
	return msg_bad(d, CANARY_EINVAL, path, what, v);
}

static int
msg_val_share(struct msg_dec *d, const cJSON *v, const char *path, double *out)
{
	if (cJSON_IsNumber(v) && v->valuedouble >= 0.0 && v->valuedouble <= 100.0) {
		*out = v->valuedouble;
		return 0;
	}
	return msg_bad(d, CANARY_EINVAL, path, "a number 0..100", v);
}

enum msg_str_kind {
	MSG_STR_TEXT,          /* anything that fits */
	MSG_STR_ID,            /* non-empty, no control characters */
	MSG_STR_ID_OR_EMPTY,   /* "" or an ID */
	MSG_STR_UUID,          /* canary_is_uuid */
	MSG_STR_UUID_OR_EMPTY, /* "" or a UUID */
	MSG_STR_URL,           /* http:// or https://, a host, no spaces */
	MSG_STR_HEADER,        /* an HTTP header name */
};

static int
msg_has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			return 1;
		}
	}
	return 0;
}

/* RFC 9110 token characters. */
static int
msg_is_token(const char *s)
{
	if (*s == '\0') {
		return 0;
	}
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      strchr("!#$%&'*+-.^_`|~", c) != NULL)) {
			return 0;
		}
	}
	return 1;
}

int
canary_is_url(const char *s)
{
	const char *rest;

	if (s == NULL) {
		return 0;
	}
	if (strncmp(s, "http://", 7) == 0) {
		rest = s + 7;
	} else if (strncmp(s, "https://", 8) == 0) {
		rest = s + 8;
	} else {
		return 0;
	}
	if (*rest == '\0' || *rest == '/' || *rest == '?' || *rest == '#') {
		return 0;
	}
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s <= 0x20 || *s == 0x7f) {
			return 0;
		}
	}
	return 1;
}

/* NULL when s is a good kind, else what was expected. */
static const char *
msg_str_problem(const char *s, enum msg_str_kind kind)
{
	switch (kind) {
	case MSG_STR_TEXT:
		return NULL;
	case MSG_STR_ID_OR_EMPTY:
		if (s[0] == '\0') {
			return NULL;
		}
		/* fall through */
	case MSG_STR_ID:
		return s[0] == '\0' || msg_has_control(s)
		           ? "a non-empty string with no control characters"
		           : NULL;
	case MSG_STR_UUID_OR_EMPTY:
		if (s[0] == '\0') {
			return NULL;
		}
		return canary_is_uuid(s) ? NULL : "\"\" or a UUID (8-4-4-4-12 hex digits)";
	case MSG_STR_UUID:
		return canary_is_uuid(s) ? NULL : "a UUID (8-4-4-4-12 hex digits)";
	case MSG_STR_URL:
		return canary_is_url(s) ? NULL
		                        : "an http:// or https:// URL with a host and no spaces";
	case MSG_STR_HEADER:
		return msg_is_token(s) ? NULL : "an HTTP header name";
	}
	return "a string";
}

/* msg_str_ok: v is a string of kind that fits size bytes with its NUL;
 * then it is copied into out. */
static int
msg_str_ok(const cJSON *v, enum msg_str_kind kind, char *out, size_t size)
{
	size_t n;

	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		return 0;
	}
	n = strlen(v->valuestring);
	if (n >= size || msg_str_problem(v->valuestring, kind) != NULL) {
		return 0;
	}
	memcpy(out, v->valuestring, n + 1);
	return 1;
}

/* Copies string v (of kind, fitting size bytes with its NUL) into out. */
static int
msg_val_str(struct msg_dec *d, const cJSON *v, const char *path, enum msg_str_kind kind, char *out,
            size_t size)
{
	const char *problem;
	char what[64];
	size_t n;

	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		return msg_bad(d, CANARY_EINVAL, path, "a string", v);
	}
	n = strlen(v->valuestring);
	if (n >= size) {
		snprintf(what, sizeof(what), "a string of at most %zu bytes (it has %zu)", size - 1,
		         n);
		return msg_bad(d, CANARY_EINVAL, path, what, v);
	}
	if ((problem = msg_str_problem(v->valuestring, kind)) != NULL) {
		return msg_bad(d, CANARY_EINVAL, path, problem, v);
	}
	memcpy(out, v->valuestring, n + 1);
	return 0;
}

static int
msg_val_enum(struct msg_dec *d, const cJSON *v, const char *path, const char *const *names, int n,
             int *out)
{
	char what[MSG_EXPECT_LEN];
	size_t off;
	int i;

	if (cJSON_IsString(v) && (i = msg_lookup(v->valuestring, names, n)) >= 0) {
		*out = i;
		return 0;
	}
	off = (size_t)snprintf(what, sizeof(what), "one of");
	for (i = 0; i < n && off < sizeof(what); i++) {
		off += (size_t)snprintf(what + off, sizeof(what) - off, "%s \"%s\"",
		                        i == 0 ? "" : ",", names[i]);
	}
	return msg_bad(d, CANARY_EINVAL, path, what, v);
}

/* ---- decoding: fields -------------------------------------------------- */

/* Each msg_get_* finds field name in object o (at path) and reads it; an
 * optional field that is absent leaves *out at the default given. */

static int
msg_get_u64(struct msg_dec *d, const cJSON *o, const char *path, const char *name, int required,
            uint64_t lo, uint64_t hi, uint64_t *out)
{
	const cJSON *v;
	char p[MSG_PATH_LEN];
	int rv;

	if ((rv = msg_field(d, o, path, name, required, &v)) != 0 || v == NULL ||
	    msg_u64_ok(v, lo, hi, out)) {
		return rv;
	}
	msg_join(p, path, name);
	return msg_val_u64(d, v, p, lo, hi, out);
}

static int
msg_get_u32(struct msg_dec *d, const cJSON *o, const char *path, const char *name, int required,
            uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t x = *out;
	int rv;

	if ((rv = msg_get_u64(d, o, path, name, required, lo, hi, &x)) == 0) {
		*out = (uint32_t)x;
	}
	return rv;
}

/* A count: an integer 0..CANARY_MSG_INT_MAX, required. */
static int
msg_get_count(struct msg_dec *d, const cJSON *o, const char *path, const char *name, uint64_t *out)
{
	return msg_get_u64(d, o, path, name, 1, 0, CANARY_MSG_INT_MAX, out);
}

static int
msg_get_share(struct msg_dec *d, const cJSON *o, const char *path, const char *name, double *out)
{
	const cJSON *v;
	char p[MSG_PATH_LEN];
	int rv;

	if ((rv = msg_field(d, o, path, name, 1, &v)) != 0) {
		return rv;
	}
	if (cJSON_IsNumber(v) && v->valuedouble >= 0.0 && v->valuedouble <= 100.0) {
		*out = v->valuedouble;
		return 0;
	}
	msg_join(p, path, name);
	return msg_val_share(d, v, p, out);
}

static int
msg_get_str(struct msg_dec *d, const cJSON *o, const char *path, const char *name, int required,
            enum msg_str_kind kind, char *out, size_t size)
{
	const cJSON *v;
	char p[MSG_PATH_LEN];
	int rv;

	if ((rv = msg_field(d, o, path, name, required, &v)) != 0 || v == NULL) {
		return rv;
	}
	if (msg_str_ok(v, kind, out, size)) {
		return 0;
	}
	msg_join(p, path, name);
	return msg_val_str(d, v, p, kind, out, size);
}

static int
msg_get_enum(struct msg_dec *d, const cJSON *o, const char *path, const char *name, int required,
             const char *const *names, int n, int *out)
{
	const cJSON *v;
	char p[MSG_PATH_LEN];
	int rv;

	int i;

	if ((rv = msg_field(d, o, path, name, required, &v)) != 0 || v == NULL) {
		return rv;
	}
	if (cJSON_IsString(v) && (i = msg_lookup(v->valuestring, names, n)) >= 0) {
		*out = i;
		return 0;
	}
	msg_join(p, path, name);
	return msg_val_enum(d, v, p, names, n, out);
}

static int
msg_get_bool(struct msg_dec *d, const cJSON *o, const char *path, const char *name, int *out)
{
	const cJSON *v;
	char p[MSG_PATH_LEN];
	int rv;

	if ((rv = msg_field(d, o, path, name, 0, &v)) != 0 || v == NULL) {
		return rv;
	}
	if (!cJSON_IsBool(v)) {
		msg_join(p, path, name);
		return msg_bad(d, CANARY_EINVAL, p, "true or false", v);
	}
	*out = cJSON_IsTrue(v);
	return 0;
}

static int
msg_get_object(struct msg_dec *d, const cJSON *o, const char *path, const char *name, int required,
               const cJSON **out)
{
	char p[MSG_PATH_LEN];
	int rv;

	if ((rv = msg_field(d, o, path, name, required, out)) != 0 || *out == NULL) {
		return rv;
	}
	if (!cJSON_IsObject(*out)) {
		msg_join(p, path, name);
		return msg_bad(d, CANARY_EINVAL, p, "an object", *out);
	}
	return 0;
}

/* The message for an array of n entries where lo..hi were allowed; shared
 * with the encoder's checks so both say the same. */
static int
msg_bad_count(char *err, size_t errlen, const char *path, int lo, int hi, long long n)
{
	if (lo == hi) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected %d entries, got %lld",
		                   path, lo, n);
	}
	return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected %d..%d entries, got %lld",
	                   path, lo, hi, n);
}

/* A required array of lo..hi entries: *arr and its size *n. */
static int
msg_get_array(struct msg_dec *d, const cJSON *o, const char *path, const char *name, int lo, int hi,
              const cJSON **arr, int *n)
{
	char p[MSG_PATH_LEN];
	long long k = 0;
	int rv;

	if ((rv = msg_field(d, o, path, name, 1, arr)) != 0) {
		return rv;
	}
	if (!cJSON_IsArray(*arr)) {
		msg_join(p, path, name);
		return msg_bad(d, CANARY_EINVAL, p, "an array", *arr);
	}
	/* Count without cJSON_GetArraySize, whose int can wrap. */
	for (const cJSON *c = (*arr)->child; c != NULL; c = c->next) {
		k++;
	}
	if (k < lo || k > hi) {
		msg_join(p, path, name);
		return msg_bad_count(d->err, d->errlen, p, lo, hi, k);
	}
	*n = (int)k;
	return 0;
}

/* ---- decoding: the text ------------------------------------------------ */

/* msg_prescan: bounds the nesting depth before cJSON recurses into it, and
 * rejects what JSON forbids but cJSON would accept: NUL bytes, control
 * characters outside the four whitespace ones, raw control characters in
 * strings, and \u0000 (which would cut a C string short). */
static int
msg_prescan(const char *buf, size_t len, char *err, size_t errlen)
{
	int depth = 0, in_str = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (in_str) {
			if (c == '\\') {
				if (i + 5 < len && buf[i + 1] == 'u' &&
				    memcmp(buf + i + 2, "0000", 4) == 0) {
					return canary_errf(
					    err, errlen, CANARY_EPARSE,
					    "byte %zu: \\u0000 is not allowed in a string", i);
				}
				i++; /* the escaped character cannot end the string */
				if (i < len && (unsigned char)buf[i] < 0x20) {
					return canary_errf(
					    err, errlen, CANARY_EPARSE,
					    "byte %zu: control character 0x%02x in a string", i,
					    (unsigned char)buf[i]);
				}
			} else if (c == '"') {
				in_str = 0;
			} else if (c < 0x20) {
				return canary_errf(err, errlen, CANARY_EPARSE,
				                   "byte %zu: control character 0x%02x in a string",
				                   i, c);
			}
			continue;
		}
		if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > CANARY_MSG_MAX_DEPTH) {
				return canary_errf(err, errlen, CANARY_ETOODEEP,
				                   "byte %zu: nested deeper than %d levels", i,
				                   CANARY_MSG_MAX_DEPTH);
			}
		} else if (c == ']' || c == '}') {
			if (depth > 0) { /* a stray closer is cJSON's to report */
				depth--;
			}
		} else if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "byte %zu: unexpected control character 0x%02x", i, c);
		}
	}
	return 0;
}

/* msg_parse: the checks before the schema: cap, pre-scan, cJSON, nothing
 * after the value, an object. *rootp owns the tree on success. */
static int
msg_parse(const char *buf, size_t len, cJSON **rootp, struct msg_dec *d)
{
	cJSON *root;
	int rv;

	*rootp = NULL;
	if (buf == NULL && len > 0) {
		return canary_errf(d->err, d->errlen, CANARY_EINVAL, "message: no buffer");
	}
	if (len > CANARY_MSG_MAX_BYTES) {
		return canary_errf(d->err, d->errlen, CANARY_ETOOBIG,
		                   "message: %zu bytes, over the %d-byte cap", len,
		                   CANARY_MSG_MAX_BYTES);
	}
	if (len == 0) {
		return canary_errf(d->err, d->errlen, CANARY_EPARSE, "message: empty");
	}
	if ((rv = msg_prescan(buf, len, d->err, d->errlen)) != 0) {
		return rv;
	}
	if ((rv = canary_json_parse_exact(buf, len, &root, d->err, d->errlen)) != 0) {
		return rv;
	}
	if (!cJSON_IsObject(root)) {
		rv = msg_bad(d, CANARY_EINVAL, "message", "an object", root);
		cJSON_Delete(root);
		return rv;
	}
	*rootp = root;
	return 0;
}

/* msg_header: "v" is CANARY_PROTO_VERSION and "type" is type. */
static int
msg_header(struct msg_dec *d, const cJSON *root, const char *type)
{
	const cJSON *v;
	char what[32];
	int rv;

	if ((rv = msg_field(d, root, "", "v", 1, &v)) != 0) {
		return CANARY_EPROTO;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble != CANARY_PROTO_VERSION) {
		snprintf(what, sizeof(what), "protocol version %d", CANARY_PROTO_VERSION);
		return msg_bad(d, CANARY_EPROTO, "v", what, v);
	}
	if ((rv = msg_field(d, root, "", "type", 1, &v)) != 0) {
		return CANARY_EPROTO;
	}
	if (!cJSON_IsString(v) || strcmp(v->valuestring, type) != 0) {
		snprintf(what, sizeof(what), "\"%s\"", type);
		return msg_bad(d, CANARY_EPROTO, "type", what, v);
	}
	return 0;
}

/* ---- decoding: the probe ----------------------------------------------- */

static int
probe_target_from_json(struct msg_dec *d, const cJSON *o, const char *path, struct canary_target *t)
{
	const cJSON *arr, *e;
	char p[MSG_PATH_LEN], q[MSG_PATH_LEN];
	int rv, n, i = 0, cache = CANARY_CACHE_NONE, method = 0;
	uint64_t st = 0;

	if (!cJSON_IsObject(o)) {
		return msg_bad(d, CANARY_EINVAL, path, "an object", o);
	}
	if ((rv = msg_get_str(d, o, path, "id", 1, MSG_STR_ID, t->id, sizeof(t->id))) != 0 ||
	    (rv = msg_get_str(d, o, path, "url", 1, MSG_STR_URL, t->url, sizeof(t->url))) != 0 ||
	    (rv = msg_get_enum(d, o, path, "method", 0, msg_method_names, MSG_METHOD_COUNT,
	                       &method)) != 0 ||
	    (rv = msg_get_u32(d, o, path, "requests", 1, 1, CANARY_MAX_REQUESTS, &t->requests)) !=
	        0 ||
	    (rv = msg_get_u32(d, o, path, "timeout_ms", 1, 1, CANARY_MAX_TIMEOUT_MS,
	                      &t->timeout_ms)) != 0 ||
	    (rv = msg_get_array(d, o, path, "expect_status", 1, CANARY_MAX_STATUSES, &arr, &n)) !=
	        0) {
		return rv;
	}
	snprintf(t->method, sizeof(t->method), "%s", msg_method_names[method]);
	msg_join(p, path, "expect_status");
	for (e = arr->child; e != NULL; e = e->next, i++) {
		msg_index(q, p, (size_t)i);
		if ((rv = msg_val_u64(d, e, q, 100, 599, &st)) != 0) {
			return rv;
		}
		for (int j = 0; j < i; j++) {
			if (t->expect_status[j] == (int)st) {
				return canary_errf(d->err, d->errlen, CANARY_EINVAL,
				                   "%s: status %d repeats %s[%d]", q, (int)st, p,
				                   j);
			}
		}
		t->expect_status[i] = (int)st;
	}
	t->n_expect_status = n;
	if ((rv = msg_get_enum(d, o, path, "cache", 0, msg_cache_names, MSG_CACHE_COUNT, &cache)) !=
	        0 ||
	    (rv = msg_get_str(d, o, path, "body_match", 0, MSG_STR_TEXT, t->body_match,
	                      sizeof(t->body_match))) != 0) {
		return rv;
	}
	t->cache = (enum canary_cache_kind)cache;
	return 0;
}

/* expect.middleware or expect.server: 1..2 distinct versions, shares 100. */
static int
probe_shares_from_json(struct msg_dec *d, const cJSON *o, const char *path, const char *name,
                       struct canary_version_share *vs, int *np)
{
	const cJSON *arr, *e;
	char p[MSG_PATH_LEN], q[MSG_PATH_LEN];
	double total = 0.0;
	int rv, n, i = 0;

	if ((rv = msg_get_array(d, o, path, name, 1, CANARY_MAX_VERSIONS, &arr, &n)) != 0) {
		return rv;
	}
	msg_join(p, path, name);
	for (e = arr->child; e != NULL; e = e->next, i++) {
		msg_index(q, p, (size_t)i);
		if (!cJSON_IsObject(e)) {
			return msg_bad(d, CANARY_EINVAL, q, "an object", e);
		}
		if ((rv = msg_get_str(d, e, q, "id", 1, MSG_STR_UUID, vs[i].id,
		                      sizeof(vs[i].id))) != 0 ||
		    (rv = msg_get_share(d, e, q, "share", &vs[i].share)) != 0) {
			return rv;
		}
		for (int j = 0; j < i; j++) {
			if (strcmp(vs[j].id, vs[i].id) == 0) {
				return canary_errf(d->err, d->errlen, CANARY_EINVAL,
				                   "%s.id: \"%s\" repeats %s[%d].id", q, vs[i].id,
				                   p, j);
			}
		}
		total += vs[i].share;
	}
	if (fabs(total - 100.0) > CANARY_SHARE_EPSILON) {
		return canary_errf(d->err, d->errlen, CANARY_EINVAL,
		                   "%s: shares total %.9g, expected 100", p, total);
	}
	*np = n;
	return 0;
}

static int
probe_expect_from_json(struct msg_dec *d, const cJSON *root, struct canary_expect *x)
{
	const cJSON *o, *arr, *e;
	char q[MSG_PATH_LEN];
	int rv, n, i = 0;

	if ((rv = msg_get_object(d, root, "", "expect", 1, &o)) != 0 ||
	    (rv = probe_shares_from_json(d, o, "expect", "middleware", x->middleware,
	                                 &x->n_middleware)) != 0 ||
	    (rv = probe_shares_from_json(d, o, "expect", "server", x->server, &x->n_server)) != 0 ||
	    (rv = msg_get_array(d, o, "expect", "pins", x->n_middleware, x->n_middleware, &arr,
	                        &n)) != 0) {
		return rv;
	}
	for (e = arr->child; e != NULL; e = e->next, i++) {
		msg_index(q, "expect.pins", (size_t)i);
		if ((rv = msg_val_str(d, e, q, MSG_STR_UUID, x->pins[i], sizeof(x->pins[i]))) !=
		    0) {
			return rv;
		}
	}
	return 0;
}

static int
probe_from_json(struct msg_dec *d, const cJSON *root, struct canary_probe *p)
{
	const cJSON *arr, *e, *o;
	char q[MSG_PATH_LEN];
	int rv, n, i = 0, phase = 0;

	if ((rv = msg_header(d, root, "probe")) != 0) {
		return rv;
	}
	p->proto_version = CANARY_PROTO_VERSION;
	if ((rv = msg_get_str(d, root, "", "rollout_id", 1, MSG_STR_ID, p->rollout_id,
	                      sizeof(p->rollout_id))) != 0 ||
	    (rv = msg_get_u64(d, root, "", "round", 1, 0, CANARY_MSG_INT_MAX, &p->round)) != 0 ||
	    (rv = msg_get_enum(d, root, "", "phase", 1, msg_phase_names, CANARY_PHASE_COUNT,
	                       &phase)) != 0 ||
	    (rv = msg_get_u32(d, root, "", "deadline_ms", 1, 1, CANARY_MAX_DEADLINE_MS,
	                      &p->deadline_ms)) != 0 ||
	    (rv = msg_get_array(d, root, "", "targets", 1, CANARY_MAX_TARGETS, &arr, &n)) != 0) {
		return rv;
	}
	p->phase = (enum canary_phase)phase;
	p->targets = calloc((size_t)n, sizeof(*p->targets));
	if (p->targets == NULL) {
		return canary_errf(d->err, d->errlen, CANARY_ENOMEM, "targets: out of memory");
	}
	for (e = arr->child; e != NULL; e = e->next, i++) {
		msg_index(q, "targets", (size_t)i);
		if ((rv = probe_target_from_json(d, e, q, &p->targets[i])) != 0) {
			return rv;
		}
		p->n_targets = i + 1;
		for (int j = 0; j < i; j++) {
			if (strcmp(p->targets[j].id, p->targets[i].id) == 0) {
				return canary_errf(d->err, d->errlen, CANARY_EINVAL,
				                   "%s.id: \"%s\" repeats targets[%d].id", q,
				                   p->targets[i].id, j);
			}
		}
	}
	if ((rv = msg_get_object(d, root, "", "headers", 1, &o)) != 0 ||
	    (rv = msg_get_str(d, o, "headers", "middleware_version", 1, MSG_STR_HEADER,
	                      p->headers.middleware_version,
	                      sizeof(p->headers.middleware_version))) != 0 ||
	    (rv = msg_get_str(d, o, "headers", "server_version", 1, MSG_STR_HEADER,
	                      p->headers.server_version, sizeof(p->headers.server_version))) != 0 ||
	    (rv = msg_get_str(d, o, "headers", "cache", 1, MSG_STR_HEADER, p->headers.cache,
	                      sizeof(p->headers.cache))) != 0 ||
	    (rv = probe_expect_from_json(d, root, &p->expect)) != 0 ||
	    (rv = msg_get_object(d, root, "", "override", 0, &o)) != 0) {
		return rv;
	}
	if (o != NULL) {
		struct canary_override *ov = &p->override;

		ov->enabled = 1;
		if ((rv = msg_get_share(d, o, "override", "share", &ov->share)) != 0 ||
		    (rv = msg_get_str(d, o, "override", "worker", 1, MSG_STR_ID, ov->worker,
		                      sizeof(ov->worker))) != 0 ||
		    (rv = msg_get_str(d, o, "override", "version_id", 1, MSG_STR_UUID,
		                      ov->version_id, sizeof(ov->version_id))) != 0 ||
		    (rv = msg_get_str(d, o, "override", "pin", 1, MSG_STR_UUID, ov->pin,
		                      sizeof(ov->pin))) != 0) {
			return rv;
		}
	}
	return msg_get_u32(d, root, "", "version_keys", 0, 0, CANARY_MAX_VERSION_KEYS,
	                   &p->version_keys);
}

int
canary_probe_decode(const char *buf, size_t len, struct canary_probe *p, char *err, size_t errlen)
{
	struct msg_dec d = {err, errlen};
	struct canary_probe tmp;
	cJSON *root = NULL;
	int rv;

	memset(&tmp, 0, sizeof(tmp));
	memset(p, 0, sizeof(*p));
	if ((rv = msg_parse(buf, len, &root, &d)) != 0) {
		goto out;
	}
	if ((rv = probe_from_json(&d, root, &tmp)) != 0) {
		goto out;
	}
	*p = tmp;
	tmp.targets = NULL;
out:
	free(tmp.targets);
	cJSON_Delete(root);
	return rv;
}

/* ---- decoding: the report ---------------------------------------------- */

static int
report_statuses_from_json(struct msg_dec *d, const cJSON *o, const char *path,
                          struct canary_target_report *t)
{
	const cJSON *arr, *e;
	char p[MSG_PATH_LEN], q[MSG_PATH_LEN];
	uint64_t st = 0;
	int rv, n, i = 0;

	if ((rv = msg_get_array(d, o, path, "statuses", 0, CANARY_MAX_SEEN_STATUS, &arr, &n)) !=
	    0) {
		return rv;
	}
	msg_join(p, path, "statuses");
	for (e = arr->child; e != NULL; e = e->next, i++) {
		msg_index(q, p, (size_t)i);
		if (!cJSON_IsObject(e)) {
			return msg_bad(d, CANARY_EINVAL, q, "an object", e);
		}
		if ((rv = msg_get_u64(d, e, q, "status", 1, 100, 599, &st)) != 0 ||
		    (rv = msg_get_count(d, e, q, "count", &t->statuses[i].count)) != 0) {
			return rv;
		}
		t->statuses[i].status = (int)st;
		for (int j = 0; j < i; j++) {
			if (t->statuses[j].status == (int)st) {
				return canary_errf(d->err, d->errlen, CANARY_EINVAL,
				                   "%s.status: %d repeats %s[%d].status", q,
				                   (int)st, p, j);
			}
		}
	}
	t->n_statuses = n;
	return 0;
}

static int
report_pairs_from_json(struct msg_dec *d, const cJSON *o, const char *path,
                       struct canary_target_report *t)
{
	const cJSON *arr, *e;
	char p[MSG_PATH_LEN], q[MSG_PATH_LEN];
	int rv, n, i = 0;

	if ((rv = msg_get_array(d, o, path, "pairs", 0, CANARY_MAX_PAIRS, &arr, &n)) != 0) {
		return rv;
	}
	msg_join(p, path, "pairs");
	for (e = arr->child; e != NULL; e = e->next, i++) {
		struct canary_pair_count *pc = &t->pairs[i];

		msg_index(q, p, (size_t)i);
		if (!cJSON_IsObject(e)) {
			return msg_bad(d, CANARY_EINVAL, q, "an object", e);
		}
		if ((rv = msg_get_str(d, e, q, "middleware", 1, MSG_STR_UUID, pc->middleware,
		                      sizeof(pc->middleware))) != 0 ||
		    (rv = msg_get_str(d, e, q, "server", 1, MSG_STR_UUID_OR_EMPTY, pc->server,
		                      sizeof(pc->server))) != 0 ||
		    (rv = msg_get_count(d, e, q, "count", &pc->count)) != 0) {
			return rv;
		}
		for (int j = 0; j < i; j++) {
			if (strcmp(t->pairs[j].middleware, pc->middleware) == 0 &&
			    strcmp(t->pairs[j].server, pc->server) == 0) {
				return canary_errf(d->err, d->errlen, CANARY_EINVAL,
				                   "%s: the pair repeats %s[%d]", q, p, j);
			}
		}
	}
	t->n_pairs = n;
	return 0;
}

static int
report_target_from_json(struct msg_dec *d, const cJSON *o, const char *path,
                        struct canary_target_report *t)
{
	static const struct {
		const char *name;
		size_t off;
	} counters[] = {
	    {"pairs_other", offsetof(struct canary_target_report, pairs_other)},
	    {"cache_hit", offsetof(struct canary_target_report, cache_hit)},
	    {"cache_stale", offsetof(struct canary_target_report, cache_stale)},
	    {"cache_miss", offsetof(struct canary_target_report, cache_miss)},
	    {"cache_warmup", offsetof(struct canary_target_report, cache_warmup)},
	    {"affinity_violations", offsetof(struct canary_target_report, affinity_violations)},
	    {"unknown_versions", offsetof(struct canary_target_report, unknown_versions)},
	    {"body_mismatches", offsetof(struct canary_target_report, body_mismatches)},
	    {"override_sent", offsetof(struct canary_target_report, override_sent)},
	    {"override_violations", offsetof(struct canary_target_report, override_violations)},
	    {"key_violations", offsetof(struct canary_target_report, key_violations)},
	};
	const cJSON *eo, *arr, *e;
	char p[MSG_PATH_LEN], q[MSG_PATH_LEN];
	int rv, n, i = 0;

	if (!cJSON_IsObject(o)) {
		return msg_bad(d, CANARY_EINVAL, path, "an object", o);
	}
	if ((rv = msg_get_str(d, o, path, "id", 1, MSG_STR_ID, t->id, sizeof(t->id))) != 0 ||
	    (rv = msg_get_count(d, o, path, "sent", &t->sent)) != 0 ||
	    (rv = msg_get_count(d, o, path, "responses", &t->responses)) != 0) {
		return rv;
	}
	if (t->responses > t->sent) {
		return canary_errf(d->err, d->errlen, CANARY_EINVAL,
		                   "%s.responses: %llu is more than sent (%llu)", path,
		                   (unsigned long long)t->responses, (unsigned long long)t->sent);
	}
	if ((rv = report_statuses_from_json(d, o, path, t)) != 0 ||
	    (rv = msg_get_count(d, o, path, "statuses_other", &t->statuses_other)) != 0 ||
	    (rv = msg_get_object(d, o, path, "errors", 1, &eo)) != 0) {
		return rv;
	}
	msg_join(p, path, "errors");
	for (int c = 0; c < CANARY_ERRCLASS_COUNT; c++) {
		if ((rv = msg_get_count(d, eo, p, msg_errclass_names[c], &t->errors[c])) != 0) {
			return rv;
		}
	}
	if ((rv = msg_field(d, o, path, "latency", 1, &eo)) != 0) {
		return rv;
	}
	msg_join(p, path, "latency");
	if ((rv = canary_hist_decode(eo, p, &t->latency, d->err, d->errlen)) != 0 ||
	    (rv = report_pairs_from_json(d, o, path, t)) != 0) {
		return rv;
	}
	for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
		uint64_t *dst = (uint64_t *)((char *)t + counters[c].off);

		if ((rv = msg_get_count(d, o, path, counters[c].name, dst)) != 0) {
			return rv;
		}
	}
	if ((rv = msg_get_array(d, o, path, "samples", 0, CANARY_MAX_SAMPLES, &arr, &n)) != 0) {
		return rv;
	}
	msg_join(p, path, "samples");
	for (e = arr->child; e != NULL; e = e->next, i++) {
		msg_index(q, p, (size_t)i);
		if ((rv = msg_val_str(d, e, q, MSG_STR_TEXT, t->samples[i], CANARY_SAMPLE_LEN)) !=
		    0) {
			return rv;
		}
	}
	t->n_samples = n;
	return 0;
}

/* report_target_counts: the counts of one target agree with each other the
 * way an agent counts them: every response has exactly one status (in
 * statuses or statuses_other), at most one version pair and one cache
 * answer; overrides ride on sent requests and are violated at most once
 * each. The gate computes error rates, shares and hit ratios from these, so
 * a report that breaks them (an agent bug, or a claim of 200s that were
 * never received) is refused rather than judged. */
static int
report_target_counts(struct msg_dec *d, const char *path, const struct canary_target_report *t)
{
	uint64_t statuses = t->statuses_other, pairs = t->pairs_other;
	uint64_t cache = t->cache_hit + t->cache_stale + t->cache_miss + t->cache_warmup;

	/* Every count is at most CANARY_MSG_INT_MAX (2^52): these sums of at
	 * most 17 of them cannot overflow. */
	for (int i = 0; i < t->n_statuses; i++) {
		statuses += t->statuses[i].count;
	}
	for (int i = 0; i < t->n_pairs; i++) {
		pairs += t->pairs[i].count;
	}
	if (statuses != t->responses) {
		return canary_errf(d->err, d->errlen, CANARY_EINVAL,
		                   "%s.statuses: counts and statuses_other total %llu, expected "
		                   "responses (%llu)",
		                   path, (unsigned long long)statuses,
		                   (unsigned long long)t->responses);
	}
	if (pairs > t->responses) {
		return canary_errf(d->err, d->errlen, CANARY_EINVAL,
		                   "%s.pairs: counts and pairs_other total %llu, more than "
		                   "responses (%llu)",
		                   path, (unsigned long long)pairs,
		                   (unsigned long long)t->responses);
	}
	if (cache > t->responses) {
		return canary_errf(d->err, d->errlen, CANARY_EINVAL,
		                   "%s.cache_hit: cache_hit, cache_stale, cache_miss and "
		                   "cache_warmup total %llu, more than responses (%llu)",
		                   path, (unsigned long long)cache,
		                   (unsigned long long)t->responses);
	}
	if (t->override_sent > t->sent || t->override_violations > t->override_sent) {
		return canary_errf(d->err, d->errlen, CANARY_EINVAL,
		                   "%s.override_violations: expected override_violations (%llu) <= "
		                   "override_sent (%llu) <= sent (%llu)",
		                   path, (unsigned long long)t->override_violations,
		                   (unsigned long long)t->override_sent,
		                   (unsigned long long)t->sent);
	}
	return 0;
}

static int
report_from_json(struct msg_dec *d, const cJSON *root, struct canary_report *r)
{
	const cJSON *arr, *e;
	char q[MSG_PATH_LEN];
	int rv, n, i = 0;

	if ((rv = msg_header(d, root, "report")) != 0) {
		return rv;
	}
	r->proto_version = CANARY_PROTO_VERSION;
	if ((rv = msg_get_str(d, root, "", "agent_id", 1, MSG_STR_ID, r->agent_id,
	                      sizeof(r->agent_id))) != 0 ||
	    (rv = msg_get_str(d, root, "", "region", 1, MSG_STR_ID, r->region,
	                      sizeof(r->region))) != 0 ||
	    (rv = msg_get_str(d, root, "", "error", 0, MSG_STR_TEXT, r->error, sizeof(r->error))) !=
	        0 ||
	    /* An agent that could not read the survey may not know the rollout. */
	    (rv = msg_get_str(d, root, "", "rollout_id", 1,
	                      r->error[0] != '\0' ? MSG_STR_ID_OR_EMPTY : MSG_STR_ID, r->rollout_id,
	                      sizeof(r->rollout_id))) != 0 ||
	    (rv = msg_get_u64(d, root, "", "round", 1, 0, CANARY_MSG_INT_MAX, &r->round)) != 0 ||
	    (rv = msg_get_bool(d, root, "", "partial", &r->partial)) != 0 ||
	    (rv = msg_get_array(d, root, "", "targets", 0, CANARY_MAX_TARGETS, &arr, &n)) != 0) {
		return rv;
	}
	if (n == 0) {
		return 0;
	}
	r->targets = calloc((size_t)n, sizeof(*r->targets));
	if (r->targets == NULL) {
		return canary_errf(d->err, d->errlen, CANARY_ENOMEM, "targets: out of memory");
	}
	for (e = arr->child; e != NULL; e = e->next, i++) {
		msg_index(q, "targets", (size_t)i);
		if ((rv = report_target_from_json(d, e, q, &r->targets[i])) != 0 ||
		    (rv = report_target_counts(d, q, &r->targets[i])) != 0) {
			return rv;
		}
		r->n_targets = i + 1;
		for (int j = 0; j < i; j++) {
			if (strcmp(r->targets[j].id, r->targets[i].id) == 0) {
				return canary_errf(d->err, d->errlen, CANARY_EINVAL,
				                   "%s.id: \"%s\" repeats targets[%d].id", q,
				                   r->targets[i].id, j);
			}
		}
	}
	return 0;
}

int
canary_report_decode(const char *buf, size_t len, struct canary_report *r, char *err, size_t errlen)
{
	struct msg_dec d = {err, errlen};
	struct canary_report tmp;
	cJSON *root = NULL;
	int rv;

	memset(&tmp, 0, sizeof(tmp));
	memset(r, 0, sizeof(*r));
	if ((rv = msg_parse(buf, len, &root, &d)) != 0) {
		goto out;
	}
	if ((rv = report_from_json(&d, root, &tmp)) != 0) {
		goto out;
	}
	*r = tmp;
	tmp.targets = NULL;
out:
	free(tmp.targets);
	cJSON_Delete(root);
	return rv;
}

void
canary_probe_free(struct canary_probe *p)
{
	if (p == NULL) {
		return;
	}
	free(p->targets);
	memset(p, 0, sizeof(*p));
}

void
canary_report_free(struct canary_report *r)
{
	if (r == NULL) {
		return;
	}
	free(r->targets);
	memset(r, 0, sizeof(*r));
}

/* ---- encoding ---------------------------------------------------------- */

/* Tree building: each helper records an allocation failure in *oom and
 * carries on, so the builders read as a list of fields; the caller checks
 * *oom once and deletes the tree. */

static void
msg_put(cJSON *o, const char *k, cJSON *v, int *oom)
{
	if (v == NULL || !cJSON_AddItemToObject(o, k, v)) {
		cJSON_Delete(v);
		*oom = 1;
	}
}

static void
msg_push(cJSON *a, cJSON *v, int *oom)
{
	if (v == NULL || !cJSON_AddItemToArray(a, v)) {
		cJSON_Delete(v);
		*oom = 1;
	}
}

/* Numbers go out as raw text printed here, exactly (canary_json_number). */
static cJSON *
msg_num(double x)
{
	char buf[32];

	canary_json_number(x, buf, sizeof(buf));
	return cJSON_CreateRaw(buf);
}

static cJSON *
msg_u64(uint64_t x)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)x);
	return cJSON_CreateRaw(buf);
}

static cJSON *
msg_int(long long x)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", x);
	return cJSON_CreateRaw(buf);
}

static void
msg_put_num(cJSON *o, const char *k, double x, int *oom)
{
	msg_put(o, k, msg_num(x), oom);
}

static void
msg_put_u64(cJSON *o, const char *k, uint64_t x, int *oom)
{
	msg_put(o, k, msg_u64(x), oom);
}

static void
msg_put_int(cJSON *o, const char *k, long long x, int *oom)
{
	msg_put(o, k, msg_int(x), oom);
}

static void
msg_put_str(cJSON *o, const char *k, const char *s, int *oom)
{
	msg_put(o, k, cJSON_CreateString(s), oom);
}

/* Adds an empty object or array under k and returns it (NULL on ENOMEM). */
static cJSON *
msg_put_new(cJSON *o, const char *k, cJSON *v, int *oom)
{
	cJSON *ret = v;

	msg_put(o, k, v, oom);
	return *oom ? NULL : ret;
}

static cJSON *
msg_push_new(cJSON *a, cJSON *v, int *oom)
{
	cJSON *ret = v;

	msg_push(a, v, oom);
	return *oom ? NULL : ret;
}

static cJSON *
probe_to_json(const struct canary_probe *p)
{
	cJSON *root = cJSON_CreateObject(), *arr, *o, *e, *a;
	int oom = root == NULL;

	if (oom) {
		return NULL;
	}
	msg_put_int(root, "v", p->proto_version, &oom);
	msg_put_str(root, "type", "probe", &oom);
	msg_put_str(root, "rollout_id", p->rollout_id, &oom);
	msg_put_u64(root, "round", p->round, &oom);
	msg_put_str(root, "phase", canary_phase_name(p->phase), &oom);
	msg_put_u64(root, "deadline_ms", p->deadline_ms, &oom);
	arr = msg_put_new(root, "targets", cJSON_CreateArray(), &oom);
	for (int i = 0; arr != NULL && i < p->n_targets; i++) {
		const struct canary_target *t = &p->targets[i];

		if ((o = msg_push_new(arr, cJSON_CreateObject(), &oom)) == NULL) {
			break;
		}
		msg_put_str(o, "id", t->id, &oom);
		msg_put_str(o, "url", t->url, &oom);
		msg_put_str(o, "method", t->method, &oom);
		msg_put_u64(o, "requests", t->requests, &oom);
		msg_put_u64(o, "timeout_ms", t->timeout_ms, &oom);
		a = msg_put_new(o, "expect_status", cJSON_CreateArray(), &oom);
		for (int j = 0; a != NULL && j < t->n_expect_status; j++) {
			msg_push(a, msg_int(t->expect_status[j]), &oom);
		}
		msg_put_str(o, "cache", canary_cache_kind_name(t->cache), &oom);
		msg_put_str(o, "body_match", t->body_match, &oom);
	}
	if ((o = msg_put_new(root, "headers", cJSON_CreateObject(), &oom)) != NULL) {
		msg_put_str(o, "middleware_version", p->headers.middleware_version, &oom);
		msg_put_str(o, "server_version", p->headers.server_version, &oom);
		msg_put_str(o, "cache", p->headers.cache, &oom);
	}
	if ((o = msg_put_new(root, "expect", cJSON_CreateObject(), &oom)) != NULL) {
		static const char *const names[2] = {"middleware", "server"};
		const struct canary_version_share *vs[2] = {p->expect.middleware, p->expect.server};
		int nv[2] = {p->expect.n_middleware, p->expect.n_server};

		for (int w = 0; w < 2; w++) {
			a = msg_put_new(o, names[w], cJSON_CreateArray(), &oom);
			for (int j = 0; a != NULL && j < nv[w]; j++) {
				if ((e = msg_push_new(a, cJSON_CreateObject(), &oom)) != NULL) {
					msg_put_str(e, "id", vs[w][j].id, &oom);
					msg_put_num(e, "share", vs[w][j].share, &oom);
				}
			}
		}
		a = msg_put_new(o, "pins", cJSON_CreateArray(), &oom);
		for (int j = 0; a != NULL && j < p->expect.n_middleware; j++) {
			msg_push(a, cJSON_CreateString(p->expect.pins[j]), &oom);
		}
	}
	if (p->override.enabled &&
	    (o = msg_put_new(root, "override", cJSON_CreateObject(), &oom)) != NULL) {
		msg_put_num(o, "share", p->override.share, &oom);
		msg_put_str(o, "worker", p->override.worker, &oom);
		msg_put_str(o, "version_id", p->override.version_id, &oom);
		msg_put_str(o, "pin", p->override.pin, &oom);
	}
	msg_put_u64(root, "version_keys", p->version_keys, &oom);
	if (oom) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

static void
report_target_to_json(cJSON *o, const struct canary_target_report *t, int *oom)
{
	cJSON *a, *e;

	msg_put_str(o, "id", t->id, oom);
	msg_put_u64(o, "sent", t->sent, oom);
	msg_put_u64(o, "responses", t->responses, oom);
	a = msg_put_new(o, "statuses", cJSON_CreateArray(), oom);
	for (int j = 0; a != NULL && j < t->n_statuses; j++) {
		if ((e = msg_push_new(a, cJSON_CreateObject(), oom)) != NULL) {
			msg_put_int(e, "status", t->statuses[j].status, oom);
			msg_put_u64(e, "count", t->statuses[j].count, oom);
		}
	}
	msg_put_u64(o, "statuses_other", t->statuses_other, oom);
	if ((e = msg_put_new(o, "errors", cJSON_CreateObject(), oom)) != NULL) {
		for (int c = 0; c < CANARY_ERRCLASS_COUNT; c++) {
			msg_put_u64(e, msg_errclass_names[c], t->errors[c], oom);
		}
	}
	msg_put(o, "latency", canary_hist_encode(&t->latency), oom);
	a = msg_put_new(o, "pairs", cJSON_CreateArray(), oom);
	for (int j = 0; a != NULL && j < t->n_pairs; j++) {
		if ((e = msg_push_new(a, cJSON_CreateObject(), oom)) != NULL) {
			msg_put_str(e, "middleware", t->pairs[j].middleware, oom);
			msg_put_str(e, "server", t->pairs[j].server, oom);
			msg_put_u64(e, "count", t->pairs[j].count, oom);
		}
	}
	msg_put_u64(o, "pairs_other", t->pairs_other, oom);
	msg_put_u64(o, "cache_hit", t->cache_hit, oom);
	msg_put_u64(o, "cache_stale", t->cache_stale, oom);
	msg_put_u64(o, "cache_miss", t->cache_miss, oom);
	msg_put_u64(o, "cache_warmup", t->cache_warmup, oom);
	msg_put_u64(o, "affinity_violations", t->affinity_violations, oom);
	msg_put_u64(o, "unknown_versions", t->unknown_versions, oom);
	msg_put_u64(o, "body_mismatches", t->body_mismatches, oom);
	msg_put_u64(o, "override_sent", t->override_sent, oom);
	msg_put_u64(o, "override_violations", t->override_violations, oom);
	msg_put_u64(o, "key_violations", t->key_violations, oom);
	a = msg_put_new(o, "samples", cJSON_CreateArray(), oom);
	for (int j = 0; a != NULL && j < t->n_samples; j++) {
		msg_push(a, cJSON_CreateString(t->samples[j]), oom);
	}
}

static cJSON *
report_to_json(const struct canary_report *r)
{
	cJSON *root = cJSON_CreateObject(), *arr, *o;
	int oom = root == NULL;

	if (oom) {
		return NULL;
	}
	msg_put_int(root, "v", r->proto_version, &oom);
	msg_put_str(root, "type", "report", &oom);
	msg_put_str(root, "agent_id", r->agent_id, &oom);
	msg_put_str(root, "region", r->region, &oom);
	msg_put_str(root, "rollout_id", r->rollout_id, &oom);
	msg_put_u64(root, "round", r->round, &oom);
	msg_put(root, "partial", cJSON_CreateBool(r->partial != 0), &oom);
	msg_put_str(root, "error", r->error, &oom);
	arr = msg_put_new(root, "targets", cJSON_CreateArray(), &oom);
	for (int i = 0; arr != NULL && i < r->n_targets; i++) {
		if ((o = msg_push_new(arr, cJSON_CreateObject(), &oom)) == NULL) {
			break;
		}
		report_target_to_json(o, &r->targets[i], &oom);
	}
	if (oom) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* ---- encoding: what must hold before the struct can be read ----------- */

/* A fixed buffer must hold its NUL; path names it. */
static int
msg_check_term(const char *s, size_t size, const char *path, char *err, size_t errlen)
{
	if (memchr(s, '\0', size) == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s: not NUL-terminated within its %zu bytes", path, size);
	}
	return 0;
}

static int
msg_check_array(const void *arr, int n, int lo, int hi, const char *path, char *err, size_t errlen)
{
	if (n < lo || n > hi) {
		return msg_bad_count(err, errlen, path, lo, hi, n);
	}
	if (n > 0 && arr == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s: NULL with %d entries", path, n);
	}
	return 0;
}

static int
msg_check_enum(int v, int n, const char *const *names, const char *path, char *err, size_t errlen)
{
	char what[MSG_EXPECT_LEN];
	size_t off;

	if (v >= 0 && v < n) {
		return 0;
	}
	off = (size_t)snprintf(what, sizeof(what), "one of");
	for (int i = 0; i < n && off < sizeof(what); i++) {
		off += (size_t)snprintf(what + off, sizeof(what) - off, "%s \"%s\"",
		                        i == 0 ? "" : ",", names[i]);
	}
	return canary_errf(err, errlen, CANARY_EINVAL, "%s: expected %s, got the value %d", path,
	                   what, v);
}

static int
probe_check_struct(const struct canary_probe *p, char *err, size_t errlen)
{
	const struct canary_expect *x = &p->expect;
	char q[MSG_PATH_LEN], r[MSG_PATH_LEN];
	int rv;

	if ((rv = msg_check_term(p->rollout_id, sizeof(p->rollout_id), "rollout_id", err,
	                         errlen)) != 0 ||
	    (rv = msg_check_enum((int)p->phase, CANARY_PHASE_COUNT, msg_phase_names, "phase", err,
	                         errlen)) != 0 ||
	    (rv = msg_check_array(p->targets, p->n_targets, 1, CANARY_MAX_TARGETS, "targets", err,
	                          errlen)) != 0) {
		return rv;
	}
	for (int i = 0; i < p->n_targets; i++) {
		const struct canary_target *t = &p->targets[i];

		msg_index(q, "targets", (size_t)i);
		msg_join(r, q, "id");
		if ((rv = msg_check_term(t->id, sizeof(t->id), r, err, errlen)) != 0) {
			return rv;
		}
		msg_join(r, q, "url");
		if ((rv = msg_check_term(t->url, sizeof(t->url), r, err, errlen)) != 0) {
			return rv;
		}
		msg_join(r, q, "method");
		if ((rv = msg_check_term(t->method, sizeof(t->method), r, err, errlen)) != 0) {
			return rv;
		}
		msg_join(r, q, "body_match");
		if ((rv = msg_check_term(t->body_match, sizeof(t->body_match), r, err, errlen)) !=
		    0) {
			return rv;
		}
		msg_join(r, q, "expect_status");
		if ((rv = msg_check_array(t->expect_status, t->n_expect_status, 1,
		                          CANARY_MAX_STATUSES, r, err, errlen)) != 0) {
			return rv;
		}
		msg_join(r, q, "cache");
		if ((rv = msg_check_enum((int)t->cache, MSG_CACHE_COUNT, msg_cache_names, r, err,
		                         errlen)) != 0) {
			return rv;
		}
	}
	if ((rv = msg_check_term(p->headers.middleware_version,
	                         sizeof(p->headers.middleware_version),
	                         "headers.middleware_version", err, errlen)) != 0 ||
	    (rv = msg_check_term(p->headers.server_version, sizeof(p->headers.server_version),
	                         "headers.server_version", err, errlen)) != 0 ||
	    (rv = msg_check_term(p->headers.cache, sizeof(p->headers.cache), "headers.cache", err,
	                         errlen)) != 0 ||
	    (rv = msg_check_array(x->middleware, x->n_middleware, 1, CANARY_MAX_VERSIONS,
	                          "expect.middleware", err, errlen)) != 0 ||
	    (rv = msg_check_array(x->server, x->n_server, 1, CANARY_MAX_VERSIONS, "expect.server",
	                          err, errlen)) != 0) {
		return rv;
	}
	for (int i = 0; i < x->n_middleware; i++) {
		msg_index(q, "expect.middleware", (size_t)i);
		msg_join(r, q, "id");
		if ((rv = msg_check_term(x->middleware[i].id, CANARY_UUID_LEN, r, err, errlen)) !=
		    0) {
			return rv;
		}
		msg_index(r, "expect.pins", (size_t)i);
		if ((rv = msg_check_term(x->pins[i], CANARY_UUID_LEN, r, err, errlen)) != 0) {
			return rv;
		}
	}
	for (int i = 0; i < x->n_server; i++) {
		msg_index(q, "expect.server", (size_t)i);
		msg_join(r, q, "id");
		if ((rv = msg_check_term(x->server[i].id, CANARY_UUID_LEN, r, err, errlen)) != 0) {
			return rv;
		}
	}
	if (p->override.enabled &&
	    ((rv = msg_check_term(p->override.worker, sizeof(p->override.worker), "override.worker",
	                          err, errlen)) != 0 ||
	     (rv = msg_check_term(p->override.version_id, sizeof(p->override.version_id),
	                          "override.version_id", err, errlen)) != 0 ||
	     (rv = msg_check_term(p->override.pin, sizeof(p->override.pin), "override.pin", err,
	                          errlen)) != 0)) {
		return rv;
	}
	return 0;
}

static int
report_check_struct(const struct canary_report *rep, char *err, size_t errlen)
{
	char q[MSG_PATH_LEN], r[MSG_PATH_LEN], s[MSG_PATH_LEN];
	int rv;

	if ((rv = msg_check_term(rep->agent_id, sizeof(rep->agent_id), "agent_id", err, errlen)) !=
	        0 ||
	    (rv = msg_check_term(rep->region, sizeof(rep->region), "region", err, errlen)) != 0 ||
	    (rv = msg_check_term(rep->rollout_id, sizeof(rep->rollout_id), "rollout_id", err,
	                         errlen)) != 0 ||
	    (rv = msg_check_term(rep->error, sizeof(rep->error), "error", err, errlen)) != 0 ||
	    (rv = msg_check_array(rep->targets, rep->n_targets, 0, CANARY_MAX_TARGETS, "targets",
	                          err, errlen)) != 0) {
		return rv;
	}
	for (int i = 0; i < rep->n_targets; i++) {
		const struct canary_target_report *t = &rep->targets[i];

		msg_index(q, "targets", (size_t)i);
		msg_join(r, q, "id");
		if ((rv = msg_check_term(t->id, sizeof(t->id), r, err, errlen)) != 0) {
			return rv;
		}
		msg_join(r, q, "statuses");
		if ((rv = msg_check_array(t->statuses, t->n_statuses, 0, CANARY_MAX_SEEN_STATUS, r,
		                          err, errlen)) != 0) {
			return rv;
		}
		msg_join(r, q, "pairs");
		if ((rv = msg_check_array(t->pairs, t->n_pairs, 0, CANARY_MAX_PAIRS, r, err,
		                          errlen)) != 0) {
			return rv;
		}
		for (int j = 0; j < t->n_pairs; j++) {
			msg_index(s, r, (size_t)j);
			if ((rv = msg_check_term(t->pairs[j].middleware, CANARY_UUID_LEN, s, err,
			                         errlen)) != 0 ||
			    (rv = msg_check_term(t->pairs[j].server, CANARY_UUID_LEN, s, err,
			                         errlen)) != 0) {
				return rv;
			}
		}
		msg_join(r, q, "samples");
		if ((rv = msg_check_array(t->samples, t->n_samples, 0, CANARY_MAX_SAMPLES, r, err,
		                          errlen)) != 0) {
			return rv;
		}
		for (int j = 0; j < t->n_samples; j++) {
			msg_index(s, r, (size_t)j);
			if ((rv = msg_check_term(t->samples[j], CANARY_SAMPLE_LEN, s, err,
			                         errlen)) != 0) {
				return rv;
			}
		}
	}
	return 0;
}

/* Prints root and hands the text out if the decoder accepts it. Takes root. */
static int
msg_finish(cJSON *root, int is_probe, char **outp, size_t *lenp, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len;
	int rv;

	if (root == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "message: out of memory");
		goto out;
	}
	text = cJSON_PrintUnformatted(root);
	if (text == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "message: out of memory");
		goto out;
	}
	len = strlen(text);
	if (is_probe) {
		struct canary_probe check;

		rv = canary_probe_decode(text, len, &check, err, errlen);
		canary_probe_free(&check);
	} else {
		struct canary_report check;

		rv = canary_report_decode(text, len, &check, err, errlen);
		canary_report_free(&check);
	}
	if (rv != 0) {
		goto out;
	}
	*outp = text;
	text = NULL;
	if (lenp != NULL) {
		*lenp = len;
	}
out:
	cJSON_free(text);
	cJSON_Delete(root);
	return rv;
}

int
canary_probe_encode(const struct canary_probe *p, char **outp, size_t *lenp, char *err,
                    size_t errlen)
{
	int rv;

	*outp = NULL;
	if ((rv = probe_check_struct(p, err, errlen)) != 0) {
		return rv;
	}
	return msg_finish(probe_to_json(p), 1, outp, lenp, err, errlen);
}

int
canary_report_encode(const struct canary_report *r, char **outp, size_t *lenp, char *err,
                     size_t errlen)
{
	int rv;

	*outp = NULL;
	if ((rv = report_check_struct(r, err, errlen)) != 0) {
		return rv;
	}
	return msg_finish(report_to_json(r), 0, outp, lenp, err, errlen);
}

/* ---- merge ------------------------------------------------------------- */

static uint64_t
msg_add_sat(uint64_t a, uint64_t b)
{
	return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

void
canary_target_report_merge(struct canary_target_report *dst, const struct canary_target_report *src)
{
	uint64_t *const dc[] = {
	    &dst->sent,
	    &dst->responses,
	    &dst->statuses_other,
	    &dst->pairs_other,
	    &dst->cache_hit,
	    &dst->cache_stale,
	    &dst->cache_miss,
	    &dst->cache_warmup,
	    &dst->affinity_violations,
	    &dst->unknown_versions,
	    &dst->body_mismatches,
	    &dst->override_sent,
	    &dst->override_violations,
	    &dst->key_violations,
	};
	const uint64_t sc[] = {
	    src->sent,
	    src->responses,
	    src->statuses_other,
	    src->pairs_other,
	    src->cache_hit,
	    src->cache_stale,
	    src->cache_miss,
	    src->cache_warmup,
	    src->affinity_violations,
	    src->unknown_versions,
	    src->body_mismatches,
	    src->override_sent,
	    src->override_violations,
	    src->key_violations,
	};

	if (dst->id[0] == '\0') {
		memcpy(dst->id, src->id, sizeof(dst->id));
		dst->id[sizeof(dst->id) - 1] = '\0';
	}
	for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		*dc[i] = msg_add_sat(*dc[i], sc[i]);
	}
	for (int c = 0; c < CANARY_ERRCLASS_COUNT; c++) {
		dst->errors[c] = msg_add_sat(dst->errors[c], src->errors[c]);
	}
	for (int i = 0; i < src->n_statuses && i < CANARY_MAX_SEEN_STATUS; i++) {
		const struct canary_status_count *s = &src->statuses[i];
		int j;

		for (j = 0; j < dst->n_statuses; j++) {
			if (dst->statuses[j].status == s->status) {
				break;
			}
		}
		if (j < dst->n_statuses) {
			dst->statuses[j].count = msg_add_sat(dst->statuses[j].count, s->count);
		} else if (dst->n_statuses < CANARY_MAX_SEEN_STATUS) {
			dst->statuses[dst->n_statuses++] = *s;
		} else {
			dst->statuses_other = msg_add_sat(dst->statuses_other, s->count);
		}
	}
	for (int i = 0; i < src->n_pairs && i < CANARY_MAX_PAIRS; i++) {
		const struct canary_pair_count *s = &src->pairs[i];
		int j;

		for (j = 0; j < dst->n_pairs; j++) {
			if (strcmp(dst->pairs[j].middleware, s->middleware) == 0 &&
			    strcmp(dst->pairs[j].server, s->server) == 0) {
				break;
			}
		}
		if (j < dst->n_pairs) {
			dst->pairs[j].count = msg_add_sat(dst->pairs[j].count, s->count);
		} else if (dst->n_pairs < CANARY_MAX_PAIRS) {
			dst->pairs[dst->n_pairs++] = *s;
		} else {
			dst->pairs_other = msg_add_sat(dst->pairs_other, s->count);
		}
	}
	canary_hist_merge(&dst->latency, &src->latency);
	for (int i = 0; i < src->n_samples && dst->n_samples < CANARY_MAX_SAMPLES; i++) {
		memcpy(dst->samples[dst->n_samples], src->samples[i], CANARY_SAMPLE_LEN);
		dst->n_samples++;
	}
}
