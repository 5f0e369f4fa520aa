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

struct canary_jsonc;

/* canary_jsonc_parse: parses len bytes of text (need not be NUL-terminated).
 * Nesting deeper than max_depth is an error (CANARY_ETOODEEP). On success
 * *docp owns the tree; free it with canary_jsonc_free. On failure returns
 * CANARY_EPARSE, CANARY_ETOODEEP or CANARY_ENOMEM, leaves *docp NULL and
 * writes "LINE:COLUMN: what was expected, what was found" into err (lines
 * and columns count from 1; columns count bytes). */
int canary_jsonc_parse(const char *text, size_t len, int max_depth, struct canary_jsonc **docp,
                       char *err, size_t errlen);

/* canary_jsonc_root: the document's root value; owned by the document. */
const cJSON *canary_jsonc_root(const struct canary_jsonc *doc);

/* canary_jsonc_where: line and column where node (any value inside doc's
 * tree) starts. Returns 0, or CANARY_ENOENT for a node not from doc. */
int canary_jsonc_where(const struct canary_jsonc *doc, const cJSON *node, int *line, int *column);

/* canary_jsonc_free: frees doc and its tree. Accepts NULL. */
void canary_jsonc_free(struct canary_jsonc *doc);

/* canary_jsonc_read_file: reads path (at most max_bytes) and parses it.
 * Errors name the file: "path:LINE:COLUMN: ..." or "path: <strerror>". */
int canary_jsonc_read_file(const char *path, size_t max_bytes, struct canary_jsonc **docp,
                           char *err, size_t errlen);

#endif /* CANARY_JSONC_H */
