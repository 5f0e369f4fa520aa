/*
 * jsonc.h: a JSONC reader that builds cJSON trees.
 *
 * Accepts JSON plus `//` line comments, `/ * * /` block comments and trailing
 * commas in objects and arrays (the dialect of wrangler configs and rollout
 * files). Comment markers inside strings are string content, and a string
 * ending in an escaped backslash (`"C:\\" // x`) ends where JSON says it does.
 *
 * The document remembers where each value started, so a later semantic
 * check can say `rollout.jsonc:12:18: probes.interval_s: expected ...`.
 *
 * Thread-safety: a document is owned by one thread; distinct documents are
 * independent.
 */
#ifndef CANARY_JSONC_H
#define CANARY_JSONC_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define CANARY_JSONC_MAX_DEPTH 64
/* The largest max_depth canary_jsonc_parse accepts: the reader recurses once
 * per level, so this bounds its stack use. */
#define CANARY_JSONC_DEPTH_CEILING 1000

struct canary_jsonc;

/* canary_jsonc_parse: parses len bytes of text (need not be NUL-terminated).
 * More than max_depth nested objects/arrays is an error (CANARY_ETOODEEP):
 * max_depth 1 allows `{"a":1}` but not `{"a":[]}`; 0..CANARY_JSONC_DEPTH_CEILING.
 * On success *docp owns the tree; free it with canary_jsonc_free. On failure
 * returns CANARY_EPARSE, CANARY_ETOODEEP, CANARY_ENOMEM or CANARY_EINVAL (bad
 * arguments), leaves *docp NULL and writes "LINE:COLUMN: expected ..., found
 * ..." into err (lines and columns count from 1; columns count bytes; an
 * unterminated string, comment, object or array is reported where it began).
 *
 * Strict where JSON is: RFC 8259 numbers (no leading zeros, '+', '.5', '1.',
 * NaN, Infinity, or values beyond double range), strings in UTF-8 with valid
 * escapes (no lone surrogates, no raw control characters, no \u0000, which a
 * cJSON string cannot hold), no duplicate keys in an object, nothing but
 * whitespace and comments after the root value, no NUL bytes anywhere, and
 * empty input is an error. A leading UTF-8 byte order mark is skipped. */
int canary_jsonc_parse(const char *text, size_t len, int max_depth, struct canary_jsonc **docp,
                       char *err, size_t errlen);

/* canary_jsonc_root: the document's root value; owned by the document. */
const cJSON *canary_jsonc_root(const struct canary_jsonc *doc);

/* canary_jsonc_where: line and column where node (any value inside doc's
 * tree) starts. Returns 0, or CANARY_ENOENT for a node not from doc. */
int canary_jsonc_where(const struct canary_jsonc *doc, const cJSON *node, int *line, int *column);

/* canary_jsonc_free: frees doc and its tree. Accepts NULL. */
void canary_jsonc_free(struct canary_jsonc *doc);

/* canary_jsonc_read_file: reads path (at most max_bytes) and parses it with
 * CANARY_JSONC_MAX_DEPTH. Errors name the file: "path:LINE:COLUMN: ...",
 * "path: <strerror>" (CANARY_ENOENT for a missing file, else CANARY_EIO), or
 * "path: larger than the N-byte cap" (CANARY_ETOOBIG). */
int canary_jsonc_read_file(const char *path, size_t max_bytes, struct canary_jsonc **docp,
                           char *err, size_t errlen);

/* canary_json_parse_exact: parses text[0..len) (need not be NUL-terminated)
 * as exactly one strict JSON value with cJSON, with nothing but JSON
 * whitespace around it. cJSON_ParseWithLength alone stops after the first
 * value and ignores what follows, so `{"a":1}{"b":2}` or `{...}garbage`
 * would read as its first value: every reader of outside JSON (messages,
 * API answers, CLI output, journal lines) goes through here instead.
 * Returns 0 with *rootp owned by the caller (free with cJSON_Delete), or
 * CANARY_EPARSE with *rootp NULL and "byte N: not valid JSON" or "byte N:
 * unexpected data after the JSON value" (N counts from 0) in err. */
int canary_json_parse_exact(const char *text, size_t len, cJSON **rootp, char *err, size_t errlen);

/* canary_utf8_len: the length (2..4) of the well-formed UTF-8 sequence at s
 * (at most avail bytes read), or 0 when there is none: ASCII, overlong
 * forms, surrogates, code points above U+10FFFF, a truncated sequence. On a
 * NUL-terminated string avail may be 4: a short sequence stops at the NUL,
 * which is no continuation byte. */
size_t canary_utf8_len(const unsigned char *s, size_t avail);

/* canary_json_number: d as the shortest "%.Ng" (N 15..17) that reads back
 * as exactly d, into buf (size n); "null" for NaN and infinities, which
 * JSON cannot carry. cJSON's own printer accepts a 15-digit form within a
 * tolerance, so it can change the last digits of a share or of an integer
 * above 2^52: this one never does. */
void canary_json_number(double d, char *buf, size_t n);

/* canary_json_brief: v as JSON text for the "got ..." of an error message,
 * into buf (size n): a number exactly (canary_json_number; "inf", "-inf"
 * or "nan" for what cJSON read as such), anything else
 * printed by cJSON and, when longer than max bytes, cut there (before a
 * UTF-8 sequence, never inside one) and followed by "...". */
void canary_json_brief(const cJSON *v, size_t max, char *buf, size_t n);

#endif /* CANARY_JSONC_H */
