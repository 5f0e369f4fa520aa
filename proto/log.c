/*
 * log.c: event lines in text or JSON, one fwrite per line under a mutex.
 *
 * A line is built in a fixed buffer of CANARY_LOG_MAX_LINE bytes owned by the
 * builder; a field that does not fit is cut (strings) or dropped (numbers)
 * and the line ends with truncated=true, so a huge value (a child's stderr,
 * an HTTP body) can never make the logger allocate without bound or emit a
 * half-escaped line.
 */
#include "log.h"

#include "err.h"
#include "jsonc.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes kept free at the end of every line for the truncation mark and the
 * closing "}\n". */
#define LOG_TAIL_RESERVE 32
/* Room for "YYYY-MM-DDTHH:MM:SS.mmmZ" and its NUL, with slack for odd years. */
#define LOG_TS_LEN 40
/* Room for any formatted number. */
#define LOG_NUM_LEN 64
/* The longest UTF-8 sequence; values are NUL-terminated, so a short one
 * stops at the NUL (see canary_utf8_len). */
#define LOG_UTF8_MAX 4

struct canary_log_line {
	enum canary_log_format format;
	size_t len;
	int truncated;
	char buf[CANARY_LOG_MAX_LINE];
};

/* Process-wide configuration, guarded by log_mu; the mutex also keeps each
 * fwrite+fflush of a line whole. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_stream; /* NULL: stderr */
static enum canary_log_format log_format = CANARY_LOG_TEXT;
static enum canary_log_level log_min = CANARY_LOG_INFO;
static void (*log_clock)(struct timespec *ts);

static pthread_once_t log_locale_once = PTHREAD_ONCE_INIT;
static locale_t log_c_locale = (locale_t)0;

/* Keys every line has; a field with one of these names gets a '_' appended. */
static const char *const log_reserved[] = {"ts", "level", "event", "truncated"};
#define LOG_RESERVED_LEN 16

static const char *const log_text_level[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *const log_json_level[] = {"debug", "info", "warn", "error"};

static void
log_locale_init(void)
{
	/* Kept for the life of the process: JSON numbers need '.' whatever
	 * LC_NUMERIC the program set. */
	log_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

int
canary_log_parse_format(const char *s, enum canary_log_format *f)
{
	if (s == NULL || f == NULL) {
		return CANARY_EINVAL;
	}
	if (strcmp(s, "text") == 0) {
		*f = CANARY_LOG_TEXT;
		return 0;
	}
	if (strcmp(s, "json") == 0) {
		*f = CANARY_LOG_JSON;
		return 0;
	}
	return CANARY_EINVAL;
}

void
canary_log_setup(FILE *stream, enum canary_log_format format, enum canary_log_level min)
{
	pthread_mutex_lock(&log_mu);
	log_stream = stream;
	log_format = format == CANARY_LOG_JSON ? CANARY_LOG_JSON : CANARY_LOG_TEXT;
	if ((int)min < (int)CANARY_LOG_DEBUG) {
		min = CANARY_LOG_DEBUG;
	}
	log_min = min;
	pthread_mutex_unlock(&log_mu);
}

void
canary_log_set_clock(void (*now)(struct timespec *ts))
{
	pthread_mutex_lock(&log_mu);
	log_clock = now;
	pthread_mutex_unlock(&log_mu);
}

/* log_room: bytes a field may still use. */
static size_t
log_room(const struct canary_log_line *l)
{
	return sizeof(l->buf) - LOG_TAIL_RESERVE - l->len;
}

/* log_put: appends n bytes if they fit in the field space; 0 or -1. */
static int
log_put(struct canary_log_line *l, const char *s, size_t n)
{
	if (n > log_room(l)) {
		return -1;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return 0;
}

static int
log_puts(struct canary_log_line *l, const char *s)
{
	return log_put(l, s, strlen(s));
}

/* log_text_needs_quotes: whether a text value must be quoted to read back
 * as one token (empty, spaces, '=', quotes, control or invalid bytes). */
static int
log_text_needs_quotes(const char *v)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t n;

	if (*s == '\0') {
		return 1;
	}
	while (*s != '\0') {
		if (*s <= 0x20 || *s == 0x7f || *s == '"' || *s == '=' || *s == '\\') {
			return 1;
		}
		if (*s >= 0x80) {
			n = canary_utf8_len(s, LOG_UTF8_MAX);
			if (n == 0) {
				return 1;
			}
			s += n;
			continue;
		}
		s++;
	}
	return 0;
}

/* log_escape_unit: the escaped form of the character at s into out (at
 * least 8 bytes); returns the bytes of s consumed and sets *outn. */
static size_t
log_escape_unit(enum canary_log_format fmt, const unsigned char *s, char *out, size_t *outn)
{
	unsigned char c = *s;
	size_t n;

	switch (c) {
	case '"':
		*outn = (size_t)snprintf(out, 8, "\\\"");
		return 1;
	case '\\':
		*outn = (size_t)snprintf(out, 8, "\\\\");
		return 1;
	case '\n':
		*outn = (size_t)snprintf(out, 8, "\\n");
		return 1;
	case '\r':
		*outn = (size_t)snprintf(out, 8, "\\r");
		return 1;
	case '\t':
		*outn = (size_t)snprintf(out, 8, "\\t");
		return 1;
	default:
		break;
	}
	if (c < 0x20 || (c == 0x7f && fmt == CANARY_LOG_TEXT)) {
		*outn = (size_t)(fmt == CANARY_LOG_JSON ? snprintf(out, 8, "\\u%04x", c)
		                                        : snprintf(out, 8, "\\x%02x", c));
		return 1;
	}
	if (c >= 0x80) {
		n = canary_utf8_len(s, LOG_UTF8_MAX);
		if (n == 0) {
			/* Not UTF-8: JSON gets the replacement character, text
			 * the byte's value. */
			*outn = (size_t)(fmt == CANARY_LOG_JSON ? snprintf(out, 8, "\\ufffd")
			                                        : snprintf(out, 8, "\\x%02x", c));
			return 1;
		}
		memcpy(out, s, n);
		*outn = n;
		return n;
	}
	out[0] = (char)c;
	*outn = 1;
	return 1;
}

/* log_quoted: appends v as a quoted, escaped string, cut short (and the line
 * marked truncated) when it does not fit. -1 when not even "" fits. */
static int
log_quoted(struct canary_log_line *l, const char *v)
{
	const unsigned char *s = (const unsigned char *)v;
	char unit[8];
	size_t used, outn;

	if (log_room(l) < 2) {
		return -1;
	}
	l->buf[l->len++] = '"';
	while (*s != '\0') {
		used = log_escape_unit(l->format, s, unit, &outn);
		/* Keep one byte for the closing quote. */
		if (outn + 1 > log_room(l)) {
			l->truncated = 1;
			break;
		}
		memcpy(l->buf + l->len, unit, outn);
		l->len += outn;
		s += used;
	}
	l->buf[l->len++] = '"';
	return 0;
}

/* log_key: starts a field: " key=" (text, key reduced to [A-Za-z0-9_.-]) or
 * ,"key": (JSON). */
static int
log_key(struct canary_log_line *l, const char *key)
{
	const unsigned char *s;
	char renamed[LOG_RESERVED_LEN];
	char c;
	size_t i;

	/* The line's own keys cannot be repeated by a field: a JSON object
	 * with two "event" members is rejected by strict readers. */
	for (i = 0; i < sizeof(log_reserved) / sizeof(log_reserved[0]); i++) {
		if (strcmp(key, log_reserved[i]) == 0) {
			snprintf(renamed, sizeof(renamed), "%s_", key);
			key = renamed;
			break;
		}
	}
	s = (const unsigned char *)key;
	if (l->format == CANARY_LOG_JSON) {
		if (log_puts(l, ",") != 0 || log_quoted(l, key) != 0 || log_puts(l, ":") != 0) {
			return -1;
		}
		return 0;
	}
	if (log_puts(l, " ") != 0) {
		return -1;
	}
	for (; *s != '\0'; s++) {
		c = (char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-')) {
			c = '_';
		}
		if (log_put(l, &c, 1) != 0) {
			return -1;
		}
	}
	return log_puts(l, "=");
}

/* log_field: appends key and an already formatted raw value (a number or
 * null); drops the whole field when it does not fit. */
static void
log_field_raw(struct canary_log_line *l, const char *key, const char *raw)
{
	size_t mark;

	if (l == NULL || key == NULL || l->truncated) {
		return;
	}
	mark = l->len;
	if (log_key(l, key) != 0 || log_puts(l, raw) != 0) {
		l->len = mark;
		l->truncated = 1;
	}
}

/* log_ts: the UTC time with milliseconds into buf (LOG_TS_LEN bytes). */
static void
log_ts(void (*clock)(struct timespec *), char *buf)
{
	struct timespec ts = {0, 0};
	struct tm tm;
	size_t n;
	unsigned ms;

	if (clock != NULL) {
		clock(&ts);
	} else {
		(void)clock_gettime(CLOCK_REALTIME, &ts);
	}
	n = 0;
	if (gmtime_r(&ts.tv_sec, &tm) != NULL) {
		n = strftime(buf, LOG_TS_LEN - 8, "%Y-%m-%dT%H:%M:%S", &tm);
	}
	if (n == 0) {
		n = (size_t)snprintf(buf, LOG_TS_LEN - 8, "1970-01-01T00:00:00");
	}
	ms = (unsigned)((ts.tv_nsec / 1000000L) % 1000);
	snprintf(buf + n, LOG_TS_LEN - n, ".%03uZ", ms);
}

struct canary_log_line *
canary_log_begin(enum canary_log_level level, const char *event)
{
	struct canary_log_line *l;
	enum canary_log_format format;
	enum canary_log_level min;
	void (*clock)(struct timespec *);
	char ts[LOG_TS_LEN];
	char head[LOG_TS_LEN + 32];
	int lv = (int)level;

	pthread_mutex_lock(&log_mu);
	format = log_format;
	min = log_min;
	clock = log_clock;
	pthread_mutex_unlock(&log_mu);
	if (lv < (int)CANARY_LOG_DEBUG || lv > (int)CANARY_LOG_ERROR || lv < (int)min) {
		return NULL;
	}
	l = malloc(sizeof(*l));
	if (l == NULL) {
		return NULL;
	}
	l->format = format;
	l->len = 0;
	l->truncated = 0;
	if (event == NULL) {
		event = "";
	}
	log_ts(clock, ts);
	if (format == CANARY_LOG_JSON) {
		snprintf(head, sizeof(head), "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", ts,
		         log_json_level[lv]);
		(void)log_puts(l, head);
		(void)log_quoted(l, event);
	} else {
		snprintf(head, sizeof(head), "%s %-5s ", ts, log_text_level[lv]);
		(void)log_puts(l, head);
		if (log_text_needs_quotes(event)) {
			(void)log_quoted(l, event);
		} else if (log_puts(l, event) != 0) {
			l->truncated = 1;
		}
	}
	return l;
}

void
canary_log_str(struct canary_log_line *l, const char *key, const char *value)
{
	size_t mark;

	if (l == NULL || key == NULL || l->truncated) {
		return;
	}
	if (value == NULL) {
		log_field_raw(l, key, "null");
		return;
	}
	mark = l->len;
	if (log_key(l, key) != 0) {
		l->len = mark;
		l->truncated = 1;
		return;
	}
	/* Too long to fit bare: cut it inside quotes instead; when not even
	 * "" fits, the key goes too. */
	if (l->format == CANARY_LOG_TEXT && !log_text_needs_quotes(value) &&
	    log_puts(l, value) == 0) {
		return;
	}
	if (log_quoted(l, value) != 0) {
		l->len = mark;
		l->truncated = 1;
	}
}

void
canary_log_u64(struct canary_log_line *l, const char *key, uint64_t value)
{
	char num[LOG_NUM_LEN];

	snprintf(num, sizeof(num), "%" PRIu64, value);
	log_field_raw(l, key, num);
}

void
canary_log_i64(struct canary_log_line *l, const char *key, int64_t value)
{
	char num[LOG_NUM_LEN];

	snprintf(num, sizeof(num), "%" PRId64, value);
	log_field_raw(l, key, num);
}

void
canary_log_dbl(struct canary_log_line *l, const char *key, double value)
{
	char num[LOG_NUM_LEN];
	locale_t old;

	if (l == NULL) {
		return;
	}
	if (!isfinite(value)) {
		if (l->format == CANARY_LOG_JSON) {
			log_field_raw(l, key, "null");
		} else {
			log_field_raw(l, key, isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf"));
		}
		return;
	}
	(void)pthread_once(&log_locale_once, log_locale_init);
	old = log_c_locale != (locale_t)0 ? uselocale(log_c_locale) : (locale_t)0;
	/* The shortest of %.15g and %.17g that reads back as the same double:
	 * 12.1 stays "12.1", and no precision is lost. */
	snprintf(num, sizeof(num), "%.15g", value);
	if (strtod(num, NULL) != value) {
		snprintf(num, sizeof(num), "%.17g", value);
	}
	if (old != (locale_t)0) {
		(void)uselocale(old);
	}
	log_field_raw(l, key, num);
}

void
canary_log_end(struct canary_log_line *l)
{
	FILE *out;
	const char *tail;

	if (l == NULL) {
		return;
	}
	/* LOG_TAIL_RESERVE keeps room for these whatever the fields did. */
	if (l->format == CANARY_LOG_JSON) {
		tail = l->truncated ? ",\"truncated\":true}\n" : "}\n";
	} else {
		tail = l->truncated ? " truncated=true\n" : "\n";
	}
	memcpy(l->buf + l->len, tail, strlen(tail));
	l->len += strlen(tail);
	pthread_mutex_lock(&log_mu);
	out = log_stream != NULL ? log_stream : stderr;
	(void)fwrite(l->buf, 1, l->len, out);
	(void)fflush(out);
	pthread_mutex_unlock(&log_mu);
	free(l);
}

void
canary_logf(enum canary_log_level level, const char *event, const char *fmt, ...)
{
	struct canary_log_line *l;
	char msg[CANARY_LOG_MAX_MSG];
	va_list ap;
	int n;

	l = canary_log_begin(level, event);
	if (l == NULL) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0) {
		snprintf(msg, sizeof(msg), "(unformattable message)");
	}
	canary_log_str(l, "msg", msg);
	if (n >= (int)sizeof(msg)) {
		l->truncated = 1;
	}
	canary_log_end(l);
}
