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
#include <time.h>

/* A line is at most this many bytes; a string value that does not fit is cut
 * and a number that does not fit is dropped, and the line then ends with
 * truncated=true (text) or "truncated":true (JSON). */
#define CANARY_LOG_MAX_LINE 8192
/* canary_logf formats its message into at most this many bytes. */
#define CANARY_LOG_MAX_MSG 4096

enum canary_log_format { CANARY_LOG_TEXT = 0, CANARY_LOG_JSON };
enum canary_log_level { CANARY_LOG_DEBUG = 0, CANARY_LOG_INFO, CANARY_LOG_WARN, CANARY_LOG_ERROR };

/* canary_log_parse_format: "text" or "json"; 0 or CANARY_EINVAL. */
int canary_log_parse_format(const char *s, enum canary_log_format *f);

/* canary_log_setup: where lines go (NULL: stderr; the stream stays the
 * caller's), their format, and the lowest level written (default: stderr,
 * text, CANARY_LOG_INFO). Safe to call while other threads log. */
void canary_log_setup(FILE *stream, enum canary_log_format format, enum canary_log_level min);

/* canary_log_set_clock: the wall clock lines are stamped with (NULL: the
 * real CLOCK_REALTIME), so tests can check whole lines. */
void canary_log_set_clock(void (*now)(struct timespec *ts));

/* Opaque builder: allocated by canary_log_begin, written out and freed by
 * canary_log_end; every begin that returns non-NULL needs its end. Owned by
 * the calling thread until then. */
struct canary_log_line;

/* Build a line: begin, add fields, end. Values are escaped as needed.
 *   struct canary_log_line *l = canary_log_begin(CANARY_LOG_INFO, "round");
 *   canary_log_str(l, "region", "enam");
 *   canary_log_u64(l, "sent", 40);
 *   canary_log_end(l);
 * A NULL line (level filtered out or no memory) is accepted and ignored.
 * Text values are written bare when they are one token, otherwise quoted with
 * \" \\ \n \r \t \xNN escapes; text keys are reduced to [A-Za-z0-9_.-]. JSON
 * strings are escaped per RFC 8259 (invalid UTF-8 becomes U+FFFD); a NULL
 * string and a non-finite double are JSON null (text: null, nan, inf). A
 * field named ts, level, event or truncated is written as ts_, level_, ... so
 * a JSON line never holds a key twice. */
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
