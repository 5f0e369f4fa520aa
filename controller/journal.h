/*
 * journal.h: the rollout's append-only journal and the lock on its state
 * directory.
 *
 * Files in the state directory:
 *   journal.jsonl  one JSON object per line: {"type":T,"seq":N,"ts":"...",...}.
 *                  Each record is written with a single write() and fsync'd
 *                  before journal_append returns, so a crash leaves at most a
 *                  torn last line. Readers ignore a torn last line (no "\n");
 *                  journal_open cuts it off before appending again, so it
 *                  can never end up in the middle. Anything else that does
 *                  not parse is corruption, reported with its line number.
 *   lock           holds the pid of the controller that owns the rollout,
 *                  under an fcntl write lock for as long as the journal is
 *                  open. A second controller gets CANARY_ELOCKED naming the
 *                  pid. The kernel drops the lock when the holder dies, so a
 *                  crash never leaves a stale lock. fcntl locks belong to the
 *                  process, so a second journal_open of the same directory in
 *                  one process is refused too (CANARY_ELOCKED), without ever
 *                  opening the file a second time (closing it would drop the
 *                  lock held through the first).
 *
 * Record types written by the controller, and the fields replay reads:
 *   start    {"rollout": NAME, ...}
 *   intent   {"id": N, "op": "upload"|"deploy"|..., "worker": NAME,
 *             "deployment": DEP (deploy)}       before each platform call
 *   result   {"id": N, "ok": BOOL, "version_id": UUID (upload),
 *             "deployment": DEP (deploy: what the platform now holds),
 *             "error": TEXT}                     after it
 *   step     {"step": NAME, ...}                 a step applied / baked
 *   verdict  {...}                               a judged probe round
 *   rollback {...}                               rollback started
 *   end      {"outcome": TEXT, "exit_code": N}
 * DEP is the API's shape: {"id":..,"versions":[{"version_id","percentage"}]}
 * (deployer_deployment_json builds it). Other fields are free-form.
 *
 * Threads: a struct journal belongs to the loop thread, and journal_open /
 * journal_close are called from one thread (they share the list of
 * journals this process holds). The pure functions
 * (journal_parse, journal_replay) take values only.
 */
#ifndef CANARY_JOURNAL_H
#define CANARY_JOURNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "deployer.h"
#include "err.h"

#define JOURNAL_FILE        "journal.jsonl"
#define JOURNAL_LOCK_FILE   "lock"
#define JOURNAL_MAX_LINE    (256 * 1024)       /* one record, newline included */
#define JOURNAL_MAX_BYTES   (64 * 1024 * 1024) /* the whole journal */
#define JOURNAL_MAX_RECORDS 200000
#define JOURNAL_MAX_DEPTH   32 /* nesting of one record */
#define JOURNAL_MAX_WORKERS 8  /* distinct workers replay keeps state for */
#define JOURNAL_PATH_MAX    4096

struct journal;

/* journal_open: creates state_dir (and missing parents; each new directory's
 * parent is fsync'd), takes the lock (CANARY_ELOCKED: "... locked by pid N"),
 * opens or creates journal.jsonl (a new file is made durable by an fsync of
 * the directory) and cuts off a torn last line. Returns 0 with *jp owned by
 * the caller, or a canary error with the path and reason in err. */
int journal_open(const char *state_dir, struct journal **jp, char *err, size_t errlen);

/* journal_append: writes {"type":type,"seq":N,"ts":"<UTC ISO 8601 ms>",
 * ...fields} as one line (one write(), then fsync) and returns 0 once it is
 * on disk. fields: an object (copied, not taken) or NULL; it must not hold
 * "type", "seq" or "ts". type: [a-z_-]{1,32}. A record over JOURNAL_MAX_LINE
 * is refused (CANARY_ETOOBIG). A failed or short write or fsync gives
 * CANARY_EIO, and the journal refuses further appends (CANARY_ESTATE): a
 * record whose durability is unknown must not be followed by others. */
int journal_append(struct journal *j, const char *type, const cJSON *fields, char *err,
                   size_t errlen);

/* journal_records: number of records in the journal (read at open plus
 * appended). */
int journal_records(const struct journal *j);

/* journal_close: closes the journal and releases the lock. Accepts NULL. */
void journal_close(struct journal *j);

/* Records read back: recs[0..n) are objects, each with a string "type". */
struct journal_log {
	cJSON **recs;
	int n;
	int torn; /* 1: a torn last line was ignored */
};

/* journal_parse: pure. Splits text (len bytes) into records. name is used in
 * errors ("NAME:LINE: ..."). A last line without "\n" is torn and ignored;
 * an empty or malformed line, a line over JOURNAL_MAX_LINE, or a record
 * without a string "type" anywhere else is CANARY_EPARSE with its line. On
 * success the caller owns *log (free with journal_log_free). */
int journal_parse(const char *text, size_t len, const char *name, struct journal_log *log,
                  char *err, size_t errlen);

/* journal_read: reads state_dir's journal.jsonl (no lock needed: `status`
 * may read while a run appends) and parses it. A missing journal is
 * CANARY_ENOENT. */
int journal_read(const char *state_dir, struct journal_log *log, char *err, size_t errlen);

/* journal_log_free: frees the records. Accepts NULL and an empty log. */
void journal_log_free(struct journal_log *log);

/* What a journal says about its rollout. Pointers point into the records
 * given to journal_replay and live as long as they do. */
struct journal_state {
	int n_records;
	int started;                 /* a "start" record was seen */
	char rollout[CANARY_ID_LEN]; /* its "rollout" field, "" when absent */
	/* The last intent without a result: the platform call it announced
	 * may or may not have happened (resume must read the platform). */
	const cJSON *pending; /* NULL: none */
	int pending_id;       /* its "id" */
	char pending_op[CANARY_ID_LEN];
	char pending_worker[CANARY_ID_LEN];
	/* The last deployment applied with success, per worker. */
	struct {
		char worker[CANARY_ID_LEN];
		struct deployment dep;
	} applied[JOURNAL_MAX_WORKERS];
	int n_applied;
	/* The last version uploaded with success, per worker. */
	struct {
		char worker[CANARY_ID_LEN];
		char version_id[CANARY_UUID_LEN];
	} uploaded[JOURNAL_MAX_WORKERS];
	int n_uploaded;
	char last_step[CANARY_ID_LEN]; /* "step" of the last step record, "" none */
	int rolling_back;              /* a "rollback" record was seen */
	int ended;                     /* an "end" record was seen */
	char outcome[CANARY_ID_LEN];   /* its "outcome" */
	int exit_code;                 /* its "exit_code" (-1 when absent) */
};

/* journal_replay: pure. Reads recs[0..n) in order into *st. A record that
 * breaks the schema above (an intent without an integer id, a result for
 * an unknown intent, a malformed deployment, a record other than "start"
 * after "end") is CANARY_EPARSE naming the record number (from 1) and the
 * field. A "start" begins a new rollout in the same directory: the state
 * read so far is dropped. Unknown record types are skipped. */
int journal_replay(const cJSON *const *recs, int n, struct journal_state *st, char *err,
                   size_t errlen);

/* journal_applied / journal_uploaded: st's entry for worker, NULL none. */
const struct deployment *journal_applied(const struct journal_state *st, const char *worker);
const char *journal_uploaded(const struct journal_state *st, const char *worker);

#endif /* CANARY_JOURNAL_H */
