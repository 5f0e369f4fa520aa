/*
 * log.h: one line per event, for people (text) or machines (JSON lines).
 *
 * Text:  2026-11-27T21:05:03.120Z INFO  round region=enam sent=40 p95_ms=12.1
 * JSON:  {"ts":"2026-11-27T21:05:03.120Z","level":"info","event":"round","region":"enam",...}
 *
 * A line is built from an event name and key/value fields, so both formats
 * carry the same facts. Lines go to the configured stream (stderr by
 * default) with one fwrite each, so lines from threads do not interleave.
 */
#ifndef CANARY_LOG_H
#define CANARY_LOG_H

#include <stdint.h>
#include <stdio.h>

enum canary_log_format { CANARY_LOG_TEXT = 0, CANARY_LOG_JSON };
enum canary_log_level { CANARY_LOG_DEBUG = 0, CANARY_LOG_INFO, CANARY_LOG_WARN, CANARY_LOG_ERROR };

/* canary_log_parse_format: "text" or "json"; 0 or CANARY_EINVAL. */
int canary_log_parse_format(const char *s, enum canary_log_format *f);
void canary_log_setup(FILE *stream, enum canary_log_format format, enum canary_log_level min);

struct canary_log_line; /* opaque builder, lives on the stack of canary_log_begin's caller */

/* Build a line: begin, add fields, end. Values are escaped as needed.
 *   struct canary_log_line *l = canary_log_begin(CANARY_LOG_INFO, "round");
 *   canary_log_str(l, "region", "enam");
 *   canary_log_u64(l, "sent", 40);
 *   canary_log_end(l);
 * A NULL line (level filtered out or no memory) is accepted and ignored. */
struct canary_log_line *canary_log_begin(enum canary_log_level level, const char *event);
void canary_log_str(struct canary_log_line *l, const char *key, const char *value);
void canary_log_u64(struct canary_log_line *l, const char *key, uint64_t value);
void canary_log_i64(struct canary_log_line *l, const char *key, int64_t value);
void canary_log_dbl(struct canary_log_line *l, const char *key, double value);
void canary_log_end(struct canary_log_line *l);

/* canary_logf: a line with one "msg" field, printf-style. */
void canary_logf(enum canary_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* CANARY_LOG_H */
