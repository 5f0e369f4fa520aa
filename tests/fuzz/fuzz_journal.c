/*
 * fuzz_journal.c: libFuzzer target for the journal reader
 * (controller/journal.h: journal_parse, then journal_replay on what it
 * returns). The journal is read back by `resume` and `status` from a state
 * directory anyone with access may have edited or a crash may have cut.
 *
 * Promises checked, beyond "no crash, no leak, no undefined behaviour":
 *   - a rejection leaves an empty log and names the journal ("NAME:...");
 *   - an accepted journal has one record per complete line, each line
 *     exactly one JSON value (nothing glued after it), marks the last line
 *     torn exactly when the input does not end in "\n", and each record is
 *     an object with a string "type";
 *   - printing every record as one line and reading that back gives the
 *     same records, in order, and replaying them gives the same state or
 *     the same error: nothing replay depends on is lost between the
 *     controller's writer (cJSON) and the reader;
 *   - a replayed state is consistent: every applied deployment passes
 *     deployer_check_deployment, every uploaded id is a uuid, an ended
 *     rollout has an outcome, the pending intent is one of the records.
 * A broken promise aborts, which libFuzzer reports as a crash.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "deployer.h"
#include "err.h"
#include "fuzz_util.h"
#include "journal.h"

#define FUZZ_NAME "fuzz-journal"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_journal: %s: %s\n", what, detail);
	abort();
}

/* fuzz_number_prints_back: whether cJSON prints d as text that reads back
 * as d. It does not for inf and nan (printed as null), nor when the 15-digit
 * form is off by at most DBL_EPSILON relative (cJSON's print_number takes
 * it then, instead of 17 digits); a journal never holds such numbers (its
 * writer prints integers), so the round trip is not checked on them. */
static int
fuzz_number_prints_back(double d)
{
	char buf[64];
	double back;

	if (!isfinite(d)) {
		return 0;
	}
	snprintf(buf, sizeof(buf), "%1.15g", d);
	back = strtod(buf, NULL);
	return back == d || fabs(back - d) > fmax(fabs(back), fabs(d)) * DBL_EPSILON;
}

/* fuzz_prints_back: 1 when every number under node prints back exactly. */
static int
fuzz_prints_back(const cJSON *node)
{
	for (; node != NULL; node = node->next) {
		if (cJSON_IsNumber(node) && !fuzz_number_prints_back(node->valuedouble)) {
			return 0;
		}
		if (!fuzz_prints_back(node->child)) {
			return 0;
		}
	}
	return 1;
}

/* fuzz_same_tree: 1 when a and b are equal member by member, in order.
 * cJSON_Compare is not used: it looks object members up by key, so an
 * object with a duplicate key never equals even itself. Strings compare
 * as C strings (cJSON cuts a "\u0000" there on both sides). */
static int
fuzz_same_tree(const cJSON *a, const cJSON *b)
{
	for (; a != NULL && b != NULL; a = a->next, b = b->next) {
		if ((a->type & 0xff) != (b->type & 0xff)) {
			return 0;
		}
		if ((a->string == NULL) != (b->string == NULL) ||
		    (a->string != NULL && strcmp(a->string, b->string) != 0)) {
			return 0;
		}
		if (cJSON_IsString(a) && strcmp(a->valuestring, b->valuestring) != 0) {
			return 0;
		}
		if (cJSON_IsNumber(a) && a->valuedouble != b->valuedouble) {
			return 0;
		}
		if (!fuzz_same_tree(a->child, b->child)) {
			return 0;
		}
	}
	return a == NULL && b == NULL;
}

/* fuzz_check_state: what a successful replay of log promises. */
static void
fuzz_check_state(const struct journal_state *st, const struct journal_log *log)
{
	char why[CANARY_ERRLEN];
	int i, found = 0;

	if (st->n_records != log->n) {
		fuzz_die("replay", "n_records is not the number of records");
	}
	if (st->n_applied < 0 || st->n_applied > JOURNAL_MAX_WORKERS || st->n_uploaded < 0 ||
	    st->n_uploaded > JOURNAL_MAX_WORKERS) {
		fuzz_die("replay", "per-worker counts out of range");
	}
	for (i = 0; i < st->n_applied; i++) {
		if (deployer_check_deployment(&st->applied[i].dep, why, sizeof(why)) != 0) {
			fuzz_die("replay kept an invalid deployment", why);
		}
		if (journal_applied(st, st->applied[i].worker) != &st->applied[i].dep) {
			fuzz_die("replay", "journal_applied does not find a worker's entry");
		}
	}
	for (i = 0; i < st->n_uploaded; i++) {
		if (!canary_is_uuid(st->uploaded[i].version_id)) {
			fuzz_die("replay kept an upload without a uuid",
			         st->uploaded[i].version_id);
		}
		if (journal_uploaded(st, st->uploaded[i].worker) != st->uploaded[i].version_id) {
			fuzz_die("replay", "journal_uploaded does not find a worker's entry");
		}
	}
	if (st->ended && st->outcome[0] == '\0') {
		fuzz_die("replay", "an ended rollout without an outcome");
	}
	if (st->pending != NULL) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(st->pending, "type");

		for (i = 0; i < log->n; i++) {
			found |= log->recs[i] == st->pending;
		}
		if (!found || !cJSON_IsString(t) || strcmp(t->valuestring, "intent") != 0 ||
		    st->pending_op[0] == '\0') {
			fuzz_die("replay", "the pending intent is not an intent record of the log");
		}
	}
}

/* fuzz_same_state: a and b (replays of equal records) must agree. */
static void
fuzz_same_state(const struct journal_state *a, const struct journal_state *b)
{
	int i;

	if (a->n_records != b->n_records || a->started != b->started ||
	    strcmp(a->rollout, b->rollout) != 0 || (a->pending == NULL) != (b->pending == NULL) ||
	    a->pending_id != b->pending_id || strcmp(a->pending_op, b->pending_op) != 0 ||
	    strcmp(a->pending_worker, b->pending_worker) != 0 || a->n_applied != b->n_applied ||
	    a->n_uploaded != b->n_uploaded || strcmp(a->last_step, b->last_step) != 0 ||
	    a->rolling_back != b->rolling_back || a->ended != b->ended ||
	    strcmp(a->outcome, b->outcome) != 0 || a->exit_code != b->exit_code) {
		fuzz_die("round trip", "replay of the printed records gives another state");
	}
	for (i = 0; i < a->n_applied; i++) {
		if (strcmp(a->applied[i].worker, b->applied[i].worker) != 0 ||
		    strcmp(a->applied[i].dep.id, b->applied[i].dep.id) != 0 ||
		    !deployer_deployment_equal(&a->applied[i].dep, &b->applied[i].dep)) {
			fuzz_die("round trip", "replay of the printed records applies otherwise");
		}
	}
	for (i = 0; i < a->n_uploaded; i++) {
		if (strcmp(a->uploaded[i].worker, b->uploaded[i].worker) != 0 ||
		    strcmp(a->uploaded[i].version_id, b->uploaded[i].version_id) != 0) {
			fuzz_die("round trip", "replay of the printed records uploads otherwise");
		}
	}
}

/* fuzz_print: the records as the journal's writer would lay them out, one
 * unformatted object per line. Caller frees; *len gets the length. */
static char *
fuzz_print(const struct journal_log *log, size_t *len)
{
	char *text = NULL, *line;
	size_t used = 0, cap = 0;

	for (int i = 0; i < log->n; i++) {
		size_t n;

		line = cJSON_PrintUnformatted(log->recs[i]);
		if (line == NULL) {
			fuzz_die("cJSON_PrintUnformatted", "failed");
		}
		n = strlen(line);
		if (memchr(line, '\n', n) != NULL) {
			fuzz_die("printed record", "holds a newline");
		}
		if (used + n + 1 > cap) {
			char *t;

			cap = (used + n + 1) * 2;
			t = realloc(text, cap);
			if (t == NULL) {
				fuzz_die("realloc", "printed journal");
			}
			text = t;
		}
		memcpy(text + used, line, n);
		text[used + n] = '\n';
		used += n + 1;
		cJSON_free(line);
	}
	*len = used;
	return text;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal_log log, again;
	struct journal_state st, st2;
	char err[CANARY_ERRLEN], err2[CANARY_ERRLEN];
	char *text = NULL;
	size_t i, newlines = 0, tlen = 0;
	int rv, rv2, exact = 1;

	rv = journal_parse((const char *)data, size, FUZZ_NAME, &log, err, sizeof(err));
	if (rv != 0) {
		if (log.n != 0 || log.recs != NULL) {
			fuzz_die("rejected journal", "left records behind");
		}
		if (rv != CANARY_EPARSE && rv != CANARY_ETOOBIG && rv != CANARY_ENOMEM) {
			fuzz_die("unexpected code", canary_strerror(rv));
		}
		if (strncmp(err, FUZZ_NAME ":", strlen(FUZZ_NAME ":")) != 0) {
			fuzz_die("error does not name the journal", err);
		}
		return 0;
	}
	for (i = 0; i < size; i++) {
		newlines += data[i] == '\n';
	}
	if ((size_t)log.n != newlines) {
		fuzz_die("parse", "not one record per complete line");
	}
	for (size_t start = 0, k = 0; k < newlines; k++) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);

		if (!fuzz_one_json_value((const char *)data + start,
		                         (size_t)(nl - (data + start)))) {
			fuzz_die("parse", "accepted a line that is not exactly one JSON value");
		}
		start = (size_t)(nl - data) + 1;
	}
	if (log.torn != (size > 0 && data[size - 1] != '\n')) {
		fuzz_die("parse", "torn flag does not match the last byte");
	}
	for (int k = 0; k < log.n; k++) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(log.recs[k], "type");

		if (!cJSON_IsObject(log.recs[k]) || !cJSON_IsString(t)) {
			fuzz_die("parse", "a record is not an object with a string type");
		}
		exact &= fuzz_prints_back(log.recs[k]->child);
	}

	rv = journal_replay((const cJSON *const *)log.recs, log.n, &st, err, sizeof(err));
	if (rv == 0) {
		fuzz_check_state(&st, &log);
	} else if (rv != CANARY_EPARSE || strncmp(err, "journal record ", 15) != 0) {
		fuzz_die("replay error without a record number", err);
	}
	if (!exact) {
		goto out;
	}

	text = fuzz_print(&log, &tlen);
	rv2 = journal_parse(text != NULL ? text : "", tlen, FUZZ_NAME, &again, err2, sizeof(err2));
	if (rv2 != 0) {
		fprintf(stderr, "%.*s\n", (int)tlen, text);
		fuzz_die("printed records do not read back", err2);
	}
	if (again.n != log.n || again.torn) {
		fuzz_die("round trip", "another number of records");
	}
	for (int k = 0; k < log.n; k++) {
		if (!fuzz_same_tree(log.recs[k], again.recs[k])) {
			fuzz_die("round trip", "a record reads back different");
		}
	}
	rv2 = journal_replay((const cJSON *const *)again.recs, again.n, &st2, err2, sizeof(err2));
	if (rv2 != rv || (rv != 0 && strcmp(err, err2) != 0)) {
		fprintf(stderr, "first: %s\nsecond: %s\n", rv != 0 ? err : "ok",
		        rv2 != 0 ? err2 : "ok");
		fuzz_die("round trip", "replay answers differently");
	}
	if (rv == 0) {
		fuzz_same_state(&st, &st2);
	}
	journal_log_free(&again);
out:
	free(text);
	journal_log_free(&log);
	return 0;
}
